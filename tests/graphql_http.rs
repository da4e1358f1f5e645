//! GraphQL-over-HTTP conformance: the graphql-http audit (`auditServer`, the npm package the
//! spec's working group keeps) against a real `landql serve` with its default settings —
//! rate limits on, no token — in front of a real PostgreSQL synced from a seeded devnet.
//! Every audit must pass with no error and no warning (notices, the spec's MAYs, are
//! printed); the script is `tests/graphql-http/audit.mjs`.
//!
//! Needs Node and the audit's packages (`npm ci` in `tests/graphql-http/`). Where they are
//! missing the test says what to install and passes — unless `CI` is set: CI installs them,
//! so there a missing piece is a failure.

mod common;
mod sync_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sync_support::{database, options, seeded_devnet, wait_synced, Running};

/// What is missing to run the audit, if anything.
fn missing_tools(dir: &Path) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("Node.js is not installed".into());
    }
    if !dir.join("node_modules/graphql-http").is_dir() {
        return Some(format!(
            "the audit's packages are not installed (run `npm ci` in {})",
            dir.display()
        ));
    }
    None
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_http_audit_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graphql-http");
    if let Some(missing) = missing_tools(&dir) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the graphql-http audit, but {missing}"
        );
        eprintln!("SKIPPED the graphql-http audit: {missing}");
        return;
    }

    let devnet = seeded_devnet(200, 3).await;
    let (pg, pool) = database().await;
    let worker = Running::start(options(&devnet.url, &pg.database_url()));
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;

    let port = common::free_port();
    let index = tempfile::tempdir().expect("temp dir");
    let _serve = Serve(
        common::landql()
            .args(["serve", "--ledger", &devnet.url, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--index-dir")
            .arg(index.path())
            .env("DATABASE_URL", pg.database_url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start landql serve"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{api}/readyz")).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "landql serve did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("audit.mjs")
            .arg(format!("{api}/graphql"))
            .current_dir(&dir)
            .output()
            .expect("run node audit.mjs")
    })
    .await
    .expect("audit task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the graphql-http audit found errors or warnings (above)"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("graphql-http audit:"))
        .unwrap_or_default();
    assert!(
        summary.contains(" 0 warn, 0 error") && !summary.starts_with("graphql-http audit: 0 ok"),
        "{summary}"
    );
    worker.stop().await.expect("worker stops cleanly");
}
