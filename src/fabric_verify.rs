//! `landql fabric verify FILE…`: Fabric block files checked as Fabric checks them.
//!
//! The output is one JSON document: for each file, its block count, how many blocks' orderer
//! signatures verified and how many could not be checked (blocks before the first intact
//! config block, which is the trust anchor), and `results`, the damaged blocks in the shape of
//! Fabric's `ledgerutil verify` (`blocks.json`: `blockNum`, `valid`, `errors`). With
//! `--ledgerutil` only ledgerutil's checks run, so `results` is what ledgerutil reports.
//! Exit status: 0 every block intact, 1 a block damaged, 2 a file unreadable or not a
//! Fabric block file (nothing is printed then) — clap's usage errors are 2 as well.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use fabric::Signatures;
use serde::Serialize;

#[derive(clap::Subcommand)]
pub enum FabricCommand {
    /// Check Hyperledger Fabric blocks: header hashes and the previous-hash chain, data
    /// hashes, glued transactions (as Fabric's `ledgerutil verify` does) and the orderers'
    /// signatures against the channel's config. Prints the damaged blocks as JSON; exit 0
    /// when every block is intact, 1 when one is damaged, 2 when a file cannot be read.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A peer's block files (`chains/chains/CHANNEL/blockfile_NNNNNN`), each checked as
    /// one chain from its first block; a file named `*.block` is one serialized block
    /// (`common.Block`), as `configtxgen` or `peer channel fetch` write it.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Only the checks of Fabric's `ledgerutil verify` (and the numbering), not the
    /// orderers' signatures: `results` is then exactly what ledgerutil reports.
    #[arg(long)]
    ledgerutil: bool,
}

/// One damaged block, as `ledgerutil verify` writes it.
#[derive(Serialize)]
struct BlockResult<'a> {
    #[serde(rename = "blockNum")]
    block_num: u64,
    valid: bool,
    errors: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileResult<'a> {
    file: String,
    blocks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    signatures_verified: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signatures_unchecked: Option<usize>,
    results: Vec<BlockResult<'a>>,
}

pub fn run(command: FabricCommand) -> ExitCode {
    let FabricCommand::Verify(args) = command;
    match verify(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether `path` names one serialized block rather than a block file.
fn is_single_block(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "block")
}

fn read(path: &Path) -> anyhow::Result<Vec<fabric::proto::Block>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if is_single_block(path) {
        let block = fabric::read_block(&bytes)
            .with_context(|| format!("{} is not a serialized Fabric block", path.display()))?;
        Ok(vec![block])
    } else {
        let blocks = fabric::read_block_file(&bytes)
            .with_context(|| format!("{} is not a Fabric block file", path.display()))?;
        Ok(blocks.into_iter().map(|b| b.block).collect())
    }
}

/// `Ok(true)` when every block of every file is intact.
fn verify(args: &VerifyArgs) -> anyhow::Result<bool> {
    // Every file is read before anything is printed: a bad file is exit 2 and no output.
    let chains = args
        .files
        .iter()
        .map(|path| Ok((path, read(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let check_signatures = !args.ledgerutil;
    let reports: Vec<_> = chains
        .iter()
        .map(|(_, blocks)| fabric::verify_chain(blocks, check_signatures))
        .collect();
    let mut intact = true;
    let mut out = Vec::new();
    for ((path, blocks), reports) in chains.iter().zip(&reports) {
        let results: Vec<BlockResult<'_>> = reports
            .iter()
            .filter(|r| !r.valid())
            .map(|r| BlockResult {
                block_num: r.number,
                valid: false,
                errors: &r.errors,
            })
            .collect();
        intact &= results.is_empty();
        let count = |f: fn(&Signatures) -> bool| {
            check_signatures.then(|| reports.iter().filter(|r| f(&r.signatures)).count())
        };
        out.push(FileResult {
            file: path.display().to_string(),
            blocks: blocks.len(),
            signatures_verified: count(|s| matches!(s, Signatures::Verified(_))),
            signatures_unchecked: count(|s| matches!(s, Signatures::NoTrust)),
            results,
        });
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(intact)
}
