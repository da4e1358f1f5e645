use std::collections::BTreeSet;

use super::*;
use crate::PrivatePostgres;

async fn migrated() -> (PrivatePostgres, PgPool) {
    let pg = PrivatePostgres::temporary().await.unwrap();
    let pool = connect(&pg.database_url()).await.unwrap();
    migrate(&pool).await.unwrap();
    (pg, pool)
}

async fn names(pool: &PgPool, sql: &'static str) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn migrate_creates_the_read_model_and_is_idempotent() {
    let (_pg, pool) = migrated().await;
    migrate(&pool).await.unwrap(); // again: nothing to do
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, MIGRATOR.iter().count() as i64);

    let tables = names(
        &pool,
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .await;
    let expected: BTreeSet<String> = [
        "change_log",
        "checkpoints",
        "documents",
        "indexing_errors",
        "location_counts",
        "owners",
        "ownerships",
        "properties",
        "property_versions",
        "sync_dropped_indexes",
        "sync_trust",
    ]
    .map(String::from)
    .into();
    assert_eq!(tables, expected);

    // Every index costs the ingest (targets.md): adding one must be a deliberate change here
    // and in the migration's comments.
    let indexes = names(
        &pool,
        "SELECT indexname::text FROM pg_indexes \
         WHERE schemaname = 'public' AND indexname NOT LIKE '\\_sqlx%'",
    )
    .await;
    let expected: BTreeSet<String> = [
        "change_log_pkey",
        "checkpoints_pkey",
        "documents_pkey",
        "indexing_errors_pkey",
        "location_counts_pkey",
        "owners_name",
        "owners_pkey",
        "ownerships_owner",
        "ownerships_pkey",
        "properties_area",
        "properties_created",
        "properties_id_order",
        "properties_location",
        "properties_market_value",
        "properties_pending",
        "properties_pkey",
        "properties_updated",
        "property_versions_pkey",
        "sync_dropped_indexes_pkey",
        "sync_trust_pkey",
    ]
    .map(String::from)
    .into();
    assert_eq!(indexes, expected);
}

#[tokio::test]
async fn ms_to_timestamptz_is_exact() {
    let (_pg, pool) = migrated().await;
    for ms in [
        0_i64,
        1,
        999,
        1_767_225_600_000,
        1_767_225_600_123,
        4_102_444_799_999,
    ] {
        let back: i64 =
            sqlx::query_scalar("SELECT (extract(epoch FROM ms_to_timestamptz($1)) * 1000)::bigint")
                .bind(ms)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(back, ms);
    }
    let text: String =
        sqlx::query_scalar("SELECT to_char(ms_to_timestamptz(1767225600123) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(text, "2026-01-01 00:00:00.123000");
}

/// (state, district, mandal, village, properties), sorted.
async fn counts(pool: &PgPool) -> Vec<(String, String, String, String, i64)> {
    sqlx::query_as(
        "SELECT state, district, mandal, village, properties FROM location_counts \
         ORDER BY state, district, mandal, village",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn row(s: &str, d: &str, m: &str, v: &str, n: i64) -> (String, String, String, String, i64) {
    (s.into(), d.into(), m.into(), v.into(), n)
}

/// The sync worker's kind of write: a bulk upsert from arrays, newer versions win.
const UPSERT: &str = "
    INSERT INTO properties (id, state, year, shard, sequence, district, mandal, village,
        survey_no, area_sq_m, area_text, land_type, market_value, verification_status,
        created_at, updated_at, record, record_hash, channel, block_number, tx_index, tx_id)
    SELECT id, 'TS', 2026, 3, seq, 'Rangareddy', 'Saroornagar', village, '1/A', 200,
        '240 sq.yds', 'Residential', 4500000, 'pending', ms_to_timestamptz(1767225600000),
        ms_to_timestamptz(1767225600000), '{}'::jsonb, 'h', 'land-registry-primary', block,
        0, 'tx'
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS u(id, seq, village, block)
    ON CONFLICT (id) DO UPDATE SET village = excluded.village,
        block_number = excluded.block_number
    WHERE properties.block_number < excluded.block_number";

async fn upsert(pool: &PgPool, rows: &[(&str, i64, &str, i64)]) {
    let ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let villages: Vec<&str> = rows.iter().map(|r| r.2).collect();
    let blocks: Vec<i64> = rows.iter().map(|r| r.3).collect();
    sqlx::query(UPSERT)
        .bind(ids)
        .bind(seqs)
        .bind(villages)
        .bind(blocks)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn location_counts_follow_inserts_corrections_deletes_and_truncate() {
    let (_pg, pool) = migrated().await;
    upsert(
        &pool,
        &[
            ("P1", 1, "Balapur", 1),
            ("P2", 2, "Balapur", 1),
            ("P3", 3, "Balapr", 1),
        ],
    )
    .await;
    let (s, d, m) = ("TS", "Rangareddy", "Saroornagar");
    assert_eq!(
        counts(&pool).await,
        vec![
            row("", "", "", "", 3),
            row(s, "", "", "", 3),
            row(s, d, "", "", 3),
            row(s, d, m, "", 3),
            row(s, d, m, "Balapr", 1),
            row(s, d, m, "Balapur", 2),
        ]
    );

    // Replaying the same block is a no-op; a correction moves P3 out of the misspelt village
    // (its zero row goes) in the same statement that inserts P4.
    upsert(&pool, &[("P1", 1, "Balapur", 1)]).await;
    upsert(&pool, &[("P3", 3, "Balapur", 2), ("P4", 4, "Balapur", 2)]).await;
    assert_eq!(
        counts(&pool).await,
        vec![
            row("", "", "", "", 4),
            row(s, "", "", "", 4),
            row(s, d, "", "", 4),
            row(s, d, m, "", 4),
            row(s, d, m, "Balapur", 4),
        ]
    );

    sqlx::query("DELETE FROM properties WHERE id IN ('P1', 'P2')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(counts(&pool).await[0], row("", "", "", "", 2));
    assert_eq!(counts(&pool).await.len(), 5);

    sqlx::query("TRUNCATE properties")
        .execute(&pool)
        .await
        .unwrap();
    assert!(counts(&pool).await.is_empty());
}

#[tokio::test]
async fn replicas_connect_in_order_and_errors_name_the_url() {
    let (pg, _pool) = migrated().await;
    let url = pg.database_url();
    let pools = connect_replicas(&[url.clone(), url]).await.unwrap();
    assert_eq!(pools.len(), 2);

    let err = connect("not a url").await.unwrap_err();
    assert!(matches!(err, DbError::InvalidUrl { .. }), "{err:?}");

    let gone = "postgres://app:hunter2@localhost/landql?host=/nonexistent-landql-socket";
    let err = connect_with(gone, pool_options().acquire_timeout(Duration::from_secs(1)))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("app:***@localhost"), "{message}");
}

#[test]
fn redact_masks_only_the_password() {
    assert_eq!(
        redact("postgres://u:p@h:5/db?x=1"),
        "postgres://u:***@h:5/db?x=1"
    );
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        redact("postgres://h/db?sslmode=disable&password=x"),
        "postgres://h/db?sslmode=disable&password=***"
    );
    assert_eq!(redact("garbage"), "garbage");
}

#[tokio::test]
async fn a_pool_replaces_connections_that_died_with_a_restarted_server() {
    let (mut pg, pool) = migrated().await;
    // Hold several connections at once so the pool keeps more than one idle.
    let held: Vec<_> = acquire_many(&pool, 4).await;
    drop(held);
    pg.restart().await.unwrap();
    // Every idle connection was cut by the restart, which took longer than the idle time
    // after which a connection is pinged before use; none of these queries may see a dead one.
    tokio::time::sleep(PING_WHEN_IDLE_FOR + Duration::from_millis(100)).await;
    for _ in 0..8 {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}

async fn acquire_many(pool: &PgPool, n: usize) -> Vec<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(pool.acquire().await.unwrap());
    }
    held
}
