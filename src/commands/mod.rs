//! One module a subcommand: each parses nothing (clap did) and prints what its crate
//! call returns.

pub mod bench;
pub mod check_rules;
pub mod conformance;
pub mod convert;
pub mod engine;
pub mod fuzz;
pub mod info;
pub mod optimize;
pub mod rules;
pub mod run;

use std::path::{Path, PathBuf};

/// The files writing a model to `output` creates: the file itself, and for `.sexp` its
/// side file of large weights (`.weights`, same stem).
pub fn files_written(output: &Path) -> Vec<PathBuf> {
    let mut files = vec![output.to_path_buf()];
    if output.extension().is_some_and(|e| e == "sexp") {
        files.push(output.with_extension("weights"));
    }
    files
}

/// Fails, naming the file, if writing a model to `output` would replace an existing
/// file and `force` was not given.
pub fn refuse_overwrite(output: &Path, force: bool) -> anyhow::Result<()> {
    if force {
        return Ok(());
    }
    match files_written(output).into_iter().find(|p| p.exists()) {
        Some(existing) => anyhow::bail!("{} already exists; pass --force to overwrite", existing.display()),
        None => Ok(()),
    }
}
