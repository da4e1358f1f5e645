//! The GraphQL schema of landql (design/api.md): its types, queries and subscriptions, the
//! DataLoaders that keep a page's SQL to a fixed number of statements, and the two policies
//! that make answers trustworthy — *freshness* (serve the replica only while it is close
//! enough to the chain, otherwise read through to the ledger) and *verification* (recompute a
//! record's hash from what we would serve and compare it with the ledger's).
//!
//! No HTTP here: the `api` crate serves [`LandqlSchema`]. Everything the resolvers need lives
//! in one [`Services`] value, started once per API node; it owns the node's single change-log
//! listener (cache invalidation, subscriptions, freshness) and the chain-height poller.

mod auth;
mod batch;
mod cache;
mod changes;
mod complexity;
mod cursor;
mod db;
mod errors;
mod freshness;
mod history;
mod instruments;
mod list_depth;
mod list_quota;
mod loaders;
mod query;
mod read_after;
mod routing;
mod services;
mod subscription;
mod types;
mod verify;

use async_graphql::{EmptyMutation, Schema};

pub use auth::{Principal, Role};
pub use errors::Code;
pub use list_quota::{ListAllowance, ListQuota, QuotaSpent};
pub use query::Query;
pub use read_after::{scoped as read_after_scoped, ReadAfter, ReadPlan};
pub use routing::{DatabaseRole, DatabaseState, Databases, Replica, ReplicaLag, Routing};
pub use services::{
    CacheStats, ChannelLag, Check, Config, IndexStats, PoolStats, Readiness, Services, Stats,
};
pub use subscription::Subscription;

/// The schema served by `landql serve`.
pub type LandqlSchema = Schema<Query, EmptyMutation, Subscription>;

/// Builds the schema over running services. Limits (depth, complexity) are the API's to set
/// on the builder it gets from [`builder`]; this is the schema with the defaults.
pub fn build(services: Services) -> LandqlSchema {
    builder(services).finish()
}

/// The schema builder with the services and DataLoaders installed, for the API to add its
/// limits and extensions to.
pub fn builder(
    services: Services,
) -> async_graphql::SchemaBuilder<Query, EmptyMutation, Subscription> {
    let loaders = loaders(&services);
    Schema::build(Query, EmptyMutation, Subscription)
        .data(services)
        .data(loaders)
}

/// `req` with DataLoaders of its own, for a request that must read after some blocks
/// ([`ReadPlan`]): the schema's are shared between requests, whose batches read where reads
/// go.
pub fn with_own_loaders(
    req: async_graphql::Request,
    services: &Services,
) -> async_graphql::Request {
    req.data(loaders(services))
}

fn loaders(services: &Services) -> async_graphql::dataloader::DataLoader<loaders::Loaders> {
    // A batch's statements run in a task of their own, inside the span of the resolver that
    // set the batch off, so that they show in that request's trace (and under its read plan).
    async_graphql::dataloader::DataLoader::new(loaders::Loaders::new(services), |batch| {
        tokio::spawn(read_after::inherit(tracing::Instrument::in_current_span(
            batch,
        )))
    })
}

/// The schema's SDL, as checked in at `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query, EmptyMutation, Subscription)
        .finish()
        .sdl()
}
