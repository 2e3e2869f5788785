//! `saturate convert`: between ONNX and the S-expression format.

use anyhow::{bail, Result};
use saturate_egraph::onnx::Dims;
use saturate_egraph::{sexp, Graph};
use std::path::Path;
use std::process::ExitCode;

pub fn convert(model: &Path, dims: &Dims, output: &Path, force: bool) -> Result<ExitCode> {
    let to_sexp = match output.extension().and_then(|e| e.to_str()) {
        Some("sexp") => true,
        Some("onnx") => false,
        _ => bail!("{}: the output must be a .sexp or .onnx file", output.display()),
    };
    let side = output.with_extension("weights");
    super::refuse_overwrite(output, force)?;
    let graph: Graph = saturate_verify::load_model_with_dims(model, dims)?;
    if to_sexp {
        sexp::write_file(&graph, output)?;
    } else {
        saturate_egraph::onnx::save(&graph, output)?;
    }
    let weights = if to_sexp && side.exists() { format!(" and {}", side.display()) } else { String::new() };
    println!("wrote {}{weights}", output.display());
    Ok(ExitCode::SUCCESS)
}
