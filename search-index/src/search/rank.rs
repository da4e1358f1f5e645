//! Matching query words against a candidate record and ordering candidates: the part of
//! ranking tantivy cannot do (which form matched, typos spent, which field, which script).

use std::cmp::Ordering;

use ledger::model::Record;

use super::{Highlight, MatchKind};
use crate::analysis::{self, phon_of_fold, Word};
use crate::index::Group;

/// Typos allowed for a word of `len` chars (Meilisearch's rule): 0 up to 4, 1 up to 8, 2 beyond.
pub fn typo_budget(len: usize) -> u32 {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Optimal-string-alignment distance (Levenshtein with adjacent transpositions).
pub fn distance(a: &str, b: &str) -> u32 {
    if a.is_ascii() && b.is_ascii() {
        return distance_of(a.as_bytes(), b.as_bytes());
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance_of(&a, &b)
}

/// Rows of the distance table kept on the stack up to this length (folds and keys are
/// ASCII and short; the re-ranking calls this for every query word × candidate word, and
/// three heap vectors per call were a visible part of its cost).
const STACK_ROW: usize = 48;

fn distance_of<T: PartialEq>(a: &[T], b: &[T]) -> u32 {
    let w = b.len() + 1;
    if w > STACK_ROW {
        return distance_heap(a, b);
    }
    // Three rolling rows of the table: row i lives in rows[i % 3].
    let mut rows = [[0u32; STACK_ROW]; 3];
    for (j, v) in rows[0].iter_mut().enumerate().take(w) {
        *v = j as u32;
    }
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur][0] = i as u32;
        for j in 1..w {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let mut v = (rows[prev][j] + 1)
                .min(rows[cur][j - 1] + 1)
                .min(rows[prev][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(rows[prev2][j - 2] + 1);
            }
            rows[cur][j] = v;
        }
    }
    rows[a.len() % 3][b.len()]
}

fn distance_heap<T: PartialEq>(a: &[T], b: &[T]) -> u32 {
    let w = b.len() + 1;
    let mut d = vec![0u32; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i as u32;
    }
    for (j, v) in d.iter_mut().enumerate().take(w) {
        *v = j as u32;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Typos between a query word and a record word under the budget rule; `None` when over
/// budget or when the first letters differ. A first-letter typo would count double
/// (search.md) and the index's typo query never offers one (`fuzzy.rs`), so the ranking
/// skips it without computing a distance — most candidate words fail this test.
pub(super) fn typos(q: &str, d: &str) -> Option<u32> {
    let budget = typo_budget(q.chars().count());
    if budget == 0 || q.len().abs_diff(d.len()) > budget as usize {
        return None;
    }
    if q.chars().next() != d.chars().next() {
        return None;
    }
    let t = distance(q, d);
    (t <= budget).then_some(t)
}

/// Single letters are initials ("K. Ravi Kumar"): they only break ties, else "K V
/// Rangareddy" would rank anyone with two initials in Rangareddy above the named person.
pub(super) fn is_strong(w: &Word) -> bool {
    w.fold.chars().nth(1).is_some()
}

/// Parsed query words and what the route needs.
pub(super) struct Parsed {
    pub(super) words: Vec<Word>,
    /// The last word may be unfinished (no trailing space).
    pub(super) partial_last: bool,
}

/// A word of a record, where it is.
struct DocWord {
    field: usize,
    word: Word,
}

/// A record's searchable texts: (field label, group, text).
fn record_fields(r: &Record) -> Vec<(String, Group, String)> {
    let mut out = Vec::new();
    for (i, o) in r.owners.iter().enumerate() {
        out.push((format!("owners[{i}].name"), Group::Owner, o.name.clone()));
        if let Some(f) = &o.father_name {
            out.push((format!("owners[{i}].father_name"), Group::Father, f.clone()));
        }
    }
    out.push(("district".into(), Group::Place, r.district.clone()));
    out.push(("mandal".into(), Group::Place, r.mandal.clone()));
    out.push(("village".into(), Group::Place, r.village.clone()));
    out
}

/// How one query word matched: (kind, typos, field index, doc word indexes).
#[derive(Clone)]
struct WordMatch {
    kind: MatchKind,
    typos: u32,
    group: Group,
    field: usize,
    spans: Vec<(usize, usize)>,
}

impl WordMatch {
    fn quality(&self) -> (u32, MatchKind, Group) {
        (self.typos, self.kind, self.group)
    }
}

/// A candidate with its ranking key.
pub(super) struct Ranked {
    pub(super) bm25: f32,
    pub(super) record: Record,
    pub(super) matched: usize,
    pub(super) initials: usize,
    pub(super) typos: u32,
    pub(super) best_field_cover: usize,
    pub(super) kind_sum: u32,
    pub(super) group_sum: u32,
    pub(super) key: String,
    pub(super) highlights: Vec<Highlight>,
}

pub(super) fn rank_cmp(a: &Ranked, b: &Ranked) -> Ordering {
    b.matched
        .cmp(&a.matched)
        .then(a.typos.cmp(&b.typos))
        .then(b.initials.cmp(&a.initials))
        .then(b.best_field_cover.cmp(&a.best_field_cover))
        .then(a.kind_sum.cmp(&b.kind_sum))
        .then(a.group_sum.cmp(&b.group_sum))
        .then(b.bm25.total_cmp(&a.bm25))
        .then(a.key.cmp(&b.key))
}

/// Matches the query words against one record (the Rust side of every tier).
fn match_record(
    p: &Parsed,
    tier: u8,
    r: &Record,
) -> (Vec<Option<WordMatch>>, Vec<(String, String)>) {
    let fields = record_fields(r);
    let mut dws: Vec<DocWord> = Vec::new();
    for (fi, (_, _, text)) in fields.iter().enumerate() {
        for w in analysis::words(text) {
            dws.push(DocWord { field: fi, word: w });
        }
    }
    let n = p.words.len();
    let mut best: Vec<Option<WordMatch>> = vec![None; n];
    let offer = |qi: usize, m: WordMatch, best: &mut Vec<Option<WordMatch>>| {
        let better = match &best[qi] {
            None => true,
            Some(b) => m.quality() < b.quality(),
        };
        if better {
            best[qi] = Some(m);
        }
    };
    for (qi, q) in p.words.iter().enumerate() {
        let is_partial = p.partial_last && qi + 1 == n;
        for dw in &dws {
            let w = &dw.word;
            let group = fields[dw.field].1;
            let kind = if w.orig == q.orig {
                Some((MatchKind::Exact, 0))
            } else if w.fold == q.fold {
                Some((MatchKind::Fold, 0))
            } else if w.phon == q.phon {
                Some((MatchKind::Phonetic, 0))
            } else if is_partial && q.fold.len() >= 2 && w.fold.starts_with(&q.fold) {
                Some((MatchKind::Prefix, 0))
            } else if tier >= 2 {
                typos(&q.fold, &w.fold)
                    .or_else(|| {
                        (q.phon.len() >= 4
                            && q.phon.len().abs_diff(w.phon.len()) <= 1
                            && q.phon.as_bytes().first() == w.phon.as_bytes().first()
                            && distance(&q.phon, &w.phon) <= 1)
                            .then_some(1)
                    })
                    .map(|t| (MatchKind::Fuzzy, t))
            } else {
                None
            };
            if let Some((kind, t)) = kind {
                offer(
                    qi,
                    WordMatch {
                        kind,
                        typos: t,
                        group,
                        field: dw.field,
                        spans: vec![(w.start, w.end)],
                    },
                    &mut best,
                );
            }
        }
    }
    if tier >= 3 {
        // Query words joined meet one record word; one query word meets record words joined.
        for qi in 0..n.saturating_sub(1) {
            let key = phon_of_fold(&format!("{}{}", p.words[qi].fold, p.words[qi + 1].fold));
            for dw in &dws {
                if dw.word.phon == key {
                    let m = WordMatch {
                        kind: MatchKind::Join,
                        typos: 0,
                        group: fields[dw.field].1,
                        field: dw.field,
                        spans: vec![(dw.word.start, dw.word.end)],
                    };
                    offer(qi, m.clone(), &mut best);
                    offer(qi + 1, m, &mut best);
                }
            }
        }
        let pairs: Vec<(&[DocWord], String)> = dws
            .windows(2)
            .filter(|p| p[0].field == p[1].field)
            .map(|p| {
                (
                    p,
                    phon_of_fold(&format!("{}{}", p[0].word.fold, p[1].word.fold)),
                )
            })
            .collect();
        for (qi, q) in p.words.iter().enumerate() {
            for (pair, key) in &pairs {
                if *key == q.phon {
                    let m = WordMatch {
                        kind: MatchKind::Join,
                        typos: 0,
                        group: fields[pair[0].field].1,
                        field: pair[0].field,
                        spans: vec![
                            (pair[0].word.start, pair[0].word.end),
                            (pair[1].word.start, pair[1].word.end),
                        ],
                    };
                    offer(qi, m, &mut best);
                }
            }
        }
    }
    let labels = fields.into_iter().map(|(l, _, t)| (l, t)).collect();
    (best, labels)
}

fn char_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = text.get(..start).map_or(0, |t| t.chars().count());
    let e = text.get(..end).map_or(s, |t| t.chars().count());
    (s, e)
}

pub(super) fn rank(bm25: f32, record: Record, p: &Parsed, tier: u8) -> Ranked {
    let (best, labels) = match_record(p, tier, &record);
    let mut per_field: Vec<usize> = vec![0; labels.len()];
    let mut hl: Vec<Highlight> = Vec::new();
    let (mut matched, mut initials, mut typos, mut kind_sum, mut group_sum) = (0, 0, 0, 0, 0);
    for (q, m) in p.words.iter().zip(&best) {
        let Some(m) = m else { continue };
        if is_strong(q) {
            matched += 1;
        } else {
            initials += 1;
        }
        typos += m.typos;
        kind_sum += m.kind as u32;
        group_sum += m.group as u32;
        per_field[m.field] += 1;
        let (label, text) = &labels[m.field];
        let pos = match hl.iter().position(|h| &h.field == label) {
            Some(i) => i,
            None => {
                hl.push(Highlight {
                    field: label.clone(),
                    text: text.clone(),
                    ranges: vec![],
                    kind: m.kind,
                });
                hl.len() - 1
            }
        };
        let h = &mut hl[pos];
        h.kind = h.kind.max(m.kind);
        for &(s, e) in &m.spans {
            let r = char_range(text, s, e);
            if !h.ranges.contains(&r) {
                h.ranges.push(r);
            }
        }
    }
    for h in &mut hl {
        h.ranges.sort();
    }
    Ranked {
        bm25,
        key: crate::index::id_key(&record.property_id),
        record,
        matched,
        initials,
        typos,
        best_field_cover: per_field.into_iter().max().unwrap_or(0),
        kind_sum,
        group_sum,
        highlights: hl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_budget_by_length() {
        assert_eq!(typo_budget(4), 0);
        assert_eq!(typo_budget(5), 1);
        assert_eq!(typo_budget(8), 1);
        assert_eq!(typo_budget(9), 2);
    }

    #[test]
    fn distance_counts_transpositions_once() {
        assert_eq!(distance("ramesh", "ramesh"), 0);
        assert_eq!(distance("ramesh", "rmaesh"), 1);
        assert_eq!(distance("ramesh", "ramsh"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("ca", "abc"), 3);
        assert_eq!(distance("లక్ష్మి", "లక్మి"), 2);
        let long = "a".repeat(60);
        assert_eq!(distance(&long, &"a".repeat(58)), 2);
    }

    #[test]
    fn first_letter_typo_counts_double() {
        assert_eq!(typos("ramesh", "rameshh"), Some(1));
        assert_eq!(typos("ramesh", "bamesh"), None);
        assert_eq!(typos("satyanarayana", "datyanarayana"), None);
        assert_eq!(typos("ravi", "rvai"), None); // short words get no typos
        assert_eq!(typos("satyanarayana", "satyanarayna"), Some(1));
    }
}
