//! The index follower against a real PostgreSQL: catches up, applies notified changes
//! within the commit interval, deletes, resumes from its commit payload after a stop, and
//! rebuilds a missing index from `properties`; reads another database's change log while
//! its own is down, and goes home again.

mod fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::model::Record;
use migrations::sqlx;
use migrations::{PgPool, PrivatePostgres};
use search_index::follower::{follow, FollowOptions};
use search_index::{SearchIndex, SearchRequest};

async fn put(pool: &PgPool, seq: i64, r: &Record) {
    let id = r.property_id.to_string();
    sqlx::query(
        "INSERT INTO properties (id, state, year, shard, sequence, district, mandal, village, \
         survey_no, khata_no, area_sq_m, area_text, land_type, market_value, verification_status, \
         created_at, updated_at, record, record_hash, channel, block_number, tx_index, tx_id) \
         VALUES ($1, $2, 2026, $3, $4, $5, $6, $7, $8, $9, 1, 'x', $10, 1, $11, now(), now(), \
         $12::jsonb, 'h', 'primary', $13, 0, 't') \
         ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
    )
    .bind(&id)
    .bind(&r.state)
    .bind(r.property_id.shard().map(i32::from))
    .bind(r.property_id.sequence() as i64)
    .bind(&r.district)
    .bind(&r.mandal)
    .bind(&r.village)
    .bind(&r.survey_no)
    .bind(&r.khata_no)
    .bind(&r.land_type)
    .bind(r.verification_status.as_str())
    .bind(serde_json::to_string(r).unwrap())
    .bind(seq)
    .execute(pool)
    .await
    .unwrap();
    change(pool, seq, &id).await;
}

async fn change(pool: &PgPool, seq: i64, id: &str) {
    sqlx::query(
        "INSERT INTO change_log (seq, property_id, event, channel, block_number, tx_index, tx_id) \
         VALUES ($1, $2, 'PropertyCreated', 'primary', $1, 0, 't')",
    )
    .bind(seq)
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('landql_changes', $1)")
        .bind(seq.to_string())
        .execute(pool)
        .await
        .unwrap();
}

async fn until(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

fn hits(idx: &SearchIndex, text: &str) -> usize {
    idx.search(&SearchRequest {
        text: text.into(),
        first: 10,
        ..Default::default()
    })
    .unwrap()
    .hits
    .iter()
    .filter(|h| h.matched_words >= 2)
    .count()
}

type Running = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

fn start(idx: &Arc<SearchIndex>, pool: &PgPool) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = FollowOptions {
        commit_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let h = tokio::spawn(follow(Arc::clone(idx), pool.clone(), opts, async {
        let _ = rx.await;
    }));
    let h = tokio::spawn(async move { h.await.unwrap().unwrap() });
    (tx, h)
}

async fn stop(r: Running) {
    let _ = r.0.send(());
    r.1.await.unwrap();
}

/// A migrated private PostgreSQL holding the first three hand-written records (seqs 1–3),
/// and all of them.
async fn three_records() -> (PrivatePostgres, PgPool, Vec<Record>) {
    let pg = PrivatePostgres::temporary()
        .await
        .expect("private postgres");
    let pool = migrations::connect(&pg.database_url()).await.unwrap();
    migrations::migrate(&pool).await.unwrap();
    let hand: Vec<Record> = fixture::hand().into_iter().map(|(_, r)| r).collect();
    for (i, r) in hand[..3].iter().enumerate() {
        put(&pool, i as i64 + 1, r).await;
    }
    (pg, pool, hand)
}

/// A busy change log (a NOTIFY every 50 ms, as a sync worker under load sends one per
/// batch) is committed once per interval, not once per wake-up: a commit is a segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_change_log_is_committed_once_per_interval() {
    let (_pg, pool, hand) = three_records().await;
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(SearchIndex::open_or_create(dir.path()).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let interval = Duration::from_millis(1000);
    let opts = FollowOptions {
        commit_interval: interval,
        ..Default::default()
    };
    let h = tokio::spawn(follow(Arc::clone(&idx), pool.clone(), opts, async {
        let _ = rx.await;
    }));
    until("initial catch-up", || idx.activity().seq == Some(3)).await;

    let last = 3 + 40;
    let writer = {
        let pool = pool.clone();
        let r = hand[0].clone();
        tokio::spawn(async move {
            for seq in 4..=last {
                put(&pool, seq, &r).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Instant::now()
        })
    };
    let mut commits = std::collections::BTreeSet::new();
    let started = Instant::now();
    while idx.activity().seq != Some(last) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never caught up"
        );
        if let Some(seq) = idx.activity().seq.filter(|s| *s > 3) {
            commits.insert(seq);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let searchable_after = writer.await.unwrap().elapsed();
    commits.insert(last);
    // About 2.2 s of changes at one commit a second: 3 commits, 4 with timing slack; a
    // commit per wake-up would have made about 40.
    assert!(
        commits.len() <= 4,
        "{} commits for 40 changes over ~2 s: {commits:?}",
        commits.len()
    );
    // And the last change still became searchable within the interval (+ slack).
    assert!(
        searchable_after < interval + Duration::from_millis(500),
        "the last change took {searchable_after:?}"
    );
    let _ = tx.send(());
    h.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_resumes_and_rebuilds() {
    let (_pg, pool, hand) = three_records().await;
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(SearchIndex::open_or_create(dir.path()).unwrap());
    let run = start(&idx, &pool);
    until("initial catch-up", || idx.num_docs() == 3).await;

    // A correction arrives with a NOTIFY: searchable within the commit interval (+ slack).
    let mut r = hand[0].clone();
    r.owners[0].name = "Yarlagadda Padmavathi".into();
    put(&pool, 4, &r).await;
    let took = until("the correction", || {
        hits(&idx, "yarlagadda padmavathi") == 1
    })
    .await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(idx.num_docs(), 3);

    // The property leaves the read model: its document goes too.
    sqlx::query("DELETE FROM properties WHERE id = $1")
        .bind(hand[1].property_id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    change(&pool, 5, &hand[1].property_id.to_string()).await;
    until("the delete", || idx.num_docs() == 2).await;
    stop(run).await;
    assert_eq!(idx.last_seq().unwrap(), Some(5));
    drop(idx);

    // Resume after a stop from the payload: only the new change is applied.
    put(&pool, 6, &hand[3]).await;
    let idx = Arc::new(SearchIndex::open_or_create(dir.path()).unwrap());
    assert_eq!(idx.last_seq().unwrap(), Some(5));
    let run = start(&idx, &pool);
    until("resume", || idx.num_docs() == 3).await;
    stop(run).await;
    assert_eq!(idx.last_seq().unwrap(), Some(6));

    // A missing index is rebuilt from `properties`.
    let fresh = tempfile::tempdir().unwrap();
    let idx2 = Arc::new(SearchIndex::open_or_create(fresh.path()).unwrap());
    let run = start(&idx2, &pool);
    until("rebuild", || idx2.num_docs() == 3).await;
    stop(run).await;
    assert_eq!(idx2.last_seq().unwrap(), Some(6));
    assert_eq!(hits(&idx2, "yarlagadda padmavathi"), 1);
}

/// A rebuild says so until it has ended, merge included: readiness keeps such a node out
/// of traffic while its searches see a partial index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_is_reported_until_it_ends() {
    let (_pg, pool, _) = three_records().await;
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(SearchIndex::open_or_create(dir.path()).unwrap());
    assert!(!idx.is_rebuilding());

    // Hold the rebuild at its read of `properties`.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let rebuild = tokio::spawn({
        let (idx, pool) = (Arc::clone(&idx), pool.clone());
        async move { search_index::follower::rebuild(&idx, &pool).await }
    });
    until("the rebuild to start", || idx.is_rebuilding()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(idx.is_rebuilding());
    assert_eq!(idx.num_docs(), 0);

    lock.commit().await.unwrap();
    let seq = rebuild.await.unwrap().unwrap();
    assert_eq!(seq, 3);
    assert!(!idx.is_rebuilding());
    assert_eq!(idx.num_docs(), 3);
}

/// A follower of a hot standby whose standby is SIGKILLed reads the primary's change log
/// (the same seqs) and misses nothing; once the standby answers again it goes home — seen
/// by pausing the standby's replay: a change on the primary then stays out of the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_replica_dies_reads_the_next_database_and_comes_home() {
    let (pg, primary, hand) = three_records().await;
    let mut replica = pg.temporary_replica().await.expect("a hot standby");
    let within = Duration::from_millis(300);
    let replica_pool = migrations::connect_lazy_within(&replica.database_url(), within).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(SearchIndex::open_or_create(dir.path()).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = FollowOptions {
        commit_interval: Duration::from_millis(200),
        wake: Some(primary.clone()),
        fallbacks: vec![primary.clone()],
        ..Default::default()
    };
    let h = tokio::spawn(follow(
        Arc::clone(&idx),
        replica_pool.clone(),
        opts,
        async {
            let _ = rx.await;
        },
    ));
    until("catch-up from the standby", || idx.num_docs() == 3).await;

    replica.kill().await.expect("SIGKILL the standby");
    put(&primary, 4, &hand[3]).await;
    until("a change read from the primary", || idx.num_docs() == 4).await;

    replica.restart().await.expect("restart the standby");
    put(&primary, 5, &hand[4]).await;
    until("the next change", || idx.num_docs() == 5).await;
    // Back home after HOME_RETRY (twice: a connection that died with the standby may cost
    // one more round on the primary): a change the standby has not replayed stays out.
    tokio::time::sleep(2 * search_index::follower::HOME_RETRY + Duration::from_secs(1)).await;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica_pool)
        .await
        .expect("pause replay");
    put(&primary, 6, &hand[5]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        idx.num_docs(),
        5,
        "the follower read past its paused standby"
    );
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica_pool)
        .await
        .expect("resume replay");
    until("the change once replayed", || idx.num_docs() == 6).await;
    let _ = tx.send(());
    h.await.unwrap().unwrap();
    assert_eq!(idx.last_seq().unwrap(), Some(6));
}
