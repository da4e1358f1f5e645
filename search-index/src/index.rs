//! The tantivy schema and [`SearchIndex`]: one document per property, written by one
//! long-lived writer, committed with the change-log seq in the commit payload so that a
//! follower resumes exactly where it stopped (design/system.md, invariant 4).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use std::sync::{Arc, Mutex};

use ledger::model::Record;
use ledger::{IdForm, PropertyId};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, STORED, STRING,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::analysis::{self, place_key, survey_key};
use crate::queue::{Queued, Window};
use crate::Error;

/// Writer heap: ≥ 15 MB per indexing thread (design/search.md); 64 MB serves up to 4.
const WRITER_HEAP: usize = 64 << 20;

/// Documents of a rebuild that may wait for the indexing threads at once: ~16 batches of
/// the follower's 1 024, a few tens of MB, against the whole index without a bound.
const REBUILD_WINDOW: usize = 16 * 1024;

/// Segments a rebuild leaves (see [`SearchIndex::merge_all`]).
///
/// Why two, not one: the final merge of a rebuild is single-threaded per merge. One merge
/// of everything took 4.3 s of a 20.4 s rebuild at 1 M records on one of the machine's two
/// cores; two merges of half each run side by side in 2.2 s. A search over two segments
/// costs little more than over one (tantivy p99s at 1 M records, measured the same day:
/// name 8.7 against 9.7 ms, prefix 12.0 against 10.8 ms), where the 15 unmerged ones cost
/// three times as much.
const MERGED_SEGMENTS: usize = 2;

/// Bytes of stored documents compressed together (tantivy's default is 16 KiB).
///
/// Why smaller: every search reads the stored records of its (up to 200) candidates to
/// re-rank them, and reading one record decompresses its whole block; the candidates
/// are spread over the index, so nearly every read is a block of its own. With 16 KiB
/// blocks, reading them was a sixth of a name search's CPU at 1 M records; 4 KiB blocks
/// cut a name search's CPU by about a tenth for an index 12 % larger (403 MiB).
/// Applies to segments written from now on (a rebuild rewrites them all).
const DOCSTORE_BLOCK: usize = 4 << 10;

/// The name groups, in ranking order (an owner match beats a father match beats a place
/// beats a former name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Group {
    Owner,
    Father,
    Place,
    /// Owner names an earlier version of the record carried and the current one does not
    /// (a misspelling a correction fixed, a seller's name): still findable, ranked below
    /// a current name.
    Former,
}

/// How many name groups there are (arrays indexed by `Group as usize`).
pub(crate) const GROUPS: usize = 4;

impl Group {
    pub const ALL: [Group; GROUPS] = [Group::Owner, Group::Father, Group::Place, Group::Former];
    fn name(self) -> &'static str {
        match self {
            Group::Owner => "owner",
            Group::Father => "father",
            Group::Place => "place",
            Group::Former => "former",
        }
    }
}

/// The analysed fields of one name group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupFields {
    pub orig: Field,
    pub fold: Field,
    pub phon: Field,
    pub join: Field,
    /// Edge n-grams, for person names only. Places are a small vocabulary (at 1 M
    /// records 21 019 distinct words), so a typed place prefix is expanded over the
    /// place fold dictionary at query time instead (`search::prefix`); their n-grams were
    /// 29 % of all the tokens a rebuild indexed.
    pub prefix: Option<Field>,
}

/// Every field of the schema.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    /// The sharded-form ID string (legacy IDs: legacy form): one term per parcel.
    pub key: Field,
    /// Upper-case ID forms without dashes, for lookups typed any way.
    pub id_terms: Field,
    pub groups: [GroupFields; GROUPS],
    pub survey: Field,
    pub khata: Field,
    pub state: Field,
    pub district: Field,
    pub mandal: Field,
    pub village: Field,
    pub land_type: Field,
    pub status: Field,
    /// Facet columns (fast fields only): state, district, mandal, village, land type,
    /// status; see [`FACET_COLUMNS`].
    pub facet_cols: [Field; 6],
    /// The record as JSON, for display, re-ranking and highlights.
    pub record: Field,
    /// The record's former owner names (one value each), for re-ranking and highlights.
    pub former: Field,
}

impl Fields {
    pub(crate) fn group(&self, g: Group) -> &GroupFields {
        &self.groups[g as usize]
    }
}

fn text(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqs),
    )
}

/// The facet columns, in [`Fields::facet_cols`] order. Each value is `key` or
/// `key` + [`LABEL_SEP`] + the spelling found in the record, so that one fast-field read per
/// matched document gives both the count and a display label.
///
/// Why columns and not tantivy facets: with `FacetCollector` (three hierarchical facet
/// fields, plus one search and one stored-document load per listed value for its label)
/// facets were 42 % of a search's CPU at 100 k records — the collector walks the facet
/// dictionary of every segment on every search. Counting term ordinals of a fast column
/// over the matched documents, in the same pass that collects the top candidates, costs a
/// few nanoseconds per matched document.
pub(crate) const FACET_COLUMNS: [&str; 6] = [
    "fc_state",
    "fc_district",
    "fc_mandal",
    "fc_village",
    "fc_type",
    "fc_status",
];

/// Separates a facet key from its label in a facet column value.
pub(crate) const LABEL_SEP: char = '\u{1f}';

fn fast_only() -> TextOptions {
    TextOptions::default().set_fast(tantivy::tokenizer::RAW_TOKENIZER_NAME)
}

fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_text_field("key", STRING | STORED);
    let id_terms = b.add_text_field("id_terms", STRING);
    let groups = Group::ALL.map(|g| {
        let n = g.name();
        GroupFields {
            orig: b.add_text_field(&format!("{n}_orig"), text(analysis::ORIG)),
            fold: b.add_text_field(&format!("{n}_fold"), text(analysis::FOLD)),
            phon: b.add_text_field(&format!("{n}_phon"), text(analysis::PHON)),
            join: b.add_text_field(&format!("{n}_join"), text(analysis::JOIN)),
            prefix: (g != Group::Place)
                .then(|| b.add_text_field(&format!("{n}_prefix"), text(analysis::PREFIX))),
        }
    });
    let f = Fields {
        key,
        id_terms,
        groups,
        survey: b.add_text_field("survey", STRING),
        khata: b.add_text_field("khata", STRING),
        state: b.add_text_field("state", STRING),
        district: b.add_text_field("district", STRING),
        mandal: b.add_text_field("mandal", STRING),
        village: b.add_text_field("village", STRING),
        land_type: b.add_text_field("land_type", STRING),
        status: b.add_text_field("status", STRING),
        facet_cols: FACET_COLUMNS.map(|name| b.add_text_field(name, fast_only())),
        record: b.add_text_field("record", STORED),
        former: b.add_text_field("former", STORED),
    };
    (b.build(), f)
}

/// The owner names of `versions` (a property's records, any order) that `current` does
/// not carry, each once, in the order first met: what [`SearchIndex::upsert`] indexes as
/// former names.
pub fn former_names<'a>(
    current: &Record,
    versions: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in versions {
        if !current.owners.iter().any(|o| o.name == name) && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// The term every spelling of an ID shares: its sharded form (legacy IDs stay legacy).
pub(crate) fn id_key(id: &PropertyId) -> String {
    id.in_form(IdForm::Sharded).to_string()
}

/// What a typed ID looks like with dashes and spaces removed, upper-case.
pub(crate) fn squash_id(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Normalised filter/facet value of a free-text field (land type, status).
pub(crate) fn plain_key(s: &str) -> String {
    analysis::words(s)
        .iter()
        .map(|w| w.fold.as_str())
        .collect::<Vec<_>>()
        .join("_")
}

/// The search index of one API node (see the module docs).
pub struct SearchIndex {
    pub(crate) index: Index,
    pub(crate) fields: Fields,
    /// `None` when opened read-only (another process owns the writer).
    writer: Option<Mutex<IndexWriter<Queued>>>,
    /// Bounds a rebuild's documents waiting for the indexing threads (see `queue`).
    window: Arc<Window>,
    pub(crate) reader: IndexReader,
    /// Set while [`crate::follower::rebuild`] runs, merge included: the index answers, but
    /// from a partial or outgoing set of documents, and the node should not get traffic.
    rebuilding: AtomicBool,
    /// What the follower did, for the API node's metrics (see [`SearchIndex::activity`]).
    activity: ActivityCounters,
    /// The index's directory, whose files [`SearchIndex::activity`] sizes.
    dir: PathBuf,
}

/// The follower's work as the node's metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// The change-log seq of the last commit this process made or loaded (`None` before
    /// the first).
    pub seq: Option<i64>,
    /// Documents searchable now.
    pub documents: u64,
    /// Errors the follower met and waited out (database reads, LISTEN).
    pub errors: u64,
    /// Bytes of the index's files on disk: the live segments and the files tantivy has not
    /// collected yet, which is what fills an operator's disk.
    pub disk_bytes: u64,
}

#[derive(Debug)]
struct ActivityCounters {
    seq: AtomicI64,
    errors: AtomicU64,
    /// Time of each commit (prepare, write, reload). `prometheus-client`'s histogram, so
    /// the API node registers it as it is.
    commit_seconds: Histogram,
}

impl ActivityCounters {
    fn new(seq: Option<i64>) -> Self {
        ActivityCounters {
            seq: AtomicI64::new(seq.unwrap_or(-1)),
            errors: AtomicU64::new(0),
            // 1 ms … ~16 s, doubling: a follower's commit is milliseconds, a rebuild's
            // final one seconds.
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
        }
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (and the directory) when missing.
    pub fn open_or_create(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        let (schema, fields) = build_schema();
        let mmap = MmapDirectory::open(dir)?;
        let mut index = Index::open_or_create(mmap, schema.clone())?;
        if index.schema() != schema {
            return Err(Error::SchemaMismatch(dir.display().to_string()));
        }
        analysis::register(&index);
        // Read by the writer's segment serializer (new and merged segments); blocks of an
        // existing segment keep the size they were written with, and readers need no
        // setting.
        index.settings_mut().docstore_blocksize = DOCSTORE_BLOCK;
        // Compress stored blocks on the indexing thread itself. Tantivy's default hands
        // every block to a thread of its own, one message and wake-up per block; with 4 KiB
        // blocks that is one per few documents, on a machine whose cores the indexing
        // threads already keep busy. The bytes written are the same.
        index.settings_mut().docstore_compress_dedicated_thread = false;
        let writer = index.writer(WRITER_HEAP)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        tracing::info!(dir = %dir.display(), docs = reader.searcher().num_docs(), "search index open");
        let activity = ActivityCounters::new(payload_seq(&index));
        Ok(SearchIndex {
            index,
            fields,
            writer: Some(Mutex::new(writer)),
            rebuilding: AtomicBool::new(false),
            window: Window::new(REBUILD_WINDOW),
            activity,
            reader,
            dir: dir.to_path_buf(),
        })
    }

    /// Opens an existing index for searching only, next to a process that writes it (the
    /// API node's follower): no writer lock is taken, and the reader picks up that
    /// process's commits by itself.
    pub fn open_read_only(dir: &Path) -> Result<Self, Error> {
        let (schema, fields) = build_schema();
        let index = Index::open(MmapDirectory::open(dir)?)?;
        if index.schema() != schema {
            return Err(Error::SchemaMismatch(dir.display().to_string()));
        }
        analysis::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        let activity = ActivityCounters::new(payload_seq(&index));
        Ok(SearchIndex {
            index,
            fields,
            writer: None,
            rebuilding: AtomicBool::new(false),
            window: Window::new(REBUILD_WINDOW),
            activity,
            reader,
            dir: dir.to_path_buf(),
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter<Queued>>, Error> {
        let w = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        // A panic while holding the lock leaves the writer usable (tantivy keeps its own state).
        Ok(w.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Builds the document of one record and its former owner names; `json` is the record
    /// as JSON when the caller has it already (it is stored as given).
    fn document(
        &self,
        r: &Record,
        former: &[String],
        json: Option<String>,
    ) -> Result<TantivyDocument, Error> {
        let f = &self.fields;
        let key = id_key(&r.property_id);
        let json = match json {
            Some(j) => j,
            None => serde_json::to_string(r)?,
        };
        let mut d = doc!(f.key => key.clone(), f.record => json);
        let mut ids = vec![squash_id(&key), squash_id(&r.property_id.to_string())];
        ids.push(squash_id(
            &r.property_id.in_form(IdForm::Encoded).to_string(),
        ));
        ids.sort();
        ids.dedup();
        for t in ids {
            d.add_text(f.id_terms, t);
        }
        let mut add = |g: Group, text: &str| {
            let gf = f.group(g);
            for field in [gf.orig, gf.fold, gf.phon, gf.join] {
                d.add_text(field, text);
            }
            if let Some(field) = gf.prefix {
                d.add_text(field, text);
            }
        };
        for o in &r.owners {
            add(Group::Owner, &o.name);
            if let Some(fa) = &o.father_name {
                add(Group::Father, fa);
            }
        }
        for p in [&r.district, &r.mandal, &r.village] {
            add(Group::Place, p);
        }
        for name in former {
            add(Group::Former, name);
        }
        for name in former {
            d.add_text(f.former, name);
        }
        d.add_text(f.survey, survey_key(&r.survey_no));
        if let Some(k) = &r.khata_no {
            d.add_text(f.khata, survey_key(k));
        }
        let (st, di, ma, vi) = (
            r.state.to_ascii_uppercase(),
            place_key(&r.district),
            place_key(&r.mandal),
            place_key(&r.village),
        );
        d.add_text(f.state, &st);
        d.add_text(f.district, &di);
        d.add_text(f.mandal, &ma);
        d.add_text(f.village, &vi);
        let lt = plain_key(&r.land_type);
        d.add_text(f.land_type, &lt);
        let vs = r.verification_status.as_str();
        d.add_text(f.status, vs);
        let labelled = |k: &str, label: &str| format!("{k}{LABEL_SEP}{label}");
        let [c_st, c_di, c_ma, c_vi, c_ty, c_vs] = f.facet_cols;
        d.add_text(c_st, &st);
        d.add_text(c_di, labelled(&di, &r.district));
        d.add_text(c_ma, labelled(&ma, &r.mandal));
        d.add_text(c_vi, labelled(&vi, &r.village));
        d.add_text(c_ty, labelled(&lt, &r.land_type));
        d.add_text(c_vs, vs);
        Ok(d)
    }

    /// Adds or replaces the document of a record (visible after the next [`Self::commit`]),
    /// with the owner names its earlier versions carried and it no longer does
    /// ([`former_names`]).
    pub fn upsert(&self, r: &Record, former: &[String]) -> Result<(), Error> {
        let d = self.document(r, former, None)?;
        let w = self.writer()?;
        w.delete_term(Term::from_field_text(
            self.fields.key,
            &id_key(&r.property_id),
        ));
        w.add_document(Queued::new(d, None))?;
        Ok(())
    }

    /// Adds the documents of records known not to be in the index (a rebuild after
    /// [`Self::clear`]), storing each one's `json` — the record as the caller read it — as
    /// its text, with its former owner names, and returns how many were added.
    ///
    /// Why: skipping the delete-by-ID of [`Self::upsert`] matters in bulk, as tantivy
    /// applies every queued delete to every new segment at commit; and the documents go to
    /// tantivy's indexing threads as one batch, because each document added alone is a
    /// message that wakes an indexing thread — at 1 M records the wake-ups and context
    /// switches were a tenth of a rebuild's CPU (on two cores, where the threads take turns
    /// with PostgreSQL and the reader).
    pub fn add_new_batch(
        &self,
        records: impl IntoIterator<Item = (Record, String, Vec<String>)>,
    ) -> Result<usize, Error> {
        let mut ops = Vec::new();
        for (r, json, former) in records {
            let d = self.document(&r, &former, Some(json))?;
            ops.push(tantivy::indexer::UserOperation::Add(Queued::new(
                d,
                Some(self.window.slot()),
            )));
        }
        let n = ops.len();
        if n > 0 {
            self.writer()?.run(ops)?;
        }
        Ok(n)
    }

    /// Removes a property's document, whatever form `id` is written in.
    pub fn delete(&self, id: &PropertyId) -> Result<(), Error> {
        self.writer()?
            .delete_term(Term::from_field_text(self.fields.key, &id_key(id)));
        Ok(())
    }

    /// Removes every document (before a rebuild).
    pub fn clear(&self) -> Result<(), Error> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// Commits everything written so far together with `last_seq`, the change-log sequence
    /// number it reflects, and reloads the reader. Call on an interval (~1 s), never per
    /// document: each commit makes a segment.
    pub fn commit(&self, last_seq: i64) -> Result<(), Error> {
        let started = std::time::Instant::now();
        {
            let mut w = self.writer()?;
            let mut prepared = w.prepare_commit()?;
            prepared.set_payload(&last_seq.to_string());
            prepared.commit()?;
        }
        self.reader.reload()?;
        self.activity.seq.store(last_seq, Ordering::Relaxed);
        self.activity
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(last_seq, "search index committed");
        Ok(())
    }

    /// Whether a rebuild from PostgreSQL is under way in this process (its final merge
    /// included). Readiness checks it: until it ends, searches see a partial or outgoing
    /// index and the merge takes a core and the disk. An index opened read-only never is.
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::Acquire)
    }

    pub(crate) fn set_rebuilding(&self, on: bool) {
        self.rebuilding.store(on, Ordering::Release);
    }

    /// Turns bulk loading on or off. On, segments are not merged in the background while
    /// documents stream in (a rebuild); off, tantivy's default log merge policy applies.
    ///
    /// Why: during a rebuild the log merge policy merged the same documents several times
    /// over (a tenth of the rebuild's CPU at 1 M records) and still left 15 segments at the
    /// end; one merge of everything afterwards ([`Self::merge_all`]) writes each document
    /// once more and leaves one.
    pub(crate) fn set_bulk(&self, on: bool) -> Result<(), Error> {
        let w = self.writer()?;
        if on {
            w.set_merge_policy(Box::new(NoMergePolicy));
        } else {
            w.set_merge_policy(Box::new(LogMergePolicy::default()));
        }
        Ok(())
    }

    /// Merges the committed segments into [`MERGED_SEGMENTS`] of about equal size, side by
    /// side, waits for them, removes the files they made obsolete and reloads the reader
    /// (the commit payload is kept).
    ///
    /// Why merge at all: a search pays per segment — term statistics, a term-dictionary
    /// lookup per query term, a walk of the dictionary per typo automaton. At 1 M records,
    /// a search over one segment cost a third of what it did over the 15 a rebuild left
    /// (name + village queries: 4.4 → 1.4 ms of CPU).
    pub(crate) fn merge_all(&self) -> Result<(), Error> {
        // The metas must be gone before the garbage collection below: tantivy keeps the
        // files of every `SegmentMeta` still alive anywhere in the process.
        let groups: Vec<_> = {
            let metas = self.index.searchable_segment_metas()?;
            balanced_groups(
                metas.iter().map(|m| (m.id(), m.num_docs())).collect(),
                MERGED_SEGMENTS,
            )
        };
        // A group of one segment is merged already.
        let merges: Vec<_> = {
            let mut w = self.writer()?;
            groups
                .iter()
                .filter(|g| g.len() > 1)
                .map(|g| w.merge(g))
                .collect()
        };
        if merges.is_empty() {
            return Ok(());
        }
        for merge in merges {
            merge.wait()?;
        }
        // The reader let go of the merged segments only now; collect their files.
        self.reader.reload()?;
        let gc = self.writer()?.garbage_collect_files();
        gc.wait()?;
        Ok(())
    }

    /// The change-log seq of the last commit; `None` for a new index.
    pub fn last_seq(&self) -> Result<Option<i64>, Error> {
        let metas = self.index.load_metas()?;
        match metas.payload {
            None => Ok(None),
            Some(p) => p
                .parse()
                .map(Some)
                .map_err(|_| Error::BadPayload(p.clone())),
        }
    }

    /// Identifies what searches see now: it changes whenever a commit is loaded, so a cache
    /// of search results keyed by it never serves results older than the index.
    pub fn generation(&self) -> u64 {
        self.reader.searcher().generation().generation_id()
    }

    /// Number of documents visible to searches.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// What the follower has done (see [`Activity`]). An index opened read-only reads the
    /// writer's last commit from disk.
    pub fn activity(&self) -> Activity {
        let seq = match self.writer {
            Some(_) => Some(self.activity.seq.load(Ordering::Relaxed)).filter(|s| *s >= 0),
            None => payload_seq(&self.index),
        };
        Activity {
            seq,
            documents: self.num_docs(),
            errors: self.activity.errors.load(Ordering::Relaxed),
            disk_bytes: disk_bytes(&self.dir),
        }
    }

    /// The histogram of commit times, to register in a metrics registry.
    pub fn commit_seconds(&self) -> Histogram {
        self.activity.commit_seconds.clone()
    }

    /// Counts an error the follower waited out.
    pub(crate) fn count_error(&self) {
        self.activity.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes of the regular files in `dir` (tantivy's directory is flat). A file removed
/// while it is being listed, or a directory that cannot be read, counts as nothing: the
/// figure is for a gauge, not for a decision.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The seq in the last commit's payload, when there is a readable one.
fn payload_seq(index: &Index) -> Option<i64> {
    index
        .load_metas()
        .ok()
        .and_then(|m| m.payload)
        .and_then(|p| p.parse().ok())
}

/// Splits segments (ID, document count) into at most `n` groups of about equal document
/// counts: the largest first, each into the group with the fewest documents so far.
fn balanced_groups<T: Copy>(mut segments: Vec<(T, u32)>, n: usize) -> Vec<Vec<T>> {
    segments.sort_by_key(|&(_, docs)| std::cmp::Reverse(docs));
    let mut groups: Vec<(u64, Vec<T>)> = (0..n.max(1)).map(|_| (0, Vec::new())).collect();
    for (id, docs) in segments {
        if let Some(lightest) = groups.iter_mut().min_by_key(|(total, _)| *total) {
            lightest.0 += u64::from(docs);
            lightest.1.push(id);
        }
    }
    groups
        .into_iter()
        .map(|(_, ids)| ids)
        .filter(|ids| !ids.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_record() -> Record {
        Record {
            property_id: PropertyId::sharded("TS", 2026, 3, 100).unwrap(),
            state: "TS".into(),
            district: "Nalgonda".into(),
            mandal: "Miryalaguda".into(),
            village: "Avanthipuram".into(),
            survey_no: "156/2".into(),
            khata_no: None,
            owners: vec![ledger::model::Owner {
                name: "Chilukuri Ravikumar".into(),
                father_name: None,
                owner_ref: "o1".into(),
                share_pct: 100,
            }],
            area_sq_m: 4047,
            area_text: "1 acre".into(),
            land_type: "Agricultural".into(),
            market_value: 1_000_000,
            verification_status: ledger::model::VerificationStatus::Pending,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn merge_all_leaves_two_segments_keeps_docs_and_payload_and_deletes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let idx = SearchIndex::open_or_create(dir.path()).unwrap();
        idx.set_bulk(true).unwrap();
        let r = sample_record();
        // Six commits with merging off: six segments.
        for (i, n) in (101u64..107).enumerate() {
            let mut r = r.clone();
            r.property_id = PropertyId::sharded("TS", 2026, 3, n).unwrap();
            idx.upsert(&r, &[]).unwrap();
            idx.commit(i as i64 + 1).unwrap();
        }
        assert_eq!(idx.reader.searcher().segment_readers().len(), 6);
        idx.merge_all().unwrap();
        idx.set_bulk(false).unwrap();
        let live: std::collections::BTreeSet<String> = idx
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|s| s.segment_id().uuid_string())
            .collect();
        assert_eq!(live.len(), MERGED_SEGMENTS);
        assert_eq!(idx.num_docs(), 6);
        assert_eq!(idx.last_seq().unwrap(), Some(6));
        // The six merged segments' files are gone from the directory, not only from the
        // index: a rebuild must not leave two generations on disk.
        let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                let (stem, _) = name.split_once('.')?;
                (stem.len() == 32).then(|| stem.to_string())
            })
            .collect();
        assert_eq!(on_disk, live);
    }

    #[test]
    fn activity_sizes_the_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let idx = SearchIndex::open_or_create(dir.path()).unwrap();
        let empty = idx.activity().disk_bytes;
        let mut r = sample_record();
        for n in 1..50 {
            r.property_id = PropertyId::sharded("TS", 2026, 3, n).unwrap();
            idx.upsert(&r, &[]).unwrap();
        }
        idx.commit(1).unwrap();
        let a = idx.activity();
        assert_eq!(a.documents, 49);
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        assert_eq!(a.disk_bytes, on_disk);
        assert!(a.disk_bytes > empty, "{} > {empty}", a.disk_bytes);
        // A directory that has gone away is sized as nothing, not an error.
        assert_eq!(disk_bytes(&dir.path().join("missing")), 0);
    }

    #[test]
    fn balanced_groups_split_documents_evenly() {
        // Each segment's ID is its document count, so a group's sum is its size.
        let groups = balanced_groups(vec![(10, 10), (70, 70), (30, 30), (40, 40)], 2);
        let totals: Vec<u32> = groups.iter().map(|g| g.iter().sum()).collect();
        assert_eq!(totals, vec![80, 70]);
        assert_eq!(balanced_groups(vec![('a', 1)], 2), vec![vec!['a']]);
        assert!(balanced_groups(Vec::<(char, u32)>::new(), 2).is_empty());
    }

    #[test]
    fn id_forms_squash_alike() {
        let a: PropertyId = "LRI-IND-TS-2026-03-00567".parse().unwrap();
        let b: PropertyId = "lri-ind-ts-2026-0300567".parse().unwrap();
        assert_eq!(id_key(&a), id_key(&b));
        assert_eq!(
            squash_id("lri ind ts 2026 03 00567"),
            squash_id(&a.to_string())
        );
    }
}
