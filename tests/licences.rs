//! One allow-list of licences for everything landql ships, held in three places that must
//! agree: `deny.toml` (cargo-deny checks the Rust crates against it), NOTICE (what we tell
//! users), and the npm packages bundled into the pages (`playground/dist/licenses.txt`,
//! written by the pages' build). cargo-deny does not see npm packages; this test does.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// `[licenses] allow` of deny.toml.
fn deny_allow_list() -> BTreeSet<String> {
    let deny: toml::Table = read("deny.toml").parse().expect("deny.toml is TOML");
    deny.get("licenses")
        .and_then(|l| l.get("allow"))
        .and_then(|a| a.as_array())
        .expect("deny.toml has [licenses] allow = [...]")
        .iter()
        .map(|v| v.as_str().expect("licence ids are strings").to_owned())
        .collect()
}

/// The licences NOTICE lists after "Allowed licences:", up to the next blank line.
fn notice_list() -> BTreeSet<String> {
    let notice = read("NOTICE");
    let start = notice
        .find("Allowed licences:")
        .expect("NOTICE has an \"Allowed licences:\" paragraph")
        + "Allowed licences:".len();
    let rest = &notice[start..];
    let paragraph = rest.split("\n\n").next().unwrap_or(rest);
    paragraph
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches('.')
        .split(", ")
        .map(str::to_owned)
        .collect()
}

/// Whether an SPDX expression as npm packages write them (`MIT`, `(MIT OR Apache-2.0)`,
/// `MIT AND Zlib`) is satisfied by the allow-list. Mixed AND/OR without parentheses does not
/// occur in the bundle; it is refused rather than guessed at.
fn satisfied(expr: &str, allow: &BTreeSet<String>) -> bool {
    let e = expr.trim().trim_start_matches('(').trim_end_matches(')');
    match (e.contains(" OR "), e.contains(" AND ")) {
        (true, true) => false,
        (true, false) => e.split(" OR ").any(|p| allow.contains(p.trim())),
        (false, true) => e.split(" AND ").all(|p| allow.contains(p.trim())),
        (false, false) => allow.contains(e),
    }
}

#[test]
fn notice_names_exactly_the_allow_list() {
    let allow = deny_allow_list();
    let notice = notice_list();
    assert_eq!(
        notice, allow,
        "NOTICE's \"Allowed licences:\" and deny.toml's [licenses] allow differ"
    );
}

#[test]
fn every_bundled_npm_package_has_an_allowed_licence() {
    let allow = deny_allow_list();
    let list = read("playground/dist/licenses.txt");
    let packages: Vec<(&str, &str)> = list.lines().filter_map(|l| l.split_once('\t')).collect();
    assert!(
        packages.len() > 10,
        "playground/dist/licenses.txt lists {} packages; the pages bundle more",
        packages.len()
    );
    let refused: Vec<String> = packages
        .iter()
        .filter(|(_, licence)| !satisfied(licence, &allow))
        .map(|(p, l)| format!("{p} ({l})"))
        .collect();
    assert!(
        refused.is_empty(),
        "bundled into the pages under a licence deny.toml does not allow: {refused:?}"
    );
}

#[test]
fn spdx_expressions_are_read_as_npm_writes_them() {
    let allow: BTreeSet<String> = ["MIT".to_owned(), "Zlib".to_owned()].into();
    assert!(satisfied("MIT", &allow));
    assert!(satisfied("(GPL-3.0 OR MIT)", &allow));
    assert!(satisfied("MIT AND Zlib", &allow));
    assert!(!satisfied("MIT AND GPL-3.0", &allow));
    assert!(!satisfied("GPL-3.0", &allow));
    assert!(!satisfied("UNKNOWN", &allow));
    assert!(!satisfied("MIT OR GPL-3.0 AND Zlib", &allow));
}
