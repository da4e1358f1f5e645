//! The node's one change-log listener.
//!
//! The sync worker commits each batch with a `NOTIFY landql_changes`. One task per API node
//! LISTENs, reads the new change-log rows, and for each: drops the property from the cache,
//! then hands the change to every subscription through a broadcast channel — so a thousand
//! subscribers cost one database connection, not a thousand. It also re-reads the
//! checkpoints (the replica's side of freshness). The NOTIFY is only a wake-up: the listener
//! also polls, so a missed notification (or a reconnect) delays, but never loses, a change.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use migrations::sqlx::postgres::PgListener;
use search_index::follower::NOTIFY_CHANNEL;

use crate::cache;
use crate::db::{ChangeRow, DbError};
use crate::services::Inner;

/// One change, as subscriptions see it: a change-log row.
pub(crate) type Change = ChangeRow;

/// Rows read per statement while catching up.
const BATCH: i64 = 1_000;
/// Poll interval when no NOTIFY arrives (and while reconnecting).
const POLL: Duration = Duration::from_secs(1);

/// Re-reads what the listener keeps besides the changes: checkpoints and the error flag.
pub(crate) async fn refresh(i: &Inner) -> Result<(), DbError> {
    let checkpoints = i.db.checkpoints().await?;
    i.freshness.set_checkpoints(&checkpoints);
    let errors = i.db.has_indexing_errors().await?;
    i.has_indexing_errors.store(errors, Ordering::Relaxed);
    Ok(())
}

/// Applies every change after the listener's position; returns whether there were any.
async fn drain(i: &Inner) -> Result<bool, DbError> {
    let mut any = false;
    loop {
        let from = i.seq.load(Ordering::SeqCst);
        let rows = i.db.changes_after(from, BATCH).await?;
        let n = rows.len() as i64;
        if rows.is_empty() {
            break;
        }
        any = true;
        let last = rows.last().map_or(from, |r| r.seq);
        for row in rows {
            if let Ok(id) = row.property_id.parse::<ledger::PropertyId>() {
                i.caches.properties.cache.invalidate(&cache::key(&id)).await;
            }
            // No receivers is fine: nobody is subscribed.
            let _ = i.changes.send(Arc::new(row));
        }
        i.caches.locations.cache.invalidate_all();
        // Set after invalidating: a reader that started before this seq will not cache.
        i.seq.store(last, Ordering::SeqCst);
        if n < BATCH {
            break;
        }
    }
    Ok(any)
}

pub(crate) async fn listen(inner: Weak<Inner>, wake: migrations::PgPool) {
    let mut listener: Option<PgListener> = None;
    loop {
        let Some(i) = inner.upgrade() else { return };
        if listener.is_none() {
            match PgListener::connect_with(&wake).await {
                Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                    Ok(()) => {
                        listener = Some(l);
                        i.listening.store(true, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; polling the change log"),
                },
                Err(e) => tracing::warn!(error = %e, "change-log listener cannot connect; polling"),
            }
        }
        match drain(&i).await {
            Ok(true) | Ok(false) => {
                if let Err(e) = refresh(&i).await {
                    tracing::warn!(error = %e, "reading checkpoints failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the change log failed; retrying"),
        }
        drop(i);
        match listener.as_mut() {
            Some(l) => match tokio::time::timeout(POLL, l.try_recv()).await {
                Ok(Ok(Some(_))) | Err(_) => {}
                Ok(Ok(None)) | Ok(Err(_)) => {
                    // Connection lost: changes may have been missed; the next drain catches up.
                    tracing::warn!("change-log listener lost its connection; reconnecting");
                    listener = None;
                    if let Some(i) = inner.upgrade() {
                        i.listening.store(false, Ordering::Relaxed);
                        i.caches.properties.cache.invalidate_all();
                    }
                }
            },
            None => tokio::time::sleep(POLL).await,
        }
    }
}
