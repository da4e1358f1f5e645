//! Properties of the analysis over arbitrary input (outside data must never panic it).

use proptest::prelude::*;
use search_index::analysis::{self, place_key, survey_key};

proptest! {
    #[test]
    fn words_slice_the_text_and_fold_to_ascii(text in "\\PC{0,40}") {
        for w in analysis::words(&text) {
            prop_assert!(text.get(w.start..w.end).is_some());
            prop_assert!(w.fold.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
            prop_assert!(!w.phon.is_empty() || w.fold.is_empty());
        }
        let _ = place_key(&text);
        let _ = survey_key(&text);
    }

    #[test]
    fn indic_text_never_panics(text in "[\\u{0900}-\\u{097F}\\u{0C00}-\\u{0CFF} ]{0,30}") {
        for w in analysis::words(&text) {
            prop_assert!(w.indic);
        }
    }

    #[test]
    fn survey_separators_do_not_matter(n in 1u32..5000, l in "[a-dA-D]", sep in "[-/ ]") {
        let a = survey_key(&format!("{n}{sep}{l}"));
        prop_assert_eq!(&a, &survey_key(&format!("{n}/{}", l.to_lowercase())));
        prop_assert_eq!(&a, &survey_key(&format!("{n}{l}")));
    }
}

/// Facet values are place keys and are passed back as filters, which normalise again: the
/// key of a key must be itself, for every real place name.
#[test]
fn place_keys_are_fixed_points() {
    let places = include_str!("../../devnet/data/places.tsv");
    let names: std::collections::BTreeSet<&str> = places
        .lines()
        .skip(1)
        .flat_map(|l| l.split('\t').skip(2).take(3))
        .collect();
    let mut bad = Vec::new();
    for name in names {
        let k = place_key(name);
        if place_key(&k) != k {
            bad.push(format!("{name} → {k} → {}", place_key(&k)));
        }
    }
    assert!(
        bad.is_empty(),
        "{} not fixed: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
}
