//! Property IDs in the three forms that exist on chain.
//!
//! | form | example | shard |
//! |---|---|---|
//! | sharded (what the devnet issues) | `LRI-IND-TS-2026-03-00567` | `03` |
//! | encoded (shard folded into the number) | `LRI-IND-TS-2026-0300567` | `03` |
//! | legacy (unsharded) | `LRI-IND-TS-2026-000123` | none |
//!
//! Parsing is strict — every refusal says which part is wrong — but forgiving of the two
//! things people do to IDs by accident: lower case and surrounding spaces. An ID prints in the
//! form it was parsed in, because the printed string is the key on the ledger.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The three spellings of a property ID (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdForm {
    Sharded,
    Encoded,
    Legacy,
}

/// A parsed property ID. Ordered by state, year, shard (legacy IDs first), sequence.
///
/// ```
/// use ledger::{IdForm, PropertyId};
///
/// let id: PropertyId = " lri-ind-ts-2026-0300567 ".parse().unwrap();
/// assert_eq!(id.form(), IdForm::Encoded);
/// assert_eq!((id.state(), id.year(), id.shard(), id.sequence()), ("TS", 2026, Some(3), 567));
/// // Printed in the form it was parsed in: the printed string is the key on the ledger.
/// assert_eq!(id.to_string(), "LRI-IND-TS-2026-0300567");
/// assert!("LRI-IND-TS-2026-3-567".parse::<PropertyId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropertyId {
    state: [u8; 2],
    year: u16,
    shard: Option<u8>,
    sequence: u64,
    form: IdForm,
}

/// Why a string is not a property ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("property ID is empty")]
    Empty,
    #[error("property ID must start with \"LRI-IND-\", found {found:?}")]
    Prefix { found: String },
    #[error("property ID {id:?} has {parts} dash-separated parts; expected LRI-IND-<ST>-<YYYY>-<SS>-<NNNNN>, LRI-IND-<ST>-<YYYY>-<SSNNNNN> or LRI-IND-<ST>-<YYYY>-<NNNNNN>")]
    Shape { id: String, parts: usize },
    #[error("state code {found:?} must be two letters, like TS")]
    State { found: String },
    #[error("year {found:?} must be four digits between 1900 and 2999")]
    Year { found: String },
    #[error("shard {found:?} must be two digits, 00 to 99")]
    Shard { found: String },
    #[error("sequence {found:?} {why}")]
    Sequence { found: String, why: &'static str },
}

impl PropertyId {
    /// The sharded form, as the devnet issues it.
    pub fn sharded(state: &str, year: u16, shard: u8, sequence: u64) -> Result<Self, IdError> {
        let state = parse_state(state)?;
        check_year(year)?;
        if shard > 99 {
            return Err(IdError::Shard {
                found: shard.to_string(),
            });
        }
        Ok(Self {
            state,
            year,
            shard: Some(shard),
            sequence,
            form: IdForm::Sharded,
        })
    }

    /// Two-letter state code, upper case.
    pub fn state(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.state).unwrap_or("??")
    }
    pub fn year(&self) -> u16 {
        self.year
    }
    /// `None` for legacy unsharded IDs.
    pub fn shard(&self) -> Option<u8> {
        self.shard
    }
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
    pub fn form(&self) -> IdForm {
        self.form
    }

    /// The same parcel number written in another form. Legacy IDs have no shard and stay
    /// legacy; a sharded/encoded ID cannot become legacy.
    pub fn in_form(&self, form: IdForm) -> Self {
        match (self.shard, form) {
            (None, _) | (Some(_), IdForm::Legacy) => *self,
            (Some(_), form) => Self { form, ..*self },
        }
    }
}

fn parse_state(s: &str) -> Result<[u8; 2], IdError> {
    let b = s.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_uppercase) {
        Ok([b[0], b[1]])
    } else {
        Err(IdError::State {
            found: s.to_string(),
        })
    }
}

fn check_year(year: u16) -> Result<(), IdError> {
    if (1900..=2999).contains(&year) {
        Ok(())
    } else {
        Err(IdError::Year {
            found: year.to_string(),
        })
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A per-shard sequence: at least 5 digits, zero-padded to 5 and no further, so that every
/// number has exactly one spelling and IDs round-trip.
fn parse_sequence(s: &str) -> Result<u64, IdError> {
    let err = |why| IdError::Sequence {
        found: s.to_string(),
        why,
    };
    if !all_digits(s) {
        return Err(err("must be digits only"));
    }
    if s.len() < 5 {
        return Err(err("must have at least 5 digits"));
    }
    if s.len() > 5 && s.starts_with('0') {
        return Err(err("has more leading zeros than the 5-digit padding"));
    }
    if s.len() > 18 {
        return Err(err("is too long"));
    }
    s.parse().map_err(|_| err("is not a number"))
}

impl FromStr for PropertyId {
    type Err = IdError;

    fn from_str(input: &str) -> Result<Self, IdError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(IdError::Empty);
        }
        let upper = trimmed.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("LRI-IND-") else {
            return Err(IdError::Prefix {
                found: trimmed.chars().take(8).collect(),
            });
        };
        let parts: Vec<&str> = rest.split('-').collect();
        if parts.len() != 3 && parts.len() != 4 {
            return Err(IdError::Shape {
                id: trimmed.to_string(),
                parts: parts.len() + 2,
            });
        }
        let state = parse_state(parts[0])?;
        let year_s = parts[1];
        if year_s.len() != 4 || !all_digits(year_s) {
            return Err(IdError::Year {
                found: year_s.to_string(),
            });
        }
        let year: u16 = year_s.parse().map_err(|_| IdError::Year {
            found: year_s.to_string(),
        })?;
        check_year(year)?;

        let (shard, sequence, form) = if parts.len() == 4 {
            let sh = parts[2];
            if sh.len() != 2 || !all_digits(sh) {
                return Err(IdError::Shard {
                    found: sh.to_string(),
                });
            }
            let shard: u8 = sh.parse().map_err(|_| IdError::Shard {
                found: sh.to_string(),
            })?;
            (Some(shard), parse_sequence(parts[3])?, IdForm::Sharded)
        } else {
            let num = parts[2];
            if !all_digits(num) {
                return Err(IdError::Sequence {
                    found: num.to_string(),
                    why: "must be digits only",
                });
            }
            match num.len() {
                6 => {
                    let seq = num.parse().map_err(|_| IdError::Sequence {
                        found: num.to_string(),
                        why: "is not a number",
                    })?;
                    (None, seq, IdForm::Legacy)
                }
                n if n >= 7 => {
                    let shard: u8 = num[..2].parse().map_err(|_| IdError::Shard {
                        found: num[..2].to_string(),
                    })?;
                    (Some(shard), parse_sequence(&num[2..])?, IdForm::Encoded)
                }
                _ => {
                    return Err(IdError::Sequence {
                        found: num.to_string(),
                        why: "must be 6 digits (legacy form) or 7 and more (shard + sequence)",
                    })
                }
            }
        };
        Ok(Self {
            state,
            year,
            shard,
            sequence,
            form,
        })
    }
}

/// Room for the longest ID: "LRI-IND-" + state + year + shard + a 20-digit sequence.
const ID_MAX: usize = 48;

/// The decimal digits of `n`, written at the end of `buf` (20 digits hold any `u64`),
/// without going through `fmt`.
pub fn decimal_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// An ID being printed: bytes on the stack, handed to the formatter in one piece.
pub struct IdText {
    buf: [u8; ID_MAX],
    len: usize,
}

impl IdText {
    /// The ID's text (ASCII letters, digits and hyphens).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `n` in decimal, zero-padded to at least `width` digits.
    fn number(&mut self, n: u64, width: usize) {
        let mut scratch = [0u8; 20];
        let digits = decimal_digits(n, &mut scratch);
        for _ in digits.len()..width {
            self.push(b"0");
        }
        self.push(digits);
    }
}

/// The ID's text, written digit by digit into a stack buffer and handed over in one piece:
/// IDs are printed for every key, event and record the ledger writes, and `write!` with
/// padded arguments cost the seeder several per cent of its time (the output is the same:
/// `LRI-IND-{st}-{year}-{seq:06}`, `…-{sh:02}-{seq:05}` or `…-{sh:02}{seq:05}`).
impl PropertyId {
    /// The ID's text without allocating, e.g. to look it up as a key.
    pub fn text(&self) -> IdText {
        let mut t = IdText {
            buf: [0; ID_MAX],
            len: 0,
        };
        t.push(b"LRI-IND-");
        t.push(self.state().as_bytes());
        t.push(b"-");
        t.number(u64::from(self.year), 0);
        t.push(b"-");
        match (self.form, self.shard) {
            (IdForm::Legacy, _) | (_, None) => t.number(self.sequence, 6),
            (form, Some(sh)) => {
                t.number(u64::from(sh), 2);
                if form == IdForm::Sharded {
                    t.push(b"-");
                }
                t.number(self.sequence, 5);
            }
        }
        t
    }

    /// Appends the ID as a JSON string (its serde form) to `out`. An ID is ASCII letters,
    /// digits and hyphens, so it needs no escaping.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let t = self.text();
        out.push(b'"');
        out.extend_from_slice(&t.buf[..t.len]);
        out.push(b'"');
    }
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.text();
        f.write_str(std::str::from_utf8(&t.buf[..t.len]).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for PropertyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PropertyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_all_three_forms() {
        let s: PropertyId = "LRI-IND-TS-2026-03-00567".parse().unwrap();
        assert_eq!(
            (s.state(), s.year(), s.shard(), s.sequence(), s.form()),
            ("TS", 2026, Some(3), 567, IdForm::Sharded)
        );
        let e: PropertyId = "LRI-IND-TS-2026-0300567".parse().unwrap();
        assert_eq!(
            (e.shard(), e.sequence(), e.form()),
            (Some(3), 567, IdForm::Encoded)
        );
        assert_eq!(e.in_form(IdForm::Sharded), s);
        let l: PropertyId = "LRI-IND-TS-2026-000123".parse().unwrap();
        assert_eq!(
            (l.shard(), l.sequence(), l.form()),
            (None, 123, IdForm::Legacy)
        );
    }

    #[test]
    fn normalises_case_and_spaces() {
        let id: PropertyId = "  lri-ind-ka-2019-07-12345 \n".parse().unwrap();
        assert_eq!(id.to_string(), "LRI-IND-KA-2019-07-12345");
    }

    #[test]
    fn refusals_name_the_wrong_part() {
        let cases = [
            ("", "empty"),
            ("ABC-IND-TS-2026-03-00567", "start with"),
            ("LRI-IND-TS-2026", "parts"),
            ("LRI-IND-TS-2026-03-00567-1", "parts"),
            ("LRI-IND-T1-2026-03-00567", "state code"),
            ("LRI-IND-TSX-2026-03-00567", "state code"),
            ("LRI-IND-TS-26-03-00567", "year"),
            ("LRI-IND-TS-1066-03-00567", "year"),
            ("LRI-IND-TS-2026-3-00567", "shard"),
            ("LRI-IND-TS-2026-3A-00567", "shard"),
            ("LRI-IND-TS-2026-03-0567", "at least 5"),
            ("LRI-IND-TS-2026-03-005670", "leading zeros"),
            ("LRI-IND-TS-2026-03-00x67", "digits only"),
            ("LRI-IND-TS-2026-12345", "6 digits"),
            ("LRI-IND-TS-2026-03000567", "leading zeros"),
            ("LRI-IND-TS-2026-99999999999999999999999", "too long"),
        ];
        for (input, needle) in cases {
            let err = input.parse::<PropertyId>().unwrap_err().to_string();
            assert!(
                err.contains(needle),
                "{input:?} gave {err:?}, wanted {needle:?}"
            );
        }
    }

    #[test]
    fn orders_by_parts() {
        let mut ids: Vec<PropertyId> = [
            "LRI-IND-TS-2026-01-00002",
            "LRI-IND-AP-2026-05-00001",
            "LRI-IND-TS-2025-09-00009",
            "LRI-IND-TS-2026-01-00001",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        ids.sort();
        let printed: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "LRI-IND-AP-2026-05-00001",
                "LRI-IND-TS-2025-09-00009",
                "LRI-IND-TS-2026-01-00001",
                "LRI-IND-TS-2026-01-00002"
            ]
        );
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let id: PropertyId = serde_json::from_str("\"LRI-IND-AP-2024-02-00042\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"LRI-IND-AP-2024-02-00042\""
        );
        let err = serde_json::from_str::<PropertyId>("\"LRI-IND-AP-24-02-00042\"").unwrap_err();
        assert!(err.to_string().contains("year"));
    }

    fn any_id() -> impl Strategy<Value = PropertyId> {
        let state = "[A-Z]{2}";
        (
            state,
            1900u16..=2999,
            0u8..=99,
            0u64..10_000_000_000,
            0..3u8,
        )
            .prop_map(|(st, y, sh, seq, f)| {
                let id = PropertyId::sharded(&st, y, sh, seq).unwrap();
                match f {
                    0 => id,
                    1 => id.in_form(IdForm::Encoded),
                    _ => PropertyId {
                        shard: None,
                        sequence: seq % 1_000_000,
                        form: IdForm::Legacy,
                        ..id
                    },
                }
            })
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(id in any_id()) {
            let printed = id.to_string();
            let back: PropertyId = printed.parse().unwrap();
            prop_assert_eq!(back, id);
            prop_assert_eq!(back.to_string(), printed);
        }

        #[test]
        fn display_prints_what_the_format_macro_printed(
            id in any_id(), seq in any::<u64>(), wide in any::<bool>()
        ) {
            // The `write!` formatting that the hand-written Display replaced, over the
            // parsable IDs and over any sequence (wider than its field included).
            let id = if wide { PropertyId { sequence: seq, ..id } } else { id };
            let st = id.state();
            let (y, n) = (id.year, id.sequence);
            let reference = match (id.form, id.shard) {
                (IdForm::Legacy, _) | (_, None) => format!("LRI-IND-{st}-{y}-{n:06}"),
                (IdForm::Sharded, Some(sh)) => format!("LRI-IND-{st}-{y}-{sh:02}-{n:05}"),
                (IdForm::Encoded, Some(sh)) => format!("LRI-IND-{st}-{y}-{sh:02}{n:05}"),
            };
            prop_assert_eq!(id.to_string(), reference);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<PropertyId>();
        }

        #[test]
        fn parse_then_display_is_normalised_input(
            id in any_id(), lower in any::<bool>(), pad in "[ \t]{0,3}"
        ) {
            let printed = id.to_string();
            let messy = if lower { printed.to_ascii_lowercase() } else { printed.clone() };
            let back: PropertyId = format!("{pad}{messy}{pad}").parse().unwrap();
            prop_assert_eq!(back.to_string(), printed);
        }
    }
}
