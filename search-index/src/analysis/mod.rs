//! Name and place analysis: an Indic-aware tokenizer, transliteration to a Latin fold, the
//! phonetic key, synonyms, joined pairs and short edge n-grams — and their tantivy
//! tokenizers.
//!
//! The same functions analyse documents (through the tantivy tokenizers registered by
//! [`register`]) and queries (called directly by the searcher), so both sides always agree.

pub mod phonetic;
mod tokenizers;
pub mod translit;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

pub use tokenizers::{register, FOLD, JOIN, ORIG, PHON, PREFIX, PREFIX_NGRAM_MAX};

/// One word of a text, in all the forms the index uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as written, lower-cased, in its own script.
    pub orig: String,
    /// Latin fold: ASCII letters and digits.
    pub fold: String,
    /// Phonetic key of the fold, after the synonym table.
    pub phon: String,
    /// Byte range in the analysed text.
    pub start: usize,
    pub end: usize,
    /// Written in an Indic script.
    pub indic: bool,
}

/// True for chars that belong inside a word: letters, digits and combining marks. Indic
/// vowel signs and viramas are not alphanumeric in Unicode, hence the explicit block check.
///
/// Cheapest test first: Latin text is ASCII, and Indic letters are found by their block
/// before Unicode's alphabetic table is searched (that search was 3.5 % of a rebuild's CPU
/// when it came first).
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    translit::is_indic(c) || ('\u{0300}'..='\u{036F}').contains(&c) || c.is_alphanumeric()
}

/// Splits a text into words; anything that is not a word char separates words (spaces,
/// dots of initials, dashes, slashes).
pub fn split(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_word_char(c) && !matches!(c, '।' | '॥'), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
}

/// Latin fold of one word: transliterated if Indic, ISO 15919 diacritics folded, lower-case
/// ASCII letters and digits only.
pub fn fold(word: &str) -> String {
    let latin = if word.chars().any(translit::is_indic) {
        translit::to_latin(word)
    } else {
        word.to_lowercase()
    };
    let mut out = String::with_capacity(latin.len());
    for c in latin.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'ā' => out.push_str("aa"),
            'ī' => out.push_str("ii"),
            'ū' => out.push_str("uu"),
            'ś' | 'ṣ' => out.push_str("sh"),
            'ṁ' | 'ṃ' | 'ṅ' | 'ñ' | 'ṇ' | 'ṉ' => out.push('n'),
            'ṭ' => out.push('t'),
            'ḍ' => out.push('d'),
            'ḷ' | 'ḻ' => out.push('l'),
            'ṛ' | 'ṟ' => out.push('r'),
            'ē' | 'é' | 'è' => out.push('e'),
            'ō' | 'ó' => out.push('o'),
            'ḥ' => out.push('h'),
            _ => {} // combining marks and anything else: dropped
        }
    }
    out
}

/// Spelling groups the phonetic key cannot join (they differ in more than spelling
/// conventions). The first spelling's key stands for the group.
const SYNONYMS: &[&[&str]] = &[
    &["naidu", "nayudu", "naydu", "naaidu"],
    &[
        "mohammed", "mohamed", "mohamad", "mohammad", "muhammad", "mahammad", "mohmmed", "mohd",
    ],
    &[
        "chowdary",
        "choudary",
        "chaudhari",
        "chowdhury",
        "choudhury",
        "chaudhary",
    ],
    &["rao", "raavu", "rau"],
    &["naik", "nayak", "naayak"],
    &["mary", "meri", "mery"],
    &[
        "subrahmanyam",
        "subrahmanyum",
        "subramanya",
        "subramanyan",
        "subramanian",
    ],
    &["krishna", "krushna", "krisna"],
    &["venkateswara", "venkateswar", "venkateshwar"],
    &["srinivas", "srinivasu"],
    &["narasimha", "narsimha", "narasimham", "narasimhan"],
    &["fathima", "fatima", "phathima"],
];

fn synonyms() -> &'static HashMap<String, String> {
    static MAP: OnceLock<HashMap<String, String>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for group in SYNONYMS {
            let canon = phonetic::key(group[0]);
            for w in group.iter() {
                m.insert(phonetic::key(w), canon.clone());
            }
        }
        m
    })
}

/// Phonetic key of a folded word, mapped through the synonym table.
pub fn phon(folded: &str) -> String {
    let k = phonetic::key(folded);
    match synonyms().get(&k) {
        Some(c) => c.clone(),
        None => k,
    }
}

/// Analyses a text into words.
pub fn words(text: &str) -> Vec<Word> {
    split(text)
        .filter_map(|(start, w)| {
            let (f, p) = fold_and_phon(w)?;
            Some(Word {
                orig: w.to_lowercase(),
                phon: p,
                fold: f,
                start,
                end: start + w.len(),
                indic: w.chars().any(translit::is_indic),
            })
        })
        .collect()
}

/// One text analysed: its words and the phonetic keys of adjacent words joined — what the
/// five tokenizers of a field group share, and what the ranking matches a record text by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysed {
    pub words: Vec<Word>,
    /// [`joined`] of `words`: `joined[i]` is words i and i + 1 as one word.
    pub joined: Vec<String>,
}

impl Analysed {
    pub fn of(text: &str) -> Analysed {
        let words = words(text);
        Analysed {
            joined: joined(&words),
            words,
        }
    }
}

/// Words analysed per thread before the cache starts over (a few MB at most).
const CACHE_WORDS: usize = 1 << 16;

thread_local! {
    /// Word → (fold, phonetic key). Names come from a small vocabulary and the searcher
    /// re-analyses a few hundred records per query; the fifteen rewriting passes of the key
    /// were a quarter of a search's time before this cache.
    ///
    /// Hashed with foldhash, not std's SipHash: the caches hash a few dozen words per
    /// indexed document, and foldhash took about 3 % off a rebuild's CPU. It is randomly
    /// seeded and only minimally DoS-resistant, which is enough here: the caches are
    /// bounded ([`CACHE_WORDS`]) and cleared when full.
    static CACHE: RefCell<foldhash::HashMap<String, Option<(String, String)>>> =
        RefCell::new(foldhash::HashMap::default());
}

fn fold_and_phon(w: &str) -> Option<(String, String)> {
    if let Some(hit) = CACHE.with(|c| c.borrow().get(w).cloned()) {
        return hit;
    }
    let f = fold(w);
    let v = (!f.is_empty()).then(|| {
        let p = phon(&f);
        (f, p)
    });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_WORDS {
            c.clear();
        }
        c.insert(w.to_string(), v.clone());
    });
    v
}

/// [`phon`] of an already folded word (lower-case ASCII), through the per-thread cache:
/// the searcher keys every adjacent pair of a candidate's words for join/split matching,
/// and the fifteen rewriting passes of the key made that 4 % of a search's CPU uncached.
pub fn phon_of_fold(folded: &str) -> String {
    match fold_and_phon(folded) {
        Some((_, p)) => p,
        None => phon(folded),
    }
}

/// Phonetic keys of adjacent words joined ("ravi kumar" → key("ravikumar")), so that a
/// run-together spelling meets a split one.
pub fn joined(words: &[Word]) -> Vec<String> {
    words
        .windows(2)
        .map(|p| phon_of_fold(&format!("{}{}", p[0].fold, p[1].fold)))
        .collect()
}

/// One normalised key for a place name: initials dropped, words joined, phonetic key —
/// "K.V.Rangareddy", "Ranga Reddy" and "Rangareddy" all give one key.
pub fn place_key(text: &str) -> String {
    thread_local! {
        /// Place name → key. Places come from a small vocabulary, and every document
        /// keys three of them (up to five phonetic passes each) when it is indexed.
        /// foldhash, as [`CACHE`].
        static PLACES: RefCell<foldhash::HashMap<String, String>> =
            RefCell::new(foldhash::HashMap::default());
    }
    if let Some(k) = PLACES.with(|c| c.borrow().get(text).cloned()) {
        return k;
    }
    let k = place_key_uncached(text);
    PLACES.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_WORDS {
            c.clear();
        }
        c.insert(text.to_string(), k.clone());
    });
    k
}

fn place_key_uncached(text: &str) -> String {
    let ws = words(text);
    let long: Vec<&Word> = ws.iter().filter(|w| w.fold.chars().count() > 1).collect();
    let use_ws: Vec<&Word> = if long.is_empty() {
        ws.iter().collect()
    } else {
        long
    };
    let joined: String = use_ws.iter().map(|w| w.fold.as_str()).collect();
    // Iterated to a fixed point: the key is handed out as a facet value and comes back as
    // a filter, so key(key) must equal key ("Bheriya" → "berii" → "beri" otherwise).
    let mut k = phon(&joined);
    for _ in 0..4 {
        let next = phon(&k);
        if next == k {
            break;
        }
        k = next;
    }
    k
}

/// Normalised survey or khata number: "123/A", "123-a", "123 A", "123A" → "123/a".
/// Digit/letter boundaries split parts too, so "45/2B" → "45/2/b".
pub fn survey_key(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (_, w) in split(text) {
        let f = fold(w);
        let mut cur = String::new();
        for c in f.chars() {
            if let Some(last) = cur.chars().last() {
                if last.is_ascii_digit() != c.is_ascii_digit() {
                    parts.push(std::mem::take(&mut cur));
                }
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            parts.push(cur);
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_chars_are_letters_digits_indic_signs_and_combining_marks() {
        // The fast path decides exactly as the plain definition, char by char.
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            let plain = c.is_alphanumeric()
                || translit::is_indic(c)
                || ('\u{0300}'..='\u{036F}').contains(&c);
            assert_eq!(is_word_char(c), plain, "{c:?} (U+{:04X})", c as u32);
        }
    }

    #[test]
    fn tokenizer_keeps_indic_words_whole() {
        let ws = words("లక్ష్మి వెంకట");
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[0].orig, "లక్ష్మి");
        assert_eq!(ws[0].fold, "lakshmi");
        assert_eq!(ws[1].fold, "venkata");
        let ws = words("K.V.Rangareddy, Mahabub-Nagar");
        let f: Vec<&str> = ws.iter().map(|w| w.fold.as_str()).collect();
        assert_eq!(f, ["k", "v", "rangareddy", "mahabub", "nagar"]);
    }

    #[test]
    fn scripts_meet_on_one_key() {
        let k = |s: &str| words(s)[0].phon.clone();
        assert_eq!(k("ಶ್ರೀನಿವಾಸ್"), k("Srinivas"));
        assert_eq!(k("శ్రీనివాస్"), k("Shrinivas"));
        assert_eq!(k("श्रीनिवास"), k("Sreenivasa"));
        assert_eq!(k("లక్ష్మి"), k("Laxmi"));
        assert_eq!(k("रमेश"), k("Ramesh"));
        assert_eq!(k("చౌదరి"), k("Chowdary"));
        assert_eq!(k("నాయుడు"), k("Naidu"));
        assert_eq!(k("రావు"), k("Rao"));
        assert_eq!(k("మూర్తి"), k("Murthy"));
        assert_eq!(k("ఫాతిమా"), k("Fathima"));
    }

    #[test]
    fn synonyms_join_what_rules_cannot() {
        assert_eq!(phon("mohamad"), phon("mohamed"));
        assert_eq!(phon("nayudu"), phon("naidu"));
        assert_eq!(phon("subramanya"), phon("subrahmanyam"));
        assert_ne!(phon("naidu"), phon("nayak"));
    }

    #[test]
    fn places_and_surveys_normalise() {
        assert_eq!(place_key("K.V.Rangareddy"), place_key("Ranga Reddy"));
        assert_eq!(place_key("Rangareddy"), place_key("Ranga Reddy"));
        assert_eq!(place_key("Mahabub Nagar"), place_key("Mahabubnagar"));
        assert_eq!(survey_key("123/A"), "123/a");
        assert_eq!(survey_key("123-a"), "123/a");
        assert_eq!(survey_key("123 A"), "123/a");
        assert_eq!(survey_key("45/2B"), "45/2/b");
    }

    #[test]
    fn joins() {
        let ws = words("Ravi Kumar");
        assert_eq!(joined(&ws), vec![phon("ravikumar")]);
    }

    #[test]
    fn analysed_joins_adjacent_words() {
        let a = Analysed::of("Yarlagadda లక్ష్మి");
        assert_eq!(a.words, words("Yarlagadda లక్ష్మి"));
        assert_eq!(a.joined, vec![phon("yarlagaddalakshmi")]);
    }
}
