//! The analysers as tantivy tokenizers, so that documents are indexed by the same code the
//! searcher runs on queries.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::Index;

use super::{edge_ngrams, joined, words};

/// Original script, lower-cased: exact matches.
pub const ORIG: &str = "lq_orig";
/// Latin fold: cross-script and fuzzy matches.
pub const FOLD: &str = "lq_fold";
/// Phonetic key (with synonyms): spelling variants.
pub const PHON: &str = "lq_phon";
/// Phonetic keys of adjacent words joined: run-together vs split names.
pub const JOIN: &str = "lq_join";
/// Edge n-grams of the fold: search-as-you-type.
pub const PREFIX: &str = "lq_prefix";

/// A tokenizer made from an analysis function.
#[derive(Clone)]
pub struct FnTokenizer(fn(&str) -> Vec<Token>);

/// Tokens of one text, produced up front (names are short).
pub struct VecStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for FnTokenizer {
    type TokenStream<'a> = VecStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecStream {
        VecStream {
            tokens: (self.0)(text),
            next: 0,
        }
    }
}

fn tok(text: String, from: usize, to: usize, position: usize) -> Token {
    Token {
        offset_from: from,
        offset_to: to,
        position,
        text,
        position_length: 1,
    }
}

fn orig(text: &str) -> Vec<Token> {
    words(text)
        .into_iter()
        .enumerate()
        .map(|(i, w)| tok(w.orig, w.start, w.end, i))
        .collect()
}
fn fold(text: &str) -> Vec<Token> {
    words(text)
        .into_iter()
        .enumerate()
        .map(|(i, w)| tok(w.fold, w.start, w.end, i))
        .collect()
}
fn phon(text: &str) -> Vec<Token> {
    words(text)
        .into_iter()
        .enumerate()
        .map(|(i, w)| tok(w.phon, w.start, w.end, i))
        .collect()
}
fn join(text: &str) -> Vec<Token> {
    let ws = words(text);
    joined(&ws)
        .into_iter()
        .enumerate()
        .map(|(i, k)| tok(k, ws[i].start, ws[i + 1].end, i))
        .collect()
}
fn prefix(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, w) in words(text).into_iter().enumerate() {
        for g in edge_ngrams(&w.fold) {
            out.push(tok(g.to_string(), w.start, w.end, i));
        }
    }
    out
}

/// Registers the five analysers on an index under the names of this module's constants.
pub fn register(index: &Index) {
    let m = index.tokenizers();
    m.register(ORIG, FnTokenizer(orig));
    m.register(FOLD, FnTokenizer(fold));
    m.register(PHON, FnTokenizer(phon));
    m.register(JOIN, FnTokenizer(join));
    m.register(PREFIX, FnTokenizer(prefix));
}
