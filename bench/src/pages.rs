//! `landql bench pages`: the web pages' budgets (the `playground/` room).
//!
//! 1. **Sizes**: for each page, the JavaScript and CSS its HTML loads before anything
//!    else (scripts, stylesheets and module preloads under `/assets/`), raw, as the
//!    brotli copy the server sends, and gzip'd (what a client without br gets); the search
//!    page's budget is 150 KB compressed. GraphiQL's is reported, and the whole of
//!    `assets/` (which includes what pages load later, such as editor workers).
//! 2. **First results painted**: on the data of `bench api` (`--records`; BENCHMARKS.md has 1 M) and
//!    `landql serve` as a child process, Chromium types data-derived queries into `/search`
//!    one key at a time at a typist's pace; the time from the last key to the frame that
//!    shows that query's results, per query (`playground/bench/paint.mjs`). The baseline in
//!    the same run: the page's own `search` request for the final text (timed by the
//!    browser), and the same request replayed by Node once warm — what the page adds on top
//!    of its request is debounce, rendering and paint. Budget: median ≤ 150 ms.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};
use migrations::sqlx;
use serde::Deserialize;

use crate::backend::{Backend, BackendArgs};
use crate::machine::machine;
use crate::server::Server;

#[derive(clap::Args)]
pub struct PagesBenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Queries typed into the search page.
    #[arg(long, default_value_t = 40)]
    queries: usize,
    /// Only the sizes (no data, no browser).
    #[arg(long)]
    sizes_only: bool,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// One page's initial JavaScript and CSS, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Size {
    raw: usize,
    brotli: usize,
    gzip: usize,
}

impl std::ops::AddAssign for Size {
    fn add_assign(&mut self, o: Size) {
        self.raw += o.raw;
        self.brotli += o.brotli;
        self.gzip += o.gzip;
    }
}

/// The `/assets/…` files an HTML page references (scripts, stylesheets, module preloads).
fn referenced_assets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"/assets/", "href=\"/assets/"] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len() - "assets/".len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            let path = &rest[..end];
            if (path.ends_with(".js") || path.ends_with(".css")) && !out.iter().any(|p| p == path) {
                out.push(path.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

fn size_of(path: &str) -> anyhow::Result<Size> {
    let f = playground::file(path).with_context(|| format!("{path} is not in the build"))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&f.raw)?;
    let gzip = gz.finish()?.len();
    Ok(Size {
        raw: f.raw.len(),
        brotli: f.brotli.as_ref().map_or(f.raw.len(), |b| b.len()),
        gzip,
    })
}

/// One page's file name, its initial JS + CSS, and how many files that is.
type PageSize = (&'static str, Size, usize);

/// Per page: its initial JS + CSS; and the whole of `assets/`.
fn page_sizes() -> anyhow::Result<(Vec<PageSize>, Size)> {
    let mut pages = Vec::new();
    for &(_, file) in playground::PAGES {
        let html = playground::file(file).with_context(|| format!("{file} is not in the build"))?;
        let html = String::from_utf8_lossy(&html.raw).into_owned();
        let assets = referenced_assets(&html);
        let mut total = Size::default();
        for a in &assets {
            total += size_of(a)?;
        }
        pages.push((file, total, assets.len()));
    }
    let mut all = Size::default();
    for p in playground::paths().filter(|p| p.starts_with("assets/")) {
        all += size_of(&p)?;
    }
    Ok((pages, all))
}

fn kb(b: usize) -> String {
    format!("{:.1}", b as f64 / 1000.0)
}

#[derive(Deserialize)]
struct Painted {
    /// Last key to results painted, per query, ms.
    paint_ms: Vec<f64>,
    /// The page's own request for the final text, send to last byte, per query, ms.
    req_ms: Vec<f64>,
    /// The same request replayed by Node with fetch (warm), per query, ms.
    api_ms: Vec<f64>,
    /// Queries whose results never showed.
    failures: Vec<String>,
    /// ms between keys.
    key_delay_ms: f64,
    /// What each page fetched once settled, compressed as sent.
    loaded: std::collections::BTreeMap<String, Loaded>,
    /// The slowest queries: text, paint ms, its request's ms.
    slowest: Vec<(String, f64, Option<f64>)>,
}

#[derive(Deserialize)]
struct Loaded {
    files: usize,
    bytes: usize,
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

pub async fn run(args: PagesBenchArgs) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let (pages, all) = page_sizes()?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Pages as embedded in this binary. Initial JS + CSS = the scripts, stylesheets and \
         module preloads each page's HTML loads; br is what the server sends, gzip what a \
         client without br gets (kB = 1000 bytes).\n"
    );
    let _ = writeln!(
        s,
        "| page | files | raw kB | br kB | gzip kB |\n|---|---|---|---|---|"
    );
    for (file, size, n) in &pages {
        let _ = writeln!(
            s,
            "| `{file}` | {n} | {} | {} | {} |",
            kb(size.raw),
            kb(size.brotli),
            kb(size.gzip)
        );
    }
    let _ = writeln!(
        s,
        "| all of `assets/` (incl. what pages load later: editor workers, fonts) | | {} | {} | {} |",
        kb(all.raw),
        kb(all.brotli),
        kb(all.gzip)
    );
    let search = pages
        .iter()
        .find(|(f, _, _)| *f == "search.html")
        .map(|(_, s, _)| *s)
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "\nSearch page: {} kB br, {} kB gzip (budget 150 kB compressed: {}).",
        kb(search.brotli),
        kb(search.gzip),
        if search.gzip.max(search.brotli) <= 150_000 {
            "met"
        } else {
            "NOT met"
        }
    );

    if !args.sizes_only {
        let painted = paint(&args).await?;
        s.push('\n');
        s.push_str(&painted);
    }
    args.out
        .write("pages", "Pages: sizes and first results painted", &s)
}

/// The paint measurement on a seeded, synced replica; its report.
async fn paint(args: &PagesBenchArgs) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    // The script stays with the pages it measures, in playground/.
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
        .join("playground/bench/paint.mjs");
    if !script.exists() {
        bail!(
            "{} is missing (run from a landql checkout)",
            script.display()
        );
    }
    let backend = Backend::start(&args.backend).await?;
    let pool = migrations::connect(&backend.database_url).await?;
    let synced = backend.wait_synced(&pool).await?;
    // Data-derived queries: owner names as recorded (any script), a place word beside
    // some, and survey numbers with their village — what citizens type.
    let queries: Vec<String> = sqlx::query_scalar(
        "SELECT q FROM (
           SELECT CASE (row_number() OVER ()) % 3
                    WHEN 0 THEN o->>'name'
                    WHEN 1 THEN (o->>'name') || ' ' || p.village
                    ELSE p.survey_no || ' ' || p.village END AS q
             FROM properties p, jsonb_array_elements(p.record->'owners') o
            ORDER BY md5(p.id) LIMIT $1) t",
    )
    .bind(args.queries as i64)
    .fetch_all(&pool)
    .await?;
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    let http = reqwest::Client::new();
    let mut server = Server::start(&backend, backend.root.path(), "warn", &[]).await?;
    let ready = server.wait_ready(&http).await;
    let result = match ready {
        Ok(_) => run_script(&script, &server.base, &queries).await,
        Err(e) => Err(e),
    };
    server.stop().await;
    let note = backend.records_note.clone();
    backend.stop().await;
    let p = result?;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "First results painted on `/search`: {note}; {records} properties synced in {synced:.0} s; \
         `landql serve` with its index; headless Chromium ({} queries typed at {:.0} ms a key; \
         machine: {}).\n",
        p.paint_ms.len() + p.failures.len(),
        p.key_delay_ms,
        machine()
    );
    let _ = writeln!(s, "| | median ms | p90 ms | max ms |\n|---|---|---|---|");
    for (name, v) in [
        ("last key → results painted (the page)", &p.paint_ms),
        (
            "the page's own `search` request for the final text (baseline)",
            &p.req_ms,
        ),
        ("that request replayed by Node once warm", &p.api_ms),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {:.1} | {:.1} | {:.1} |",
            quantile(v, 0.5),
            quantile(v, 0.9),
            quantile(v, 1.0)
        );
    }
    let median = quantile(&p.paint_ms, 0.5);
    let _ = writeln!(
        s,
        "\nBudget: median ≤ 150 ms — {} ({median:.1} ms; the page adds {:.1} ms to its request's median: \
         the debounce, rendering and the paint).",
        if median <= 150.0 { "met" } else { "NOT met" },
        median - quantile(&p.req_ms, 0.5)
    );
    let _ = writeln!(
        s,
        "\nWhat each page fetched in Chromium once settled (network idle; compressed as sent, \
         so br), including what it loads after its HTML — for GraphiQL the editor and its workers:\n\n\
         | page | files | kB |\n|---|---|---|"
    );
    for (page, l) in &p.loaded {
        let _ = writeln!(s, "| `{page}` | {} | {} |", l.files, kb(l.bytes));
    }
    let _ = writeln!(s, "\nSlowest to paint (text: painted ms, its request ms):");
    for (q, paint, req) in &p.slowest {
        let req = req.map_or("?".to_string(), |r| format!("{r:.1}"));
        let _ = writeln!(s, "- `{q}`: {paint:.1}, {req}");
    }
    if !p.failures.is_empty() {
        let _ = writeln!(s, "\nQueries whose results never showed: {:?}", p.failures);
    }
    Ok(s)
}

async fn run_script(script: &Path, base: &str, queries: &[String]) -> anyhow::Result<Painted> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_vec(queries)?)?;
    let out = tokio::process::Command::new("node")
        .arg(script)
        .env("LANDQL_URL", base)
        .env("QUERIES", file.path())
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running node (Node.js 20, and `npm ci` in playground/)")?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), out.status);
    }
    let last = String::from_utf8_lossy(&out.stdout);
    let line = last.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("reading the script's answer: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_scripts_styles_and_preloads_of_a_page() {
        let html = r#"<script type="module" crossorigin src="/assets/search-AbC123xy.js"></script>
<link rel="modulepreload" crossorigin href="/assets/layout-B3s0RlB9.js">
<link rel="stylesheet" crossorigin href="/assets/layout-CaT7ThHM.css">
<link rel="icon" href="/assets/icon-1234abcd.png">"#;
        assert_eq!(
            referenced_assets(html),
            [
                "assets/search-AbC123xy.js",
                "assets/layout-B3s0RlB9.js",
                "assets/layout-CaT7ThHM.css"
            ]
        );
    }

    #[test]
    fn every_page_has_sizes() {
        let (pages, all) = page_sizes().expect("sizes");
        assert_eq!(pages.len(), playground::PAGES.len());
        for (file, size, n) in pages {
            assert!(n > 0 && size.raw > 0, "{file} loads no script or style");
            assert!(size.brotli <= size.raw && size.gzip <= size.raw);
        }
        assert!(all.raw > 0);
    }
}
