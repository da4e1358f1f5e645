//! The searcher: query routing, tiered matching, re-ranking in Rust, highlights, facets and
//! stable paging.
//!
//! Tantivy finds candidates; the order a person finds natural (more words matched, fewer
//! typos, exact script, owner before father before place) is computed here over the top few
//! hundred, because tantivy scores every fuzzy hit alike and cannot tell which form matched.

mod rank;

use ledger::model::{Record, VerificationStatus};
use ledger::PropertyId;
use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use crate::analysis::{self, phon, place_key, survey_key, Word};
use crate::index::{plain_key, squash_id, Group, SearchIndex};
use crate::Error;

pub use rank::{distance, typo_budget};
use rank::{is_strong, rank, rank_cmp, Parsed, Ranked};

/// Candidates re-ranked per query (and the deepest page reachable).
const CANDIDATES: usize = 200;
/// Score given to each matched query word, so that tantivy's top candidates are those that
/// match most words whatever their BM25 (which is added on top and breaks ties).
const WORD_SCORE: f32 = 100.0;
/// Weight of BM25 next to [`WORD_SCORE`]: per word it stays well below 100.
const BM25_WEIGHT: f32 = 0.01;

/// Restricts results; place values are matched after normalisation ("Ranga Reddy" =
/// "K.V.Rangareddy").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<String>,
    pub district: Option<String>,
    pub mandal: Option<String>,
    pub village: Option<String>,
    pub land_type: Option<String>,
    pub status: Option<VerificationStatus>,
}

/// One search. `after` is the `next` cursor of the previous page.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub text: String,
    pub filter: Filter,
    pub first: usize,
    pub after: Option<String>,
}

/// How a query word met a word of the record, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Same word in the same script.
    Exact,
    /// Same Latin fold (other script, or case/diacritics).
    Fold,
    /// Same phonetic key or synonym (a spelling variant).
    Phonetic,
    /// The record's word starts with the (last, unfinished) query word.
    Prefix,
    /// Within the typo budget of the word's length.
    Fuzzy,
    /// Run-together vs split words.
    Join,
    /// The property ID, survey or khata number.
    Identifier,
}

/// A highlighted field of a hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Highlight {
    /// `owners[0].name`, `owners[1].father_name`, `district`, `mandal`, `village`,
    /// `survey_no`, `khata_no` or `property_id`.
    pub field: String,
    /// The field's text as stored (original script).
    pub text: String,
    /// Matched char ranges (start, end), in chars, not bytes.
    pub ranges: Vec<(usize, usize)>,
    /// The weakest kind of match among the ranges.
    pub kind: MatchKind,
}

/// One result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: PropertyId,
    /// tantivy's score (matched words × 100 + BM25); the order itself is the re-ranked one.
    pub score: f32,
    /// Query words matched and typos spent.
    pub matched_words: usize,
    pub typos: u32,
    pub highlights: Vec<Highlight>,
    pub record: Record,
}

/// One facet value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetValue {
    /// The normalised key: pass it back as a [`Filter`] value. Spelling variants of a place
    /// ("K.V.Rangareddy", "Ranga Reddy") share one key and one count.
    pub value: String,
    /// One spelling of it as found in the records, for display.
    pub label: String,
    pub count: u64,
}

/// Counts per value among all matching documents, most frequent first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    /// Children of the deepest place level filtered on: states, or the districts of the
    /// filtered state, or the mandals of the filtered district, or their villages.
    pub places: Vec<FacetValue>,
    pub land_types: Vec<FacetValue>,
    pub statuses: Vec<FacetValue>,
}

/// Place facet values listed at most.
const MAX_FACET_VALUES: usize = 50;

/// Which route the query took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    PropertyId,
    Survey,
    /// Names and places; the number is the deepest matching tier used (1 exact+phonetic,
    /// 2 typos, 3 join/split).
    Names(u8),
}

/// The answer to a [`SearchRequest`].
#[derive(Debug, Clone, Serialize)]
pub struct SearchResponse {
    /// Documents matching at least one query word (or the ID/number), after filters.
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    /// Cursor of the next page, if there is one.
    pub next: Option<String>,
    pub route: Route,
}

fn term(f: tantivy::schema::Field, s: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(f, s),
        IndexRecordOption::WithFreqs,
    ))
}

fn parse_cursor(after: &Option<String>) -> Result<usize, Error> {
    match after {
        None => Ok(0),
        Some(c) => c
            .strip_prefix('o')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::BadCursor(c.clone())),
    }
}

/// A property-ID shape once squashed: "LRIIND" + state + year + digits.
fn looks_like_id(squashed: &str) -> bool {
    squashed.len() >= 18
        && squashed.starts_with("LRIIND")
        && squashed[6..8].chars().all(|c| c.is_ascii_alphabetic())
        && squashed[8..].chars().all(|c| c.is_ascii_digit())
}

impl SearchIndex {
    fn filter_clauses(&self, f: &Filter) -> Vec<(Occur, Box<dyn Query>)> {
        let fl = &self.fields;
        let mut out = Vec::new();
        if let Some(s) = &f.state {
            out.push((Occur::Must, term(fl.state, &s.trim().to_ascii_uppercase())));
        }
        for (v, field) in [
            (&f.district, fl.district),
            (&f.mandal, fl.mandal),
            (&f.village, fl.village),
        ] {
            if let Some(v) = v {
                out.push((Occur::Must, term(field, &place_key(v))));
            }
        }
        if let Some(t) = &f.land_type {
            out.push((Occur::Must, term(fl.land_type, &plain_key(t))));
        }
        if let Some(s) = f.status {
            out.push((Occur::Must, term(fl.status, s.as_str())));
        }
        out
    }

    /// Clauses for one query word at a tier (tier 3's joined pairs are added by the caller).
    fn word_clauses(&self, q: &Word, partial: bool, tier: u8) -> Vec<Box<dyn Query>> {
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        for g in Group::ALL {
            let gf = self.fields.group(g);
            out.push(term(gf.orig, &q.orig));
            out.push(term(gf.fold, &q.fold));
            out.push(term(gf.phon, &q.phon));
            if partial && q.fold.len() >= 2 {
                out.push(term(gf.prefix, &q.fold));
            }
            if tier >= 2 {
                let budget = typo_budget(q.fold.chars().count()) as u8;
                if budget > 0 {
                    out.push(Box::new(FuzzyTermQuery::new(
                        Term::from_field_text(gf.fold, &q.fold),
                        budget,
                        true,
                    )));
                }
                if q.phon.len() >= 4 {
                    out.push(Box::new(FuzzyTermQuery::new(
                        Term::from_field_text(gf.phon, &q.phon),
                        1,
                        true,
                    )));
                }
            }
            if tier >= 3 {
                out.push(term(gf.join, &q.phon));
            }
        }
        out
    }

    fn names_query(&self, p: &Parsed, tier: u8) -> BooleanQuery {
        let n = p.words.len();
        let mut per_word: Vec<Vec<Box<dyn Query>>> = p
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| self.word_clauses(w, p.partial_last && i + 1 == n, tier))
            .collect();
        if tier >= 3 {
            for i in 0..n.saturating_sub(1) {
                let key = phon(&format!("{}{}", p.words[i].fold, p.words[i + 1].fold));
                for g in Group::ALL {
                    let f = self.fields.group(g).phon;
                    per_word[i].push(term(f, &key));
                    per_word[i + 1].push(term(f, &key));
                }
            }
        }
        let mut words: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (clauses, w) in per_word.into_iter().zip(&p.words) {
            let any = BooleanQuery::new(clauses.into_iter().map(|c| (Occur::Should, c)).collect());
            let weight = if is_strong(w) { WORD_SCORE } else { 1.0 };
            words.push((
                Occur::Should,
                Box::new(ConstScoreQuery::new(Box::new(any), weight)),
            ));
            // BM25 over the plain terms only (fuzzy hits all score alike in tantivy, and
            // running their automata twice would double the cost), scaled down so that it
            // only orders documents matching the same number of words: a score ≥ 100 × n
            // then means "all n words matched".
            let mut exact: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for g in Group::ALL {
                let gf = self.fields.group(g);
                exact.push((Occur::Should, term(gf.orig, &w.orig)));
                exact.push((Occur::Should, term(gf.fold, &w.fold)));
                exact.push((Occur::Should, term(gf.phon, &w.phon)));
            }
            let bm25 = BooleanQuery::new(exact);
            words.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(bm25), BM25_WEIGHT)),
            ));
        }
        BooleanQuery::new(words)
    }

    /// Top candidates by tantivy score, and how many documents match.
    fn top(
        &self,
        searcher: &Searcher,
        q: &dyn Query,
        limit: usize,
    ) -> Result<(Vec<(f32, DocAddress)>, usize), Error> {
        Ok(searcher.search(q, &(TopDocs::with_limit(limit), Count))?)
    }

    /// The stored records of candidates (only for the final tier: the doc store is the
    /// expensive part).
    fn load(
        &self,
        searcher: &Searcher,
        top: Vec<(f32, DocAddress)>,
    ) -> Result<Vec<(f32, Record)>, Error> {
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let d: TantivyDocument = searcher.doc(addr)?;
            let Some(json) = d.get_first(self.fields.record).and_then(|v| v.as_str()) else {
                continue;
            };
            out.push((score, serde_json::from_str(json)?));
        }
        Ok(out)
    }

    fn facets(&self, searcher: &Searcher, q: &dyn Query, f: &Filter) -> Result<Facets, Error> {
        let mut root = String::new();
        if let Some(s) = &f.state {
            root = format!("/{}", s.trim().to_ascii_uppercase());
            if let Some(d) = &f.district {
                root.push('/');
                root.push_str(&place_key(d));
                if let Some(m) = &f.mandal {
                    root.push('/');
                    root.push_str(&place_key(m));
                }
            }
        }
        let root = if root.is_empty() {
            "/".to_string()
        } else {
            root
        };
        let mut loc = FacetCollector::for_field("loc");
        loc.add_facet(root.as_str());
        let mut ty = FacetCollector::for_field("type");
        ty.add_facet("/");
        let mut st = FacetCollector::for_field("status_f");
        st.add_facet("/");
        let (loc, ty, st) = searcher.search(q, &(loc, ty, st))?;
        let list = |c: &tantivy::collector::FacetCounts, r: &str| -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = c
                .get(r)
                .map(|(f, n)| {
                    (
                        f.to_path()
                            .last()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        n,
                    )
                })
                .collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(MAX_FACET_VALUES);
            v
        };
        let fl = &self.fields;
        let depth = root.matches('/').count() - usize::from(root == "/");
        let place_field = [None, Some(fl.district), Some(fl.mandal), Some(fl.village)]
            .get(depth)
            .copied()
            .flatten();
        let labelled = |vals: Vec<(String, u64)>,
                        field: Option<tantivy::schema::Field>,
                        pick: fn(&Record) -> String|
         -> Result<Vec<FacetValue>, Error> {
            vals.into_iter()
                .map(|(value, count)| {
                    let label = match field {
                        None => value.clone(),
                        Some(f) => {
                            let (top, _) = self.top(searcher, &*term(f, &value), 1)?;
                            self.load(searcher, top)?
                                .first()
                                .map(|(_, r)| pick(r))
                                .unwrap_or_else(|| value.clone())
                        }
                    };
                    Ok(FacetValue {
                        value,
                        label,
                        count,
                    })
                })
                .collect()
        };
        let place_pick: fn(&Record) -> String = match depth {
            1 => |r| r.district.clone(),
            2 => |r| r.mandal.clone(),
            _ => |r| r.village.clone(),
        };
        Ok(Facets {
            places: labelled(list(&loc, &root), place_field, place_pick)?,
            land_types: labelled(list(&ty, "/"), Some(fl.land_type), |r| r.land_type.clone())?,
            statuses: labelled(list(&st, "/"), None, |r| r.land_type.clone())?,
        })
    }

    /// Runs one search (see the module docs for the order of results).
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse, Error> {
        let started = std::time::Instant::now();
        let offset = parse_cursor(&req.after)?;
        let first = req.first.clamp(1, 100);
        let limit = CANDIDATES.max(offset + first + 1);
        let searcher = self.reader.searcher();
        let filters = self.filter_clauses(&req.filter);
        let with_filters = |q: Box<dyn Query>| -> BooleanQuery {
            let mut c = vec![(Occur::Must, q)];
            c.extend(filters.iter().map(|(o, q)| (*o, q.box_clone())));
            BooleanQuery::new(c)
        };
        let text = req.text.trim();
        let squashed = squash_id(text);

        // Route 1: a property ID in any form.
        let (route, query, ranked, total) = if looks_like_id(&squashed) {
            let q = with_filters(term(self.fields.id_terms, &squashed));
            let (top, total) = self.top(&searcher, &q, limit)?;
            let ranked = self
                .load(&searcher, top)?
                .into_iter()
                .map(|(s, r)| {
                    let idt = r.property_id.to_string();
                    let n = idt.chars().count();
                    let mut x = rank(
                        s,
                        r,
                        &Parsed {
                            words: vec![],
                            partial_last: false,
                        },
                        1,
                    );
                    x.matched = 1;
                    x.highlights = vec![Highlight {
                        field: "property_id".into(),
                        text: idt,
                        ranges: vec![(0, n)],
                        kind: MatchKind::Identifier,
                    }];
                    x
                })
                .collect::<Vec<_>>();
            (Route::PropertyId, q, ranked, total)
        } else {
            let all = analysis::words(text);
            let partial_last = !req.text.ends_with(char::is_whitespace);
            // Route 2: a survey/khata number: the first word starting with a digit, with
            // the short words after it ("123 A"); other words are place (or name) words.
            if let Some(si) = all
                .iter()
                .position(|w| w.fold.starts_with(|c: char| c.is_ascii_digit()))
            {
                let mut end = si + 1;
                while end < all.len()
                    && (all[end].fold.len() <= 2
                        || all[end].fold.starts_with(|c: char| c.is_ascii_digit()))
                {
                    end += 1;
                }
                let key = survey_key(&text[all[si].start..all[end - 1].end]);
                let rest: Vec<Word> = all[..si].iter().chain(&all[end..]).cloned().collect();
                let p = Parsed {
                    words: rest,
                    partial_last: partial_last && end < all.len(),
                };
                let num = BooleanQuery::new(vec![
                    (
                        Occur::Should,
                        Box::new(ConstScoreQuery::new(term(self.fields.survey, &key), 2.0))
                            as Box<dyn Query>,
                    ),
                    (
                        Occur::Should,
                        Box::new(ConstScoreQuery::new(term(self.fields.khata, &key), 1.0)),
                    ),
                ]);
                // Within the place (or name) words given: they must match, exactly or
                // phonetically, then with typos; only if nothing matches them does the
                // number alone decide.
                let attempt = |occur: Option<(Occur, u8)>| -> Result<_, Error> {
                    let mut c: Vec<(Occur, Box<dyn Query>)> =
                        vec![(Occur::Must, Box::new(num.clone()))];
                    if let Some((o, tier)) = occur {
                        c.push((o, Box::new(self.names_query(&p, tier))));
                    }
                    let q = with_filters(Box::new(BooleanQuery::new(c)));
                    let (top, total) = self.top(&searcher, &q, limit)?;
                    Ok((q, top, total))
                };
                let (mut q, mut top, mut total) = (None, Vec::new(), 0);
                let tries: &[Option<(Occur, u8)>] = if p.words.is_empty() {
                    &[None]
                } else {
                    &[
                        Some((Occur::Must, 1)),
                        Some((Occur::Must, 2)),
                        Some((Occur::Should, 1)),
                    ]
                };
                for t in tries {
                    let (q1, top1, total1) = attempt(*t)?;
                    (q, top, total) = (Some(q1), top1, total1);
                    if total > 0 {
                        break;
                    }
                }
                let q = q.unwrap_or_else(|| with_filters(Box::new(num.clone())));
                let ranked = self
                    .load(&searcher, top)?
                    .into_iter()
                    .map(|(s, r)| {
                        let mut x = rank(s, r, &p, 2);
                        let (field, val) = if survey_key(&x.record.survey_no) == key {
                            ("survey_no", x.record.survey_no.clone())
                        } else {
                            ("khata_no", x.record.khata_no.clone().unwrap_or_default())
                        };
                        let n = val.chars().count();
                        x.highlights.insert(
                            0,
                            Highlight {
                                field: field.into(),
                                text: val,
                                ranges: vec![(0, n)],
                                kind: MatchKind::Identifier,
                            },
                        );
                        x
                    })
                    .collect();
                (Route::Survey, q, ranked, total)
            } else {
                // Route 3: names and places, tier by tier while too few match every word.
                let p = Parsed {
                    words: all,
                    partial_last,
                };
                let strong = p.words.iter().filter(|w| is_strong(w)).count();
                let need = first.max(10);
                let mut tier = 1;
                loop {
                    let q = with_filters(Box::new(self.names_query(&p, tier)));
                    let (top, total) = self.top(&searcher, &q, limit)?;
                    // Every strong word matched ⇔ score ≥ 100 per strong word (BM25 adds on top).
                    let bar = WORD_SCORE * strong as f32 - 0.5;
                    let full = top.iter().filter(|(s, _)| *s >= bar).count();
                    tracing::debug!(tier, full, total, "search tier");
                    if full >= need || tier == 3 || strong == 0 {
                        let ranked = self
                            .load(&searcher, top)?
                            .into_iter()
                            .map(|(s, r)| rank(s, r, &p, tier))
                            .collect();
                        break (Route::Names(tier), q, ranked, total);
                    }
                    tier += 1;
                }
            }
        };
        let mut ranked: Vec<Ranked> = ranked
            .into_iter()
            .filter(|r| r.matched + r.initials > 0)
            .collect();
        ranked.sort_by(rank_cmp);
        let facets = self.facets(&searcher, &query, &req.filter)?;
        let page: Vec<Hit> = ranked
            .iter()
            .skip(offset)
            .take(first)
            .map(|r| Hit {
                id: r.record.property_id,
                score: r.bm25,
                matched_words: r.matched + r.initials,
                typos: r.typos,
                highlights: r.highlights.clone(),
                record: r.record.clone(),
            })
            .collect();
        let next = (offset + first < ranked.len()).then(|| format!("o{}", offset + first));
        tracing::info!(text = %req.text, ?route, total, hits = page.len(), ms = started.elapsed().as_millis() as u64, "search");
        Ok(SearchResponse {
            total,
            hits: page,
            facets,
            next,
            route,
        })
    }
}

/// Opens the index in `dir` read-only (a running server may own its writer) and runs one
/// query: what `landql search TEXT --index-dir DIR`
/// prints (as JSON, via serde).
pub fn search_dir(
    dir: &std::path::Path,
    text: &str,
    first: usize,
) -> Result<SearchResponse, Error> {
    let idx = SearchIndex::open_read_only(dir)?;
    idx.search(&SearchRequest {
        text: text.to_string(),
        first,
        ..Default::default()
    })
}
