//! How deep anonymous callers may read the lists that show owner names.
//!
//! Land records are public one parcel at a time — a person looks up a parcel by its
//! village and survey number, or searches a name — not as a bulk list of every owner's
//! name. Without a bound, an anonymous client paging `properties` at the anonymous rate
//! limit (20 pages of 20 a second) copies a registry of a million parcels, owners and all,
//! in under an hour. So an anonymous caller reads only the **first page** (at most
//! `Config::max_page_anonymous` items, 20 by default) of `properties` and `search`, unless
//! the filter narrows the list to what a person looks up: one village (`filter.village`)
//! or one survey number (`filter.surveyNo`). Past that, the answer is the error
//! `NARROW_OR_SIGN_IN`, which says how to narrow or sign in. Signed-in roles page as before.
//!
//! Why the first page, and not the first N items for some larger N: cursors are opaque but
//! made by the client's side of the wire, so a position inside one cannot be trusted, and
//! counting the rows before a cursor costs a scan as deep as the cursor. Refusing `after`
//! needs no trust and no scan, and one page is what a person reads before narrowing. The
//! filters that page by another name — `createdAfter`/`createdBefore`, whose bound a
//! scraper moves to the last item of each page — are refused the same way; the other
//! filters only pick coarse slices (a district, a land type, a year), each of which again
//! shows its first page only.
//!
//! The other lists that reveal owner names are already closed to anonymous callers
//! (`owners`, `Owner.properties`, `properties(filter: {ownerId})`), or show one parcel
//! (`property`, `propertyHistory`, `Property.history`); `locations` shows counts only.
//! `Config::anonymous_deep_lists` lifts the bound for a deployment that publishes the
//! registry as open data.

use async_graphql::{Context, ErrorExtensions, Result};

use crate::auth::principal;
use crate::errors::Code;
use crate::services::Services;
use crate::types::PropertyFilter;

/// Whether `filter` narrows a list to one village or one survey number.
pub(crate) fn narrows(filter: Option<&PropertyFilter>) -> bool {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    filter.is_some_and(|f| given(&f.village) || given(&f.survey_no))
}

/// Refuses an anonymous read of `list` past its first page (`after` given) or through a
/// time range, unless `filter` narrows it (see the module's documentation).
pub(crate) fn check(
    ctx: &Context<'_>,
    list: &str,
    filter: Option<&PropertyFilter>,
    after: Option<&str>,
) -> Result<()> {
    let config = &ctx.data_unchecked::<Services>().0.config;
    if principal(ctx).role.is_signed_in() || config.anonymous_deep_lists {
        return Ok(());
    }
    let page = config.max_page_anonymous.min(config.max_page);
    refusal(list, filter, after, page).map_or(Ok(()), Err)
}

/// The refusal [`check`] makes for an anonymous caller, if any; `page` is the anonymous
/// page limit, named in the message.
fn refusal(
    list: &str,
    filter: Option<&PropertyFilter>,
    after: Option<&str>,
    page: usize,
) -> Option<async_graphql::Error> {
    if narrows(filter) {
        return None;
    }
    let ranged = filter.is_some_and(|f| f.created_after.is_some() || f.created_before.is_some());
    let what = if after.is_some() {
        format!("anonymous callers read only the first page (at most {page} items) of `{list}`")
    } else if ranged {
        format!(
            "anonymous callers cannot page `{list}` by `createdAfter`/`createdBefore`; \
             they read only its first page (at most {page} items)"
        )
    } else {
        return None;
    };
    Some(
        async_graphql::Error::new(format!(
            "{what}: narrow it to one village (`filter: {{state, district, mandal, village}}`) \
             or one survey number (`filter: {{surveyNo}}`), or sign in (send Authorization: \
             Bearer <token>) to page further"
        ))
        .extend_with(|_, e| e.set("code", Code::NarrowOrSignIn.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(edit: impl FnOnce(&mut PropertyFilter)) -> PropertyFilter {
        let mut f = PropertyFilter::default();
        edit(&mut f);
        f
    }

    fn code(e: &async_graphql::Error) -> String {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn the_first_page_is_open_to_everyone() {
        assert!(refusal("properties", None, None, 20).is_none());
        let district = filter(|f| {
            f.state = Some("TS".into());
            f.district = Some("Hyderabad".into());
        });
        assert!(refusal("properties", Some(&district), None, 20).is_none());
    }

    #[test]
    fn deeper_pages_need_a_village_or_a_survey_number() {
        let e = refusal("properties", None, Some("cursor"), 20).expect("refused");
        assert_eq!(code(&e), "\"NARROW_OR_SIGN_IN\"");
        assert!(e
            .message
            .contains("first page (at most 20 items) of `properties`"));
        assert!(e.message.contains("village") && e.message.contains("surveyNo"));
        assert!(e.message.contains("Authorization: Bearer"));

        let district = filter(|f| f.district = Some("Hyderabad".into()));
        assert!(refusal("search", Some(&district), Some("c"), 20).is_some());
        let blank_village = filter(|f| f.village = Some("  ".into()));
        assert!(refusal("search", Some(&blank_village), Some("c"), 20).is_some());

        let village = filter(|f| f.village = Some("Balapur".into()));
        assert!(refusal("properties", Some(&village), Some("c"), 20).is_none());
        let survey = filter(|f| f.survey_no = Some("123-a".into()));
        assert!(refusal("search", Some(&survey), Some("c"), 20).is_none());
    }

    #[test]
    fn time_ranges_do_not_page_around_the_bound() {
        let since = filter(|f| f.created_after = Some(chrono::Utc::now()));
        let e = refusal("properties", Some(&since), None, 20).expect("refused");
        assert_eq!(code(&e), "\"NARROW_OR_SIGN_IN\"");
        assert!(e.message.contains("createdAfter"), "{}", e.message);
        let until = filter(|f| f.created_before = Some(chrono::Utc::now()));
        assert!(refusal("properties", Some(&until), None, 20).is_some());
        let narrowed = filter(|f| {
            f.created_before = Some(chrono::Utc::now());
            f.village = Some("Balapur".into());
        });
        assert!(refusal("properties", Some(&narrowed), Some("c"), 20).is_none());
    }
}
