//! How many records with owner names an anonymous caller may list in a day.
//!
//! `list_depth` stops an anonymous caller after the first page of a list unless the list is
//! narrowed to one village or one survey number — the way a person looks a parcel up. That
//! alone does not stop a scraper that walks the villages one by one (`locations` names them
//! all, and each village pages freely): 1 M parcels in under an hour from one address at
//! the anonymous rate limit. So every record an anonymous caller receives from `properties`
//! or `search` — first pages, narrowed pages, cached answers alike — is also taken from a
//! daily allowance per client (per address; see the API's `ratelimit`). A person searching
//! for their own parcels reads a few hundred records a day; the allowance (5 000 by
//! default) is many times that, and at that rate one address needs 200 days for 1 M.
//!
//! Lists of one parcel (`property`, `propertyHistory`), counts (`locations`, a list's
//! `totalCount`, a search's `total` and facets) take nothing: a list takes its records only
//! when the query selects them (`edges`/`nodes`, `hits`).
//! Past the allowance the list answers the field error `DAILY_LIST_LIMIT`, which says when
//! more is allowed and that signing in lifts it. The API layer owns the counting (it knows the
//! client); this module only asks it, through [`ListAllowance`] in the request's data. A
//! request without one (signed in, the limit off, or a router without the rate-limit layer)
//! is not counted.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ErrorExtensions, Result};

use crate::auth::principal;
use crate::errors::Code;

/// The records a client may still list, as the API counts them.
pub trait ListQuota: Send + Sync {
    /// Takes `records` from the client's allowance, or says it has not that many left.
    fn take(&self, records: u32) -> std::result::Result<(), QuotaSpent>;
}

/// A client's allowance is spent for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSpent {
    /// The allowance: records a day.
    pub per_day: u32,
    /// How long until the records asked for are allowed again.
    pub retry_after: Duration,
}

/// An anonymous caller's allowance, in the request's data (the API puts it there).
#[derive(Clone)]
pub struct ListAllowance(pub Arc<dyn ListQuota>);

/// Takes the `records` an anonymous caller is about to receive from `list`.
pub(crate) fn charge(ctx: &Context<'_>, list: &str, records: usize) -> Result<()> {
    if records == 0 || principal(ctx).role.is_signed_in() {
        return Ok(());
    }
    let Some(allowance) = ctx.data_opt::<ListAllowance>() else {
        return Ok(());
    };
    let records = u32::try_from(records).unwrap_or(u32::MAX);
    allowance
        .0
        .take(records)
        .map_err(|spent| refusal(list, records, spent))
}

fn refusal(list: &str, records: u32, spent: QuotaSpent) -> async_graphql::Error {
    let secs = spent.retry_after.as_secs().max(1);
    let wait = if secs >= 3600 {
        format!("{} h {} min", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{} min", secs.div_ceil(60))
    } else {
        format!("{secs} s")
    };
    async_graphql::Error::new(format!(
        "anonymous callers may list {} records with owner names a day from one address, and \
         this address has listed them: these {records} records of `{list}` are allowed again \
         in {wait}. A parcel is always open by its ID (`property(id)`); sign in (send \
         Authorization: Bearer <token>) to list more",
        spent.per_day
    ))
    .extend_with(|_, e| {
        e.set("code", Code::DailyListLimit.as_str());
        e.set("retryAfter", secs);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_the_allowance_the_wait_and_the_ways_on() {
        let e = refusal(
            "search",
            20,
            QuotaSpent {
                per_day: 5000,
                retry_after: Duration::from_secs(2 * 3600 + 5 * 60 + 7),
            },
        );
        for says in [
            "5000 records",
            "20 records of `search`",
            "2 h 5 min",
            "property(id)",
            "Bearer",
        ] {
            assert!(e.message.contains(says), "{says}: {}", e.message);
        }
        let ext = e.extensions.as_ref().expect("extensions");
        assert_eq!(
            ext.get("code").map(|v| v.to_string()).as_deref(),
            Some("\"DAILY_LIST_LIMIT\"")
        );
        assert_eq!(
            ext.get("retryAfter").map(|v| v.to_string()).as_deref(),
            Some("7507")
        );
        let short = refusal(
            "properties",
            1,
            QuotaSpent {
                per_day: 10,
                retry_after: Duration::from_millis(200),
            },
        );
        assert!(short.message.contains("in 1 s"), "{}", short.message);
    }
}
