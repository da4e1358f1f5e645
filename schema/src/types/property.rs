//! Property, its owners, documents, history and provenance, and their connections.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Lookahead, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    Document, LedgerVersion, Location, PageInfo, PropertyFilter, PropertyOrder, Source,
    VerificationStatus,
};
use crate::cursor::{self, Key};
use crate::db::{DocumentRow, OwnerRow, PropertyRow, VersionRow};
use crate::errors::db_error;
use crate::loaders::{DocumentsKey, HistoryKey, Loaders, OwnerCountKey, OwnerPropertiesKey};
use crate::services::Services;

pub(crate) fn ms_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A land parcel as it stands now, or as it stood at a past point (`property(asOfBlock:)`,
/// `property(asOf:)`; see `provenance.historical`).
pub struct Property(pub(crate) Arc<PropertyRow>, Option<Arc<PageExtras>>);

impl Property {
    pub(crate) fn new(row: Arc<PropertyRow>) -> Self {
        Property(row, None)
    }
}

/// Per-page fields fetched up front for every property of a page, one statement each, when
/// the query selects them (look-ahead). This is what holds a page to a fixed number of
/// statements deterministically; the DataLoaders batch only what arrives within their
/// window, which a large page in a slow build can exceed.
#[derive(Default)]
pub(crate) struct PageExtras {
    documents: Option<HashMap<String, Arc<Vec<DocumentRow>>>>,
    /// (rows fetched per property, rows by property).
    history: Option<(i64, HashMap<String, Vec<VersionRow>>)>,
    /// The first page of properties of the page's owners (`owners { owner { properties } }`).
    owners: Option<Arc<OwnerPage>>,
}

/// Look-ahead prefetch of `documents` and the first page of `history` for a page of
/// properties (selected through `edges { node }` or `nodes`).
pub(crate) async fn prefetch(
    ctx: &Context<'_>,
    rows: &[PropertyRow],
) -> Result<Option<Arc<PageExtras>>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let la = ctx.look_ahead();
    let nodes = [la.field("edges").field("node"), la.field("nodes")];
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let db = &ctx.data_unchecked::<Services>().0.db;
    let mut extras = PageExtras::default();
    let owner_nodes: Vec<Lookahead<'_>> = nodes
        .iter()
        .map(|n| n.field("owners").field("owner"))
        .collect();
    if owner_nodes.iter().any(|n| n.field("properties").exists()) {
        let refs = rows
            .iter()
            .flat_map(|r| r.record.owners.iter().map(|o| o.owner_ref.clone()))
            .collect();
        extras.owners = owner_pages(ctx, &owner_nodes, refs).await?;
    }
    if nodes.iter().any(|n| n.field("documents").exists()) {
        let mut map: HashMap<String, Vec<DocumentRow>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        for d in db.documents(&ids).await.map_err(db_error)? {
            if let Some(v) = map.get_mut(&d.property_id) {
                v.push(d);
            }
        }
        extras.documents = Some(map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
    }
    // The first page of history, if every selection of it asks for the same first page.
    let mut firsts = Vec::new();
    for n in &nodes {
        for f in n.field("history").selection_fields() {
            let args = f.arguments()?;
            let mut first = 20;
            for (name, value) in args {
                match (name.as_str(), value) {
                    ("after", async_graphql::Value::Null) => {}
                    ("after", _) => return Ok(Some(Arc::new(extras))),
                    ("first", async_graphql::Value::Number(n)) => {
                        first = n.as_i64().unwrap_or(20);
                    }
                    _ => {}
                }
            }
            firsts.push(first);
        }
    }
    firsts.dedup();
    if let [first] = firsts[..] {
        let max = crate::auth::page_limit(ctx).0 as i64;
        if (0..=max).contains(&first) {
            let mut map: HashMap<String, Vec<VersionRow>> =
                ids.iter().map(|id| (id.clone(), Vec::new())).collect();
            for v in db.first_versions(&ids, first + 1).await.map_err(db_error)? {
                if let Some(list) = map.get_mut(&v.property_id) {
                    list.push(v);
                }
            }
            extras.history = Some((first + 1, map));
        }
    }
    Ok(Some(Arc::new(extras)))
}

#[Object]
impl Property {
    /// The property ID exactly as on chain.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn state(&self) -> &str {
        self.0.record.property_id.state()
    }
    async fn year(&self) -> i32 {
        i32::from(self.0.record.property_id.year())
    }
    async fn shard(&self) -> Option<i32> {
        self.0.record.property_id.shard().map(i32::from)
    }
    async fn sequence(&self) -> i64 {
        self.0.record.property_id.sequence() as i64
    }
    /// Current owners in the order of the record, with their shares.
    async fn owners(&self) -> Vec<Ownership> {
        self.0
            .record
            .owners
            .iter()
            .map(|o| Ownership {
                owner: Owner::on_page(
                    OwnerRow {
                        owner_ref: o.owner_ref.clone(),
                        name: o.name.clone(),
                        father_name: o.father_name.clone(),
                    },
                    self.1.as_ref().and_then(|e| e.owners.clone()),
                ),
                share_pct: o.share_pct,
            })
            .collect()
    }
    async fn location(&self) -> Location {
        let r = &self.0.record;
        Location {
            state: r.state.clone(),
            district: r.district.clone(),
            mandal: r.mandal.clone(),
            village: r.village.clone(),
        }
    }
    async fn survey_no(&self) -> &str {
        &self.0.record.survey_no
    }
    async fn khata_no(&self) -> Option<&str> {
        self.0.record.khata_no.as_deref()
    }
    async fn area_sq_m(&self) -> i64 {
        self.0.record.area_sq_m
    }
    /// The area as written in the deed (e.g. "2 acres 10 guntas").
    async fn area_text(&self) -> &str {
        &self.0.record.area_text
    }
    async fn land_type(&self) -> &str {
        &self.0.record.land_type
    }
    /// Market value in whole rupees.
    async fn market_value(&self) -> i64 {
        self.0.record.market_value
    }
    async fn verification_status(&self) -> VerificationStatus {
        VerificationStatus::of(self.0.record.verification_status)
    }
    /// Documents linked to this property (docs channel), oldest first.
    async fn documents(&self, ctx: &Context<'_>) -> Result<Vec<Document>> {
        let prefetched = self
            .1
            .as_ref()
            .and_then(|e| e.documents.as_ref())
            .and_then(|m| m.get(&self.0.id).cloned());
        let docs = match prefetched {
            Some(d) => d,
            None => {
                let loader = ctx.data_unchecked::<DataLoader<Loaders>>();
                loader
                    .load_one(DocumentsKey(self.0.id.clone()))
                    .await?
                    .unwrap_or_default()
            }
        };
        Ok(docs
            .iter()
            .map(|d| Document {
                doc_hash: d.doc_hash.clone(),
                doc_type: d.doc_type.clone(),
                linked_at: d.linked_at,
                tx_id: d.tx_id.clone(),
            })
            .collect())
    }
    /// Every version of this property, oldest first.
    #[graphql(complexity = "crate::complexity::page(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<PropertyVersionConnection> {
        let prefetched = match (&after, self.1.as_ref().and_then(|e| e.history.as_ref())) {
            (None, Some((n, map))) if i64::from(first.unwrap_or(20)) + 1 == *n => {
                Some(map.get(&self.0.id).cloned().unwrap_or_default())
            }
            _ => None,
        };
        history(ctx, &self.0.id, first, after, prefetched).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        ms_time(self.0.record.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        ms_time(self.0.record.updated_at)
    }
    /// Where this answer came from and how fresh it is.
    async fn provenance(&self, ctx: &Context<'_>) -> Provenance {
        let s = ctx.data_unchecked::<Services>();
        let v = &self.0.version;
        let view = s.0.freshness.channel(&v.channel);
        let h = self.0.historical.as_ref();
        let (database, region) = match self.0.source {
            Source::Ledger => ("ledger".to_string(), None),
            Source::Replica => {
                let m = s.0.db.router().member(self.0.served);
                (m.name.clone(), m.region.clone())
            }
        };
        Provenance {
            source: self.0.source,
            database,
            region,
            channel: v.channel.clone(),
            block_number: v.block_number,
            tx_index: v.tx_index,
            tx_id: v.tx_id.clone(),
            record_hash: self.0.record_hash.clone(),
            indexed_at: view.indexed_at,
            replica_lag_blocks: view.lag_blocks.map_or(-1, |b| b as i64),
            stale: match (self.0.source, h) {
                (Source::Ledger, _) => false,
                // A version the replica holds for a point it has applied is final.
                (Source::Replica, Some(h)) => h.incomplete || !self.0.intact,
                (Source::Replica, None) => view.stale || !self.0.intact,
            },
            historical: h.is_some(),
            committed_at: h.map(|h| h.committed_at),
            superseded_by: h.and_then(|h| h.superseded_by.as_ref().map(LedgerVersion::from)),
        }
    }
}

/// Where an answer came from. `recordHash` is computed from the record as served.
#[derive(SimpleObject)]
pub struct Provenance {
    pub source: Source,
    /// What answered: `primary`, `replica` and its region, or `ledger`.
    pub database: String,
    /// The region of the replica that answered (null for the primary and the ledger).
    pub region: Option<String>,
    pub channel: String,
    pub block_number: i64,
    /// The transaction's position in its block.
    pub tx_index: i64,
    pub tx_id: String,
    pub record_hash: String,
    /// When the replica last applied a block of this channel.
    pub indexed_at: Option<DateTime<Utc>>,
    /// Blocks of the channel the replica has not applied; -1 when the chain height is
    /// unknown (ledger unreachable).
    pub replica_lag_blocks: i64,
    /// A replica answer outside the freshness bound, or whose freshness cannot be known.
    /// A historical answer (`historical`) from the replica is final once the replica has
    /// applied the point asked for: stale only when it could not know whether the ledger holds
    /// later versions before that point.
    pub stale: bool,
    /// True when this is the record as it stood at a past point (`asOfBlock`, `asOf`), read
    /// from the history: the version above wrote it, and `supersededBy` replaced it.
    pub historical: bool,
    /// For a historical answer: the ledger time of the transaction that wrote this version.
    pub committed_at: Option<DateTime<Utc>>,
    /// For a historical answer: the version that replaced this one, as far as the source
    /// knows; null while this version is still the newest there.
    pub superseded_by: Option<LedgerVersion>,
}

#[derive(SimpleObject)]
pub struct Ownership {
    pub owner: Owner,
    pub share_pct: i64,
}

/// A person who owns land; `id` is their stable owner reference.
pub struct Owner(pub(crate) OwnerRow, Option<Arc<OwnerPage>>);

impl Owner {
    pub(crate) fn new(row: OwnerRow) -> Self {
        Owner(row, None)
    }

    /// An owner of a page whose per-owner fields were fetched up front (see [`prefetch_owners`]).
    pub(crate) fn on_page(row: OwnerRow, page: Option<Arc<OwnerPage>>) -> Self {
        Owner(row, page)
    }
}

/// The first page of `properties` (and its `totalCount`) of every owner of a page, fetched
/// up front in one statement each when the query selects them (look-ahead), as
/// [`PageExtras`] does for properties. Owners reached any other way (a property's owners,
/// `owner(id)`) go through the owner DataLoaders, which batch what arrives together.
/// Each owner's first rows of properties, by owner reference.
type RowsByOwner = HashMap<String, Arc<Vec<PropertyRow>>>;

#[derive(Default)]
pub(crate) struct OwnerPage {
    /// (rows fetched per owner, rows by owner).
    properties: Option<(i64, RowsByOwner)>,
    counts: Option<HashMap<String, i64>>,
}

/// Look-ahead prefetch of `properties` (first page, with `totalCount`) for a page of owners
/// (selected through `edges { node }` or `nodes`).
pub(crate) async fn prefetch_owners(
    ctx: &Context<'_>,
    owners: &[OwnerRow],
) -> Result<Option<Arc<OwnerPage>>> {
    let la = ctx.look_ahead();
    let nodes = [la.field("edges").field("node"), la.field("nodes")];
    let refs: Vec<String> = owners.iter().map(|o| o.owner_ref.clone()).collect();
    owner_pages(ctx, &nodes, refs).await
}

/// The per-owner fields selected under `nodes` (each an `Owner` selection) for the owners
/// `refs`, one statement each.
async fn owner_pages(
    ctx: &Context<'_>,
    nodes: &[Lookahead<'_>],
    mut refs: Vec<String>,
) -> Result<Option<Arc<OwnerPage>>> {
    if refs.is_empty() {
        return Ok(None);
    }
    // Every selection must ask for the same first page; a signed-in role is checked by
    // the field's guard when it resolves (nothing prefetched is shown before that).
    let mut firsts = Vec::new();
    let mut counted = false;
    for n in nodes {
        for f in n.field("properties").selection_fields() {
            let mut first = 20;
            for (name, value) in f.arguments()? {
                match (name.as_str(), value) {
                    ("after", async_graphql::Value::Null) => {}
                    ("after", _) => return Ok(None),
                    ("first", async_graphql::Value::Number(n)) => {
                        first = n.as_i64().unwrap_or(20);
                    }
                    _ => {}
                }
            }
            firsts.push(first);
        }
        counted |= n.field("properties").field("totalCount").exists();
    }
    firsts.dedup();
    let [first] = firsts[..] else {
        return Ok(None);
    };
    let max = crate::auth::page_limit(ctx).0 as i64;
    if !(0..=max).contains(&first) || !crate::auth::principal(ctx).role.is_signed_in() {
        return Ok(None);
    }
    refs.sort();
    refs.dedup();
    let db = &ctx.data_unchecked::<Services>().0.db;
    let mut page = OwnerPage::default();
    let mut map: HashMap<String, Vec<PropertyRow>> =
        refs.iter().map(|r| (r.clone(), Vec::new())).collect();
    for (owner, row) in db
        .owners_properties(&refs, first + 1)
        .await
        .map_err(db_error)?
    {
        if let Some(v) = map.get_mut(&owner) {
            v.push(row);
        }
    }
    page.properties = Some((
        first + 1,
        map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
    ));
    if counted {
        let mut counts: HashMap<String, i64> = refs.iter().map(|r| (r.clone(), 0)).collect();
        for (owner, n) in db.owners_properties_counts(&refs).await.map_err(db_error)? {
            counts.insert(owner, n);
        }
        page.counts = Some(counts);
    }
    Ok(Some(Arc::new(page)))
}

#[Object]
impl Owner {
    async fn id(&self) -> ID {
        ID(self.0.owner_ref.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn father_name(&self) -> Option<&str> {
        self.0.father_name.as_deref()
    }
    /// Everything this person owns now, by property ID. Needs a signed-in role (FORBIDDEN
    /// for anonymous callers), however the owner was reached. The first page is fetched for
    /// every owner of a page at once (one statement, not one per owner).
    #[graphql(
        guard = "crate::auth::SignedIn { what: \"`Owner.properties`\" }",
        complexity = "crate::complexity::page(first, child_complexity)"
    )]
    async fn properties(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<PropertyConnection> {
        let s = ctx.data_unchecked::<Services>();
        let limit = super::page_size(ctx, first)?;
        let after: Option<String> = after
            .map(|c| cursor::decode::<String>("owner.properties", &c))
            .transpose()?;
        let owner = &self.0.owner_ref;
        let page = self.1.as_ref();
        let mut rows: Vec<PropertyRow> = match &after {
            Some(after) => {
                s.0.db
                    .owner_properties(owner, Some(after), limit + 1)
                    .await
                    .map_err(db_error)?
            }
            None => {
                let prefetched = page
                    .and_then(|p| p.properties.as_ref())
                    .filter(|(n, _)| *n == limit + 1)
                    .and_then(|(_, map)| map.get(owner).cloned());
                let rows = match prefetched {
                    Some(rows) => rows,
                    None => {
                        let loader = ctx.data_unchecked::<DataLoader<Loaders>>();
                        loader
                            .load_one(OwnerPropertiesKey(owner.clone(), limit + 1))
                            .await?
                            .unwrap_or_default()
                    }
                };
                rows.as_ref().clone()
            }
        };
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let edges = rows
            .into_iter()
            .map(|r| PropertyEdge {
                cursor: cursor::encode("owner.properties", &r.id),
                node: Property::new(Arc::new(r)),
            })
            .collect();
        let count = match page
            .and_then(|p| p.counts.as_ref())
            .and_then(|c| c.get(owner))
        {
            Some(n) => CountOf::Known(*n),
            None => CountOf::Owner(owner.clone()),
        };
        Ok(PropertyConnection::new(
            edges,
            has_next,
            after.is_some(),
            count,
        ))
    }
}

pub struct PropertyEdge {
    pub cursor: String,
    pub node: Property,
}

#[Object]
impl PropertyEdge {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn node(&self) -> &Property {
        &self.node
    }
}

/// What `totalCount` counts, computed only when selected.
pub(crate) enum CountOf {
    Filter(Box<PropertyFilter>),
    /// An owner's properties, counted together with the other owners' (DataLoader).
    Owner(String),
    /// Counted already (prefetched for a page of owners).
    Known(i64),
}

pub struct PropertyConnection {
    edges: Vec<PropertyEdge>,
    page_info: PageInfo,
    count: CountOf,
}

impl PropertyConnection {
    pub(crate) fn new(
        edges: Vec<PropertyEdge>,
        has_next: bool,
        has_prev: bool,
        count: CountOf,
    ) -> Self {
        let page_info = PageInfo {
            has_next_page: has_next,
            has_previous_page: has_prev,
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        };
        PropertyConnection {
            edges,
            page_info,
            count,
        }
    }

    /// A page of `properties` from rows fetched with one extra (to know if there is more).
    pub(crate) fn page(
        mut rows: Vec<PropertyRow>,
        limit: i64,
        order: PropertyOrder,
        has_prev: bool,
        filter: PropertyFilter,
        extras: Option<Arc<PageExtras>>,
    ) -> Self {
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let edges = rows
            .into_iter()
            .map(|r| PropertyEdge {
                cursor: cursor::encode_property(order, &Key::of(&r, order)),
                node: Property(Arc::new(r), extras.clone()),
            })
            .collect();
        Self::new(edges, has_next, has_prev, CountOf::Filter(Box::new(filter)))
    }
}

#[Object]
impl PropertyConnection {
    async fn edges(&self) -> &[PropertyEdge] {
        &self.edges
    }
    /// The nodes of `edges`, for clients that do not need cursors.
    async fn nodes(&self) -> Vec<&Property> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// Matching properties in all pages (a location filter is answered from maintained
    /// counts; other filters are counted, which costs a scan).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = &ctx.data_unchecked::<Services>().0.db;
        match &self.count {
            CountOf::Filter(f) => db.properties_count(f).await.map_err(db_error),
            CountOf::Owner(o) => {
                let loader = ctx.data_unchecked::<DataLoader<Loaders>>();
                Ok(loader
                    .load_one(OwnerCountKey(o.clone()))
                    .await?
                    .unwrap_or(0))
            }
            CountOf::Known(n) => Ok(*n),
        }
    }
}

#[derive(SimpleObject)]
pub struct OwnerEdge {
    pub cursor: String,
    pub node: Owner,
}

pub struct OwnerConnection {
    pub(crate) edges: Vec<OwnerEdge>,
    pub(crate) page_info: PageInfo,
    pub(crate) name: String,
}

#[Object]
impl OwnerConnection {
    async fn edges(&self) -> &[OwnerEdge] {
        &self.edges
    }
    async fn nodes(&self) -> Vec<&Owner> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = &ctx.data_unchecked::<Services>().0.db;
        db.owners_by_name_count(&self.name).await.map_err(db_error)
    }
}

/// One version of a property: the transaction that wrote it, and the record it wrote.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PropertyVersion {
    /// PropertyCreated, PropertyTransferred, PropertyCorrected, VerificationChanged, ...
    pub event: String,
    pub version: LedgerVersion,
    pub committed_at: DateTime<Utc>,
    /// sha256 of the record's canonical JSON, computed from the record as served.
    pub record_hash: String,
    #[graphql(skip)]
    pub(crate) row: VersionRow,
}

#[ComplexObject]
impl PropertyVersion {
    /// The record as this version wrote it.
    async fn record(&self) -> Result<Property> {
        let record = serde_json::from_value(self.row.record.clone()).map_err(|e| {
            crate::errors::internal(&format!(
                "history record of {} does not decode: {e}",
                self.row.property_id
            ))
        })?;
        Ok(Property::new(Arc::new(PropertyRow {
            id: self.row.property_id.clone(),
            record,
            record_hash: self.record_hash.clone(),
            intact: true,
            served: self.row.served,
            version: self.row.version.clone(),
            source: Source::Replica,
            sort: Default::default(),
            // The version is this `PropertyVersion`'s own fields.
            historical: None,
        })))
    }
    /// The record exactly as the ledger stores it (JSON text).
    async fn record_json(&self) -> String {
        self.row.record.to_string()
    }
}

#[derive(SimpleObject)]
pub struct PropertyVersionEdge {
    pub cursor: String,
    pub node: PropertyVersion,
}

pub struct PropertyVersionConnection {
    edges: Vec<PropertyVersionEdge>,
    page_info: PageInfo,
    property_id: String,
}

#[Object]
impl PropertyVersionConnection {
    async fn edges(&self) -> &[PropertyVersionEdge] {
        &self.edges
    }
    async fn nodes(&self) -> Vec<&PropertyVersion> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = &ctx.data_unchecked::<Services>().0.db;
        db.versions_count(&self.property_id).await.map_err(db_error)
    }
}

type VersionCursor = (i64, i64, String);

/// A page of a property's history (`id` as on chain). The first page of many properties is
/// batched through the history DataLoader.
pub(crate) async fn history(
    ctx: &Context<'_>,
    id: &str,
    first: Option<i32>,
    after: Option<String>,
    prefetched: Option<Vec<VersionRow>>,
) -> Result<PropertyVersionConnection> {
    let s = ctx.data_unchecked::<Services>();
    let limit = super::page_size(ctx, first)?;
    let mut rows = match &after {
        None if prefetched.is_some() => prefetched.unwrap_or_default(),
        None => {
            let loader = ctx.data_unchecked::<DataLoader<Loaders>>();
            loader
                .load_one(HistoryKey(id.to_string(), limit + 1))
                .await?
                .unwrap_or_default()
        }
        Some(c) => {
            let (b, t, ch): VersionCursor = cursor::decode("history", c)?;
            s.0.db
                .versions_after(id, (b, t, &ch), limit + 1)
                .await
                .map_err(db_error)?
        }
    };
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut edges = Vec::with_capacity(rows.len());
    for row in rows {
        let record_hash =
            crate::db::record_hash(&row.record).map_err(|e| crate::errors::internal(&e))?;
        let v = &row.version;
        edges.push(PropertyVersionEdge {
            cursor: cursor::encode("history", (v.block_number, v.tx_index, v.channel.clone())),
            node: PropertyVersion {
                event: row.event.clone(),
                version: LedgerVersion::from(v),
                committed_at: row.committed_at,
                record_hash,
                row,
            },
        });
    }
    let page_info = PageInfo {
        has_next_page: has_next,
        has_previous_page: after.is_some(),
        start_cursor: edges.first().map(|e| e.cursor.clone()),
        end_cursor: edges.last().map(|e| e.cursor.clone()),
    };
    Ok(PropertyVersionConnection {
        edges,
        page_info,
        property_id: id.to_string(),
    })
}
