//! The analysers as tantivy tokenizers, so that documents are indexed by the same code the
//! searcher runs on queries.
//!
//! Indexing cost is per token, so each analyser emits only tokens a query can use:
//! - [`ORIG`] only for words whose original form differs from their fold (Indic script,
//!   diacritics): a plain Latin word's original *is* its fold, which [`FOLD`] holds
//!   already, and the searcher never asks [`ORIG`] for a word equal to its fold.
//! - [`PREFIX`] only edge n-grams of 2 to [`PREFIX_NGRAM_MAX`] chars (it was 20); a
//!   longer typed prefix is expanded over [`FOLD`]'s term dictionary by the searcher,
//!   where few terms share it. At 1 M records n-grams were 60 % of every token indexed.
//!
//! Tokens are written into one reused [`Token`]: no allocation per token.

use std::cell::RefCell;
use std::rc::Rc;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::Index;

use super::Analysed;

// The names carry a version: they are part of the schema, so an index written by other
// analysers fails the schema check on open and is rebuilt (`follower::open_or_reset`)
// instead of being searched with tokens it does not hold. Bump it whenever an analyser's
// output changes.

/// Original script, lower-cased, for words whose fold differs: exact matches.
pub const ORIG: &str = "lq2_orig";
/// Latin fold: cross-script and fuzzy matches, and long prefixes.
pub const FOLD: &str = "lq2_fold";
/// Phonetic key (with synonyms): spelling variants.
pub const PHON: &str = "lq2_phon";
/// Phonetic keys of adjacent words joined: run-together vs split names.
pub const JOIN: &str = "lq2_join";
/// Short edge n-grams of the fold: search-as-you-type.
pub const PREFIX: &str = "lq2_prefix";

/// Longest edge n-gram indexed, in chars (folds are ASCII, so bytes too). Typed prefixes
/// up to this long are one term of [`PREFIX`]; longer ones are expanded over the fold
/// dictionary (`search::prefix`), where that many letters are shared by few terms.
///
/// Why 7 and not less: the searcher treats the last word of every query without a
/// trailing space as unfinished, so a complete common name ("lakshmi") is a prefix too;
/// expanded, it became the union of every "lakshmi…" posting list in each name group,
/// and with n-grams up to 4 chars name and prefix searches cost 8–10 % more CPU at 1 M
/// records for a rebuild only 10 % cheaper. Most name words are at most 7 letters long, so
/// their n-grams are what they were; longer words lose the n-grams past the seventh
/// letter (up to 13 each before, for 20 chars).
pub const PREFIX_NGRAM_MAX: usize = 7;

/// Which analyser a tokenizer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Orig,
    Fold,
    Phon,
    Join,
    Prefix,
}

/// A tokenizer of one [`Kind`].
#[derive(Clone)]
pub struct Analyser(Kind);

/// The tokens of one text under one analyser, produced as they are read.
pub struct WordStream {
    a: Rc<Analysed>,
    kind: Kind,
    /// Next word (or joined pair) to look at.
    word: usize,
    /// Prefix: length of the next n-gram of `word`.
    len: usize,
    token: Token,
}

impl WordStream {
    fn set(&mut self, text: &str, from: usize, to: usize, position: usize) {
        self.token.text.clear();
        self.token.text.push_str(text);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = position;
    }
}

impl TokenStream for WordStream {
    fn advance(&mut self) -> bool {
        let a = Rc::clone(&self.a);
        match self.kind {
            Kind::Join => {
                let i = self.word;
                let Some(k) = a.joined.get(i) else {
                    return false;
                };
                let (from, to) = match (a.words.get(i), a.words.get(i + 1)) {
                    (Some(x), Some(y)) => (x.start, y.end),
                    _ => return false,
                };
                self.word += 1;
                self.set(k, from, to, i);
                true
            }
            Kind::Prefix => loop {
                let Some(w) = a.words.get(self.word) else {
                    return false;
                };
                let max = w.fold.len().min(PREFIX_NGRAM_MAX);
                if self.len < 2 {
                    self.len = 2;
                }
                if self.len > max {
                    self.word += 1;
                    self.len = 2;
                    continue;
                }
                let (i, n) = (self.word, self.len);
                self.len += 1;
                // Folds are ASCII: every byte length is a char boundary.
                if let Some(g) = w.fold.get(..n) {
                    self.set(g, w.start, w.end, i);
                    return true;
                }
            },
            kind => loop {
                let i = self.word;
                let Some(w) = a.words.get(i) else {
                    return false;
                };
                self.word += 1;
                let text = match kind {
                    Kind::Orig if w.orig == w.fold => continue,
                    Kind::Orig => &w.orig,
                    Kind::Fold => &w.fold,
                    _ => &w.phon,
                };
                self.set(text, w.start, w.end, i);
                return true;
            },
        }
    }
    fn token(&self) -> &Token {
        &self.token
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

impl Tokenizer for Analyser {
    type TokenStream<'a> = WordStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream {
        WordStream {
            a: analysed(text),
            kind: self.0,
            word: 0,
            len: 2,
            token: Token::default(),
        }
    }
}

/// Texts kept in [`RECENT`]: tantivy indexes a document field by field (the five fields of
/// a group one after another, each over all of the group's texts), so a text comes back
/// after at most a handful of others.
const RECENT_TEXTS: usize = 16;

/// The next slot to replace, and (text, analysis) pairs.
type Recent = (usize, Vec<(String, Rc<Analysed>)>);

thread_local! {
    /// The analysis of the last texts this indexing thread saw. The five analysers of a
    /// field group run on the same text one after another; without this each text was
    /// analysed five times. (Handing tantivy pre-tokenized text instead was worse: its
    /// documents serialise such values to JSON and parse them again, 27 % of indexing.)
    /// A short list compared by equality: cheaper than hashing every text five times.
    static RECENT: RefCell<Recent> = const { RefCell::new((0, Vec::new())) };
}

fn analysed(text: &str) -> Rc<Analysed> {
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        let (next, list) = &mut *r;
        // Newest first: the text asked for is nearly always one of the group's last few.
        let n = list.len();
        if let Some((_, a)) = (1..=n)
            .map(|k| &list[(*next + RECENT_TEXTS - k) % RECENT_TEXTS])
            .find(|(t, _)| t.as_str() == text)
        {
            return Rc::clone(a);
        }
        let a = Rc::new(Analysed::of(text));
        if list.len() < RECENT_TEXTS {
            list.push((text.to_string(), Rc::clone(&a)));
        } else {
            // Round robin; the slot's string is reused.
            let slot = &mut list[*next % RECENT_TEXTS];
            slot.0.clear();
            slot.0.push_str(text);
            slot.1 = Rc::clone(&a);
        }
        *next = (*next + 1) % RECENT_TEXTS;
        a
    })
}

/// Registers the five analysers on an index under the names of this module's constants.
pub fn register(index: &Index) {
    let m = index.tokenizers();
    m.register(ORIG, Analyser(Kind::Orig));
    m.register(FOLD, Analyser(Kind::Fold));
    m.register(PHON, Analyser(Kind::Phon));
    m.register(JOIN, Analyser(Kind::Join));
    m.register(PREFIX, Analyser(Kind::Prefix));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(kind: Kind, text: &str) -> Vec<(String, usize)> {
        let mut a = Analyser(kind);
        let mut s = a.token_stream(text);
        let mut out = Vec::new();
        while s.advance() {
            out.push((s.token().text.clone(), s.token().position));
        }
        out
    }

    #[test]
    fn orig_only_where_it_differs_from_the_fold() {
        assert_eq!(tokens(Kind::Orig, "Ravi Kumar"), vec![]);
        let t = tokens(Kind::Orig, "Ravi లక్ష్మి");
        assert_eq!(t, vec![("లక్ష్మి".to_string(), 1)]);
        assert_eq!(tokens(Kind::Fold, "Ravi లక్ష్మి").len(), 2);
    }

    #[test]
    fn prefix_ngrams_are_short() {
        let t: Vec<String> = tokens(Kind::Prefix, "Lakshmi Ra")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(t, ["la", "lak", "laks", "laksh", "lakshm", "lakshmi", "ra"]);
        let long = tokens(Kind::Prefix, "Satyanarayana");
        assert_eq!(long.last().map(|(t, _)| t.as_str()), Some("satyana"));
        assert_eq!(tokens(Kind::Prefix, "K Rao").len(), 2); // "ra", "rao"
    }

    #[test]
    fn recent_analyses_are_those_of_their_own_text() {
        // More texts than RECENT keeps, revisited in both orders: every lookup, hit or
        // miss, before and after the list wraps, must give the analysis of the text asked.
        let texts: Vec<String> = (0..RECENT_TEXTS + 5)
            .map(|i| format!("Ravi{i} Kumar{}", i % 3))
            .collect();
        for round in 0..3 {
            for (i, t) in texts.iter().enumerate() {
                for back in 0..=i.min(RECENT_TEXTS + 2) {
                    let t2 = &texts[i - back];
                    assert_eq!(
                        *analysed(t2),
                        Analysed::of(t2),
                        "round {round}, {t} then {t2}"
                    );
                }
            }
            for t in texts.iter().rev() {
                assert_eq!(*analysed(t), Analysed::of(t));
            }
        }
    }

    #[test]
    fn joins_span_both_words() {
        let t = tokens(Kind::Join, "Ravi Kumar Reddy");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].0, super::super::phon("ravikumar"));
    }
}
