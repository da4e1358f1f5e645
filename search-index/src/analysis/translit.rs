//! Telugu, Kannada and Devanagari → a Latin fold.
//!
//! The three scripts share one layout (ISCII order): the same offset from the block's start
//! is the same letter, so one table serves all three. Output is ISO 15919 folded to how
//! Indian names are spelt in Latin letters: ś/ṣ → sh, c → ch, retroflex → dental, ā/ī/ū →
//! aa/ii/uu (which the phonetic key collapses), ē/ō → e/o (Latin spellings never double
//! them: "Ramesh", not "Rameesh"). Own tables instead of `vidyut-lipi`: the fold is all we
//! need, it is ~100 lines, and it keeps the dependency tree and build small.

/// Which Brahmic block a char belongs to, as the block's first code point.
fn block_base(c: char) -> Option<u32> {
    match c as u32 {
        0x0900..=0x097F => Some(0x0900),
        0x0C00..=0x0C7F => Some(0x0C00),
        0x0C80..=0x0CFF => Some(0x0C80),
        _ => None,
    }
}

/// True for letters of the three supported Indic scripts (incl. vowel signs and marks).
pub fn is_indic(c: char) -> bool {
    block_base(c).is_some()
}

enum Kind {
    Vowel(&'static str),
    Consonant(&'static str),
    Sign(&'static str),
    Virama,
    Anusvara,
    Digit(char),
    Other(&'static str),
}

fn classify(off: u32) -> Kind {
    use Kind::*;
    match off {
        0x01 => Anusvara, // candrabindu: a nasal, written like anusvara in Latin names
        0x02 => Anusvara,
        0x03 => Other("h"),
        0x05 => Vowel("a"),
        0x06 => Vowel("aa"),
        0x07 => Vowel("i"),
        0x08 => Vowel("ii"),
        0x09 => Vowel("u"),
        0x0A => Vowel("uu"),
        0x0B => Vowel("ri"),
        0x0C => Vowel("li"),
        0x0D..=0x0F => Vowel("e"),
        0x10 => Vowel("ai"),
        0x11..=0x13 => Vowel("o"),
        0x14 => Vowel("au"),
        0x15 => Consonant("k"),
        0x16 => Consonant("kh"),
        0x17 => Consonant("g"),
        0x18 => Consonant("gh"),
        0x19 => Consonant("n"),
        0x1A => Consonant("ch"),
        0x1B => Consonant("chh"),
        0x1C => Consonant("j"),
        0x1D => Consonant("jh"),
        0x1E => Consonant("n"),
        0x1F => Consonant("t"),
        0x20 => Consonant("th"),
        0x21 => Consonant("d"),
        0x22 => Consonant("dh"),
        0x23 => Consonant("n"),
        0x24 => Consonant("t"),
        0x25 => Consonant("th"),
        0x26 => Consonant("d"),
        0x27 => Consonant("dh"),
        0x28 | 0x29 => Consonant("n"),
        0x2A => Consonant("p"),
        0x2B => Consonant("ph"),
        0x2C => Consonant("b"),
        0x2D => Consonant("bh"),
        0x2E => Consonant("m"),
        0x2F => Consonant("y"),
        0x30 | 0x31 => Consonant("r"),
        0x32..=0x34 => Consonant("l"),
        0x35 => Consonant("v"),
        0x36 | 0x37 => Consonant("sh"),
        0x38 => Consonant("s"),
        0x39 => Consonant("h"),
        0x3E => Sign("aa"),
        0x3F => Sign("i"),
        0x40 => Sign("ii"),
        0x41 => Sign("u"),
        0x42 => Sign("uu"),
        0x43 | 0x44 => Sign("ri"),
        0x45..=0x47 => Sign("e"),
        0x48 => Sign("ai"),
        0x49..=0x4B => Sign("o"),
        0x4C => Sign("au"),
        0x4D => Virama,
        // Devanagari nukta letters (qa, khha, ghha, za, dddha, rha, fa, yya).
        0x58 => Consonant("k"),
        0x59 => Consonant("kh"),
        0x5A => Consonant("g"),
        0x5B => Consonant("z"),
        0x5C | 0x5D => Consonant("r"),
        0x5E => Consonant("f"),
        0x5F => Consonant("y"),
        0x60 => Vowel("ri"),
        0x66..=0x6F => Digit(char::from(b'0' + (off - 0x66) as u8)),
        _ => Other(""), // nukta, length marks, avagraha, danda: no sound of their own
    }
}

/// True when an anusvara before this consonant is said (and spelt in Latin) as "m":
/// labials, v, the sibilants and h ("Simha", "Vamsi", "Subrahmanyam" with a final ం).
fn anusvara_is_m(next: Option<&str>) -> bool {
    match next {
        None => true,
        Some(c) => matches!(
            c,
            "p" | "ph" | "b" | "bh" | "m" | "v" | "sh" | "s" | "h" | "y"
        ),
    }
}

/// Transliterates one word (Indic letters; other chars pass through lower-cased).
///
/// A consonant carries the inherent vowel `a` unless a virama or vowel sign follows; the
/// word-final schwa of Devanagari ("रमेश" → "ramesha") is left for the phonetic key to drop,
/// which it does for Latin spellings too.
pub fn to_latin(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let kind_at = |i: usize| -> Option<Kind> {
        let c = *chars.get(i)?;
        block_base(c).map(|b| classify(c as u32 - b))
    };
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match kind_at(i) {
            None => out.extend(c.to_lowercase()),
            Some(Kind::Vowel(s)) | Some(Kind::Sign(s)) | Some(Kind::Other(s)) => out.push_str(s),
            Some(Kind::Digit(d)) => out.push(d),
            Some(Kind::Virama) => {}
            Some(Kind::Anusvara) => {
                // The next sounding consonant decides n or m.
                let mut j = i + 1;
                let next = loop {
                    match kind_at(j) {
                        Some(Kind::Consonant(s)) => break Some(s),
                        Some(Kind::Other("")) => j += 1,
                        _ => break None,
                    }
                };
                let at_end = kind_at(i + 1).is_none();
                out.push(if at_end || anusvara_is_m(next) {
                    'm'
                } else {
                    'n'
                });
            }
            Some(Kind::Consonant(s)) => {
                out.push_str(s);
                // Skip a nukta, then look for a virama or a vowel sign.
                let mut j = i + 1;
                while matches!(kind_at(j), Some(Kind::Other(""))) && j < chars.len() {
                    j += 1;
                }
                match kind_at(j) {
                    Some(Kind::Virama) | Some(Kind::Sign(_)) => {}
                    _ => out.push('a'),
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_latin;

    #[test]
    fn telugu() {
        assert_eq!(to_latin("వెంకట"), "venkata");
        assert_eq!(to_latin("లక్ష్మి"), "lakshmi");
        assert_eq!(to_latin("రెడ్డి"), "reddi");
        assert_eq!(to_latin("శ్రీనివాస్"), "shriinivaas");
        assert_eq!(to_latin("రమేష్"), "ramesh");
        assert_eq!(to_latin("చౌదరి"), "chaudari");
        assert_eq!(to_latin("సుబ్రహ్మణ్యం"), "subrahmanyam");
        assert_eq!(to_latin("నరసింహ"), "narasimha");
    }

    #[test]
    fn kannada_and_devanagari() {
        assert_eq!(to_latin("ಶ್ರೀನಿವಾಸ್"), "shriinivaas");
        assert_eq!(to_latin("ಮಂಜುನಾಥ್"), "manjunaath");
        assert_eq!(to_latin("श्रीनिवास"), "shriinivaasa");
        assert_eq!(to_latin("वेंकट"), "venkata");
        assert_eq!(to_latin("लक्ष्मी"), "lakshmii");
    }

    #[test]
    fn digits_and_latin_pass_through() {
        assert_eq!(to_latin("౧౨౩"), "123");
        assert_eq!(to_latin("Ravi"), "ravi");
    }
}
