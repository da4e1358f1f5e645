//! Parsed documents, kept by query text.
//!
//! Clients send the same few query texts over and over with different variables, and
//! async-graphql's parser (pest) was the largest single item in the server's CPU profile of
//! `property(id)` at 2 000 req/s (~14 %). A request whose text was seen before gets a copy
//! of the parsed document instead ([`async_graphql::Request::set_parsed_query`]); the
//! schema still validates every request, so a cached document skips nothing but parsing.
//!
//! The cache is bounded in entries and in the size of the texts it keeps, and stops
//! admitting new texts when full rather than evicting: a client sending endless distinct
//! queries cannot grow it and cannot push out the texts everyone else sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Texts kept at most.
const MAX_ENTRIES: usize = 512;
/// Longer texts are parsed every time (and are rare).
const MAX_TEXT: usize = 16 * 1024;

#[derive(Default)]
pub(crate) struct Documents {
    map: Mutex<HashMap<Arc<str>, Arc<ExecutableDocument>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The cache's counts, for metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocumentStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
}

impl Documents {
    /// Gives `req` its parsed document: a copy of a cached one, or a fresh parse (cached
    /// when it parses and fits). A text that does not parse is left for execution to
    /// report.
    pub fn prepare(&self, req: &mut async_graphql::Request) {
        if req.query.len() > MAX_TEXT {
            return;
        }
        let cached = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(req.query.as_str())
            .cloned();
        if let Some(doc) = cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            req.set_parsed_query((*doc).clone());
            return;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let Ok(doc) = req.parsed_query() else { return };
        let doc = Arc::new(doc.clone());
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() < MAX_ENTRIES {
            map.insert(Arc::from(req.query.as_str()), doc);
        }
    }

    pub fn stats(&self) -> DocumentStats {
        DocumentStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.map.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_parses_and_stops_when_full() {
        let docs = Documents::default();
        let mut a = async_graphql::Request::new("{ _meta { changeLogSeq } }");
        docs.prepare(&mut a);
        assert_eq!(docs.len(), 1);
        let mut b = async_graphql::Request::new("{ _meta { changeLogSeq } }");
        docs.prepare(&mut b);
        assert_eq!(docs.len(), 1);
        assert!(b.parsed_query().is_ok());
        let mut bad = async_graphql::Request::new("{ _meta {");
        docs.prepare(&mut bad);
        assert_eq!(docs.len(), 1, "a text that does not parse is not kept");
        for i in 0..(MAX_ENTRIES + 10) {
            let mut r = async_graphql::Request::new(format!("{{ a{i}: __typename }}"));
            docs.prepare(&mut r);
        }
        assert_eq!(docs.len(), MAX_ENTRIES);
        let mut c = async_graphql::Request::new("{ _meta { changeLogSeq } }");
        docs.prepare(&mut c);
        assert!(c.parsed_query().is_ok(), "early texts stay");
    }
}
