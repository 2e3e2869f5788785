//! Loading a model from disk, whatever its format.

use crate::interp::Interpreter;
use saturate_egraph::onnx::Dims;
use saturate_egraph::{onnx, sexp, Error, Graph, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Loads `.onnx` models (folding constants with the interpreter), `.sexp` graphs, and
/// the suite's models by name, `suite:bert`.
pub fn load_model(path: &Path) -> Result<Graph> {
    load_model_with_dims(path, &Dims::new())
}

/// [`load_model`] with the symbolic dimensions of an ONNX model bound by `dims`
/// (`--dim NAME=N`); graphs in the other formats have static shapes only.
pub fn load_model_with_dims(path: &Path, dims: &Dims) -> Result<Graph> {
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix("suite:")) {
        no_dims_for(dims, "suite models")?;
        return crate::suite::load(name).map_err(Error::Invalid);
    }
    match model_format(path)? {
        Format::Sexp => {
            no_dims_for(dims, ".sexp graphs")?;
            sexp::read_file(path)
        }
        Format::Onnx => onnx::load_with_dims(path, &Interpreter, dims),
    }
}

fn no_dims_for(dims: &Dims, what: &str) -> Result<()> {
    match dims.keys().next() {
        Some(k) => Err(Error::Invalid(format!("--dim {k}: {what} have static shapes, with no symbolic dimensions"))),
        None => Ok(()),
    }
}

/// Loads a model to run it on `inputs`, given in the order of the model's inputs.
///
/// Where an ONNX model takes a shape, an axis list or another value that must be
/// static as an input (ONNX test models do), that input is bound to the given value
/// and becomes a constant. Returns the graph and the inputs it still takes.
///
/// Symbolic dimensions are bound by `dims` (`--dim`) and by the shapes of the given
/// inputs, which must agree.
pub fn load_for_inputs(path: &Path, inputs: Vec<Tensor>, dims: &Dims) -> Result<(Graph, Vec<Tensor>)> {
    if path.to_str().is_some_and(|p| p.starts_with("suite:")) || model_format(path)? == Format::Sexp {
        return Ok((load_model_with_dims(path, dims)?, inputs));
    }
    let model = onnx::decode_model(path)?;
    onnx::check_dim_names(&model, dims)?;
    let declared = onnx::declared_inputs(&model)?;
    onnx::check_output_kinds(&model)?;
    if declared.len() != inputs.len() {
        return Err(Error::Invalid(format!(
            "the model takes {} input(s) ({}), but {} were given",
            declared.len(),
            declared.iter().map(|d| format!("`{}`: {}", d.name, d.display())).collect::<Vec<_>>().join(", "),
            inputs.len()
        )));
    }
    let mut dims = dims.clone();
    for (index, (d, given)) in declared.iter().zip(&inputs).enumerate() {
        d.bind(&given.ty(), &mut dims).map_err(|e| Error::Invalid(format!("input {index} (`{}`) {e}", d.name)))?;
    }
    let names: Vec<String> = declared.into_iter().map(|d| d.name).collect();
    let by_name: HashMap<&str, &Tensor> = names.iter().map(String::as_str).zip(&inputs).collect();
    let mut bindings: HashMap<String, Tensor> = HashMap::new();
    loop {
        match onnx::import_model_with_dims(&model, path.parent(), &Interpreter, &bindings, &dims) {
            Ok(graph) => {
                let remaining = names
                    .iter()
                    .zip(&inputs)
                    .filter(|(n, _)| !bindings.contains_key(*n))
                    .map(|(_, t)| t.clone())
                    .collect();
                return Ok((graph, remaining));
            }
            Err(Error::NeedsConstant { input, .. })
                if by_name.contains_key(input.as_str()) && !bindings.contains_key(&input) =>
            {
                bindings.insert(input.clone(), by_name[input.as_str()].clone());
            }
            Err(e) => return Err(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Onnx,
    Sexp,
}

fn model_format(path: &Path) -> Result<Format> {
    if !path.exists() {
        return Err(Error::Io {
            action: "read",
            path: path.into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("sexp") => Ok(Format::Sexp),
        Some("onnx") => Ok(Format::Onnx),
        _ => Err(Error::Invalid(format!(
            "{}: unknown model format; saturate reads .onnx models and .sexp graphs",
            path.display()
        ))),
    }
}
