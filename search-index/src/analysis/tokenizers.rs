//! The analysers as tantivy tokenizers, so that documents are indexed by the same code the
//! searcher runs on queries.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::Index;

use super::{edge_ngrams, joined, words, Word};

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

fn orig_of(ws: &[Word]) -> Vec<Token> {
    ws.iter()
        .enumerate()
        .map(|(i, w)| tok(w.orig.clone(), w.start, w.end, i))
        .collect()
}
fn fold_of(ws: &[Word]) -> Vec<Token> {
    ws.iter()
        .enumerate()
        .map(|(i, w)| tok(w.fold.clone(), w.start, w.end, i))
        .collect()
}
fn phon_of(ws: &[Word]) -> Vec<Token> {
    ws.iter()
        .enumerate()
        .map(|(i, w)| tok(w.phon.clone(), w.start, w.end, i))
        .collect()
}
fn join_of(ws: &[Word]) -> Vec<Token> {
    joined(ws)
        .into_iter()
        .enumerate()
        .map(|(i, k)| tok(k, ws[i].start, ws[i + 1].end, i))
        .collect()
}
fn prefix_of(ws: &[Word]) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        for g in edge_ngrams(&w.fold) {
            out.push(tok(g.to_string(), w.start, w.end, i));
        }
    }
    out
}

thread_local! {
    /// The analysis of the last texts this indexing thread saw. The five analysers of a
    /// field group run on the same text one after another; without this each text was
    /// analysed five times. (Handing tantivy pre-tokenized text instead was worse: its
    /// documents serialise such values to JSON and parse them again, 27 % of indexing.)
    static RECENT: RefCell<HashMap<String, Rc<Vec<Word>>>> = RefCell::new(HashMap::new());
}

/// Texts kept in [`RECENT`]; a document has about seven distinct ones.
const RECENT_TEXTS: usize = 64;

fn analysed(text: &str) -> Rc<Vec<Word>> {
    if let Some(ws) = RECENT.with(|r| r.borrow().get(text).cloned()) {
        return ws;
    }
    let ws = Rc::new(words(text));
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= RECENT_TEXTS {
            r.clear();
        }
        r.insert(text.to_string(), Rc::clone(&ws));
    });
    ws
}

fn orig(text: &str) -> Vec<Token> {
    orig_of(&analysed(text))
}
fn fold(text: &str) -> Vec<Token> {
    fold_of(&analysed(text))
}
fn phon(text: &str) -> Vec<Token> {
    phon_of(&analysed(text))
}
fn join(text: &str) -> Vec<Token> {
    join_of(&analysed(text))
}
fn prefix(text: &str) -> Vec<Token> {
    prefix_of(&analysed(text))
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
