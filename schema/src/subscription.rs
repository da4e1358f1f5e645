//! Subscriptions, fed by the node's one change-log listener (see `changes`).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Result, Subscription as GqlSubscription, ID};
use futures::stream::{BoxStream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::changes::Change;
use crate::db::PropertyRow;
use crate::errors::parse_id;
use crate::query::{meta, replica_property};
use crate::services::Services;
use crate::types::{Meta, Property, PropertyChange, PropertyFilter};

pub struct Subscription;

/// The node's changes as a stream; a subscriber too slow to keep up skips what it missed
/// (and is told so in the log) rather than hold everyone back.
fn changes(s: &Services) -> BoxStream<'static, Arc<Change>> {
    BroadcastStream::new(s.0.changes.subscribe())
        .filter_map(|c| async move {
            match c {
                Ok(c) => Some(c),
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a subscriber fell behind and skipped changes");
                    None
                }
            }
        })
        .boxed()
}

async fn to_change(s: &Services, c: &Change, row: Option<Arc<PropertyRow>>) -> PropertyChange {
    let row = match row {
        Some(r) => Some(r),
        None => match c.property_id.parse() {
            Ok(id) => replica_property(s, &id).await.ok().flatten(),
            Err(_) => None,
        },
    };
    PropertyChange {
        property: row.map(Property::new),
        event: c.event.clone(),
        block_number: c.block_number,
        tx_id: c.tx_id.clone(),
        channel: c.channel.clone(),
        seq: c.seq,
    }
}

#[GqlSubscription]
impl Subscription {
    /// Each committed change to one property, once the replica has applied it.
    async fn property_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<BoxStream<'static, PropertyChange>> {
        let s = ctx.data_unchecked::<Services>().clone();
        let key = crate::cache::key(&parse_id(&id)?);
        Ok(changes(&s)
            .filter(move |c| {
                let hit = c
                    .property_id
                    .parse::<ledger::PropertyId>()
                    .is_ok_and(|p| crate::cache::key(&p) == key);
                async move { hit }
            })
            .then(move |c| {
                let s = s.clone();
                async move { to_change(&s, &c, None).await }
            })
            .boxed())
    }

    /// Changes to any property matching the filter (all, without one).
    async fn properties_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<PropertyFilter>,
    ) -> BoxStream<'static, PropertyChange> {
        let s = ctx.data_unchecked::<Services>().clone();
        let filter = Arc::new(filter.unwrap_or_default());
        changes(&s)
            .filter_map(move |c| {
                let s = s.clone();
                let filter = filter.clone();
                async move {
                    let id = c.property_id.parse().ok()?;
                    let row = replica_property(&s, &id).await.ok().flatten();
                    if !row.as_deref().is_some_and(|r| matches(&filter, r)) {
                        return None;
                    }
                    Some(to_change(&s, &c, row).await)
                }
            })
            .boxed()
    }

    /// The replica's progress: now, then whenever it changes (at most twice a second).
    async fn progress(&self, ctx: &Context<'_>) -> BoxStream<'static, Meta> {
        let s = ctx.data_unchecked::<Services>().clone();
        let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(
            Duration::from_millis(500),
        ));
        let mut last: Option<String> = None;
        ticks
            .filter_map(move |_| {
                let m = meta(&s);
                let sig = format!(
                    "{}/{}/{:?}",
                    m.change_log_seq,
                    m.search_index_seq,
                    m.channels
                        .iter()
                        .map(|c| (c.indexed_block, c.chain_height, c.stale))
                        .collect::<Vec<_>>()
                );
                let out = (last.as_deref() != Some(&sig)).then_some(m);
                last = Some(sig);
                std::future::ready(out)
            })
            .boxed()
    }
}

/// Whether a property passes a filter (the same rules as `properties`).
fn matches(f: &PropertyFilter, p: &PropertyRow) -> bool {
    let r = &p.record;
    let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
    eq(
        &f.state.as_ref().map(|s| s.trim().to_uppercase()),
        r.property_id.state(),
    ) && eq(&f.district, &r.district)
        && eq(&f.mandal, &r.mandal)
        && eq(&f.village, &r.village)
        && eq(&f.survey_no, &r.survey_no)
        && f.khata_no
            .as_deref()
            .is_none_or(|k| r.khata_no.as_deref() == Some(k))
        && eq(&f.land_type, &r.land_type)
        && f.verification_status
            .is_none_or(|v| v.ledger() == r.verification_status)
        && f.owner_id
            .as_ref()
            .is_none_or(|o| r.owners.iter().any(|x| x.owner_ref == o.as_str()))
        && f.year.is_none_or(|y| y == i32::from(r.property_id.year()))
        && f.shard
            .is_none_or(|s| r.property_id.shard().map(i32::from) == Some(s))
        && f.created_after
            .is_none_or(|t| crate::types::property::ms_time(r.created_at) > t)
        && f.created_before
            .is_none_or(|t| crate::types::property::ms_time(r.created_at) < t)
}
