//! Every SQL statement the API runs, against the read model of `migrations/sql`.
//!
//! Each statement names the index it is written for (see the migrations). All of them go
//! through [`Db::pool`], which counts statements: the count is exported as a metric and is
//! how the tests hold a page of properties to a fixed number of statements. Each method
//! that sends one is timed (`Instruments::statement`) from its start to its end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledger::canonical::{sha256, value_to_jcs};
use ledger::model::Record;
use migrations::PgPool;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row};

use crate::batch::Batcher;
use crate::cursor::Key;
use crate::instruments::Instruments;
use crate::routing::{Router, Served};
use crate::types::meta::SyncError;
use crate::types::{PropertyFilter, PropertyOrder, Source};

pub(crate) struct Db {
    router: Arc<Router>,
    statements: Arc<AtomicU64>,
    instruments: Arc<Instruments>,
    /// `property(id)` lookups of concurrent requests, one statement per batch.
    by_id: Arc<Batcher<ledger::PropertyId, Option<PropertyRow>, DbError>>,
}

/// Batches of [`Db::property`] running at once. Why 4: a quarter of the pool, so pages,
/// searches' owners and verification never wait behind lookups; at 2 000 lookups/s a batch
/// takes ~0.3 ms, so four slots rarely make a lookup wait, and under a flood each batch
/// gathers the lookups that arrived meanwhile.
const BY_ID_IN_FLIGHT: usize = 4;
/// Keys in one batch at most.
const BY_ID_BATCH: usize = 128;

/// The transaction that wrote a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionRef {
    pub channel: String,
    pub block_number: i64,
    pub tx_index: i64,
    pub tx_id: String,
}

/// A property as the API serves it: the record, its hash computed from exactly this record,
/// the version that wrote it and where it was read.
#[derive(Debug, Clone)]
pub(crate) struct PropertyRow {
    /// The ID exactly as on chain (the ledger's key).
    pub id: String,
    pub record: Record,
    pub record_hash: String,
    /// Whether the record still hashes to the hash the sync worker stored beside it (taken
    /// from the ledger's write). False means the row was altered behind landql's back.
    pub intact: bool,
    /// The database it was read from.
    pub served: Served,
    pub version: VersionRef,
    pub source: Source,
    /// The sort keys of the row, for cursors.
    pub sort: SortKeys,
    /// Set when this is the record as it stood at a past point (`asOfBlock`, `asOf`).
    pub historical: Option<Historical>,
}

/// What a historical answer says about its version (see `history`).
#[derive(Debug, Clone)]
pub(crate) struct Historical {
    /// The ledger time of the transaction that wrote the version.
    pub committed_at: DateTime<Utc>,
    /// The version that replaced it, as far as the source knows; `None` while it is the
    /// newest version there.
    pub superseded_by: Option<VersionRef>,
    /// A replica answer that may lack versions the ledger holds (the replica is behind the
    /// point asked for and the ledger could not be asked).
    pub incomplete: bool,
}

/// A point in a property's history. Block numbers are per channel: a property lives on one
/// channel, and the number refers to that channel's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AsOf {
    /// After block N of the property's channel was applied.
    Block(i64),
    /// At a ledger time: the versions committed at or before it.
    Time(DateTime<Utc>),
}

/// A property's version as of a point, from the replica's history, read in one statement
/// together with the replica's checkpoint of the channel (one snapshot: the version and how
/// far the replica had got agree).
#[derive(Debug, Clone)]
pub(crate) struct AsOfRow {
    /// The last block of the channel the replica has applied (`None`: not any yet).
    pub applied: Option<i64>,
    /// The version in force at the point; `None` when the record did not exist yet (as far
    /// as the replica knows).
    pub version: Option<VersionRow>,
    /// Whether `version`'s record still hashes to the hash stored beside it.
    pub intact: bool,
    /// The version after it in the replica's history.
    pub next: Option<VersionRef>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SortKeys {
    pub state: String,
    pub year: i32,
    pub shard: i32,
    pub sequence: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub market_value: i64,
    pub area_sq_m: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct DocumentRow {
    pub property_id: String,
    pub doc_hash: String,
    pub doc_type: String,
    pub linked_at: DateTime<Utc>,
    pub tx_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct VersionRow {
    pub property_id: String,
    /// The database it was read from.
    pub served: Served,
    pub event: String,
    pub record: Value,
    pub committed_at: DateTime<Utc>,
    pub version: VersionRef,
}

#[derive(Debug, Clone)]
pub(crate) struct OwnerRow {
    pub owner_ref: String,
    pub name: String,
    pub father_name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct LocationRow {
    pub name: String,
    pub level: &'static str,
    pub properties: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct ChangeRow {
    pub seq: i64,
    pub property_id: String,
    pub event: String,
    pub channel: String,
    pub block_number: i64,
    pub tx_id: String,
}

/// The denormalised columns of a property row, which filters and orders use: verification
/// checks them against the record (a row altered in one place only is still a mismatch).
#[derive(Debug, Clone)]
pub(crate) struct ColumnsRow {
    pub columns: Vec<(&'static str, String)>,
    pub owners: Vec<(String, i64)>,
}

/// sha256 of the record's canonical JSON, hex — what ledger.md calls the record hash.
pub(crate) fn record_hash(record: &Value) -> std::result::Result<String, String> {
    let jcs = value_to_jcs(record).map_err(|e| e.to_string())?;
    Ok(sha256(&jcs).to_hex())
}

/// The columns every property query selects (in this order; see [`property_row`]).
const PROPERTY_COLUMNS: &str =
    "p.id, p.record, p.record_hash, p.channel, p.block_number, p.tx_index, p.tx_id, \
     p.state, p.year, coalesce(p.shard, -1) AS shard_key, p.sequence, \
     (extract(epoch from p.created_at) * 1000000)::bigint AS created_us, \
     (extract(epoch from p.updated_at) * 1000000)::bigint AS updated_us, \
     p.market_value, p.area_sq_m";

fn property_row(row: &PgRow, served: Served) -> std::result::Result<PropertyRow, String> {
    let get = |e: sqlx::Error| e.to_string();
    let record: sqlx::types::Json<Value> = row.try_get("record").map_err(get)?;
    let value = record.0;
    let record_hash = record_hash(&value)?;
    let id: String = row.try_get("id").map_err(get)?;
    let stored: String = row.try_get("record_hash").map_err(get)?;
    let record: Record = serde_json::from_value(value)
        .map_err(|e| format!("the replica's record of {id} does not decode: {e}"))?;
    Ok(PropertyRow {
        record,
        intact: stored == record_hash,
        served,
        record_hash,
        version: VersionRef {
            channel: row.try_get("channel").map_err(get)?,
            block_number: row.try_get("block_number").map_err(get)?,
            tx_index: row.try_get::<i32, _>("tx_index").map_err(get)?.into(),
            tx_id: row.try_get("tx_id").map_err(get)?,
        },
        source: Source::Replica,
        historical: None,
        sort: SortKeys {
            state: row.try_get("state").map_err(get)?,
            year: row.try_get("year").map_err(get)?,
            shard: row.try_get("shard_key").map_err(get)?,
            sequence: row.try_get("sequence").map_err(get)?,
            created_at: row.try_get("created_us").map_err(get)?,
            updated_at: row.try_get("updated_us").map_err(get)?,
            market_value: row.try_get("market_value").map_err(get)?,
            area_sq_m: row.try_get("area_sq_m").map_err(get)?,
        },
        id,
    })
}

/// A failure reading the replica: the database's or a row that does not decode.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Row(String),
    /// The failure of a batch this request's lookup was part of (see `batch`).
    #[error(transparent)]
    Batch(Arc<DbError>),
}

impl DbError {
    /// The database's own error, if that is what this is.
    pub fn sql(&self) -> Option<&sqlx::Error> {
        match self {
            DbError::Sql(e) => Some(e),
            DbError::Row(_) => None,
            DbError::Batch(e) => e.sql(),
        }
    }
}

type Result<T> = std::result::Result<T, DbError>;

fn rows(rows: &[PgRow], served: Served) -> Result<Vec<PropertyRow>> {
    rows.iter()
        .map(|r| property_row(r, served).map_err(DbError::Row))
        .collect()
}

/// An error a statement may end with, as `routed!` sees it.
trait Failure {
    fn sql(&self) -> Option<&sqlx::Error>;
}

impl Failure for sqlx::Error {
    fn sql(&self) -> Option<&sqlx::Error> {
        Some(self)
    }
}

impl Failure for DbError {
    fn sql(&self) -> Option<&sqlx::Error> {
        DbError::sql(self)
    }
}

/// Runs a statement (`$e`, a future built anew on each attempt from `$pool`) on the database
/// the router picks; when that database turns out to be gone, the router takes it out and
/// the statement runs again on the next pick, so the request that found out does not fail.
/// With `$served`, also says which database answered.
macro_rules! routed {
    ($db:expr, |$pool:ident, $served:ident| $e:expr) => {{
        $db.count();
        let mut attempts = $db.router.len();
        // The databases this statement failed on (a bit each), not picked again.
        let mut tried = 0u64;
        loop {
            let ($served, $pool) = $db.router.pick_except(tried);
            match $e {
                Err(e)
                    if attempts > 1
                        && Failure::sql(&e).is_some_and(|e| $db.router.failed($served, e)) =>
                {
                    tried |= 1u64 << $served.0.min(63);
                    attempts -= 1
                }
                r => break r.map(|v| (v, $served)),
            }
        }
    }};
    ($db:expr, |$pool:ident| $e:expr) => {
        routed!($db, |$pool, _served| $e).map(|(v, _)| v)
    };
}

/// Properties by ID in any of their spellings, each preferring the exact one: one answer
/// per ID, in order. Index: properties_id_order (state, year, coalesce(shard, -1),
/// sequence), one probe per ID.
async fn properties_by_keys(
    pool: &PgPool,
    served: Served,
    ids: &[ledger::PropertyId],
) -> Result<Vec<Option<PropertyRow>>> {
    if let [id] = ids {
        // Alone (every lookup at low load): the plain statement, without the arrays.
        let sql = format!(
            "SELECT {PROPERTY_COLUMNS} FROM properties p \
             WHERE p.state = $1 AND p.year = $2 AND coalesce(p.shard, -1) = $3 AND p.sequence = $4 \
             ORDER BY (p.id = $5) DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.state())
            .bind(i32::from(id.year()))
            .bind(id.shard().map_or(-1, i32::from))
            .bind(id.sequence() as i64)
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?;
        return Ok(vec![row
            .map(|r| property_row(&r, served).map_err(DbError::Row))
            .transpose()?]);
    }
    let sql = format!(
        "SELECT k.i, {PROPERTY_COLUMNS} \
         FROM unnest($1::text[], $2::int4[], $3::int4[], $4::int8[], $5::text[]) \
              WITH ORDINALITY AS k(state, year, shard, sequence, id, i) \
         CROSS JOIN LATERAL ( \
             SELECT * FROM properties q \
             WHERE q.state = k.state AND q.year = k.year \
               AND coalesce(q.shard, -1) = k.shard AND q.sequence = k.sequence \
             ORDER BY (q.id = k.id) DESC LIMIT 1) p"
    );
    let found = sqlx::query(AssertSqlSafe(sql))
        .bind(ids.iter().map(|id| id.state()).collect::<Vec<_>>())
        .bind(
            ids.iter()
                .map(|id| i32::from(id.year()))
                .collect::<Vec<_>>(),
        )
        .bind(
            ids.iter()
                .map(|id| id.shard().map_or(-1, i32::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            ids.iter()
                .map(|id| id.sequence() as i64)
                .collect::<Vec<_>>(),
        )
        .bind(ids.iter().map(|id| id.to_string()).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
    let mut answers: Vec<Option<PropertyRow>> = (0..ids.len()).map(|_| None).collect();
    for row in &found {
        let i: i64 = row.try_get("i")?;
        let slot = usize::try_from(i - 1)
            .ok()
            .and_then(|i| answers.get_mut(i))
            .ok_or_else(|| {
                DbError::Row(format!("batched lookup answered key {i} of {}", ids.len()))
            })?;
        *slot = Some(property_row(row, served).map_err(DbError::Row)?);
    }
    Ok(answers)
}

/// The router alone, for statements not counted as a request's: the batched lookups
/// (counted per batch) and the node's background work (listener, checkpoints).
struct Routed<'a> {
    router: &'a Router,
}

impl Routed<'_> {
    fn count(&self) {}
}

impl Db {
    pub fn new(router: Arc<Router>, instruments: Arc<Instruments>) -> Self {
        let statements = Arc::new(AtomicU64::new(0));
        let by_id = Batcher::new(BY_ID_IN_FLIGHT, BY_ID_BATCH, {
            let (router, statements) = (Arc::clone(&router), Arc::clone(&statements));
            let instruments = Arc::clone(&instruments);
            move |ids: Vec<ledger::PropertyId>| {
                statements.fetch_add(1, Ordering::Relaxed);
                let (router, instruments) = (Arc::clone(&router), Arc::clone(&instruments));
                async move {
                    let _timer = instruments.statement();
                    let db = Routed { router: &router };
                    routed!(db, |pool, served| properties_by_keys(pool, served, &ids)
                        .await)
                    .map(|(rows, _)| rows)
                    .map_err(Arc::new)
                }
            }
        });
        Db {
            router,
            statements,
            instruments,
            by_id,
        }
    }

    /// Counts one statement made while answering a request.
    fn count(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// For the node's background work, whose statements are not counted.
    fn background(&self) -> Routed<'_> {
        Routed {
            router: &self.router,
        }
    }

    /// The databases this node reads and which one it reads now.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The pool reads go to now.
    pub fn raw_pool(&self) -> &PgPool {
        self.router.pick().1
    }

    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// One property by ID in any of its spellings, preferring the exact one; looked up
    /// together with the other requests' (see `batch`).
    #[tracing::instrument(name = "sql.property", skip_all)]
    pub async fn property(&self, id: &ledger::PropertyId) -> Result<Option<PropertyRow>> {
        if crate::read_after::current().is_some() {
            // Not batched with other requests, which read where reads go.
            let _timer = self.instruments.statement();
            let (mut found, _) = routed!(self, |pool, served| properties_by_keys(
                pool,
                served,
                std::slice::from_ref(id)
            )
            .await)?;
            return Ok(found.pop().flatten());
        }
        match self.by_id.load(*id).await {
            Ok(answer) => answer.map_err(DbError::Batch),
            Err(no_answer) => Err(DbError::Row(no_answer.to_string())),
        }
    }

    /// One property read on the primary itself, when reads go to a replica and the primary
    /// answers (`None` otherwise): a record the replica does not hold (yet).
    #[tracing::instrument(name = "sql.property_on_primary", skip_all)]
    pub async fn property_on_primary(
        &self,
        id: &ledger::PropertyId,
    ) -> Option<Result<Option<PropertyRow>>> {
        let (served, pool) = self.router.primary_elsewhere()?;
        let _timer = self.instruments.statement();
        self.count();
        Some(
            properties_by_keys(pool, served, std::slice::from_ref(id))
                .await
                .map(|mut found| found.pop().flatten()),
        )
    }

    /// Properties by their on-chain IDs (primary key), in no particular order.
    #[tracing::instrument(name = "sql.properties_by_ids", skip_all)]
    pub async fn properties_by_ids(&self, ids: &[String]) -> Result<Vec<PropertyRow>> {
        let _timer = self.instruments.statement();
        let sql = format!("SELECT {PROPERTY_COLUMNS} FROM properties p WHERE p.id = ANY($1)");
        let (found, served) = routed!(self, |pool, served| sqlx::query(AssertSqlSafe(
            sql.as_str()
        ))
        .bind(ids)
        .fetch_all(pool)
        .await)?;
        rows(&found, served)
    }

    /// A page of `properties(filter, orderBy, first, after)`: up to `limit` rows after the
    /// cursor key. Each order has its own index (see the migrations); the keyset condition
    /// is a row comparison written exactly like the index so that it is used.
    #[tracing::instrument(name = "sql.properties_page", skip_all)]
    pub async fn properties_page(
        &self,
        filter: &PropertyFilter,
        order: PropertyOrder,
        after: Option<&Key>,
        limit: i64,
    ) -> Result<Vec<PropertyRow>> {
        let _timer = self.instruments.statement();
        let (found, served) = routed!(self, |pool, served| {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "SELECT {PROPERTY_COLUMNS} FROM properties p WHERE true"
            ));
            push_filter(&mut q, filter);
            if let Some(key) = after {
                q.push(" AND ");
                push_keyset(&mut q, order, key);
            }
            q.push(" ORDER BY ").push(order_sql(order));
            q.push(" LIMIT ").push_bind(limit);
            let found = q.build().fetch_all(pool).await;
            found
        })?;
        rows(&found, served)
    }

    /// `totalCount` of a filtered connection. A filter on location alone (a prefix of state,
    /// district, mandal, village) is answered from the maintained counts in one key lookup;
    /// anything else is counted.
    #[tracing::instrument(name = "sql.properties_count", skip_all)]
    pub async fn properties_count(&self, filter: &PropertyFilter) -> Result<i64> {
        let _timer = self.instruments.statement();
        if let Some(prefix) = filter.location_prefix() {
            let mut key: Vec<String> = prefix.into_iter().map(str::to_string).collect();
            key.resize(4, String::new());
            key[0] = key[0].trim().to_uppercase();
            let n: Option<i64> = routed!(self, |pool| sqlx::query_scalar(
                "SELECT properties FROM location_counts \
                 WHERE state = $1 AND district = $2 AND mandal = $3 AND village = $4",
            )
            .bind(&key[0])
            .bind(&key[1])
            .bind(&key[2])
            .bind(&key[3])
            .fetch_optional(pool)
            .await)?;
            return Ok(n.unwrap_or(0));
        }
        Ok(routed!(self, |pool| {
            let mut q =
                QueryBuilder::<Postgres>::new("SELECT count(*) FROM properties p WHERE true");
            push_filter(&mut q, filter);
            let n = q.build_query_scalar::<i64>().fetch_one(pool).await;
            n
        })?)
    }

    /// The documents of many properties. Index: documents primary key (property_id, ...).
    #[tracing::instrument(name = "sql.documents", skip_all)]
    pub async fn documents(&self, ids: &[String]) -> Result<Vec<DocumentRow>> {
        let _timer = self.instruments.statement();
        let found = routed!(self, |pool| sqlx::query(
            "SELECT property_id, doc_hash, doc_type, linked_at, tx_id FROM documents \
             WHERE property_id = ANY($1) ORDER BY property_id, linked_at, doc_hash",
        )
        .bind(ids)
        .fetch_all(pool)
        .await)?;
        found
            .iter()
            .map(|r| {
                Ok(DocumentRow {
                    property_id: r.try_get("property_id")?,
                    doc_hash: r.try_get("doc_hash")?,
                    doc_type: r.try_get("doc_type")?,
                    linked_at: r.try_get("linked_at")?,
                    tx_id: r.try_get("tx_id")?,
                })
            })
            .collect()
    }

    /// The first `first` versions of each of many properties, oldest first, in one statement.
    /// Index: property_versions primary key (property_id, block_number, tx_index, channel).
    #[tracing::instrument(name = "sql.first_versions", skip_all)]
    pub async fn first_versions(&self, ids: &[String], first: i64) -> Result<Vec<VersionRow>> {
        let _timer = self.instruments.statement();
        let (found, served) = routed!(self, |pool, served| {
            sqlx::query(
            "SELECT property_id, event, record, committed_at, channel, block_number, tx_index, tx_id \
             FROM (SELECT v.*, row_number() OVER (PARTITION BY property_id \
                       ORDER BY block_number, tx_index, channel) AS n \
                   FROM property_versions v WHERE property_id = ANY($1)) v \
             WHERE n <= $2 ORDER BY property_id, block_number, tx_index, channel",
        )
        .bind(ids)
        .bind(first)
        .fetch_all(pool)
        .await
        })?;
        found.iter().map(|r| version_row(r, served)).collect()
    }

    /// A page of one property's history after a version. Index: as [`Db::first_versions`].
    #[tracing::instrument(name = "sql.versions_after", skip_all)]
    pub async fn versions_after(
        &self,
        id: &str,
        after: (i64, i64, &str),
        limit: i64,
    ) -> Result<Vec<VersionRow>> {
        let _timer = self.instruments.statement();
        let (found, served) = routed!(self, |pool, served| {
            sqlx::query(
            "SELECT property_id, event, record, committed_at, channel, block_number, tx_index, tx_id \
             FROM property_versions WHERE property_id = $1 \
               AND (block_number, tx_index, channel) > ($2, $3, $4) \
             ORDER BY block_number, tx_index, channel LIMIT $5",
        )
        .bind(id)
        .bind(after.0)
        .bind(after.1 as i32)
        .bind(after.2)
        .bind(limit)
        .fetch_all(pool)
        .await
        })?;
        found.iter().map(|r| version_row(r, served)).collect()
    }

    /// The version of property `id` (as on chain) in force at a point, the version after
    /// it, and the replica's checkpoint of `channel` (the property's), in one statement.
    /// Index: property_versions primary key (property_id, block_number, tx_index, channel):
    /// a property's history is a key prefix, read backwards from the point.
    #[tracing::instrument(name = "sql.version_as_of", skip_all)]
    pub async fn version_as_of(&self, id: &str, channel: &str, at: AsOf) -> Result<AsOfRow> {
        let _timer = self.instruments.statement();
        let point = match at {
            AsOf::Block(_) => "block_number <= $3::bigint",
            AsOf::Time(_) => "committed_at <= $4::timestamptz",
        };
        let sql = format!(
            "SELECT c.block_number AS applied, v.property_id, v.event, v.record, \
                    v.record_hash AS stored_hash, v.committed_at, v.channel, v.block_number, \
                    v.tx_index, v.tx_id, n.channel AS next_channel, \
                    n.block_number AS next_block, n.tx_index AS next_tx_index, n.tx_id AS next_tx_id \
             FROM (SELECT 1) AS one \
             LEFT JOIN checkpoints c ON c.channel = $2 \
             LEFT JOIN LATERAL ( \
                 SELECT * FROM property_versions WHERE property_id = $1 AND {point} \
                 ORDER BY block_number DESC, tx_index DESC, channel DESC LIMIT 1) v ON true \
             LEFT JOIN LATERAL ( \
                 SELECT * FROM property_versions x WHERE x.property_id = $1 \
                   AND (x.block_number, x.tx_index, x.channel) > (v.block_number, v.tx_index, v.channel) \
                 ORDER BY x.block_number, x.tx_index, x.channel LIMIT 1) n ON true"
        );
        let (block, time) = match at {
            AsOf::Block(b) => (Some(b), None),
            AsOf::Time(t) => (None, Some(t)),
        };
        let (r, served) = routed!(self, |pool, served| sqlx::query(AssertSqlSafe(
            sql.as_str()
        ))
        .bind(id)
        .bind(channel)
        .bind(block)
        .bind(time)
        .fetch_one(pool)
        .await)?;
        let applied: Option<i64> = r.try_get("applied")?;
        let found: Option<i64> = r.try_get("block_number")?;
        if found.is_none() {
            return Ok(AsOfRow {
                applied,
                version: None,
                intact: true,
                next: None,
            });
        }
        let version = version_row(&r, served)?;
        let stored: String = r.try_get("stored_hash")?;
        let intact = record_hash(&version.record).map_err(DbError::Row)? == stored;
        let next = match r.try_get::<Option<i64>, _>("next_block")? {
            None => None,
            Some(block_number) => Some(VersionRef {
                channel: r.try_get("next_channel")?,
                block_number,
                tx_index: r.try_get::<i32, _>("next_tx_index")?.into(),
                tx_id: r.try_get("next_tx_id")?,
            }),
        };
        Ok(AsOfRow {
            applied,
            version: Some(version),
            intact,
            next,
        })
    }

    /// The number of versions of a property.
    #[tracing::instrument(name = "sql.versions_count", skip_all)]
    pub async fn versions_count(&self, id: &str) -> Result<i64> {
        let _timer = self.instruments.statement();
        Ok(routed!(self, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM property_versions WHERE property_id = $1"
        )
        .bind(id)
        .fetch_one(pool)
        .await)?)
    }

    /// One owner by reference. Index: owners primary key.
    #[tracing::instrument(name = "sql.owner", skip_all)]
    pub async fn owner(&self, owner_ref: &str) -> Result<Option<OwnerRow>> {
        let _timer = self.instruments.statement();
        let row = routed!(self, |pool| sqlx::query(
            "SELECT owner_ref, name, father_name FROM owners WHERE owner_ref = $1"
        )
        .bind(owner_ref)
        .fetch_optional(pool)
        .await)?;
        row.as_ref().map(owner_row).transpose()
    }

    /// Owners whose name starts with `prefix` (case-insensitively), keyset-paged by
    /// (lower(name), owner_ref). Index: owners_name (migration 0003).
    #[tracing::instrument(name = "sql.owners_by_name", skip_all)]
    pub async fn owners_by_name(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<(String, OwnerRow)>> {
        let _timer = self.instruments.statement();
        let pattern = format!("{}%", like_escape(&prefix.to_lowercase()));
        let found = routed!(self, |pool| {
            let mut q = QueryBuilder::<Postgres>::new(
                "SELECT lower(name) AS sort_name, owner_ref, name, father_name FROM owners \
                 WHERE lower(name) COLLATE \"C\" LIKE ",
            );
            q.push_bind(pattern.clone());
            if let Some((name, owner_ref)) = after {
                q.push(" AND (lower(name) COLLATE \"C\", owner_ref) > (")
                    .push_bind(name.to_string())
                    .push(", ")
                    .push_bind(owner_ref.to_string())
                    .push(")");
            }
            q.push(" ORDER BY lower(name) COLLATE \"C\", owner_ref LIMIT ")
                .push_bind(limit);
            let found = q.build().fetch_all(pool).await;
            found
        })?;
        found
            .iter()
            .map(|r| Ok((r.try_get("sort_name")?, owner_row(r)?)))
            .collect()
    }

    #[tracing::instrument(name = "sql.owners_by_name_count", skip_all)]
    pub async fn owners_by_name_count(&self, prefix: &str) -> Result<i64> {
        let _timer = self.instruments.statement();
        let pattern = format!("{}%", like_escape(&prefix.to_lowercase()));
        Ok(routed!(self, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM owners WHERE lower(name) COLLATE \"C\" LIKE $1",
        )
        .bind(&pattern)
        .fetch_one(pool)
        .await)?)
    }

    /// A page of an owner's properties, keyset-paged by property ID.
    /// Index: ownerships_owner (owner_ref, property_id), then properties by primary key.
    #[tracing::instrument(name = "sql.owner_properties", skip_all)]
    pub async fn owner_properties(
        &self,
        owner_ref: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PropertyRow>> {
        let _timer = self.instruments.statement();
        let sql = format!(
            "SELECT {PROPERTY_COLUMNS} FROM ownerships o JOIN properties p ON p.id = o.property_id \
             WHERE o.owner_ref = $1 AND o.property_id > $2 ORDER BY o.property_id LIMIT $3"
        );
        let (found, served) = routed!(self, |pool, served| sqlx::query(AssertSqlSafe(
            sql.as_str()
        ))
        .bind(owner_ref)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        rows(&found, served)
    }

    /// The first `limit` properties (by ID) of each of many owners, in one statement: the
    /// first page of `Owner.properties` for a page of owners. Index: ownerships_owner
    /// (owner_ref, property_id), one range per owner, then properties by primary key.
    #[tracing::instrument(name = "sql.owners_properties", skip_all)]
    pub async fn owners_properties(
        &self,
        owners: &[String],
        limit: i64,
    ) -> Result<Vec<(String, PropertyRow)>> {
        let _timer = self.instruments.statement();
        let sql = format!(
            "SELECT k.owner_ref AS for_owner, p.* \
             FROM unnest($1::text[]) AS k(owner_ref) \
             CROSS JOIN LATERAL ( \
                 SELECT {PROPERTY_COLUMNS} FROM ownerships o JOIN properties p ON p.id = o.property_id \
                 WHERE o.owner_ref = k.owner_ref ORDER BY o.property_id LIMIT $2) p \
             ORDER BY k.owner_ref, p.id"
        );
        let (found, served) = routed!(self, |pool, served| sqlx::query(AssertSqlSafe(
            sql.as_str()
        ))
        .bind(owners)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        found
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("for_owner")?,
                    property_row(r, served).map_err(DbError::Row)?,
                ))
            })
            .collect()
    }

    /// How many properties each of many owners holds now (owners holding none are left
    /// out). Index: ownerships_owner (owner_ref, ...), one range per owner.
    #[tracing::instrument(name = "sql.owners_properties_counts", skip_all)]
    pub async fn owners_properties_counts(&self, owners: &[String]) -> Result<Vec<(String, i64)>> {
        let _timer = self.instruments.statement();
        let found = routed!(self, |pool| {
            sqlx::query(
            "SELECT owner_ref, count(*) FROM ownerships WHERE owner_ref = ANY($1) GROUP BY owner_ref",
        )
        .bind(owners)
        .fetch_all(pool)
        .await
        })?;
        found
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The children of a location level with their counts, largest first.
    /// Index: location_counts primary key (prefix).
    #[tracing::instrument(name = "sql.locations", skip_all)]
    pub async fn locations(
        &self,
        state: Option<&str>,
        district: Option<&str>,
        mandal: Option<&str>,
    ) -> Result<Vec<LocationRow>> {
        let _timer = self.instruments.statement();
        let (sql, level) = match (state, district, mandal) {
            (None, _, _) => (
                "SELECT state AS name, properties FROM location_counts \
                 WHERE state <> '' AND district = '' AND mandal = '' AND village = ''",
                "state",
            ),
            (Some(_), None, _) => (
                "SELECT district AS name, properties FROM location_counts \
                 WHERE state = $1 AND district <> '' AND mandal = '' AND village = ''",
                "district",
            ),
            (Some(_), Some(_), None) => (
                "SELECT mandal AS name, properties FROM location_counts \
                 WHERE state = $1 AND district = $2 AND mandal <> '' AND village = ''",
                "mandal",
            ),
            (Some(_), Some(_), Some(_)) => (
                "SELECT village AS name, properties FROM location_counts \
                 WHERE state = $1 AND district = $2 AND mandal = $3 AND village <> ''",
                "village",
            ),
        };
        let sql = format!("{sql} ORDER BY properties DESC, name");
        let found = routed!(self, |pool| {
            let mut q = sqlx::query(AssertSqlSafe(sql.as_str()));
            for v in [state, district, mandal].into_iter().flatten() {
                q = q.bind(v);
            }
            q.fetch_all(pool).await
        })?;
        found
            .iter()
            .map(|r| {
                Ok(LocationRow {
                    name: r.try_get("name")?,
                    level,
                    properties: r.try_get("properties")?,
                })
            })
            .collect()
    }

    /// Every channel's checkpoint.
    #[tracing::instrument(name = "sql.checkpoints", skip_all)]
    pub async fn checkpoints(&self) -> Result<Vec<(String, i64, DateTime<Utc>)>> {
        let found = routed!(self.background(), |pool| sqlx::query(
            "SELECT channel, block_number, updated_at FROM checkpoints"
        )
        .fetch_all(pool)
        .await)?;
        found
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Change-log rows after `seq`, in order. Index: change_log primary key.
    #[tracing::instrument(name = "sql.changes_after", skip_all)]
    pub async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<ChangeRow>> {
        let found = routed!(self.background(), |pool| sqlx::query(
            "SELECT seq, property_id, event, channel, block_number, tx_id FROM change_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        found
            .iter()
            .map(|r| {
                Ok(ChangeRow {
                    seq: r.try_get(0)?,
                    property_id: r.try_get(1)?,
                    event: r.try_get(2)?,
                    channel: r.try_get(3)?,
                    block_number: r.try_get(4)?,
                    tx_id: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// The newest change-log seq (0 when empty).
    #[tracing::instrument(name = "sql.last_seq", skip_all)]
    pub async fn last_seq(&self) -> Result<i64> {
        Ok(routed!(self.background(), |pool| sqlx::query_scalar(
            "SELECT coalesce(max(seq), 0)::bigint FROM change_log"
        )
        .fetch_one(pool)
        .await)?)
    }

    #[tracing::instrument(name = "sql.has_indexing_errors", skip_all)]
    pub async fn has_indexing_errors(&self) -> Result<bool> {
        Ok(routed!(self.background(), |pool| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM indexing_errors)"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// A page of the sync worker's `indexing_errors`, newest first, below `before` (an id);
    /// by primary key (the table is small and has no other index).
    #[tracing::instrument(name = "sql.sync_errors", skip_all)]
    pub async fn sync_errors(&self, before: Option<i64>, limit: i64) -> Result<Vec<SyncError>> {
        let _timer = self.instruments.statement();
        let rows = routed!(self, |pool| {
            sqlx::query(
            "SELECT id, channel, block_number, tx_index::bigint, tx_id, error, raw, created_at \
             FROM indexing_errors WHERE ($1::bigint IS NULL OR id < $1) \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
        })?;
        rows.iter()
            .map(|r| {
                Ok(SyncError {
                    id: r.try_get(0)?,
                    channel: r.try_get(1)?,
                    block_number: r.try_get(2)?,
                    tx_index: r.try_get(3)?,
                    tx_id: r.try_get(4)?,
                    error: r.try_get(5)?,
                    raw: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// The orderer key the sync worker pinned, if any (migration 0002).
    #[tracing::instrument(name = "sql.pinned_orderer_key", skip_all)]
    pub async fn pinned_orderer_key(&self) -> Result<Option<String>> {
        let _timer = self.instruments.statement();
        Ok(routed!(self, |pool| sqlx::query_scalar(
            "SELECT orderer_key FROM sync_trust"
        )
        .fetch_optional(pool)
        .await)?)
    }

    /// The denormalised columns and ownerships of a property, for verification.
    #[tracing::instrument(name = "sql.columns", skip_all)]
    pub async fn columns(&self, id: &str) -> Result<Option<ColumnsRow>> {
        let _timer = self.instruments.statement();
        let Some(r) = routed!(self, |pool| sqlx::query(
            "SELECT state, year::text, coalesce(shard::text, ''), sequence::text, district, \
                    mandal, village, survey_no, coalesce(khata_no, ''), area_sq_m::text, \
                    area_text, land_type, market_value::text, verification_status, \
                    ((extract(epoch from created_at) * 1000)::bigint)::text, \
                    ((extract(epoch from updated_at) * 1000)::bigint)::text \
             FROM properties WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?
        else {
            return Ok(None);
        };
        const NAMES: [&str; 16] = [
            "state",
            "year",
            "shard",
            "sequence",
            "district",
            "mandal",
            "village",
            "survey_no",
            "khata_no",
            "area_sq_m",
            "area_text",
            "land_type",
            "market_value",
            "verification_status",
            "created_at",
            "updated_at",
        ];
        let mut columns = Vec::with_capacity(NAMES.len());
        for (i, name) in NAMES.iter().enumerate() {
            columns.push((*name, r.try_get::<String, _>(i)?));
        }
        let owners = routed!(self, |pool| {
            sqlx::query(
            "SELECT owner_ref, share_pct FROM ownerships WHERE property_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        })?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(ColumnsRow { columns, owners }))
    }

    /// Whether the database answers.
    #[tracing::instrument(name = "sql.ping", skip_all)]
    pub async fn ping(&self) -> Result<()> {
        routed!(self.background(), |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await)?;
        Ok(())
    }
}

fn version_row(r: &PgRow, served: Served) -> Result<VersionRow> {
    let record: sqlx::types::Json<Value> = r.try_get("record")?;
    Ok(VersionRow {
        served,
        property_id: r.try_get("property_id")?,
        event: r.try_get("event")?,
        record: record.0,
        committed_at: r.try_get("committed_at")?,
        version: VersionRef {
            channel: r.try_get("channel")?,
            block_number: r.try_get("block_number")?,
            tx_index: r.try_get::<i32, _>("tx_index")?.into(),
            tx_id: r.try_get("tx_id")?,
        },
    })
}

fn owner_row(r: &PgRow) -> Result<OwnerRow> {
    Ok(OwnerRow {
        owner_ref: r.try_get("owner_ref")?,
        name: r.try_get("name")?,
        father_name: r.try_get("father_name")?,
    })
}

/// Escapes LIKE's wildcards so a name is matched literally.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `properties` filter. What serves each, measured with EXPLAIN ANALYZE at 100 000
/// records (page of 20 in ID order; `totalCount`):
/// - state / district / mandal / village, and surveyNo with them: properties_location
///   (a village's survey number: 0.2 ms). surveyNo alone: an index-only scan of all of
///   properties_location (14–24 ms) — survey numbers repeat in every village, and finding
///   one by text is the search index's job.
/// - year (with or without state), and shard with state + year: properties_id_order.
/// - createdAfter / createdBefore: properties_created for the count (under 1 ms); the page
///   in ID order usually walks properties_id_order, up to 100 ms for a narrow recent range,
///   which CREATED_AT_* orders serve by properties_created instead.
/// - landType, verificationStatus, shard alone: few distinct values, so the page finds its
///   rows early in properties_id_order (under 10 ms) while a count reads every row (65–190
///   ms); an index on a column with 7 values would not spare that scan, so none is added.
/// - khataNo: only with state and district (the resolver refuses it alone; alone it was a
///   scan, 164 ms for the count), then properties_location (4 ms).
fn push_filter(q: &mut QueryBuilder<Postgres>, f: &PropertyFilter) {
    let mut eq = |column: &str, v: &Option<String>| {
        if let Some(v) = v {
            q.push(format!(" AND p.{column} = ")).push_bind(v.clone());
        }
    };
    eq("state", &f.state.as_ref().map(|s| s.trim().to_uppercase()));
    eq("district", &f.district);
    eq("mandal", &f.mandal);
    eq("village", &f.village);
    eq("survey_no", &f.survey_no);
    eq("khata_no", &f.khata_no);
    eq("land_type", &f.land_type);
    eq(
        "verification_status",
        &f.verification_status.map(|s| s.as_db().to_string()),
    );
    if let Some(owner) = &f.owner_id {
        q.push(" AND p.id IN (SELECT property_id FROM ownerships WHERE owner_ref = ")
            .push_bind(owner.to_string())
            .push(")");
    }
    if let Some(year) = f.year {
        q.push(" AND p.year = ").push_bind(year);
    }
    if let Some(shard) = f.shard {
        // Written as properties_id_order's third column, so that state + year + shard is
        // one index range (measured at 100 000 records: the count 27 ms → 3.5 ms, the page
        // 4.1 → 0.3 ms); the resolver accepts shards 0–99 only, so -1 never matches a
        // legacy ID here.
        q.push(" AND coalesce(p.shard, -1) = ").push_bind(shard);
    }
    if let Some(t) = f.created_after {
        q.push(" AND p.created_at > ").push_bind(t);
    }
    if let Some(t) = f.created_before {
        q.push(" AND p.created_at < ").push_bind(t);
    }
}

fn order_sql(order: PropertyOrder) -> &'static str {
    match order {
        PropertyOrder::IdAsc => "p.state, p.year, coalesce(p.shard, -1), p.sequence, p.id",
        PropertyOrder::CreatedAtAsc => "p.created_at, p.id",
        PropertyOrder::CreatedAtDesc => "p.created_at DESC, p.id DESC",
        PropertyOrder::UpdatedAtDesc => "p.updated_at DESC, p.id DESC",
        PropertyOrder::MarketValueDesc => "p.market_value DESC, p.id DESC",
        PropertyOrder::AreaDesc => "p.area_sq_m DESC, p.id DESC",
    }
}

fn push_keyset(q: &mut QueryBuilder<Postgres>, order: PropertyOrder, key: &Key) {
    fn micros(us: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(us).unwrap_or_default()
    }
    match key {
        Key::Id {
            state,
            year,
            shard,
            sequence,
            id,
        } => {
            q.push("(p.state, p.year, coalesce(p.shard, -1), p.sequence, p.id) > (")
                .push_bind(state.clone())
                .push(", ")
                .push_bind(*year)
                .push(", ")
                .push_bind(*shard)
                .push(", ")
                .push_bind(*sequence)
                .push(", ")
                .push_bind(id.clone())
                .push(")");
        }
        Key::Value { value, id } => {
            let (column, op) = match order {
                PropertyOrder::CreatedAtAsc => ("p.created_at", ">"),
                PropertyOrder::CreatedAtDesc => ("p.created_at", "<"),
                PropertyOrder::UpdatedAtDesc => ("p.updated_at", "<"),
                PropertyOrder::MarketValueDesc => ("p.market_value", "<"),
                PropertyOrder::AreaDesc => ("p.area_sq_m", "<"),
                // Cursors are checked against the order before they get here.
                PropertyOrder::IdAsc => ("p.sequence", ">"),
            };
            q.push(format!("({column}, p.id) {op} ("));
            match order {
                PropertyOrder::CreatedAtAsc
                | PropertyOrder::CreatedAtDesc
                | PropertyOrder::UpdatedAtDesc => q.push_bind(micros(*value)),
                _ => q.push_bind(*value),
            };
            q.push(", ").push_bind(id.clone()).push(")");
        }
    }
}
