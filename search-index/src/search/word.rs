//! One query word's score in a single pass: a fixed amount when any of its clauses
//! matches, plus its BM25 scaled down.
//!
//! The searcher wants tantivy's top candidates to be those matching most query words,
//! BM25 only breaking ties. It used to say so with two clauses per word over the same
//! terms — `ConstScore(any clause) + Boost(BM25 of the plain terms, 0.01)` — which read
//! every posting list twice: the union of postings was 41 % of a search's CPU at 1 M
//! records, and this halves it. Typo clauses score a constant 1 (scaled like the rest),
//! so a typo match ranks below a plain one of the same word, as before.

use std::fmt;

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term, COLLECT_BLOCK_BUFFER_LEN};

/// `base` for a document matching `inner`, plus `scale` × `inner`'s score.
pub(super) struct WordQuery {
    pub(super) inner: Box<dyn Query>,
    pub(super) base: Score,
    pub(super) scale: Score,
}

impl Clone for WordQuery {
    fn clone(&self) -> Self {
        WordQuery {
            inner: self.inner.box_clone(),
            base: self.base,
            scale: self.scale,
        }
    }
}

impl fmt::Debug for WordQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Word(base={}, scale={}, {:?})",
            self.base, self.scale, self.inner
        )
    }
}

impl Query for WordQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner = self.inner.weight(scoring)?;
        if !scoring.is_scoring_enabled() {
            return Ok(inner);
        }
        Ok(Box::new(WordWeight {
            inner,
            base: self.base,
            scale: self.scale,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor)
    }
}

struct WordWeight {
    inner: Box<dyn Weight>,
    base: Score,
    scale: Score,
}

impl Weight for WordWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(WordScorer {
            inner: self.inner.scorer(reader, boost * self.scale)?,
            base: self.base * boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let e = self.inner.explain(reader, doc)?;
        let mut out = Explanation::new("word", self.base + self.scale * e.value());
        out.add_detail(e);
        Ok(out)
    }
}

struct WordScorer {
    inner: Box<dyn Scorer>,
    base: Score,
}

impl DocSet for WordScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }
    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }
    fn fill_buffer(&mut self, buffer: &mut [DocId; COLLECT_BLOCK_BUFFER_LEN]) -> usize {
        self.inner.fill_buffer(buffer)
    }
    fn doc(&self) -> DocId {
        self.inner.doc()
    }
    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
}

impl Scorer for WordScorer {
    fn score(&mut self) -> Score {
        self.base + self.inner.score()
    }
}
