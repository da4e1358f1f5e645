//! The root query and the freshness policy of property reads.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};
use ledger::PropertyId;

use crate::cache;
use crate::cursor;
use crate::db::{record_hash, AsOf, PropertyRow, VersionRef};
use crate::errors::{bad_input, db_error, internal, ledger_unavailable, parse_id};
use crate::instruments::ReadSource;
use crate::loaders::{Loaders, PropertyKey};
use crate::services::Services;
use crate::types::search::{Facet, FacetValue, Highlight, SearchHit};
use crate::types::{
    page_size, ChannelProgress, Consistency, LocationCount, Meta, Owner, OwnerConnection, PageInfo,
    Property, PropertyConnection, PropertyFilter, PropertyOrder, PropertyVersionConnection,
    SearchResult, Source, Verification, VerificationStatus,
};

/// Longest search text accepted (characters).
const MAX_SEARCH_TEXT: usize = 200;

pub struct Query;

#[Object]
impl Query {
    /// One property. FRESH (the default) serves the replica while it is within the freshness
    /// bound, otherwise the ledger; REPLICA and LEDGER force one source.
    /// With `asOfBlock` or `asOf` (not both), the record as it stood then, owners and shares
    /// included, from the history: `asOfBlock: N` is the record after block N of *the
    /// property's own channel* (a property lives on one channel, and block numbers are per
    /// channel); `asOf` is the record at that ledger time. Null if the record did not exist
    /// yet. The replica answers when it has applied that far (final, never stale); otherwise
    /// FRESH and LEDGER read the ledger's history (`provenance.source: LEDGER`), and REPLICA
    /// refuses a block it has not applied with REPLICA_BEHIND (for a time it answers from what
    /// it holds, marked stale). A block the chain has not cut yet is BAD_USER_INPUT.
    /// `provenance.historical` is true, with the version's `committedAt` and `supersededBy`.
    #[graphql(cache_control(max_age = 5))]
    async fn property(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default_with = "Some(Consistency::Fresh)")] consistency: Option<Consistency>,
        as_of_block: Option<i64>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<Property>> {
        let s = ctx.data_unchecked::<Services>();
        let pid = parse_id(&id)?;
        let consistency = consistency.unwrap_or_default();
        let at = match (as_of_block, as_of) {
            (Some(_), Some(_)) => {
                return Err(bad_input(
                    "give `asOfBlock` or `asOf`, not both: a block and a time may disagree",
                ))
            }
            (Some(b), None) => Some(AsOf::Block(b)),
            (None, Some(t)) => Some(AsOf::Time(t)),
            (None, None) => None,
        };
        let row = match at {
            Some(at) => crate::history::property_as_of(s, &pid, at, consistency).await?,
            None => read_property(s, &pid, consistency).await?,
        };
        Ok(row.map(Property::new))
    }

    /// Properties, filtered and ordered, a page at a time (keyset cursors). Filtering on
    /// `ownerId` lists everything a person owns and needs a signed-in role.
    #[graphql(
        complexity = "crate::complexity::page(first, child_complexity)",
        cache_control(max_age = 5)
    )]
    async fn properties(
        &self,
        ctx: &Context<'_>,
        filter: Option<PropertyFilter>,
        #[graphql(default_with = "Some(PropertyOrder::IdAsc)")] order_by: Option<PropertyOrder>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<PropertyConnection> {
        let s = ctx.data_unchecked::<Services>();
        if filter.as_ref().is_some_and(|f| f.owner_id.is_some()) {
            crate::auth::require_signed_in(ctx, "`properties(filter: {ownerId})`")?;
        }
        let limit = page_size(ctx, first)?;
        let order_by = order_by.unwrap_or_default();
        let filter = filter.unwrap_or_default();
        check_filter(&filter)?;
        let key = after
            .as_deref()
            .map(|c| cursor::decode_property(c, order_by))
            .transpose()?;
        // After the cursor is read, so that a malformed one is still named as such.
        crate::list_depth::check(ctx, "properties", Some(&filter), after.as_deref())?;
        let rows =
            s.0.db
                .properties_page(&filter, order_by, key.as_ref(), limit + 1)
                .await
                .map_err(db_error)?;
        let look = ctx.look_ahead();
        if look.field("edges").exists() || look.field("nodes").exists() {
            let listed = rows.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
            crate::list_quota::charge(ctx, "properties", listed)?;
        }
        let extras = crate::types::property::prefetch(ctx, &rows).await?;
        Ok(PropertyConnection::page(
            rows,
            limit,
            order_by,
            key.is_some(),
            filter,
            extras,
        ))
    }

    /// Citizen search by name (any script, any spelling), place, survey number or ID.
    #[graphql(
        complexity = "crate::complexity::search(first, child_complexity)",
        cache_control(max_age = 5)
    )]
    async fn search(
        &self,
        ctx: &Context<'_>,
        text: String,
        filter: Option<PropertyFilter>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<SearchResult> {
        let s = ctx.data_unchecked::<Services>();
        let limit = page_size(ctx, first)?;
        crate::list_depth::check(ctx, "search", filter.as_ref(), after.as_deref())?;
        let Some(index) = s.0.index.clone() else {
            return Err(bad_input(
                "search is not available on this API node (no --index-dir)",
            ));
        };
        if text.trim().is_empty() {
            return Err(bad_input(
                "`text` is empty: give a name, place, survey number or property ID",
            ));
        }
        if text.chars().count() > MAX_SEARCH_TEXT {
            return Err(bad_input(format!(
                "`text` is longer than {MAX_SEARCH_TEXT} characters"
            )));
        }
        let req = search_index::SearchRequest {
            text,
            filter: search_filter(filter.unwrap_or_default())?,
            first: limit as usize,
            after,
        };
        let key = (
            index.generation(),
            req.text.clone(),
            format!("{:?}", req.filter),
            req.first,
            req.after.clone(),
        );
        let cache = &s.0.caches.searches;
        let res = match cache.get(&key).await {
            Some(res) => res,
            None => {
                let _slot = s.0.search_slots.acquire().await.map_err(|e| internal(&e))?;
                let started = std::time::Instant::now();
                let res = tokio::task::spawn_blocking(move || index.search(&req))
                    .await
                    .map_err(|e| internal(&e))?
                    .map_err(|e| match e {
                        search_index::Error::BadCursor(_) => bad_input(
                            "`after` is not a search cursor: use pageInfo.endCursor of the previous page",
                        ),
                        e => internal(&e),
                    })?;
                s.0.instruments.searched(started);
                let res = Arc::new(res);
                cache.cache.insert(key, res.clone()).await;
                res
            }
        };
        // Charged before the hits are read from the database, so a client past its allowance
        // costs no query; a hit the replica no longer holds (below) is rare enough to count.
        if ctx.look_ahead().field("hits").exists() {
            crate::list_quota::charge(ctx, "search", res.hits.len())?;
        }
        let loader = ctx.data_unchecked::<DataLoader<Loaders>>();
        let keys: Vec<PropertyKey> = res
            .hits
            .iter()
            .map(|h| PropertyKey(h.id.to_string()))
            .collect();
        let rows = loader.load_many(keys).await?;
        let mut hits = Vec::with_capacity(res.hits.len());
        for h in &res.hits {
            // A hit the replica no longer holds (removed since it was indexed) is left out.
            let Some(row) = rows.get(&PropertyKey(h.id.to_string())) else {
                continue;
            };
            hits.push(SearchHit {
                property: Property::new(row.clone()),
                score: f64::from(h.score),
                former_name: h.former_name,
                highlights: h
                    .highlights
                    .iter()
                    .map(|hl| Highlight {
                        field: graphql_field(&hl.field),
                        text: hl.text.clone(),
                        ranges: hl
                            .ranges
                            .iter()
                            .map(|(a, b)| vec![*a as i32, *b as i32])
                            .collect(),
                        match_kind: serde_json::to_value(hl.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        let facet = |field: &str, values: &[search_index::FacetValue]| Facet {
            field: field.to_string(),
            values: values
                .iter()
                .map(|v| FacetValue {
                    value: v.value.clone(),
                    label: v.label.clone(),
                    count: v.count as i64,
                })
                .collect(),
        };
        Ok(SearchResult {
            total: res.total as i64,
            facets: vec![
                facet("place", &res.facets.places),
                facet("landType", &res.facets.land_types),
                facet("verificationStatus", &res.facets.statuses),
            ],
            page_info: PageInfo {
                has_next_page: res.next.is_some(),
                has_previous_page: false,
                start_cursor: None,
                end_cursor: res.next.clone(),
            },
            hits,
        })
    }

    /// A person who owns land, by owner reference.
    #[graphql(cache_control(max_age = 5, private))]
    async fn owner(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Owner>> {
        let s = ctx.data_unchecked::<Services>();
        Ok(s.0.db.owner(&id).await.map_err(db_error)?.map(Owner::new))
    }

    /// Owners whose name starts with `name` (case-insensitive). For spelling variants and
    /// other scripts, use `search`. Needs a signed-in role (FORBIDDEN for anonymous callers).
    #[graphql(
        guard = "crate::auth::SignedIn { what: \"`owners`\" }",
        complexity = "crate::complexity::page(first, child_complexity)",
        cache_control(max_age = 5, private)
    )]
    async fn owners(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<OwnerConnection> {
        let s = ctx.data_unchecked::<Services>();
        let limit = page_size(ctx, first)?;
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(bad_input("`name` is empty"));
        }
        let after: Option<(String, String)> = after
            .as_deref()
            .map(|c| cursor::decode("owners", c))
            .transpose()?;
        let mut rows =
            s.0.db
                .owners_by_name(
                    &name,
                    after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                    limit + 1,
                )
                .await
                .map_err(db_error)?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let owners: Vec<_> = rows.iter().map(|(_, o)| o.clone()).collect();
        let page = crate::types::property::prefetch_owners(ctx, &owners).await?;
        let edges: Vec<_> = rows
            .into_iter()
            .map(|(sort, o)| crate::types::property::OwnerEdge {
                cursor: cursor::encode("owners", (&sort, &o.owner_ref)),
                node: Owner::on_page(o, page.clone()),
            })
            .collect();
        Ok(OwnerConnection {
            page_info: PageInfo {
                has_next_page: has_next,
                has_previous_page: after.is_some(),
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            name,
        })
    }

    /// Property counts one level below the location given: states, or the districts of a
    /// state, the mandals of a district, the villages of a mandal. Largest first.
    #[graphql(cache_control(max_age = 5))]
    async fn locations(
        &self,
        ctx: &Context<'_>,
        state: Option<String>,
        district: Option<String>,
        mandal: Option<String>,
    ) -> Result<Vec<LocationCount>> {
        let s = ctx.data_unchecked::<Services>();
        if district.is_some() && state.is_none() {
            return Err(bad_input("`district` needs `state`"));
        }
        if mandal.is_some() && district.is_none() {
            return Err(bad_input("`mandal` needs `district`"));
        }
        let state = state.map(|s| s.trim().to_uppercase());
        let key = (state.clone(), district.clone(), mandal.clone());
        let cache = &s.0.caches.locations;
        let rows = match cache.get(&key).await {
            Some(rows) => rows,
            None => {
                let seen = s.0.seq.load(Ordering::SeqCst);
                let rows = Arc::new(
                    s.0.db
                        .locations(state.as_deref(), district.as_deref(), mandal.as_deref())
                        .await
                        .map_err(db_error)?,
                );
                if s.0.seq.load(Ordering::SeqCst) == seen {
                    cache.cache.insert(key, rows.clone()).await;
                }
                rows
            }
        };
        Ok(rows
            .iter()
            .map(|r| LocationCount {
                name: r.name.clone(),
                level: r.level.to_string(),
                properties: r.properties,
            })
            .collect())
    }

    /// Every version of a property, oldest first.
    #[graphql(
        complexity = "crate::complexity::page(first, child_complexity)",
        cache_control(max_age = 5)
    )]
    async fn property_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<PropertyVersionConnection> {
        let s = ctx.data_unchecked::<Services>();
        let pid = parse_id(&id)?;
        let on_chain = match replica_property(s, &pid).await? {
            Some(row) => row.id.clone(),
            None => pid.to_string(),
        };
        crate::types::property::history(ctx, &on_chain, first, after, None).await
    }

    /// Whether the replica serves exactly the ledger's current record, with the ledger's
    /// proof to check independently. With `asOfBlock`, the same for the version in force
    /// after that block of the property's channel: the replica's history against the
    /// ledger's, and the proof of the transaction that wrote that version, checked against
    /// the block that carries it.
    #[graphql(cache_control(no_cache))]
    async fn verify_property(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of_block: Option<i64>,
    ) -> Result<Verification> {
        let s = ctx.data_unchecked::<Services>();
        let answer = match as_of_block {
            None => crate::verify::verify(s, &id).await,
            Some(b) => crate::verify::verify_as_of(s, &id, b).await,
        };
        s.0.instruments
            .verified(answer.as_ref().ok().map(|v| v.outcome));
        answer
    }

    /// How far the replica and search index have got.
    #[graphql(name = "_meta", cache_control(no_cache))]
    async fn meta(&self, ctx: &Context<'_>) -> Meta {
        meta(ctx.data_unchecked::<Services>())
    }
}

/// The replica's progress now.
pub(crate) fn meta(s: &Services) -> Meta {
    let i = &s.0;
    Meta {
        channels: i
            .freshness
            .all()
            .into_iter()
            .map(|v| ChannelProgress {
                channel: v.channel,
                indexed_block: v.indexed_block.map_or(-1, |b| b as i64),
                chain_height: v.chain_height.map(|h| h as i64),
                lag_blocks: v.lag_blocks.map(|b| b as i64),
                lag_seconds: v.lag_seconds,
                indexed_at: v.indexed_at,
                stale: v.stale,
            })
            .collect(),
        has_indexing_errors: i.has_indexing_errors.load(Ordering::Relaxed),
        change_log_seq: i.seq.load(Ordering::Relaxed),
        search_index_seq: i
            .index
            .as_ref()
            .and_then(|ix| ix.last_seq().ok().flatten())
            .unwrap_or(-1),
    }
}

/// Refuses the filters `properties` cannot answer well, saying why.
fn check_filter(f: &PropertyFilter) -> Result<()> {
    if let Some(shard) = f.shard {
        if !(0..=99).contains(&shard) {
            return Err(bad_input(format!(
                "`shard` is between 0 and 99 (legacy IDs have none), got {shard}"
            )));
        }
    }
    // A khata number is a village's account number: registry-wide it names unrelated
    // accounts, and no index serves it alone (a scan of every row: 164 ms for the count at
    // 100 000 records); with a district it is a range of properties_location (4 ms).
    if f.khata_no.is_some() && (f.state.is_none() || f.district.is_none()) {
        return Err(bad_input(
            "`khataNo` is a village's account number: filter it with `state` and `district` (or finer)",
        ));
    }
    Ok(())
}

/// The search index's field names → the GraphQL schema's.
fn graphql_field(field: &str) -> String {
    field
        .replace("father_name", "fatherName")
        .replace("former_names", "formerNames")
        .replace("survey_no", "surveyNo")
        .replace("khata_no", "khataNo")
        .replace("property_id", "id")
}

/// The part of a filter the searcher can apply; the rest is refused by name.
fn search_filter(f: PropertyFilter) -> Result<search_index::Filter> {
    let mut unsupported = Vec::new();
    for (set, name) in [
        (f.survey_no.is_some(), "surveyNo (put it in `text`)"),
        (f.khata_no.is_some(), "khataNo"),
        (f.owner_id.is_some(), "ownerId"),
        (f.year.is_some(), "year"),
        (f.shard.is_some(), "shard"),
        (f.created_after.is_some(), "createdAfter"),
        (f.created_before.is_some(), "createdBefore"),
    ] {
        if set {
            unsupported.push(name);
        }
    }
    if !unsupported.is_empty() {
        return Err(bad_input(format!(
            "search filters on state, district, mandal, village, landType and verificationStatus; not on {}",
            unsupported.join(", ")
        )));
    }
    Ok(search_index::Filter {
        state: f.state,
        district: f.district,
        mandal: f.mandal,
        village: f.village,
        land_type: f.land_type,
        status: f.verification_status.map(VerificationStatus::ledger),
    })
}

/// A property from the replica, through the cache. An entry is only cached if no change was
/// seen while it was read (see `cache`).
pub(crate) async fn replica_property(
    s: &Services,
    id: &PropertyId,
) -> Result<Option<Arc<PropertyRow>>> {
    let i = &s.0;
    let key = cache::key(id);
    // A request reading after a write skips the cache: an entry may predate the write.
    let after_write = crate::read_after::current().is_some();
    if !after_write {
        if let Some(row) = i.caches.properties.get(&key).await {
            i.instruments.read(ReadSource::Cache);
            return Ok(Some(row));
        }
    }
    let seen = i.seq.load(Ordering::SeqCst);
    let row = i.db.property(id).await.map_err(db_error)?.map(Arc::new);
    if row.is_some() {
        i.instruments.read(ReadSource::Replica);
    }
    if let Some(r) = &row {
        if i.seq.load(Ordering::SeqCst) == seen && i.listening.load(Ordering::Relaxed) {
            i.caches.properties.cache.insert(key, r.clone()).await;
        }
    }
    Ok(row)
}

/// A property's current record from the ledger, within the ledger deadline.
pub(crate) async fn ledger_property(
    s: &Services,
    id: &PropertyId,
) -> Result<Option<Arc<PropertyRow>>> {
    let i = &s.0;
    let rv = match tokio::time::timeout(i.config.ledger_timeout, i.ledger.record(id)).await {
        Ok(Ok(rv)) => rv,
        Ok(Err(ledger::client::LedgerError::Refused { message, .. })) => {
            return Err(bad_input(format!(
                "the ledger refused the lookup: {message}"
            )))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, id = %id, "ledger read failed");
            return Err(ledger_unavailable("record lookup"));
        }
        Err(_) => return Err(ledger_unavailable("record lookup timed out")),
    };
    let Some(rv) = rv else { return Ok(None) };
    i.instruments.read(ReadSource::Ledger);
    let hash = record_hash(&rv.record).map_err(|e| internal(&e))?;
    let record: ledger::model::Record = serde_json::from_value(rv.record)
        .map_err(|e| internal(&format!("the ledger's record of {id} does not decode: {e}")))?;
    Ok(Some(Arc::new(PropertyRow {
        id: record.property_id.to_string(),
        record,
        record_hash: hash,
        intact: true,
        // Read from the ledger (`source`), not from a database.
        served: crate::routing::Served::default(),
        version: VersionRef {
            channel: rv.version.channel,
            block_number: rv.version.block_number as i64,
            tx_index: rv.version.tx_index as i64,
            tx_id: rv.version.tx_id.to_hex(),
        },
        source: Source::Ledger,
        sort: Default::default(),
        historical: None,
    })))
}

/// A record the replica reads go to does not hold: asked of the primary, which may have it
/// already (the seed's "not found locally, ask the hub"); `None` when the node reads the
/// primary anyway, or the primary does not answer or hold it either.
async fn primary_property(s: &Services, id: &PropertyId) -> Result<Option<Arc<PropertyRow>>> {
    match s.0.db.property_on_primary(id).await {
        Some(Ok(Some(row))) => {
            s.0.instruments.read(ReadSource::Replica);
            Ok(Some(Arc::new(row)))
        }
        Some(Ok(None)) | None => Ok(None),
        // The primary is a fallback here: its failure is the ledger's turn, not an error.
        Some(Err(e)) => {
            tracing::debug!(error = %e, id = %id, "the primary could not be asked");
            Ok(None)
        }
    }
}

/// design/api.md's consistency levels.
pub(crate) async fn read_property(
    s: &Services,
    id: &PropertyId,
    consistency: Consistency,
) -> Result<Option<Arc<PropertyRow>>> {
    // No database applied the blocks the request must see in time: only the ledger has them.
    let consistency = match crate::read_after::current() {
        Some(plan) if plan.reads_ledger() => Consistency::Ledger,
        _ => consistency,
    };
    match consistency {
        Consistency::Replica => match replica_property(s, id).await? {
            Some(row) => Ok(Some(row)),
            None => primary_property(s, id).await,
        },
        Consistency::Ledger => ledger_property(s, id).await,
        Consistency::Fresh => {
            let local = match replica_property(s, id).await? {
                Some(row) => Some(row),
                None => primary_property(s, id).await?,
            };
            let ledger_known = s.0.freshness.chain_known();
            match local {
                Some(row) => {
                    if !row.intact {
                        // Altered behind our back: only the ledger's value will do.
                        tracing::warn!(id = %row.id, "replica row does not match its stored record hash; reading the ledger");
                    } else if !s.0.freshness.channel(&row.version.channel).stale {
                        return Ok(Some(row));
                    }
                    if !ledger_known && row.intact {
                        // The ledger is not answering: the replica's value, marked stale,
                        // beats making every reader wait out the deadline.
                        return Ok(Some(row));
                    }
                    let key: PropertyId = row.id.parse().unwrap_or(*id);
                    match ledger_property(s, &key).await {
                        Ok(Some(fresh)) => Ok(Some(fresh)),
                        Ok(None) => Ok(None),
                        // The replica's value is served marked stale; an altered one is not
                        // served at all.
                        Err(e) if !row.intact => Err(e),
                        Err(_) => Ok(Some(row)),
                    }
                }
                None if !ledger_known => Err(ledger_unavailable(
                    "not in the replica, and the ledger is unreachable",
                )),
                // Missing locally: it may be newer than the replica.
                None => ledger_property(s, id).await,
            }
        }
    }
}
