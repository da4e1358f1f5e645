//! The code map enforces itself: the workspace's dependency graph, as `cargo metadata`
//! reports it, against the code-map table of ARCHITECTURE.md.
//!
//! The table is the input, so the document and the check cannot drift apart. Each row
//! names a folder and a package (the first backticked names of its first two columns) and,
//! in its last column, the workspace crates that package may depend on: folder names
//! separated by commas, `—` for none, `all` or `everything` for any, with remarks in
//! parentheses ignored. Rows of packages outside this workspace (`fuzz/`, its own
//! workspace) and rows naming no package (`tests/`, the root package again) are skipped.
//!
//! What is checked:
//!
//! - every workspace package has a row;
//! - a package's normal and build dependencies on workspace crates are among those its row
//!   allows;
//! - a package whose row says it is "a dev-dependency only" is nobody's normal or build
//!   dependency;
//! - dev-dependencies are checked more loosely: tests may use whatever the crate reaches
//!   through the map anyway (the transitive closure of its allowed crates), plus the test
//!   worlds — [`TEST_WORLDS`], the in-process devnet and the testkit — and never the
//!   binary's package. A dev-dependency that goes back up the map (schema's tests on the
//!   testkit, which depends on schema) is fine: only tests are built with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Folders of the crates any package's tests may use, besides what the map already lets
/// the package reach.
const TEST_WORLDS: [&str; 2] = ["devnet", "testkit"];

/// One row of the code map.
#[derive(Debug)]
struct Row {
    folder: String,
    package: String,
    /// `None`: any workspace crate.
    allowed: Option<BTreeSet<String>>,
    dev_only: bool,
}

/// The first `` `…` `` span of `cell`.
fn first_code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

/// `cell` without its parenthesised remarks.
fn without_remarks(cell: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The rows of the table under "## Code map".
fn code_map(text: &str) -> Vec<Row> {
    let section = text
        .split("\n## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"## Code map\" section");
    let mut rows = Vec::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 4 || cells[0] == "folder" || cells[0].starts_with("---") {
            continue;
        }
        let Some(package) = first_code(cells[1]) else {
            continue;
        };
        let folder = first_code(cells[0]).unwrap_or_default();
        let last = without_remarks(cells[cells.len() - 1]);
        let last = last.trim();
        let allowed = match last {
            "all" | "everything" => None,
            "—" | "-" | "" => Some(BTreeSet::new()),
            names => Some(
                names
                    .split(',')
                    .map(|n| n.trim().trim_matches('`').trim_end_matches('/').to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
            ),
        };
        rows.push(Row {
            folder: folder.trim_end_matches('/').to_string(),
            package: package.to_string(),
            allowed,
            dev_only: cells[1].contains("a dev-dependency only"),
        });
    }
    rows
}

/// Each workspace package's dependencies on other workspace packages, by kind (`normal`,
/// `dev`, `build`).
fn workspace_graph(root: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| {
                    let name = d["name"].as_str()?;
                    names.contains(name).then(|| {
                        let kind = d["kind"].as_str().unwrap_or("normal");
                        (name.to_string(), kind.to_string())
                    })
                })
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect()
}

/// The violations of the map in `graph`, one line each.
fn violations(rows: &[Row], graph: &BTreeMap<String, Vec<(String, String)>>) -> Vec<String> {
    let by_folder: BTreeMap<&str, &Row> = rows.iter().map(|r| (r.folder.as_str(), r)).collect();
    let by_package: BTreeMap<&str, &Row> = rows.iter().map(|r| (r.package.as_str(), r)).collect();
    let package_of = |folder: &str| by_folder.get(folder).map(|r| r.package.clone());
    let mut bad = Vec::new();

    // The packages `row` may depend on; `None` for any.
    let allowed = |row: &Row| -> Option<BTreeSet<String>> {
        row.allowed
            .as_ref()
            .map(|names| names.iter().filter_map(|n| package_of(n)).collect())
    };
    for row in rows {
        for name in row.allowed.iter().flatten() {
            if !by_folder.contains_key(name.as_str()) {
                bad.push(format!(
                    "the row of {} allows {name:?}, which no row of the map names",
                    row.package
                ));
            }
        }
    }
    // Everything the map lets a package reach, directly or through what it may use.
    let closure = |start: &Row| -> Option<BTreeSet<String>> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = allowed(start)?.into_iter().collect();
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            match by_package.get(p.as_str()) {
                Some(row) => todo.extend(allowed(row)?),
                None => continue,
            }
        }
        Some(seen)
    };
    let worlds: BTreeSet<String> = TEST_WORLDS.iter().filter_map(|f| package_of(f)).collect();
    let binary = by_folder
        .values()
        .find(|r| r.allowed.is_none())
        .map(|r| r.package.clone());

    for (package, deps) in graph {
        let Some(row) = by_package.get(package.as_str()) else {
            bad.push(format!(
                "{package} is a workspace package without a row in ARCHITECTURE.md's code map"
            ));
            continue;
        };
        let normal = allowed(row);
        let dev = closure(row);
        for (dep, kind) in deps {
            let ok = match kind.as_str() {
                "dev" => {
                    Some(dep) != binary.as_ref()
                        && (worlds.contains(dep) || dev.as_ref().is_none_or(|d| d.contains(dep)))
                }
                _ => {
                    let dev_only = by_package.get(dep.as_str()).is_some_and(|r| r.dev_only);
                    !dev_only && normal.as_ref().is_none_or(|a| a.contains(dep))
                }
            };
            if !ok {
                bad.push(format!(
                    "{package} has a {kind} dependency on {dep}, which the code map does not allow"
                ));
            }
        }
    }
    bad
}

#[test]
fn the_workspace_follows_the_code_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rows = code_map(&text);
    assert!(
        rows.len() >= 8,
        "the code map's table did not parse: {rows:#?}"
    );
    let graph = workspace_graph(root);
    let bad = violations(&rows, &graph);
    assert!(
        bad.is_empty(),
        "the workspace breaks ARCHITECTURE.md's code map (change the code, or the map and \
         the reason for it):\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn the_check_catches_a_forbidden_edge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rows = code_map(&text);
    let mut graph = workspace_graph(root);
    // The contract crate reaching up to the node, and a library taking the test world.
    graph
        .get_mut("landql-ledger")
        .expect("landql-ledger")
        .push(("landql-devnet".into(), "normal".into()));
    graph
        .get_mut("landql-sync")
        .expect("landql-sync")
        .push(("landql-testkit".into(), "normal".into()));
    graph.insert("landql-unmapped".into(), Vec::new());
    let bad = violations(&rows, &graph);
    for expected in [
        "landql-ledger has a normal dependency on landql-devnet",
        "landql-sync has a normal dependency on landql-testkit",
        "landql-unmapped is a workspace package without a row",
    ] {
        assert!(
            bad.iter().any(|b| b.starts_with(expected)),
            "not caught: {expected}; found {bad:#?}"
        );
    }
}
