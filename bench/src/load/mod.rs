//! The load generators.
//!
//! - [`ledger`] — `landql load`: proposals in the devnet's realistic mix, submitted to a
//!   ledger at a fixed rate (also the live load of `bench ledger` and `bench sync`);
//! - [`http`] — open loop at a fixed rate or closed loop at a fixed concurrency over any
//!   request (`bench api`, `bench search`, `bench limits`).

pub mod http;
pub mod ledger;
