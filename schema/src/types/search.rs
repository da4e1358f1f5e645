//! Search results (the searcher is `search_index::search`).

use async_graphql::SimpleObject;

use super::{PageInfo, Property};

#[derive(SimpleObject)]
pub struct SearchResult {
    /// Properties found, after filters. For several words: those matching every word when
    /// any do (spelt as written or as a variant, else allowing typos), and then only they
    /// are listed; otherwise those matching at least one word. For an ID, survey or khata
    /// number: the records it names.
    pub total: i64,
    pub hits: Vec<SearchHit>,
    /// Counts among all matches: `place` (children of the deepest place filtered on),
    /// `landType`, `verificationStatus`. Pass a value back as a filter.
    pub facets: Vec<Facet>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct SearchHit {
    pub property: Property,
    pub score: f64,
    /// Found by a name the record no longer carries: an owner name of an earlier version
    /// (a misspelling a correction fixed, or a former owner). Such a hit ranks below one
    /// where the name is current; its highlight's field is `formerNames[i]`.
    pub former_name: bool,
    pub highlights: Vec<Highlight>,
}

#[derive(SimpleObject)]
pub struct Highlight {
    /// `owners[0].name`, `owners[1].fatherName`, `district`, `mandal`, `village`, `surveyNo`,
    /// `khataNo`, `id`, or `formerNames[0]` (an owner name an earlier version of the
    /// record carried; the text is that name).
    pub field: String,
    /// The field's text as stored (original script).
    pub text: String,
    /// Matched ranges [start, end) in characters (Unicode scalar values), not bytes.
    pub ranges: Vec<Vec<i32>>,
    /// How the weakest range matched: exact, transliterated, phonetic, typo, joined, prefix…
    pub match_kind: String,
}

#[derive(SimpleObject)]
pub struct Facet {
    pub field: String,
    pub values: Vec<FacetValue>,
}

#[derive(SimpleObject)]
pub struct FacetValue {
    /// The normalised key, to pass back as a filter value.
    pub value: String,
    /// One spelling of it as found in the records, for display.
    pub label: String,
    pub count: i64,
}
