//! landql's read model: the SQL schema the sync worker projects the ledger into, the
//! connections to the primary and its replicas, and a private PostgreSQL for when none is
//! configured (`landql dev`, tests).
//!
//! - [`private`]: [`PrivatePostgres`] runs a cluster of our own from the installed server
//!   binaries, on a unix socket, and streaming replicas of it made by `pg_basebackup`.
//! - [`db`]: [`connect`], [`connect_replicas`] and [`migrate`] (migrations embedded from
//!   `migrations/sql/`, whose comments say which query each index serves).

pub mod db;
pub mod private;

pub use db::{
    connect, connect_for_requests, connect_lazy, connect_lazy_for_requests, connect_lazy_within,
    connect_replicas, connect_with, migrate, pool_options, DbError, MIGRATOR,
};
pub use private::{PgError, PgOptions, PrivatePostgres, DATABASE};
/// The sqlx this crate is built against, so dependants name the same types.
pub use sqlx;
pub use sqlx::PgPool;
