//! Matching query words against a candidate record and ordering candidates: the part of
//! ranking tantivy cannot do (which form matched, typos spent, which field, which script).

use std::cmp::Ordering;

use ledger::model::Record;

use super::{Highlight, MatchKind};
use crate::analysis::{self, Analysed, Word};
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
    /// Phonetic keys of adjacent query words joined (`pairs[i]`: words i and i + 1).
    pub(super) pairs: Vec<String>,
    /// How the unfinished last word is matched (`SearchIndex::expand_prefix`).
    pub(super) prefix: Option<[super::prefix::Prefix; crate::index::GROUPS]>,
}

impl Parsed {
    pub(super) fn new(words: Vec<Word>, partial_last: bool) -> Parsed {
        Parsed {
            pairs: analysis::joined(&words),
            words,
            partial_last,
            prefix: None,
        }
    }
}

/// A candidate as read from the index: its BM25 score, record and former owner names.
pub(super) struct Loaded {
    pub(super) bm25: f32,
    pub(super) record: Record,
    pub(super) former: Vec<String>,
}

/// Which text of a record a word is in (rendered only for the highlights of a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    OwnerName(usize),
    FatherName(usize),
    District,
    Mandal,
    Village,
    FormerName(usize),
}

impl Label {
    fn render(self) -> String {
        match self {
            Label::OwnerName(i) => format!("owners[{i}].name"),
            Label::FatherName(i) => format!("owners[{i}].father_name"),
            Label::District => "district".into(),
            Label::Mandal => "mandal".into(),
            Label::Village => "village".into(),
            Label::FormerName(i) => format!("former_names[{i}]"),
        }
    }
}

/// A record's searchable texts: (label, group, text), borrowed from the record and its
/// former owner names.
fn record_fields<'a>(r: &'a Record, former: &'a [String]) -> Vec<(Label, Group, &'a str)> {
    let mut out = Vec::with_capacity(2 * r.owners.len() + 3 + former.len());
    for (i, o) in r.owners.iter().enumerate() {
        out.push((Label::OwnerName(i), Group::Owner, o.name.as_str()));
        if let Some(f) = &o.father_name {
            out.push((Label::FatherName(i), Group::Father, f.as_str()));
        }
    }
    out.push((Label::District, Group::Place, r.district.as_str()));
    out.push((Label::Mandal, Group::Place, r.mandal.as_str()));
    out.push((Label::Village, Group::Place, r.village.as_str()));
    for (i, name) in former.iter().enumerate() {
        out.push((Label::FormerName(i), Group::Former, name.as_str()));
    }
    out
}

/// How one query word matched: kind, typos, where (field index into [`record_fields`])
/// and the byte ranges of the record words it met (one, or two for a split word).
#[derive(Clone, Debug)]
struct WordMatch {
    kind: MatchKind,
    typos: u32,
    group: Group,
    field: usize,
    spans: [(usize, usize); 2],
    two: bool,
}

impl WordMatch {
    fn quality(&self) -> (u32, MatchKind, Group) {
        (self.typos, self.kind, self.group)
    }
    fn spans(&self) -> &[(usize, usize)] {
        &self.spans[..if self.two { 2 } else { 1 }]
    }
}

/// A candidate with its ranking key. Highlights are made only for the page shown
/// ([`Ranked::highlights`]): they were built for all 200 candidates (labels, texts and
/// char ranges copied per record) and 190 of them thrown away.
pub(super) struct Ranked {
    pub(super) bm25: f32,
    pub(super) record: Record,
    pub(super) former: Vec<String>,
    pub(super) matched: usize,
    pub(super) initials: usize,
    pub(super) typos: u32,
    pub(super) best_field_cover: usize,
    pub(super) kind_sum: u32,
    pub(super) group_sum: u32,
    /// Query words whose best match is in a former owner name.
    pub(super) former_words: u32,
    /// Words of the best-covered text that no query word matched ("Sri Ravi Kumar Reddy"
    /// has two for "ravi kumar").
    pub(super) extra_words: usize,
    pub(super) key: String,
    /// The best match of each query word.
    best: Vec<Option<WordMatch>>,
    /// Highlights that come before the words' (ID, survey or khata number).
    pub(super) first_highlights: Vec<Highlight>,
}

pub(super) fn rank_cmp(a: &Ranked, b: &Ranked) -> Ordering {
    b.matched
        .cmp(&a.matched)
        .then(a.typos.cmp(&b.typos))
        .then(b.initials.cmp(&a.initials))
        // A name the record no longer carries ranks below a current one, whatever script
        // or spelling the current one is matched in.
        .then(a.former_words.cmp(&b.former_words))
        .then(b.best_field_cover.cmp(&a.best_field_cover))
        // An owner's name before a father's, whatever script it is written in.
        .then(a.group_sum.cmp(&b.group_sum))
        // The name closest to what was typed: fewest words the query did not ask for.
        .then(a.extra_words.cmp(&b.extra_words))
        .then(a.kind_sum.cmp(&b.kind_sum))
        .then(b.bm25.total_cmp(&a.bm25))
        .then(a.key.cmp(&b.key))
}

/// Matches the query words against one record (the Rust side of every tier): the best
/// match of each query word, and each text's number of words.
fn match_record(
    p: &Parsed,
    tier: u8,
    r: &Record,
    former: &[String],
) -> (Vec<Option<WordMatch>>, Vec<usize>) {
    let fields = record_fields(r, former);
    let analysed: Vec<Analysed> = fields
        .iter()
        .map(|(_, _, text)| Analysed::of(text))
        .collect();
    let lengths = analysed.iter().map(|a| a.words.len()).collect();
    // (field index, word) of every record word, in order.
    let dws: Vec<(usize, &Word)> = analysed
        .iter()
        .enumerate()
        .flat_map(|(fi, a)| a.words.iter().map(move |w| (fi, w)))
        .collect();
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
    let one = |kind, typos, field: usize, w: &Word| WordMatch {
        kind,
        typos,
        group: fields[field].1,
        field,
        spans: [(w.start, w.end); 2],
        two: false,
    };
    for (qi, q) in p.words.iter().enumerate() {
        let is_partial = p.partial_last && qi + 1 == n;
        for &(fi, w) in &dws {
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
                offer(qi, one(kind, t, fi, w), &mut best);
            }
        }
    }
    if tier >= 3 {
        // Query words joined meet one record word; one query word meets record words joined.
        for (qi, key) in p.pairs.iter().enumerate() {
            for &(fi, w) in &dws {
                if w.phon == *key {
                    let m = one(MatchKind::Join, 0, fi, w);
                    offer(qi, m.clone(), &mut best);
                    offer(qi + 1, m, &mut best);
                }
            }
        }
        // Adjacent words of one record text, joined (analysed with the text).
        let pairs = analysed.iter().enumerate().flat_map(|(fi, a)| {
            a.joined
                .iter()
                .zip(a.words.windows(2))
                .map(move |(key, w)| (fi, key, &w[0], &w[1]))
        });
        for (fi, key, a, b) in pairs {
            for (qi, q) in p.words.iter().enumerate() {
                if *key == q.phon {
                    let m = WordMatch {
                        kind: MatchKind::Join,
                        typos: 0,
                        group: fields[fi].1,
                        field: fi,
                        spans: [(a.start, a.end), (b.start, b.end)],
                        two: true,
                    };
                    offer(qi, m, &mut best);
                }
            }
        }
    }
    (best, lengths)
}

fn char_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = text.get(..start).map_or(0, |t| t.chars().count());
    let e = text.get(..end).map_or(s, |t| t.chars().count());
    (s, e)
}

pub(super) fn rank(loaded: Loaded, p: &Parsed, tier: u8) -> Ranked {
    let Loaded {
        bm25,
        record,
        former,
    } = loaded;
    let (best, lengths) = match_record(p, tier, &record, &former);
    let mut per_field: Vec<usize> = vec![0; 2 * record.owners.len() + 3 + former.len()];
    let (mut matched, mut initials, mut typos, mut kind_sum, mut group_sum) = (0, 0, 0, 0, 0);
    let mut former_words = 0;
    for (q, m) in p.words.iter().zip(&best) {
        let Some(m) = m else { continue };
        if is_strong(q) {
            matched += 1;
        } else {
            initials += 1;
        }
        typos += m.typos;
        // Another script's spelling of the same word is as good as the same spelling.
        kind_sum += match m.kind {
            MatchKind::Fold => MatchKind::Exact as u32,
            k => k as u32,
        };
        group_sum += m.group as u32;
        former_words += u32::from(m.group == Group::Former);
        if let Some(c) = per_field.get_mut(m.field) {
            *c += 1;
        }
    }
    let (best_field, best_field_cover) = per_field
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|&(i, c)| {
            let extra = lengths.get(i).map_or(0, |n: &usize| n.saturating_sub(c));
            (c, std::cmp::Reverse(extra), std::cmp::Reverse(i))
        })
        .unwrap_or((0, 0));
    let extra_words = lengths
        .get(best_field)
        .map_or(0, |n: &usize| n.saturating_sub(best_field_cover));
    Ranked {
        bm25,
        key: crate::index::id_key(&record.property_id),
        record,
        former,
        matched,
        initials,
        typos,
        best_field_cover,
        extra_words,
        kind_sum,
        group_sum,
        former_words,
        best,
        first_highlights: Vec::new(),
    }
}

impl Ranked {
    /// Whether a query word found its best match in a former owner name.
    pub(super) fn matched_former_name(&self) -> bool {
        self.best.iter().flatten().any(|m| m.group == Group::Former)
    }

    /// The highlights of this hit: [`Ranked::first_highlights`], then one per record text
    /// that a query word matched, with the matched char ranges.
    pub(super) fn highlights(&self) -> Vec<Highlight> {
        let fields = record_fields(&self.record, &self.former);
        let mut hl = self.first_highlights.clone();
        let words_from = hl.len();
        let mut labels: Vec<Label> = Vec::new();
        for m in self.best.iter().flatten() {
            let Some(&(label, _, text)) = fields.get(m.field) else {
                continue;
            };
            let pos = match labels.iter().position(|l| *l == label) {
                Some(i) => words_from + i,
                None => {
                    labels.push(label);
                    hl.push(Highlight {
                        field: label.render(),
                        text: text.to_string(),
                        ranges: vec![],
                        kind: m.kind,
                    });
                    hl.len() - 1
                }
            };
            let h = &mut hl[pos];
            h.kind = h.kind.max(m.kind);
            for &(s, e) in m.spans() {
                let r = char_range(text, s, e);
                if !h.ranges.contains(&r) {
                    h.ranges.push(r);
                }
            }
        }
        for h in &mut hl[words_from..] {
            h.ranges.sort();
        }
        hl
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
