//! Loading a model from disk, whatever its format.

use crate::interp::Interpreter;
use saturate_egraph::{onnx, sexp, Error, Graph, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Loads `.onnx` models (folding constants with the interpreter), `.sexp` graphs, and
/// the suite's models by name, `suite:bert`.
pub fn load_model(path: &Path) -> Result<Graph> {
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix("suite:")) {
        return crate::suite::load(name).map_err(Error::Invalid);
    }
    match model_format(path)? {
        Format::Sexp => sexp::read_file(path),
        Format::Onnx => onnx::load(path, &Interpreter),
    }
}

/// Loads a model to run it on `inputs`, given in the order of the model's inputs.
///
/// Where an ONNX model takes a shape, an axis list or another value that must be
/// static as an input (ONNX test models do), that input is bound to the given value
/// and becomes a constant. Returns the graph and the inputs it still takes.
pub fn load_for_inputs(path: &Path, inputs: Vec<Tensor>) -> Result<(Graph, Vec<Tensor>)> {
    if path.to_str().is_some_and(|p| p.starts_with("suite:")) {
        return Ok((load_model(path)?, inputs));
    }
    if model_format(path)? == Format::Sexp {
        return Ok((sexp::read_file(path)?, inputs));
    }
    let model = onnx::decode_model(path)?;
    let declared = onnx::runtime_inputs(&model)?;
    onnx::check_output_kinds(&model)?;
    if declared.len() != inputs.len() {
        return Err(Error::Invalid(format!(
            "the model takes {} input(s) ({}), but {} were given",
            declared.len(),
            declared.iter().map(|(n, t)| format!("`{n}`: {t}")).collect::<Vec<_>>().join(", "),
            inputs.len()
        )));
    }
    for (index, ((name, ty), given)) in declared.iter().zip(&inputs).enumerate() {
        if given.ty() != *ty {
            return Err(Error::Invalid(format!(
                "input {index} (`{name}`) must be {ty}, but the given tensor is {}",
                given.ty()
            )));
        }
    }
    let names: Vec<String> = declared.into_iter().map(|(n, _)| n).collect();
    let by_name: HashMap<&str, &Tensor> = names.iter().map(String::as_str).zip(&inputs).collect();
    let mut bindings: HashMap<String, Tensor> = HashMap::new();
    loop {
        match onnx::import_model(&model, path.parent(), &Interpreter, &bindings) {
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
