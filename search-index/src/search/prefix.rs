//! Long typed prefixes: every term of a field's dictionary that starts with the prefix.
//!
//! The index holds edge n-grams only up to [`PREFIX_NGRAM_MAX`] chars (indexing them all
//! was most of a rebuild's tokens). A longer prefix is matched here instead: the terms
//! that start with it are looked up in the fold dictionaries once per search, and become
//! plain term clauses of the word (so tantivy unites them like the word's other terms).
//! That many letters of a name are shared by few terms, so the union stays small; the
//! short prefixes, shared by thousands of terms, are the ones kept as n-grams.
//!
//! [`PREFIX_NGRAM_MAX`]: crate::analysis::PREFIX_NGRAM_MAX

use std::collections::BTreeSet;

use tantivy::schema::Field;
use tantivy::Searcher;
use tantivy_fst::Automaton;

/// Accepts the byte strings that start with `0`.
#[derive(Debug, Clone)]
pub(super) struct StartsWith(Vec<u8>);

impl Automaton for StartsWith {
    /// Bytes matched so far; `None` once one differed.
    type State = Option<usize>;

    fn start(&self) -> Option<usize> {
        Some(0)
    }

    fn is_match(&self, state: &Option<usize>) -> bool {
        *state == Some(self.0.len())
    }

    fn can_match(&self, state: &Option<usize>) -> bool {
        state.is_some()
    }

    fn will_always_match(&self, state: &Option<usize>) -> bool {
        *state == Some(self.0.len())
    }

    fn accept(&self, state: &Option<usize>, byte: u8) -> Option<usize> {
        let i = (*state)?;
        match self.0.get(i) {
            None => Some(i),
            Some(&b) if b == byte => Some(i + 1),
            Some(_) => None,
        }
    }
}

/// How an unfinished query word is matched in one name group.
#[derive(Debug, Clone)]
pub(super) enum Prefix {
    /// By its n-gram in the group's prefix field (short words, in person names).
    NGram,
    /// By the group's fold terms that start with it: long words, and every word in
    /// places, which index no n-grams (see `GroupFields::prefix`).
    Terms(Vec<String>),
}

/// Terms of one word's prefix expansion at most: past it, the rest are left out (the
/// ones the dictionary lists first). A prefix longer than [`PREFIX_NGRAM_MAX`] is shared
/// by a few dozen terms at most in real names. Places are expanded from two letters on:
/// of the 21 019 place words at 1 M records, a two-letter prefix starts up to 1 225, a
/// three-letter one up to 559 (99 % of them at most 134) and a four-letter one up to 254.
/// A short place prefix past the bound matches places from the first 256 of its words,
/// in dictionary order, only (names still match it by n-gram).
const MAX_TERMS: usize = 256;

/// The terms of `field` starting with `prefix`, in every segment of `searcher`, as the
/// clauses of the word (`term` queries, so that tantivy unites them as plain postings).
pub(super) fn expand(
    searcher: &Searcher,
    field: Field,
    prefix: &str,
) -> Result<Vec<String>, crate::Error> {
    let mut out = BTreeSet::new();
    for seg in searcher.segment_readers() {
        let inv = seg.inverted_index(field)?;
        let mut terms = inv
            .terms()
            .search(StartsWith(prefix.as_bytes().to_vec()))
            .into_stream()
            .map_err(|e| crate::Error::Tantivy(e.into()))?;
        while terms.advance() && out.len() < MAX_TERMS {
            // Text terms are UTF-8 (dictionary keys are the terms' text).
            if let Ok(t) = std::str::from_utf8(terms.key()) {
                out.insert(t.to_string());
            }
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::fuzzy::tests::accepts;

    #[test]
    fn starts_with() {
        let a = StartsWith(b"laksh".to_vec());
        assert!(accepts(&a, "laksh"));
        assert!(accepts(&a, "lakshmi"));
        assert!(!accepts(&a, "laks"));
        assert!(!accepts(&a, "laxmi"));
    }
}
