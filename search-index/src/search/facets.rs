//! Facet counts from fast-field columns over the matched documents (see
//! [`crate::index::FACET_COLUMNS`] for why not tantivy's facets).

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::{FacetValue, Facets, Filter, MAX_FACET_VALUES};
use crate::index::{FACET_COLUMNS, LABEL_SEP};

/// Which columns a search counts: the place level below the deepest place filtered on
/// (states; districts of the filtered state; mandals of the filtered district; villages of
/// the filtered mandal), land type and status.
#[derive(Debug, Clone, Copy)]
pub(super) struct FacetSpec {
    /// Index into [`FACET_COLUMNS`] of the place level counted.
    place: usize,
}

impl FacetSpec {
    pub(super) fn for_filter(f: &Filter) -> FacetSpec {
        let place = match (&f.state, &f.district, &f.mandal) {
            (None, _, _) => 0,
            (Some(_), None, _) => 1,
            (Some(_), Some(_), None) => 2,
            (Some(_), Some(_), Some(_)) => 3,
        };
        FacetSpec { place }
    }

    fn columns(self) -> [&'static str; 3] {
        [
            FACET_COLUMNS[self.place],
            FACET_COLUMNS[4],
            FACET_COLUMNS[5],
        ]
    }
}

/// Counts per column value (`key` or `key␟label`) among the collected documents.
pub(super) struct FacetCounter(pub(super) FacetSpec);

pub(super) struct SegmentCounts {
    cols: Vec<Option<StrColumn>>,
    counts: Vec<Vec<u32>>,
}

/// Per counted column, value → documents.
pub(super) type Counts = Vec<HashMap<String, u64>>;

impl Collector for FacetCounter {
    type Fruit = Counts;
    type Child = SegmentCounts;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentCounts> {
        let mut cols = Vec::new();
        let mut counts = Vec::new();
        for name in self.0.columns() {
            let col = reader.fast_fields().str(name)?;
            counts.push(vec![0; col.as_ref().map_or(0, |c| c.num_terms())]);
            cols.push(col);
        }
        Ok(SegmentCounts { cols, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Counts>) -> tantivy::Result<Counts> {
        let mut out: Counts = vec![HashMap::new(); 3];
        for fruit in fruits {
            for (acc, m) in out.iter_mut().zip(fruit) {
                for (k, n) in m {
                    *acc.entry(k).or_default() += n;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentCounts {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (col, counts) in self.cols.iter().zip(&mut self.counts) {
            if let Some(ord) = col.as_ref().and_then(|c| c.ords().first(doc)) {
                if let Some(n) = counts.get_mut(ord as usize) {
                    *n += 1;
                }
            }
        }
    }

    fn harvest(self) -> Counts {
        let mut out = Vec::with_capacity(self.cols.len());
        for (col, counts) in self.cols.iter().zip(self.counts) {
            let mut m = HashMap::new();
            if let Some(col) = col {
                let mut s = String::new();
                for (ord, n) in counts.into_iter().enumerate() {
                    // A dictionary the column was written with always holds its ordinals; a
                    // failed read only loses that value's count.
                    if n > 0 && col.ord_to_str(ord as u64, &mut s).unwrap_or(false) {
                        m.insert(s.clone(), u64::from(n));
                    }
                }
            }
            out.push(m);
        }
        out
    }
}

/// One facet list: values grouped by key (spellings of one place share it), labelled with
/// the most frequent spelling, most frequent first, at most [`MAX_FACET_VALUES`].
fn list(counts: &HashMap<String, u64>) -> Vec<FacetValue> {
    let mut by_key: HashMap<&str, (u64, &str, u64)> = HashMap::new();
    for (v, &n) in counts {
        let (key, label) = v.split_once(LABEL_SEP).unwrap_or((v.as_str(), v.as_str()));
        let e = by_key.entry(key).or_insert((0, label, 0));
        e.0 += n;
        if n > e.2 || (n == e.2 && label < e.1) {
            (e.1, e.2) = (label, n);
        }
    }
    let mut out: Vec<FacetValue> = by_key
        .into_iter()
        .map(|(key, (count, label, _))| FacetValue {
            value: key.to_string(),
            label: label.to_string(),
            count,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
    out.truncate(MAX_FACET_VALUES);
    out
}

pub(super) fn facets(counts: &Counts) -> Facets {
    let get = |i: usize| counts.get(i).map(list).unwrap_or_default();
    Facets {
        places: get(0),
        land_types: get(1),
        statuses: get(2),
    }
}
