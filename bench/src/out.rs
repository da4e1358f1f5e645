//! Where a benchmark's figures go: its own section of BENCHMARKS.md.

use std::path::PathBuf;

use anyhow::Context;

/// The `--out` flag every benchmark takes.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchOut {
    /// The file whose section for this benchmark is replaced with the new figures.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
}

impl BenchOut {
    /// Replaces (or appends) the section between `<!-- bench:NAME -->` markers.
    pub fn write(&self, name: &str, title: &str, body: &str) -> anyhow::Result<()> {
        let (start, end) = (
            format!("<!-- bench:{name} -->"),
            format!("<!-- /bench:{name} -->"),
        );
        let section = format!("{start}\n## {title}\n\n{body}\n{end}");
        let old = std::fs::read_to_string(&self.out).unwrap_or_else(|_| "# Benchmarks\n".into());
        let new = match (old.find(&start), old.find(&end)) {
            (Some(a), Some(b)) if b > a => {
                format!("{}{section}{}", &old[..a], &old[b + end.len()..])
            }
            _ => format!("{}\n{section}\n", old.trim_end()),
        };
        std::fs::write(&self.out, new)
            .with_context(|| format!("writing {}", self.out.display()))?;
        println!("{body}\nwritten to {}", self.out.display());
        Ok(())
    }
}
