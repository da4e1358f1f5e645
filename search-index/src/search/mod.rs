//! The searcher: query routing, tiered matching, re-ranking in Rust, highlights, facets and
//! stable paging.
//!
//! Tantivy finds candidates; the order a person finds natural (more words matched, fewer
//! typos, exact script, owner before father before place) is computed here over the top few
//! hundred, because tantivy scores every fuzzy hit alike and cannot tell which form matched.

mod facets;
mod fuzzy;
mod prefix;
mod rank;
mod word;

use ledger::model::{Record, VerificationStatus};
use ledger::PropertyId;
use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use crate::analysis::{self, place_key, survey_key, Word};
use crate::index::{plain_key, squash_id, Group, SearchIndex, GROUPS};
use crate::Error;

use facets::{FacetCounter, FacetSpec};
use fuzzy::{FirstLetterFuzzy, FuzzyQuery};
use prefix::Prefix;
pub use rank::{distance, typo_budget};
use rank::{is_strong, rank, rank_cmp, Loaded, Parsed, Ranked};
use word::WordQuery;

/// Candidates re-ranked per query (and the deepest page reachable).
const CANDIDATES: usize = 200;
/// A word found in at least this many documents (exactly or phonetically, any name
/// group) gets no typo clauses: see `SearchIndex::typo_words`.
const COMMON_WORD_DOCS: u64 = 1000;
/// Score given to each matched query word, so that tantivy's top candidates are those that
/// match most words whatever their BM25 (which is added on top and breaks ties).
const WORD_SCORE: f32 = 100.0;
/// A strong word found in at most this many documents (exactly, by fold or phonetically)
/// anchors a second set of candidates when no record matches every word: see
/// `SearchIndex::anchored`.
const ANCHOR_DOCS: u64 = 5000;
/// Candidates the anchored set adds at most.
const ANCHOR_CANDIDATES: usize = 50;
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
    /// `former_names[0]` (a name an earlier version carried), `survey_no`, `khata_no` or
    /// `property_id`.
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
    /// A query word found its best match in a name the record no longer carries (its
    /// highlight's field is `former_names[i]`): found by a former name.
    pub former_name: bool,
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
    /// 2 typos, 3 join/split). With several words, 1 means every word matched without
    /// typos and 2 every word matched once typos were allowed.
    Names(u8),
}

/// The answer to a [`SearchRequest`].
#[derive(Debug, Clone, Serialize)]
pub struct SearchResponse {
    /// Documents found, after filters: for several words, those matching every word when
    /// there are any — without typos, else with them — (and then only they are listed);
    /// otherwise those matching at least one query word (or the ID/number).
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    /// Cursor of the next page, if there is one.
    pub next: Option<String>,
    pub route: Route,
}

fn term(f: Field, s: &str) -> Box<dyn Query> {
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
    /// Typo automata are built once per word and shared by the three name groups.
    /// `prefix`: how the word is matched as an unfinished word, if it is one.
    fn word_clauses(
        &self,
        q: &Word,
        prefix: Option<&[Prefix; GROUPS]>,
        tier: u8,
        typos: bool,
    ) -> Vec<Box<dyn Query>> {
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        let (fold_typos, phon_typos) = if tier >= 2 && typos {
            let budget = typo_budget(q.fold.chars().count()) as u8;
            (
                (budget > 0)
                    .then(|| FirstLetterFuzzy::new(&q.fold, budget))
                    .flatten(),
                (q.phon.len() >= 4)
                    .then(|| FirstLetterFuzzy::new(&q.phon, 1))
                    .flatten(),
            )
        } else {
            (None, None)
        };
        for g in Group::ALL {
            let gf = self.fields.group(g);
            // A Latin word is its own fold: the orig term would read the same postings.
            if q.orig != q.fold {
                out.push(term(gf.orig, &q.orig));
            }
            out.push(term(gf.fold, &q.fold));
            out.push(term(gf.phon, &q.phon));
            match (prefix.map(|p| &p[g as usize]), gf.prefix) {
                (Some(Prefix::NGram), Some(field)) => out.push(term(field, &q.fold)),
                (Some(Prefix::Terms(terms)), _) => {
                    for t in terms {
                        out.push(term(gf.fold, t));
                    }
                }
                _ => {}
            }
            if let Some(a) = &fold_typos {
                out.push(Box::new(FuzzyQuery {
                    field: gf.fold,
                    automaton: a.clone(),
                }));
            }
            if let Some(a) = &phon_typos {
                out.push(Box::new(FuzzyQuery {
                    field: gf.phon,
                    automaton: a.clone(),
                }));
            }
            if tier >= 3 {
                out.push(term(gf.join, &q.phon));
            }
        }
        out
    }

    /// The names query at a tier; `typos[i]` says whether word i gets typo clauses at tier
    /// 2 and beyond (missing: yes).
    fn names_query(&self, p: &Parsed, tier: u8, typos: &[bool]) -> BooleanQuery {
        self.names_query_with(p, tier, typos, Occur::Should)
    }

    /// [`Self::names_query`] with each strong word's clause under `strong` (`Must`: every
    /// strong word has to match; initials never have to).
    fn names_query_with(
        &self,
        p: &Parsed,
        tier: u8,
        typos: &[bool],
        strong: Occur,
    ) -> BooleanQuery {
        let n = p.words.len();
        let mut per_word: Vec<Vec<Box<dyn Query>>> = p
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let t = typos.get(i).copied().unwrap_or(true);
                let prefix = (p.partial_last && i + 1 == n)
                    .then_some(p.prefix.as_ref())
                    .flatten();
                self.word_clauses(w, prefix, tier, t)
            })
            .collect();
        if tier >= 3 {
            for (i, key) in p.pairs.iter().enumerate() {
                for g in Group::ALL {
                    let f = self.fields.group(g).phon;
                    per_word[i].push(term(f, key));
                    per_word[i + 1].push(term(f, key));
                }
            }
        }
        // Per word: WORD_SCORE when any clause matches, plus its BM25 scaled down so that
        // it only orders documents matching the same number of words — a score ≥ 100 × n
        // then means "all n words matched" (word.rs).
        let words: Vec<(Occur, Box<dyn Query>)> = per_word
            .into_iter()
            .zip(&p.words)
            .map(|(clauses, w)| {
                let any =
                    BooleanQuery::new(clauses.into_iter().map(|c| (Occur::Should, c)).collect());
                let q: Box<dyn Query> = Box::new(WordQuery {
                    inner: Box::new(any),
                    base: if is_strong(w) { WORD_SCORE } else { 1.0 },
                    scale: BM25_WEIGHT,
                });
                (if is_strong(w) { strong } else { Occur::Should }, q)
            })
            .collect();
        BooleanQuery::new(words)
    }

    /// The rarest strong, finished word of `p`, if it is rare enough to anchor
    /// ([`ANCHOR_DOCS`]).
    fn anchor(&self, searcher: &Searcher, p: &Parsed) -> Result<Option<usize>, Error> {
        let mut best: Option<(u64, usize)> = None;
        for (i, w) in p.words.iter().enumerate() {
            if !is_strong(w) || (p.partial_last && i + 1 == p.words.len()) {
                continue;
            }
            let df = self.word_docs(searcher, w)?;
            if df > 0 && best.is_none_or(|(d, _)| df < d) {
                best = Some((df, i));
            }
        }
        Ok(best.filter(|(d, _)| *d <= ANCHOR_DOCS).map(|(_, i)| i))
    }

    /// Candidates that hold the query's rarest word (a village, an uncommon name) and as
    /// many of the others as tantivy can see, best first.
    ///
    /// Why: when no record matches every word, the candidates are the best of the union
    /// of all words' postings, and a common word gets no typo clauses (`typo_words`). The
    /// record wanted may then match a word only with a typo ("Sayi Anjaneyalu Shetty" in
    /// Varighedu for "sai anjaneyulu shetty varighedu"), which tantivy cannot see, while
    /// a hundred thousand records match the three other words exactly; it is never among
    /// the first 200. Among the few records holding the rare word it is near the top, and
    /// the re-ranking, which allows typos in every word, then puts it first.
    fn anchored(
        &self,
        searcher: &Searcher,
        p: &Parsed,
        anchor: usize,
        typos: &[bool],
        filters: &[(Occur, Box<dyn Query>)],
    ) -> Result<Vec<(f32, DocAddress)>, Error> {
        let must = BooleanQuery::new(
            self.word_clauses(&p.words[anchor], None, 1, false)
                .into_iter()
                .map(|c| (Occur::Should, c))
                .collect(),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(must)),
            (Occur::Should, Box::new(self.names_query(p, 3, typos))),
        ];
        clauses.extend(filters.iter().map(|(o, q)| (*o, q.box_clone())));
        Ok(searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(ANCHOR_CANDIDATES).order_by_score(),
        )?)
    }

    /// Documents holding `text` in `field`, over all segments.
    fn doc_freq(&self, searcher: &Searcher, field: Field, text: &str) -> Result<u64, Error> {
        Ok(searcher.doc_freq(&Term::from_field_text(field, text))?)
    }

    /// Which query words get typo clauses in tier 2: those found in fewer than
    /// [`COMMON_WORD_DOCS`] documents exactly or phonetically.
    ///
    /// Why: a typo query reads the postings of every term within reach of the word, and
    /// for a common name ("kumar", "reddy", "lakshmi") those are large and plentiful —
    /// tier 2 re-ran them whenever fewer than a page of records matched *every* word,
    /// which is nearly every name + village query at 1 M records (80 ms of CPU each). A
    /// word found in thousands of records is spelt as people spell it; the words that need
    /// typo tolerance are the rare or unknown ones, whose neighbourhoods are small.
    fn typo_words(&self, searcher: &Searcher, p: &Parsed) -> Result<Vec<bool>, Error> {
        p.words
            .iter()
            .map(|w| Ok(self.word_docs(searcher, w)? < COMMON_WORD_DOCS))
            .collect()
    }

    /// Documents holding `w` exactly, by fold or phonetically, summed over the name
    /// groups: how common a query word is.
    fn word_docs(&self, searcher: &Searcher, w: &Word) -> Result<u64, Error> {
        let mut df = 0;
        for g in Group::ALL {
            let gf = self.fields.group(g);
            df += self.doc_freq(searcher, gf.fold, &w.fold)?;
            df += self.doc_freq(searcher, gf.phon, &w.phon)?;
        }
        Ok(df)
    }

    /// Decides how the unfinished last word of `p` (if any) is matched as a prefix, per
    /// name group: one n-gram term when it is short and the group has n-grams, else the
    /// group's fold terms that start with it (prefix.rs).
    fn expand_prefix(&self, searcher: &Searcher, p: &mut Parsed) -> Result<(), Error> {
        p.prefix = match p.words.last() {
            Some(w) if p.partial_last && w.fold.len() >= 2 => {
                let mut how: [Prefix; GROUPS] = std::array::from_fn(|_| Prefix::NGram);
                for g in Group::ALL {
                    let gf = self.fields.group(g);
                    if gf.prefix.is_none() || w.fold.len() > analysis::PREFIX_NGRAM_MAX {
                        how[g as usize] =
                            Prefix::Terms(prefix::expand(searcher, gf.fold, &w.fold)?);
                    }
                }
                Some(how)
            }
            _ => None,
        };
        Ok(())
    }

    /// Whether tier 3 (joined and split words) can match anything: any of its terms is in
    /// the index. If none is, the tier would only repeat the previous one's work.
    fn joins_exist(&self, searcher: &Searcher, p: &Parsed) -> Result<bool, Error> {
        for g in Group::ALL {
            let gf = self.fields.group(g);
            for w in &p.words {
                if self.doc_freq(searcher, gf.join, &w.phon)? > 0 {
                    return Ok(true);
                }
            }
            for key in &p.pairs {
                if self.doc_freq(searcher, gf.phon, key)? > 0 {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Top candidates by tantivy score, how many documents match, and (when asked) facet
    /// counts over those documents — one pass over the matches.
    fn top(
        &self,
        searcher: &Searcher,
        q: &dyn Query,
        limit: usize,
        facets: Option<FacetSpec>,
    ) -> Result<Top, Error> {
        Ok(match facets {
            None => {
                let (docs, total) =
                    searcher.search(q, &(TopDocs::with_limit(limit).order_by_score(), Count))?;
                Top {
                    docs,
                    total,
                    facets: None,
                }
            }
            Some(spec) => {
                let (docs, total, counts) = searcher.search(
                    q,
                    &(
                        TopDocs::with_limit(limit).order_by_score(),
                        Count,
                        FacetCounter(spec),
                    ),
                )?;
                Top {
                    docs,
                    total,
                    facets: Some(counts),
                }
            }
        })
    }

    /// The stored records of candidates (only for the final tier: the doc store is the
    /// expensive part).
    fn load(&self, searcher: &Searcher, top: Vec<(f32, DocAddress)>) -> Result<Vec<Loaded>, Error> {
        let mut out = Vec::with_capacity(top.len());
        for (bm25, addr) in top {
            let d: TantivyDocument = searcher.doc(addr)?;
            let Some(json) = d.get_first(self.fields.record).and_then(|v| v.as_str()) else {
                continue;
            };
            let former = d
                .get_all(self.fields.former)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            out.push(Loaded {
                bm25,
                record: serde_json::from_str(json)?,
                former,
            });
        }
        Ok(out)
    }

    /// Runs one search with facet counts (see the module docs for the order of results).
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse, Error> {
        self.search_with(req, SearchOptions::default())
    }

    /// Runs one search, computing only what `opts` asks for besides the hits.
    pub fn search_with(
        &self,
        req: &SearchRequest,
        opts: SearchOptions,
    ) -> Result<SearchResponse, Error> {
        let started = std::time::Instant::now();
        let offset = parse_cursor(&req.after)?;
        let first = req.first.clamp(1, 100);
        let limit = CANDIDATES.max(offset + first + 1);
        let searcher = self.reader.searcher();
        let spec = opts.facets.then(|| FacetSpec::for_filter(&req.filter));
        let filters = self.filter_clauses(&req.filter);
        let with_filters = |q: Box<dyn Query>| -> BooleanQuery {
            let mut c = vec![(Occur::Must, q)];
            c.extend(filters.iter().map(|(o, q)| (*o, q.box_clone())));
            BooleanQuery::new(c)
        };
        let text = req.text.trim();
        let squashed = squash_id(text);

        // Route 1: a property ID in any form.
        let (route, ranked, found) = if looks_like_id(&squashed) {
            let q = with_filters(term(self.fields.id_terms, &squashed));
            let mut found = self.top(&searcher, &q, limit, spec)?;
            let ranked = self
                .load(&searcher, std::mem::take(&mut found.docs))?
                .into_iter()
                .map(|l| {
                    let idt = l.record.property_id.to_string();
                    let n = idt.chars().count();
                    let mut x = rank(l, &Parsed::new(vec![], false), 1);
                    x.matched = 1;
                    x.first_highlights = vec![Highlight {
                        field: "property_id".into(),
                        text: idt,
                        ranges: vec![(0, n)],
                        kind: MatchKind::Identifier,
                    }];
                    x
                })
                .collect::<Vec<_>>();
            (Route::PropertyId, ranked, found)
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
                let mut p = Parsed::new(rest, partial_last && end < all.len());
                self.expand_prefix(&searcher, &mut p)?;
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
                let attempt = |occur: Option<(Occur, u8)>| -> Result<Top, Error> {
                    let mut c: Vec<(Occur, Box<dyn Query>)> =
                        vec![(Occur::Must, Box::new(num.clone()))];
                    if let Some((o, tier)) = occur {
                        c.push((o, Box::new(self.names_query(&p, tier, &[]))));
                    }
                    let q = with_filters(Box::new(BooleanQuery::new(c)));
                    self.top(&searcher, &q, limit, spec)
                };
                let tries: &[Option<(Occur, u8)>] = if p.words.is_empty() {
                    &[None]
                } else {
                    &[
                        Some((Occur::Must, 1)),
                        Some((Occur::Must, 2)),
                        Some((Occur::Should, 1)),
                    ]
                };
                let mut found = Top::default();
                for t in tries {
                    found = attempt(*t)?;
                    if found.total > 0 {
                        break;
                    }
                }
                let ranked = self
                    .load(&searcher, std::mem::take(&mut found.docs))?
                    .into_iter()
                    .map(|l| {
                        let mut x = rank(l, &p, 2);
                        let (field, val) = if survey_key(&x.record.survey_no) == key {
                            ("survey_no", x.record.survey_no.clone())
                        } else {
                            ("khata_no", x.record.khata_no.clone().unwrap_or_default())
                        };
                        let n = val.chars().count();
                        x.first_highlights.push(Highlight {
                            field: field.into(),
                            text: val,
                            ranges: vec![(0, n)],
                            kind: MatchKind::Identifier,
                        });
                        x
                    })
                    .collect();
                (Route::Survey, ranked, found)
            } else {
                // Route 3: names and places.
                let mut p = Parsed::new(all, partial_last);
                self.expand_prefix(&searcher, &mut p)?;
                let strong = p.words.iter().filter(|w| is_strong(w)).count();
                let need = first.max(10);
                let typo_flags = |typos: &mut Option<Vec<bool>>| -> Result<Vec<bool>, Error> {
                    if typos.is_none() {
                        *typos = Some(self.typo_words(&searcher, &p)?);
                    }
                    Ok(typos.clone().unwrap_or_default())
                };
                let mut typos: Option<Vec<bool>> = None;
                // Several words: first the records matching every strong word (exactly, by
                // fold or phonetically); they are the answer when there are any, and typos,
                // joined/split words and records missing a word are tried only when none
                // match (Typesense's `typo_tokens_threshold` and `drop_tokens_threshold`
                // of 1). Measured at 1 M records: the union over every word's postings cost
                // 20–50 ms of CPU for a name or name + village query, because common given
                // names ("lakshmi", "kumar") match tens of thousands of records; the
                // intersection is led by the rarest word. It also keeps people who share
                // only a first name off the page.
                // Joined/split words are part of it (cheap term lookups): "Ranga Reddy" must
                // meet "Rangareddy" here already.
                let every = if strong >= 2 {
                    let no_typos = vec![false; p.words.len()];
                    let q = with_filters(Box::new(self.names_query_with(
                        &p,
                        3,
                        &no_typos,
                        Occur::Must,
                    )));
                    match Some(self.top(&searcher, &q, limit, spec)?).filter(|f| f.total > 0) {
                        Some(found) => Some((1, found)),
                        // Then every strong word again, now with typos: a misspelt name
                        // ("sreehar kumaar") is still one person's name, and the
                        // intersection costs little. Before, a misspelling sent the query
                        // through the union of every word's postings at tiers 1, 2 and 3
                        // in turn (about 200 000 records each for a common given name at
                        // 1 M records: 20–70 ms of CPU), to find the same record first.
                        None => {
                            let t = typo_flags(&mut typos)?;
                            if t.iter().any(|t| *t) {
                                let q = with_filters(Box::new(self.names_query_with(
                                    &p,
                                    3,
                                    &t,
                                    Occur::Must,
                                )));
                                Some(self.top(&searcher, &q, limit, spec)?)
                                    .filter(|f| f.total > 0)
                                    .map(|f| (2, f))
                            } else {
                                None
                            }
                        }
                    }
                } else {
                    None
                };
                if let Some((tier, mut found)) = every {
                    tracing::debug!(tier, total = found.total, "every word matched");
                    let ranked = self
                        .load(&searcher, std::mem::take(&mut found.docs))?
                        .into_iter()
                        .map(|l| rank(l, &p, 3))
                        .collect();
                    (Route::Names(tier), ranked, found)
                } else {
                    // Records matching some of the words, tier by tier while too few match
                    // every strong word, skipping a tier that would add nothing
                    // (`typo_words`, `joins_exist`). With several strong words none matches
                    // every one by now (the intersections above were empty), so the tiers
                    // before the deepest one that can match anything would only be run to
                    // be thrown away: it runs alone, and its candidates are theirs and more.
                    let mut tier = if strong >= 2 {
                        if self.joins_exist(&searcher, &p)? {
                            3
                        } else if typo_flags(&mut typos)?.iter().any(|t| *t) {
                            2
                        } else {
                            1
                        }
                    } else {
                        1
                    };
                    loop {
                        let t = typos.clone().unwrap_or_default();
                        let q = with_filters(Box::new(self.names_query(&p, tier, &t)));
                        let mut found = self.top(&searcher, &q, limit, spec)?;
                        // Every strong word matched ⇔ score ≥ 100 per strong word (BM25 adds on top).
                        let bar = WORD_SCORE * strong as f32 - 0.5;
                        let full = found.docs.iter().filter(|(s, _)| *s >= bar).count();
                        tracing::debug!(tier, full, total = found.total, "search tier");
                        let mut next = None;
                        if full < need && strong == 1 {
                            if tier == 1 && typo_flags(&mut typos)?.iter().any(|t| *t) {
                                next = Some(2);
                            }
                            if next.is_none() && tier < 3 && self.joins_exist(&searcher, &p)? {
                                next = Some(3);
                            }
                        }
                        match next {
                            Some(n) => tier = n,
                            None => {
                                let mut ranked: Vec<Ranked> = self
                                    .load(&searcher, std::mem::take(&mut found.docs))?
                                    .into_iter()
                                    .map(|l| rank(l, &p, tier))
                                    .collect();
                                if strong >= 2 {
                                    if let Some(a) = self.anchor(&searcher, &p)? {
                                        let t = typo_flags(&mut typos)?;
                                        let more = self.anchored(&searcher, &p, a, &t, &filters)?;
                                        let seen: std::collections::HashSet<String> =
                                            ranked.iter().map(|r| r.key.clone()).collect();
                                        ranked.extend(
                                            self.load(&searcher, more)?
                                                .into_iter()
                                                .map(|l| rank(l, &p, 3))
                                                .filter(|r| !seen.contains(&r.key)),
                                        );
                                    }
                                }
                                break (Route::Names(tier), ranked, found);
                            }
                        }
                    }
                }
            }
        };
        let mut ranked: Vec<Ranked> = ranked
            .into_iter()
            .filter(|r| r.matched + r.initials > 0)
            .collect();
        ranked.sort_by(rank_cmp);
        let total = found.total;
        let facets = found
            .facets
            .as_ref()
            .map(facets::facets)
            .unwrap_or_default();
        let page: Vec<Hit> = ranked
            .iter()
            .skip(offset)
            .take(first)
            .map(|r| Hit {
                id: r.record.property_id,
                score: r.bm25,
                matched_words: r.matched + r.initials,
                typos: r.typos,
                former_name: r.matched_former_name(),
                highlights: r.highlights(),
                record: r.record.clone(),
            })
            .collect();
        let next = (offset + first < ranked.len()).then(|| format!("o{}", offset + first));
        tracing::info!(
            text = %req.text,
            ?route,
            total,
            hits = page.len(),
            us = started.elapsed().as_micros() as u64,
            "search"
        );
        Ok(SearchResponse {
            total,
            hits: page,
            facets,
            next,
            route,
        })
    }
}

/// What one search found in tantivy: candidates by score, how many documents match, and
/// facet counts when asked.
#[derive(Default)]
struct Top {
    docs: Vec<(f32, DocAddress)>,
    total: usize,
    facets: Option<facets::Counts>,
}

/// What a search computes besides its hits.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    /// Facet counts over all matches (default on). They cost a fast-field read per matched
    /// document: callers that show no facets (the GraphQL `search` field when `facets` is
    /// not selected, search-as-you-type) should turn them off.
    pub facets: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { facets: true }
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
