//! `landql bench search`: citizen search at 1 M records — tantivy in-process against
//! PostgreSQL `tsvector` full-text search and `pg_trgm` similarity on the same data, the
//! same queries and in the same run (design/targets.md, "search" and "index follower").
//!
//! One run:
//! 1. a private PostgreSQL with a devnet ledger seeded with `--records` records, synced by
//!    the sync worker (both in-process, stopped once synced), vacuumed and analysed — or,
//!    with `--work-dir DIR --reuse`, the database a previous run left in `DIR`;
//! 2. the tantivy index rebuilt from PostgreSQL by the follower's own `rebuild` into a new
//!    directory: rate (docs/s), size on disk, this process's RssAnon and RssFile;
//! 3. the baselines' own table (`bench_search_docs`: each record's owner and father names,
//!    places and survey number as one text) with a GIN index on its `to_tsvector('simple',
//!    …)` and a GIN `gin_trgm_ops` index (extension `pg_trgm`), created here, not by the
//!    project's migrations;
//! 4. query sets made from the data, each query with the records it must find: names
//!    (spelling variants, other-script transliterations, typos — the ways the golden set
//!    varies them), place + name (owner name and village), survey number within a village
//!    (written "123/A", "123-a" or "123 A"), and search-as-you-type prefixes;
//! 5. recall@10 of every engine on every query (one pass, not timed), then each engine and
//!    kind at `--rate` queries per second, open loop (`bench::load::http`: latency from each
//!    query's due time).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use devnet::generate::{NameKey, NamePart};
use migrations::sqlx;
use search_index::{SearchIndex, SearchRequest};

use crate::backend::{settle, Private};
use crate::load::http::{self as loadgen, Report};
use crate::machine::{load_average, machine, postgres_version, set_mode};
use crate::proc::Proc;
use crate::random::pick;

#[derive(clap::Args)]
pub struct SearchBenchArgs {
    /// Records to seed into the private ledger.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Where the ledger, database and index go (default: a new temporary directory, removed
    /// at the end). A given directory is kept, for `--reuse`.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Reuse the seeded and synced database a previous run left in --work-dir.
    #[arg(long, requires = "work_dir")]
    reuse: bool,
    /// Queries per second of every (engine, kind) phase, open loop.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Queries made per kind.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Queries in flight at most (open loop); the wait for a slot counts in the latency.
    #[arg(long, default_value_t = 64)]
    max_in_flight: usize,
    /// PostgreSQL statement timeout of the baseline queries, in ms (a timed-out query is
    /// an error and counts as a miss).
    #[arg(long, default_value_t = 5000)]
    pg_timeout_ms: u64,
    /// Engines to run. With fewer than all, the table is printed and the output file left
    /// alone: its figures stand beside their baselines measured in the same run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Engine::ALL)]
    engines: Vec<Engine>,
    /// Print up to N queries per kind that tantivy missed: what was typed, the names of
    /// the records expected, and the first hits' names (to see why recall is what it is).
    #[arg(long, default_value_t = 0)]
    show_misses: usize,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// The engines compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
enum Engine {
    Tantivy,
    Tsvector,
    Trigram,
}

impl Engine {
    const ALL: [Engine; 3] = [Engine::Tantivy, Engine::Tsvector, Engine::Trigram];
    fn label(self) -> &'static str {
        match self {
            Engine::Tantivy => "tantivy (in-process)",
            Engine::Tsvector => "PostgreSQL tsvector",
            Engine::Trigram => "PostgreSQL pg_trgm",
        }
    }
}

/// The query kinds of targets.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Name,
    PlaceName,
    Survey,
    Prefix,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Name, Kind::PlaceName, Kind::Survey, Kind::Prefix];
    fn label(self) -> &'static str {
        match self {
            Kind::Name => "name",
            Kind::PlaceName => "place + name",
            Kind::Survey => "survey number in a village",
            Kind::Prefix => "prefix (as you type)",
        }
    }
}

/// One query and the records it must find (any of them in the top 10 counts).
#[derive(Debug, Clone)]
struct Query {
    text: String,
    expect: Vec<String>,
}

/// The baselines' table and indexes: one text per record, as a citizen search would see it.
const SETUP_SQL: &[&str] = &[
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "DROP TABLE IF EXISTS bench_search_docs",
    "CREATE UNLOGGED TABLE bench_search_docs (
        id text PRIMARY KEY,
        body text NOT NULL,
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
    )",
    "INSERT INTO bench_search_docs (id, body)
     SELECT p.id,
            concat_ws(' ',
                (SELECT string_agg(concat_ws(' ', o->>'name', o->>'father_name'), ' ')
                   FROM jsonb_array_elements(p.record->'owners') o),
                p.district, p.mandal, p.village, p.survey_no)
       FROM properties p",
];
const TSV_INDEX_SQL: &str = "CREATE INDEX bench_search_tsv ON bench_search_docs USING gin (tsv)";
const TRGM_INDEX_SQL: &str =
    "CREATE INDEX bench_search_trgm ON bench_search_docs USING gin (body gin_trgm_ops)";

/// Full-text search as PostgreSQL offers it: every word must match (AND), ranked.
const TSV_SQL: &str = "SELECT id FROM bench_search_docs, to_tsquery('simple', $1) q \
    WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT 10";
/// Trigram search of a query inside a longer text: `<%` (word_similarity ≥ 0.6) with the
/// GIN index, best first. (`%`, plain similarity, compares the query with the whole text
/// and finds almost nothing when the text holds several names and places.)
const TRGM_SQL: &str = "SELECT id FROM bench_search_docs WHERE $1 <% body \
    ORDER BY word_similarity($1, body) DESC LIMIT 10";

/// The words of a text as a `to_tsquery` expression: quoted lexemes joined by `&`, the
/// last one a prefix when `prefix`. Quotes and backslashes are dropped.
fn tsquery(text: &str, prefix: bool) -> String {
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || search_index::analysis::translit::is_indic(c)))
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{}'", w.to_lowercase()))
        .collect();
    let mut q = words.join(" & ");
    if prefix && !q.is_empty() {
        q.push_str(":*");
    }
    q
}

/// Spelling variants of the kinds the golden set uses: (written, variant).
const VARIANTS: &[(&str, &str)] = &[
    ("lakshmi", "laxmi"),
    ("laxmi", "lakshmi"),
    ("sreenivas", "srinivas"),
    ("srinivas", "sreenivas"),
    ("shrinivas", "srinivas"),
    ("reddy", "reddi"),
    ("chowdary", "chaudhari"),
    ("choudary", "chowdary"),
    ("venkateswara", "venkateshwara"),
    ("venkata", "venkat"),
    ("naidu", "nayudu"),
    ("mohammed", "mohamed"),
    ("murthy", "murthi"),
    ("sree", "sri"),
    ("ee", "i"),
    ("th", "t"),
    ("oo", "u"),
    ("sh", "s"),
];

/// How a citizen might type a name: as written (lower case), a spelling variant, the
/// Latin transliteration of a name in Telugu, Kannada or Devanagari, or with one letter
/// dropped from its longest word (not the first letter).
fn vary(name: &str, n: usize) -> String {
    let lower = name.to_lowercase();
    if name.chars().any(search_index::analysis::translit::is_indic) {
        return if n.is_multiple_of(2) {
            name.to_string()
        } else {
            search_index::analysis::words(name)
                .iter()
                .map(|w| w.fold.clone())
                .collect::<Vec<_>>()
                .join(" ")
        };
    }
    match n % 3 {
        0 => lower,
        1 => VARIANTS
            .iter()
            .find(|(from, _)| lower.contains(from))
            .map(|(from, to)| lower.replacen(from, to, 1))
            .unwrap_or(lower),
        _ => {
            let mut words: Vec<String> = lower.split_whitespace().map(str::to_string).collect();
            if let Some(w) = words.iter_mut().max_by_key(|w| w.chars().count()) {
                let chars: Vec<char> = w.chars().collect();
                if chars.len() >= 6 {
                    let cut = chars.len() / 2;
                    *w = chars
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != cut)
                        .map(|(_, c)| *c)
                        .collect();
                }
            }
            words.join(" ")
        }
    }
}

/// "123/A" written as a citizen might: "123/A", "123-a" or "123 A".
fn vary_survey(s: &str, n: usize) -> String {
    match n % 3 {
        0 => s.to_string(),
        1 => s.replace('/', "-").to_lowercase(),
        _ => s.replace(['/', '-'], " "),
    }
}

/// Names that at most 10 records carry, counted as a person reads them: every spelling,
/// script and order of one name is the same name (`DemoData::name_key`, from the
/// generator's own tables). Each comes with one of its writings (the one a query is typed
/// from) and every record that carries it in any writing. Names of one word, and names
/// with a word the tables do not know (a clerk's typo), are left out.
///
/// Counting spellings instead — "the records whose owner is written exactly so" — was
/// this benchmark's first way, and wrong: a query typed as a spelling variant ("laxmi
/// reddi" for "Lakshmi Reddi") is answered, rightly, by the thousands of records written
/// "Laxmi Reddi" or "Lakshmi Reddy", and the few written exactly "Lakshmi Reddi" were
/// expected in the top 10 among them.
async fn rare_names(
    pool: &sqlx::PgPool,
    wanted: usize,
) -> anyhow::Result<(Vec<(String, Vec<String>)>, Classes)> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT o->>'name', array_agg(DISTINCT p.id) \
           FROM properties p, jsonb_array_elements(p.record->'owners') o GROUP BY 1",
    )
    .fetch_all(pool)
    .await?;
    let data = devnet::generate::DemoData::embedded();
    let mut names: HashMap<NameKey, (Vec<String>, HashSet<String>)> = HashMap::new();
    for (name, ids) in rows {
        let key = data.name_key(&name);
        let entry = names.entry(key).or_default();
        entry.0.push(name);
        entry.1.extend(ids);
    }
    let mut rare: Vec<(String, Vec<String>)> = names
        .iter()
        .filter(|(key, (_, ids))| {
            ids.len() <= 10
                && key.parts().len() >= 2
                && !key
                    .parts()
                    .iter()
                    .any(|p| matches!(p, NamePart::Unknown(_)))
        })
        .map(|(_, (writings, ids))| {
            let mut writings = writings.clone();
            writings.sort();
            let typed = writings[pick(fnv(&writings[0]), writings.len())].clone();
            let mut ids: Vec<String> = ids.iter().cloned().collect();
            ids.sort();
            (typed, ids)
        })
        .collect();
    // A fixed order that does not follow the names' alphabet.
    rare.sort_by_cached_key(|(typed, _)| (fnv(typed), typed.clone()));
    rare.truncate(wanted);
    let classes = names.into_iter().map(|(k, (_, ids))| (k, ids)).collect();
    Ok((rare, Classes(classes)))
}

/// Every owner name of the data as a person reads it ([`NameKey`]) → the records carrying it.
struct Classes(HashMap<NameKey, HashSet<String>>);

impl Classes {
    /// The records a search-as-you-type `text` may be the beginning of: its finished
    /// words' name and one more name that the unfinished last word may become, with no
    /// other word (`Lakshmi Re` → every Lakshmi Reddy and Lakshmi Reddi, in any script).
    fn completing(&self, text: &str) -> Vec<String> {
        let data = devnet::generate::DemoData::embedded();
        let (done, last) = text.rsplit_once(' ').unwrap_or(("", text));
        let key = data.name_key(done);
        if key
            .parts()
            .iter()
            .any(|p| matches!(p, NamePart::Unknown(_)))
        {
            return Vec::new();
        }
        let mut out: Vec<String> = data
            .names_starting_with(last)
            .into_iter()
            .filter_map(|p| self.0.get(&key.with(p)))
            .flatten()
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// FNV-1a of a text: a stable order for the picks above.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Query sets from the data: names ([`rare_names`]), each expecting every record that
/// carries it; place + name, expecting those of them in that village; survey numbers,
/// expecting the records of that village with that number; prefixes of names as typed.
async fn make_queries(
    pool: &sqlx::PgPool,
    per_kind: usize,
) -> anyhow::Result<HashMap<Kind, Vec<Query>>> {
    let (rows, classes) = rare_names(pool, per_kind * 3).await?;
    if rows.is_empty() {
        bail!("no owner names to make queries from");
    }
    let mut out: HashMap<Kind, Vec<Query>> = HashMap::new();
    for (i, (name, ids)) in rows.iter().enumerate() {
        let kind = Kind::ALL[i % 3 + usize::from(i % 3 == 2)]; // Name, PlaceName, Prefix
        let list = out.entry(kind).or_default();
        if list.len() >= per_kind {
            continue;
        }
        let typed = vary(name, i / 3);
        match kind {
            Kind::Name => list.push(Query {
                text: typed,
                expect: ids.clone(),
            }),
            Kind::PlaceName => {
                let (village, expect): (String, Vec<String>) = {
                    let (v,): (String,) =
                        sqlx::query_as("SELECT village FROM properties WHERE id = $1")
                            .bind(&ids[0])
                            .fetch_one(pool)
                            .await?;
                    let same: Vec<(String,)> = sqlx::query_as(
                        "SELECT id FROM properties WHERE id = ANY($1) AND village = $2",
                    )
                    .bind(ids)
                    .bind(&v)
                    .fetch_all(pool)
                    .await?;
                    (v, same.into_iter().map(|(id,)| id).collect())
                };
                list.push(Query {
                    text: format!("{typed} {village}"),
                    expect,
                });
            }
            _ => {
                // Typed so far: all but the last third of the last word.
                let chars: Vec<char> = typed.chars().collect();
                let last_start = typed
                    .rfind(' ')
                    .map_or(0, |b| typed[..b].chars().count() + 1);
                let last_len = chars.len() - last_start;
                let keep = last_start + (last_len * 2 / 3).max(2).min(last_len);
                let text: String = chars[..keep].iter().collect();
                // Every name the typed text may become is as good an answer.
                let mut expect = classes.completing(&text);
                expect.extend(ids.iter().cloned());
                expect.sort();
                expect.dedup();
                list.push(Query { text, expect });
            }
        }
    }
    // Survey numbers are unique per village by construction, but village names repeat
    // across mandals: every record of that name and number is expected.
    let surveys: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "WITH s AS (SELECT DISTINCT survey_no, village FROM \
             (SELECT survey_no, village FROM properties ORDER BY md5(id) LIMIT $1) x) \
         SELECT s.survey_no, s.village, array_agg(p.id ORDER BY p.id) \
           FROM s JOIN properties p USING (survey_no, village) GROUP BY 1, 2",
    )
    .bind(per_kind as i64)
    .fetch_all(pool)
    .await?;
    let mut list = Vec::new();
    for (i, (survey, village, expect)) in surveys.into_iter().enumerate() {
        let text = if i % 2 == 0 {
            format!("{} {village}", vary_survey(&survey, i))
        } else {
            format!("{village} {}", vary_survey(&survey, i))
        };
        list.push(Query { text, expect });
    }
    out.insert(Kind::Survey, list);
    Ok(out)
}

/// What the ledger and database under test are, and how to stop them.
struct Backend {
    database_url: String,
    note: String,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pg: migrations::PrivatePostgres,
}

/// Marker written into the work directory once it holds a synced database.
const MARKER: &str = "bench-search-seeded";

async fn start_backend(args: &SearchBenchArgs) -> anyhow::Result<Backend> {
    let (dir, tmp) = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("landql-bench-search-")
                .tempdir()
                .context("temporary directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    set_mode(&dir, 0o711);
    let marker = dir.join(MARKER);
    if args.reuse {
        let note = std::fs::read_to_string(&marker).with_context(|| {
            format!(
                "--reuse: {} holds no synced database of a previous run",
                dir.display()
            )
        })?;
        let pg = migrations::PrivatePostgres::start_with(
            &dir.join("pg"),
            migrations::PgOptions::from_env(),
        )
        .await
        .context("starting PostgreSQL")?;
        return Ok(Backend {
            database_url: pg.database_url(),
            note: format!("{} (reused)", note.trim()),
            dir,
            _tmp: tmp,
            pg,
        });
    }
    if dir.join("ledger").exists() || dir.join("pg").exists() {
        bail!(
            "{} already holds a ledger or database: pass --reuse, or another --work-dir",
            dir.display()
        );
    }

    let private = Private::start(&dir, args.records).await?;
    let pool = migrations::connect(&private.database_url).await?;
    private.wait_synced(&pool).await?;
    // Synced: the ledger and the sync worker leave, so that they neither use the CPU nor
    // weigh in this process's memory during the measurements.
    let seeded_note = private.note.clone();
    let pg = private.stop_feeding().await;
    let database_url = pg.database_url();
    settle(&pool).await?;
    pool.close().await;
    let note = format!("{seeded_note} and synced");
    std::fs::write(&marker, &note).with_context(|| format!("writing {}", marker.display()))?;
    Ok(Backend {
        database_url,
        note,
        dir,
        _tmp: tmp,
        pg,
    })
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// This process's (RssAnon, RssFile) in KiB.
fn rss() -> (u64, u64) {
    (
        Proc::This.status_kib("RssAnon"),
        Proc::This.status_kib("RssFile"),
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One engine's answer to one query: the IDs of its top 10.
async fn run_one(
    engine: Engine,
    kind: Kind,
    text: &str,
    index: &Arc<SearchIndex>,
    pool: &sqlx::PgPool,
) -> Result<Vec<String>, String> {
    match engine {
        Engine::Tantivy => {
            let (idx, text) = (index.clone(), text.to_string());
            let res = tokio::task::spawn_blocking(move || {
                idx.search(&SearchRequest {
                    text,
                    first: 10,
                    ..Default::default()
                })
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            Ok(res.hits.iter().map(|h| h.id.to_string()).collect())
        }
        Engine::Tsvector => {
            let q = tsquery(text, kind == Kind::Prefix);
            if q.is_empty() {
                return Ok(Vec::new());
            }
            sqlx::query_scalar(TSV_SQL)
                .bind(q)
                .fetch_all(pool)
                .await
                .map_err(|e| e.to_string())
        }
        Engine::Trigram => sqlx::query_scalar(TRGM_SQL)
            .bind(text)
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string()),
    }
}

/// recall@10 of one engine over a query set: found / min(expected, 10), summed over queries;
/// and how many queries failed (timeouts).
async fn recall(
    engine: Engine,
    kind: Kind,
    queries: &[Query],
    index: &Arc<SearchIndex>,
    pool: &sqlx::PgPool,
) -> (f64, usize) {
    let (mut found, mut wanted, mut failed) = (0usize, 0usize, 0usize);
    for q in queries {
        let want = q.expect.len().min(10);
        wanted += want;
        match run_one(engine, kind, &q.text, index, pool).await {
            Ok(ids) => {
                let ids: HashSet<&String> = ids.iter().collect();
                found += q
                    .expect
                    .iter()
                    .filter(|e| ids.contains(e))
                    .count()
                    .min(want);
            }
            Err(e) => {
                failed += 1;
                tracing::debug!(?engine, query = %q.text, error = %e, "query failed");
            }
        }
    }
    (found as f64 / wanted.max(1) as f64, failed)
}

struct Row {
    engine: Engine,
    kind: Kind,
    recall: f64,
    failed: usize,
    report: Report,
}

pub async fn run(args: SearchBenchArgs) -> anyhow::Result<()> {
    let load_before = load_average();
    let mut backend = start_backend(&args).await?;
    let result = measure(&args, &backend).await;
    let _ = backend.pg.stop().await;
    let m = result?;
    let dir_note = if args.work_dir.is_some() {
        format!(" (kept in {})", backend.dir.display())
    } else {
        String::new()
    };

    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start ({}). {}.",
        machine(),
        m.load_note,
        m.postgres
    );
    let _ = writeln!(
        s,
        "Data: {}{dir_note}; {} properties, vacuumed and analysed. The tantivy index was \
         rebuilt from PostgreSQL by the follower's `rebuild` (one snapshot read, one \
         commit) in this process; the baselines read their own table `bench_search_docs` \
         (per record one text: owner and father names, district, mandal, village, survey \
         number) with a GIN index on `to_tsvector('simple', …)` (built in {:.0} s, {:.0} \
         MiB) and a GIN `gin_trgm_ops` index (built in {:.0} s, {:.0} MiB). Queries come \
         from the data, each with the records it must find: names at most 10 records carry \
         (in any spelling, script or order: the generator's own tables say which writings \
         are one name, and every record carrying the name is expected), typed as written, as a spelling variant (Laxmi/Lakshmi, Reddy/Reddi, …), \
         transliterated from Telugu/Kannada/Devanagari, or with a letter dropped; the same \
         with the village; survey numbers written \"123/A\", \"123-a\" or \"123 A\" with \
         their village; and the first two thirds of a name's last word (expecting every \
         record whose name it may be the beginning of, with no word more). tsvector: \
         `to_tsquery` of all words (AND; prefix `:*` on the last word for prefixes), by \
         `ts_rank`; pg_trgm: `query <% body` (word_similarity ≥ 0.6) by word_similarity; \
         tantivy: `SearchIndex::search` (first 10, with facets, as the API calls it), on \
         the blocking pool. recall@10 = expected records in the top 10 ÷ min(expected, \
         10), over {} queries per kind; then every engine and kind ran at a fixed {:.0} \
         queries/s for {:.0} s each, open loop (latency from each query's due time; at \
         most {} in flight; PostgreSQL through a 16-connection pool, statement timeout {} \
         ms).\n",
        backend.note,
        m.properties,
        m.tsv_secs,
        mib(m.tsv_kib),
        m.trgm_secs,
        mib(m.trgm_kib),
        args.queries,
        args.rate,
        args.seconds,
        args.max_in_flight,
        args.pg_timeout_ms,
    );
    let _ = writeln!(
        s,
        "| kind | engine | recall@10 | p50 ms | p99 ms | max ms | done/s (offered {:.0}) | errors |",
        args.rate
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in &m.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.3}{} | {:.2} | **{:.2}** | {:.2} | {:.0} | {} of {} |",
            r.kind.label(),
            r.engine.label(),
            r.recall,
            if r.failed > 0 {
                format!(" ({} failed)", r.failed)
            } else {
                String::new()
            },
            r.report.p50_ms,
            r.report.p99_ms,
            r.report.max_ms,
            r.report.achieved_per_s,
            r.report.errors,
            r.report.sent
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "- Rebuild (`follower::rebuild`: read `properties` in one snapshot, analyse, index, \
         commit): {} docs in {:.1} s = **{:.0} docs/s** (target ≥ 50 000). Index on disk: \
         **{:.0} MiB** ({:.0} bytes/doc).",
        m.docs,
        m.rebuild_secs,
        m.docs as f64 / m.rebuild_secs.max(1e-9),
        m.index_bytes as f64 / (1024.0 * 1024.0),
        m.index_bytes as f64 / (m.docs.max(1) as f64)
    );
    let _ = writeln!(
        s,
        "- This process's memory (the bench: index, searcher, query runner; the ledger and \
         sync worker had stopped): RssAnon {:.0} MiB / RssFile {:.0} MiB before the index \
         was opened, {:.0} / {:.0} MiB after the rebuild, {:.0} / {:.0} MiB after the \
         query runs. RssFile is the index's mmapped files the queries touched (page cache, \
         shared and reclaimable); RssAnon is the heap.",
        mib(m.rss[0].0),
        mib(m.rss[0].1),
        mib(m.rss[1].0),
        mib(m.rss[1].1),
        mib(m.rss[2].0),
        mib(m.rss[2].1),
    );
    let _ = writeln!(
        s,
        "- CPU of this process per tantivy query over its fixed-rate phases: {:.2} ms.",
        m.tantivy_cpu_ms
    );
    if args.engines.len() < Engine::ALL.len() {
        println!("{s}");
        println!(
            "(only {:?} ran: {} left as it is)",
            args.engines,
            args.out.out.display()
        );
        return Ok(());
    }
    args.out.write("search", "Citizen search", &s)
}

/// Prints up to `n` of `kind`'s queries whose expected records tantivy did not put in its
/// first 10, with the expected records' owner names and the first hits' names.
async fn show_misses(
    kind: Kind,
    queries: &[Query],
    index: &Arc<SearchIndex>,
    pool: &sqlx::PgPool,
    n: usize,
) -> anyhow::Result<()> {
    let owners = |r: &ledger::model::Record| {
        r.owners
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let mut shown = 0;
    for q in queries {
        let res = index.search(&SearchRequest {
            text: q.text.clone(),
            first: 10,
            ..Default::default()
        })?;
        let got: HashSet<String> = res.hits.iter().map(|h| h.id.to_string()).collect();
        let want = q.expect.len().min(10);
        if q.expect.iter().filter(|e| got.contains(*e)).count() >= want {
            continue;
        }
        let expected: Vec<(String, String)> = sqlx::query_as(
            "SELECT (SELECT string_agg(o->>'name', ' + ') FROM jsonb_array_elements(record->'owners') o), village \
               FROM properties WHERE id = ANY($1)",
        )
        .bind(&q.expect)
        .fetch_all(pool)
        .await?;
        println!(
            "MISS {} {:?} (total {}, route {:?}): expected {expected:?}; got {:?}",
            kind.label(),
            q.text,
            res.total,
            res.route,
            res.hits
                .iter()
                .take(4)
                .map(|h| format!("{} ({})", owners(&h.record), h.record.village))
                .collect::<Vec<_>>()
        );
        shown += 1;
        if shown == n {
            break;
        }
    }
    Ok(())
}

struct Measured {
    postgres: String,
    properties: i64,
    docs: u64,
    rebuild_secs: f64,
    index_bytes: u64,
    rss: [(u64, u64); 3],
    tsv_secs: f64,
    tsv_kib: u64,
    trgm_secs: f64,
    trgm_kib: u64,
    rows: Vec<Row>,
    tantivy_cpu_ms: f64,
    load_note: String,
}

async fn measure(args: &SearchBenchArgs, backend: &Backend) -> anyhow::Result<Measured> {
    let pool = migrations::connect(&backend.database_url).await?;
    let postgres = postgres_version(&pool).await?;
    let properties: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&pool)
        .await?;
    if properties == 0 {
        bail!("the database holds no properties");
    }

    // The tantivy index, rebuilt from PostgreSQL.
    let index_dir = backend.dir.join(format!("index-{}", std::process::id()));
    let rss0 = rss();
    let index = Arc::new(
        search_index::follower::open_or_reset(&index_dir)
            .with_context(|| format!("opening an index in {}", index_dir.display()))?,
    );
    tracing::info!("rebuilding the search index from PostgreSQL");
    let t = Instant::now();
    search_index::follower::rebuild(&index, &pool).await?;
    let rebuild_secs = t.elapsed().as_secs_f64();
    let docs = index.num_docs();
    let index_bytes = dir_size(&index_dir);
    let rss1 = rss();
    tracing::info!(
        docs,
        secs = rebuild_secs,
        rate = docs as f64 / rebuild_secs,
        "rebuilt"
    );

    // The baselines' table and indexes.
    let baselines = args.engines.iter().any(|e| *e != Engine::Tantivy);
    let (mut tsv_secs, mut trgm_secs, mut tsv_kib, mut trgm_kib) = (0.0, 0.0, 0, 0);
    if baselines {
        let trgm_available = Path::new("/usr/share/postgresql/15/extension/pg_trgm.control")
            .exists()
            || sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
                > 0;
        if !trgm_available {
            bail!("the PostgreSQL extension pg_trgm is not installed (postgresql-contrib)");
        }
        tracing::info!("building the baselines' table and indexes");
        for stmt in SETUP_SQL {
            sqlx::raw_sql(*stmt).execute(&pool).await?;
        }
        let t = Instant::now();
        sqlx::raw_sql(TSV_INDEX_SQL).execute(&pool).await?;
        tsv_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        sqlx::raw_sql(TRGM_INDEX_SQL).execute(&pool).await?;
        trgm_secs = t.elapsed().as_secs_f64();
        sqlx::raw_sql("VACUUM (ANALYZE) bench_search_docs")
            .execute(&pool)
            .await?;
        let size = |name: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT pg_relation_size($1::regclass)")
                    .bind(name)
                    .fetch_one(&pool)
                    .await
                    .map(|b| (b / 1024) as u64)
            }
        };
        tsv_kib = size("bench_search_tsv").await?;
        trgm_kib = size("bench_search_trgm").await?;
    }

    tracing::info!("making the query sets");
    let queries = make_queries(&pool, args.queries).await?;

    // A pool for the baselines' queries, with a statement timeout.
    let bench_url = format!(
        "{}{}options=-c%20statement_timeout%3D{}",
        backend.database_url,
        if backend.database_url.contains('?') {
            "&"
        } else {
            "?"
        },
        args.pg_timeout_ms
    );
    let qpool = migrations::connect(&bench_url).await?;

    let mut rows = Vec::new();
    let mut tantivy_cpu = (0.0, 0u64);
    for kind in Kind::ALL {
        let Some(qs) = queries.get(&kind).filter(|q| !q.is_empty()) else {
            continue;
        };
        let qs = Arc::new(qs.clone());
        for &engine in &args.engines {
            tracing::info!(?kind, ?engine, "recall pass");
            let (rec, failed) = recall(engine, kind, &qs, &index, &qpool).await;
            if engine == Engine::Tantivy && args.show_misses > 0 {
                show_misses(kind, &qs, &index, &pool, args.show_misses).await?;
            }
            tracing::info!(
                ?kind,
                ?engine,
                rate = args.rate,
                recall = rec,
                "fixed-rate run"
            );
            let cpu0 = Proc::This.cpu_secs();
            let report = {
                let (qs, index, qpool) = (qs.clone(), index.clone(), qpool.clone());
                loadgen::open_loop(
                    args.rate,
                    Duration::from_secs_f64(args.seconds),
                    args.max_in_flight,
                    move |i| {
                        let (qs, index, qpool) = (qs.clone(), index.clone(), qpool.clone());
                        async move {
                            let q = &qs[pick(i, qs.len())];
                            run_one(engine, kind, &q.text, &index, &qpool)
                                .await
                                .map(|_| ())
                        }
                    },
                )
                .await?
            };
            if engine == Engine::Tantivy {
                tantivy_cpu.0 += Proc::This.cpu_secs() - cpu0;
                tantivy_cpu.1 += report.sent;
            }
            tracing::info!(?report, "done");
            rows.push(Row {
                engine,
                kind,
                recall: rec,
                failed,
                report,
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let rss2 = rss();
    let load_note = format!("{} at the end", load_average());
    qpool.close().await;
    pool.close().await;
    drop(index);
    let _ = std::fs::remove_dir_all(&index_dir);
    Ok(Measured {
        postgres,
        properties,
        docs,
        rebuild_secs,
        index_bytes,
        rss: [rss0, rss1, rss2],
        tsv_secs,
        tsv_kib,
        trgm_secs,
        trgm_kib,
        rows,
        tantivy_cpu_ms: tantivy_cpu.0 * 1000.0 / tantivy_cpu.1.max(1) as f64,
        load_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsquery_quotes_words_and_marks_the_prefix() {
        assert_eq!(tsquery("Ravi Kum", true), "'ravi' & 'kum':*");
        assert_eq!(tsquery("o'brien 12/A", false), "'o' & 'brien' & '12' & 'a'");
        assert_eq!(tsquery("  ", true), "");
    }

    #[test]
    fn variants_as_the_golden_set_makes_them() {
        assert_eq!(vary("Yarlagadda Lakshmi", 0), "yarlagadda lakshmi");
        assert_eq!(vary("Yarlagadda Lakshmi", 1), "yarlagadda laxmi");
        assert_eq!(vary("Yarlagadda Lakshmi", 2), "yarlaadda lakshmi");
        assert_eq!(vary("లక్ష్మి", 1), "lakshmi");
        assert_eq!(vary_survey("123/A", 1), "123-a");
        assert_eq!(vary_survey("123/A", 2), "123 A");
    }
}
