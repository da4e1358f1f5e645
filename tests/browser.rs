//! The pages in a real browser: `landql dev` on a fresh data directory, then the Playwright
//! suites in `playground/e2e/` (Debian's Chromium, headless) against it — every page loads
//! with nothing leaving the origin and no console error, search in two scripts, facets,
//! survey numbers, IDs, a property changed after the page was built, the verifier on a real
//! and on tampered proofs, GraphiQL with a token and a subscription, keyboard use, axe-core,
//! and screenshots at 360 and 1280 px (in `playground/e2e-output/`).
//!
//! Needs Node, Chromium (`apt-get install chromium`) and the playground's packages
//! (`npm ci` in `playground/`). Where they are missing the test says what to install and
//! passes — unless `CI` is set: CI installs them, so there a missing piece is a failure.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const RECORDS: u64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_real_browser() {
    let playground = Path::new(env!("CARGO_MANIFEST_DIR")).join("playground");
    if let Some(missing) = missing_tools(&playground) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser tests, but {missing}"
        );
        eprintln!("SKIPPED the browser tests: {missing}");
        return;
    }

    let data = tempfile::tempdir().expect("temp dir");
    let (api_port, ledger_port) = (common::free_port(), common::free_port());
    let mut child = common::landql()
        .args(["dev", "--records", &RECORDS.to_string(), "--data"])
        .arg(data.path())
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--ledger-listen", &format!("127.0.0.1:{ledger_port}")])
        .args([
            "--sync-metrics-listen",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        // The search test acts as a second client through X-Forwarded-For, to spend that
        // client's daily list allowance without touching the others'.
        .args(["--trusted-proxy", "127.0.0.1"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landql dev");
    let stdout = child.stdout.take().expect("stdout");
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.contains("search index");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let banner = tokio::time::timeout(Duration::from_secs(300), banner)
        .await
        .expect("landql dev comes up within 5 minutes")
        .expect("reader");
    let token = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("citizen"))
        .map(|t| t.trim().to_string())
        .expect("a citizen token in the banner");
    let api = format!("http://127.0.0.1:{api_port}");
    common::caught_up(
        &reqwest::Client::new(),
        &api,
        RECORDS as i64,
        Duration::from_secs(180),
    )
    .await;
    let orderer_key = std::fs::read_to_string(data.path().join("ledger").join("orderer.pub"))
        .expect("orderer.pub")
        .trim()
        .to_string();

    let status = tokio::task::spawn_blocking(move || {
        Command::new("npm")
            .args(["run", "--silent", "e2e"])
            .current_dir(&playground)
            .env("LANDQL_URL", &api)
            .env(
                "LANDQL_LEDGER_URL",
                format!("http://127.0.0.1:{ledger_port}"),
            )
            .env("LANDQL_TOKEN", token)
            .env("LANDQL_ORDERER_KEY", orderer_key)
            .status()
    })
    .await
    .expect("runner")
    .expect("run npm");

    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    assert!(
        status.success(),
        "the browser tests failed: {status:?} (output above)"
    );
}

/// What the browser tests need that this machine lacks, if anything.
fn missing_tools(playground: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    if Command::new("npm").arg("--version").output().is_err() {
        return Some("no npm (install Node.js 20)".into());
    }
    if !playground
        .join("node_modules")
        .join("playwright-core")
        .exists()
    {
        return Some("the playground's packages are not installed (npm ci in playground/)".into());
    }
    None
}
