//! landql's benchmarks and load generators: `landql bench ledger|sync|api|search|limits|pages|regions|tracing|follow`
//! and `landql load`. Each benchmark measures a part of the system beside a baseline taken
//! in the same run on the same machine, and writes its section of BENCHMARKS.md
//! ([`BenchOut`]).
//!
//! - [`ledger`] — the devnet: offline seeding and live submission (`bench ledger`);
//! - [`sync`] — the sync worker: catch-up, COPY floor, freshness, memory (`bench sync`);
//! - [`api`] — the GraphQL API against direct SQL and PostGraphile (`bench api`);
//! - [`search`] — tantivy against PostgreSQL tsvector and pg_trgm (`bench search`);
//! - [`limits`] — rate limits under a burst (`bench limits`);
//! - [`pages`] — the web pages' sizes and first results painted (`bench pages`);
//! - [`follow`] — how soon a new record is searchable under write load (`bench follow`);
//! - [`regions`] — three regions' reads on their own replicas across delayed links, under
//!   writes, a replica killed (`bench regions`);
//! - [`load`] — the load generators: [`load::ledger`] (`landql load`, the devnet's
//!   realistic mix) and [`load::http`] (open and closed loop over any request).

pub mod api;
pub mod follow;
pub mod ledger;
pub mod limits;
pub mod load;
pub mod pages;
pub mod regions;
pub mod search;
pub mod sync;
pub mod traces;

// What the benchmarks share.
pub mod backend;
pub mod delay;
pub mod machine;
mod out;
pub mod proc;
pub mod random;
pub mod server;
pub mod synced;
pub mod visible;

pub use out::BenchOut;
