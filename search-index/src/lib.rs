//! Citizen search for landql: find land records by owner or father name in any
//! common spelling or script, by place, survey/khata number or property ID.
//!
//! - [`analysis`]: tokenizer, transliteration, phonetic key, synonyms (pure functions).
//! - [`index`]: the tantivy schema and [`SearchIndex`] (one long-lived writer, commits
//!   carrying the change-log seq — design/system.md invariant 4).
//! - [`follower`]: applies PostgreSQL's change log to the index, rebuilds it when needed.
//! - [`search`]: query routing, tiered matching, re-ranking, highlights, facets, paging.

pub mod analysis;
pub mod follower;
pub mod index;
mod queue;
pub mod search;

pub use index::{Activity, SearchIndex};
pub use search::{FacetValue, Facets, Filter, Highlight, Hit, SearchRequest, SearchResponse};

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot open index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("cannot create index directory {0}: {1}")]
    Io(String, std::io::Error),
    #[error("index in {0} has another schema; rebuild it")]
    SchemaMismatch(String),
    #[error("commit payload {0:?} is not a change-log seq")]
    BadPayload(String),
    #[error("stored record is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("index opened read-only")]
    ReadOnly,
    #[error("bad cursor {0:?}")]
    BadCursor(String),
}
