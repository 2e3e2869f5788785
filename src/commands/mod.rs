//! One module a subcommand: each parses nothing (clap did) and prints what its crate
//! call returns.

pub mod bench;
pub mod check_rules;
pub mod conformance;
pub mod convert;
pub mod engine;
pub mod fuzz;
pub mod info;
pub mod ops;
pub mod optimize;
pub mod plot;
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

/// `--dim NAME=N`: the size of a symbolic dimension of the model's inputs.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DimArgs {
    /// Size of a symbolic dimension of the model's inputs (repeatable: --dim batch=1 --dim
    /// sequence=128). A compiled program is for one binding; run and bench also bind
    /// dimensions from the shapes of the inputs given.
    #[arg(long = "dim", value_name = "NAME=N", value_parser = parse_dim)]
    pub dims: Vec<(String, usize)>,
}

impl DimArgs {
    pub fn map(&self) -> saturate_egraph::onnx::Dims {
        self.dims.iter().cloned().collect()
    }
}

fn parse_dim(text: &str) -> Result<(String, usize), String> {
    let (name, size) = text.split_once('=').ok_or_else(|| format!("`{text}`: write NAME=N, like batch=1"))?;
    let size: usize = size.trim().parse().map_err(|_| format!("`{text}`: the size must be a whole number"))?;
    if name.trim().is_empty() {
        return Err(format!("`{text}`: the dimension needs a name"));
    }
    Ok((name.trim().to_string(), size))
}
