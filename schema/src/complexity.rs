//! What a field costs against the API's complexity limit (design/api.md, "Limits"), and how
//! long HTTP caches may keep an answer.
//!
//! async-graphql counts one per selected field unless a field says otherwise. A connection
//! says otherwise: it costs its page size times what each item selects, so that pages nested
//! in pages multiply — `properties(first: 100) { nodes { history(first: 100) { … } } }` is
//! 10 000 items, and is refused before it runs, while a single page of 100 properties with
//! their owners and documents fits. A search also pays a fixed price for running the
//! searcher.

/// The page size a connection's cost assumes: the `first` asked for (default 20). A `first`
/// over the page limit is refused by the resolver with its own message, so it is not
/// counted past the limit here.
fn page_size(first: Option<i32>) -> usize {
    first.unwrap_or(20).clamp(1, 100) as usize
}

/// A connection: one for the field, plus its page size times each item's selection.
pub(crate) fn page(first: Option<i32>, child_complexity: usize) -> usize {
    1 + page_size(first).saturating_mul(child_complexity)
}

/// What running the searcher costs, on top of the page it returns (its CPU time is about
/// that of 50 property lookups).
pub(crate) const SEARCH: usize = 50;

/// A search: [`SEARCH`] plus the page.
pub(crate) fn search(first: Option<i32>, child_complexity: usize) -> usize {
    SEARCH + page(first, child_complexity)
}
