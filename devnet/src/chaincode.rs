//! The registry chaincode: what each transaction kind may do, and the validation code it
//! earns when it may not.
//!
//! Rules (the devnet's; a production chaincode may differ in detail):
//! - `creator` is `registrar@<ST>` (may create, transfer, correct and link documents for
//!   records of state ST), `verifier@<ST>` (may update verification status in ST) or `admin`
//!   (may do anything). Anything else is `UNAUTHORIZED`.
//! - Arguments that do not parse, name unknown fields, or break a rule below are
//!   `BAD_ARGUMENT`: owners need a non-empty `owner_ref` and `name`, shares of 1–100 that add
//!   up to 100 and no owner twice; areas are positive, market values not negative; survey
//!   numbers are 1–64 characters; document hashes are 64 lower-case hex digits.
//! - A parcel is the state, district, mandal, village and survey number, compared without
//!   case, spaces or the `-`/`/` difference; registering one twice is `DUPLICATE_PARCEL`.
//! - Records live on the channel they were created on (primary, or the state's regional
//!   channel); documents are linked on the docs channel to a record of any channel.
//! - `expected_tx` on a transfer must be the tx_id of the record's current version, else
//!   `VERSION_CONFLICT`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ledger::canonical::Hash32;
use ledger::id::PropertyId;
use ledger::model::{Owner, Proposal, Record, TxKind, Validation, VerificationStatus};

/// Arguments of `CreateLandRecord`: the record's fields except ID, status and times.
///
/// The fields are in JCS order (sorted by name), so serde_json's output of this type is
/// the arguments' canonical JSON (the seeder hashes it without building a JSON tree).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    pub area_sq_m: i64,
    pub area_text: String,
    pub district: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub khata_no: Option<String>,
    pub land_type: String,
    pub mandal: String,
    pub market_value: i64,
    pub owners: Vec<Owner>,
    pub request_id: String,
    pub state: String,
    pub survey_no: String,
    pub village: String,
}

impl CreateArgs {
    /// Appends the arguments' JCS to `out`: the bytes `serde_json` writes for them, written
    /// as [`Record::encode_jcs`] writes a record (and held equal to serde's by a test).
    pub fn encode_jcs(&self, out: &mut Vec<u8>) {
        ledger::canonical::Members::new(out)
            .int("area_sq_m", self.area_sq_m)
            .str("area_text", &self.area_text)
            .str("district", &self.district)
            .opt_str("khata_no", self.khata_no.as_deref())
            .str("land_type", &self.land_type)
            .str("mandal", &self.mandal)
            .int("market_value", self.market_value)
            .with("owners", |out| Owner::encode_all_jcs(&self.owners, out))
            .str("request_id", &self.request_id)
            .str("state", &self.state)
            .str("survey_no", &self.survey_no)
            .str("village", &self.village)
            .end();
    }

    /// The record these arguments create under `property_id`, as of `time` (Unix ms).
    pub fn into_record(
        self,
        property_id: PropertyId,
        status: VerificationStatus,
        time: i64,
    ) -> Record {
        Record {
            property_id,
            state: self.state,
            district: self.district,
            mandal: self.mandal,
            village: self.village,
            survey_no: self.survey_no,
            khata_no: self.khata_no,
            owners: self.owners,
            area_sq_m: self.area_sq_m,
            area_text: self.area_text,
            land_type: self.land_type,
            market_value: self.market_value,
            verification_status: status,
            created_at: time,
            updated_at: time,
        }
    }
}

// The argument types below declare their fields in JCS order (sorted by name) and leave
// out absent options, so that serde_json's output of them is their canonical JSON, as
// with CreateArgs.

/// Arguments of `TransferLandRecord`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_tx: Option<Hash32>,
    pub owners: Vec<Owner>,
    pub property_id: PropertyId,
}

/// Arguments of `UpdateVerificationStatus`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub property_id: PropertyId,
    pub status: VerificationStatus,
}

/// Arguments of `CorrectLandRecord`: the property and any of the correctable fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_sq_m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub khata_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub land_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<Owner>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_id: Option<PropertyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub village: Option<String>,
}

/// Arguments of `LinkDocumentHash`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkArgs {
    pub doc_hash: String,
    pub doc_type: String,
    pub property_id: PropertyId,
}

/// A proposal's arguments, typed: what the chaincode parses a proposal's `args` into, or
/// what a planner that builds proposals itself (the seeder's generator) hands it as they
/// are, so that no JSON tree is built, encoded, parsed back and freed for each.
#[derive(Debug, Clone)]
pub enum Args {
    Create(CreateArgs),
    Transfer(TransferArgs),
    Verification(VerificationArgs),
    Correction(CorrectArgs),
    Link(LinkArgs),
}

impl Args {
    /// The transaction kind these arguments are for.
    pub fn kind(&self) -> TxKind {
        match self {
            Args::Create(_) => TxKind::CreateLandRecord,
            Args::Transfer(_) => TxKind::TransferLandRecord,
            Args::Verification(_) => TxKind::UpdateVerificationStatus,
            Args::Correction(_) => TxKind::CorrectLandRecord,
            Args::Link(_) => TxKind::LinkDocumentHash,
        }
    }

    /// The property the arguments name (a create names none).
    pub fn property_id(&self) -> Option<PropertyId> {
        match self {
            Args::Create(_) => None,
            Args::Transfer(a) => Some(a.property_id),
            Args::Verification(a) => Some(a.property_id),
            Args::Correction(a) => a.property_id,
            Args::Link(a) => Some(a.property_id),
        }
    }

    /// The state whose records these are: a create's own, else its property's (what
    /// `generate::proposal_state` reads from JSON arguments).
    pub fn state(&self) -> Option<&str> {
        match self {
            Args::Create(a) => Some(&a.state),
            Args::Transfer(a) => Some(a.property_id.state()),
            Args::Verification(a) => Some(a.property_id.state()),
            Args::Correction(a) => a.property_id.as_ref().map(PropertyId::state),
            Args::Link(a) => Some(a.property_id.state()),
        }
    }

    /// Appends the arguments' JCS to `out`.
    pub fn encode_jcs(&self, out: &mut Vec<u8>) -> Result<(), ledger::canonical::CanonicalError> {
        use ledger::canonical::write_jcs;
        match self {
            Args::Create(a) => {
                a.encode_jcs(out);
                Ok(())
            }
            Args::Transfer(a) => write_jcs(a, out),
            Args::Verification(a) => write_jcs(a, out),
            Args::Correction(a) => write_jcs(a, out),
            Args::Link(a) => write_jcs(a, out),
        }
    }

    /// The arguments as a proposal's JSON.
    pub fn to_value(&self) -> Value {
        // Strings, integers and lists of them only: nothing here can fail to convert.
        match self {
            Args::Create(a) => serde_json::to_value(a),
            Args::Transfer(a) => serde_json::to_value(a),
            Args::Verification(a) => serde_json::to_value(a),
            Args::Correction(a) => serde_json::to_value(a),
            Args::Link(a) => serde_json::to_value(a),
        }
        .unwrap_or_default()
    }
}

/// A refusal: the validation code and, for logs, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Validation,
    pub why: String,
}

pub(crate) fn refuse<T>(code: Validation, why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        code,
        why: why.into(),
    })
}

pub(crate) fn bad<T>(why: impl Into<String>) -> Result<T, Refusal> {
    refuse(Validation::BadArgument, why)
}

pub(crate) fn parse_args<T: for<'de> Deserialize<'de>>(p: &Proposal) -> Result<T, Refusal> {
    T::deserialize(&p.args).or_else(|e| bad(format!("{} arguments: {e}", p.kind.as_str())))
}

/// Who may do what (see the module docs).
pub(crate) fn authorize(creator: &str, kind: TxKind, state: &str) -> Result<(), Refusal> {
    if creator == "admin" {
        return Ok(());
    }
    let ok = match creator.split_once('@') {
        Some(("registrar", st)) => st == state,
        Some(("verifier", st)) => st == state && kind == TxKind::UpdateVerificationStatus,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        refuse(
            Validation::Unauthorized,
            format!("{creator} may not {} in state {state}", kind.as_str()),
        )
    }
}

pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    // Every text field of every record comes through here, a third of them in Indic
    // scripts, so the rules are checked on bytes in passes the compiler can vectorise:
    // characters are the bytes that do not continue a UTF-8 sequence; the controls are
    // U+0000–U+001F, U+007F (one byte each) and U+0080–U+009F (0xC2 then 0x80–0x9F).
    // Blankness needs characters, but stops at the first that is not white space.
    let bytes = value.as_bytes();
    let n = bytes.iter().filter(|&&b| !is_continuation(b)).count();
    let control = bytes
        .iter()
        .fold(false, |found, &b| found | (b < 0x20) | (b == 0x7f))
        || (!value.is_ascii() && bytes.windows(2).any(|w| w[0] == 0xc2 && w[1] < 0xa0));
    if n > max || control || value.chars().all(char::is_whitespace) {
        return bad(format!(
            "{field} must be 1 to {max} printable characters, found {value:?}"
        ));
    }
    Ok(())
}

/// A UTF-8 continuation byte (0b10xx_xxxx).
fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

pub(crate) fn check_owners(owners: &[Owner]) -> Result<(), Refusal> {
    if owners.is_empty() || owners.len() > 50 {
        return bad("owners must list 1 to 50 owners");
    }
    let mut total = 0;
    for (i, o) in owners.iter().enumerate() {
        check_text("owner_ref", &o.owner_ref, 128)?;
        check_text("owner name", &o.name, 200)?;
        if let Some(f) = &o.father_name {
            check_text("father_name", f, 200)?;
        }
        if !(1..=100).contains(&o.share_pct) {
            return bad(format!("share_pct of {} must be 1 to 100", o.name));
        }
        if owners[..i].iter().any(|p| p.owner_ref == o.owner_ref) {
            return bad(format!("owner {} is listed twice", o.owner_ref));
        }
        total += o.share_pct;
    }
    if total != 100 {
        return bad(format!("owner shares add up to {total}, not 100"));
    }
    Ok(())
}

/// The states whose records this registry keeps (two-letter codes as in vehicle plates).
pub const STATE_CODES: &[&str] = &[
    "AN", "AP", "AR", "AS", "BR", "CH", "CG", "DD", "DL", "DN", "GA", "GJ", "HP", "HR", "JH", "JK",
    "KA", "KL", "LA", "LD", "MH", "ML", "MN", "MP", "MZ", "NL", "OD", "PB", "PY", "RJ", "SK", "TN",
    "TR", "TS", "UK", "UP", "WB",
];

/// The normalised identity of a parcel, for duplicate detection: state and the
/// lower-cased district, mandal, village and survey number without spaces or dots, `-`
/// read as `/`. Written into one buffer (no string per part): every create and correction
/// computes it.
pub(crate) fn parcel_key(r: &Record) -> String {
    parcel_key_of(&r.state, &r.district, &r.mandal, &r.village, &r.survey_no)
}

/// [`parcel_key`] from the fields it is made of.
pub(crate) fn parcel_key_of(
    state: &str,
    district: &str,
    mandal: &str,
    village: &str,
    survey_no: &str,
) -> String {
    fn norm(s: &str, out: &mut String) {
        if s.is_ascii() {
            for b in s.bytes() {
                match b {
                    b'.' => {}
                    b'-' => out.push('/'),
                    b if b.is_ascii_whitespace() || b == 0x0b => {}
                    b => out.push(char::from(b.to_ascii_lowercase())),
                }
            }
        } else {
            for c in s.chars().filter(|c| !c.is_whitespace() && *c != '.') {
                let c = if c == '-' { '/' } else { c };
                out.extend(c.to_lowercase());
            }
        }
    }
    let mut key = String::with_capacity(
        state.len() + district.len() + mandal.len() + village.len() + survey_no.len() + 4,
    );
    key.push_str(state);
    for part in [district, mandal, village, survey_no] {
        key.push('|');
        norm(part, &mut key);
    }
    key
}

/// Checks every field of a record that a create or correction can set.
pub(crate) fn check_record(r: &Record) -> Result<(), Refusal> {
    if !STATE_CODES.contains(&r.state.as_str()) {
        return bad(format!("state {:?} is not a known state code", r.state));
    }
    check_text("district", &r.district, 100)?;
    check_text("mandal", &r.mandal, 100)?;
    check_text("village", &r.village, 100)?;
    check_text("survey_no", &r.survey_no, 64)?;
    if let Some(k) = &r.khata_no {
        check_text("khata_no", k, 64)?;
    }
    check_owners(&r.owners)?;
    // Numbers are JSON numbers read as doubles by verifiers (JCS); keep them exact.
    const MAX_EXACT: i64 = 1 << 53;
    if r.area_sq_m > MAX_EXACT || r.market_value > MAX_EXACT {
        return bad("area_sq_m and market_value must be below 2^53");
    }
    if r.area_sq_m <= 0 {
        return bad(format!("area_sq_m must be positive, found {}", r.area_sq_m));
    }
    check_text("area_text", &r.area_text, 100)?;
    check_text("land_type", &r.land_type, 60)?;
    if r.market_value < 0 {
        return bad(format!(
            "market_value must not be negative, found {}",
            r.market_value
        ));
    }
    Ok(())
}

pub(crate) fn check_doc_hash(h: &str) -> Result<(), Refusal> {
    if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        bad(format!(
            "doc_hash must be 64 lower-case hex digits, found {h:?}"
        ))
    }
}

/// The string form of the args' `property_id`, for receipts of invalid transactions.
pub(crate) fn named_property(args: &Value) -> Option<String> {
    args.get("property_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<PropertyId>().ok())
        .map(|id| id.to_string())
}

#[cfg(test)]
mod tests;
