//! The PyTorch export suite: what users feed saturate, as `torch.onnx.export` writes
//! it. `scripts/export-pytorch` builds torchvision and transformers architectures with
//! random weights, exports each with both of torch's exporters (dynamo and TorchScript),
//! with static shapes and with dynamic batch (and sequence) axes, and runs the exports in
//! onnxruntime. Each export is a folder in the layout of the ONNX node tests:
//!
//! ```text
//! <dir>/suite.json                                  the list, with torch's failures
//! <dir>/<model>.<dynamo|torchscript>.<static|dynamic>/model.onnx
//! <dir>/<…>/test_data_set_0/input_K.pb, output_K.pb onnxruntime's outputs
//! ```
//!
//! A dynamic export's inputs are at another binding than it was exported at, so running
//! it proves its symbolic dims are bound from the inputs. The small variants (few
//! layers, narrow) are committed in `tests/data/pytorch/`; the full sizes are made on
//! demand for the benchmarks.

use crate::conformance::{self, Engine, Outcome, Tolerance};
use saturate_egraph::DType;
use std::path::{Path, PathBuf};

/// Where the committed small exports are.
pub fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/pytorch")
}

/// Outputs against onnxruntime's: rtol 1e-3, and atol 1e-4 or 1e-4 of the output's
/// largest magnitude (f32 sums in another order; deep nets amplify the difference).
pub const TOLERANCE: Tolerance = Tolerance { rtol: 1e-3, atol: 1e-4, of_scale: 1e-4 };

/// Half-precision outputs: rtol 1e-2 (ten f16 places), atol 1e-3 or 1 % of the output's
/// largest magnitude. Every op rounds to f16 (ε = 2⁻¹⁰), and onnxruntime's f16 kernels
/// and torch's own disagree by up to 0.6 % of the largest output on the suite's f16
/// exports (`torch_vs_onnxruntime` in `suite.json`).
pub const TOLERANCE_F16: Tolerance = Tolerance { rtol: 1e-2, atol: 1e-3, of_scale: 1e-2 };

/// The tolerance for an output of element type `dtype`.
pub fn tolerance(dtype: DType) -> Tolerance {
    if dtype == DType::F16 {
        TOLERANCE_F16
    } else {
        TOLERANCE
    }
}

/// One export of the suite, as `suite.json` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// `<model>.<exporter>.<static|dynamic>`, the folder's name.
    pub name: String,
    pub model: String,
    pub exporter: String,
    pub dynamic: bool,
    /// Nodes of the exported graph.
    pub nodes: usize,
    pub dir: PathBuf,
}

/// The suite in `dir`: the exports, and the ones torch failed to export (name, error).
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub exports: Vec<Export>,
    pub failed: Vec<(String, String)>,
}

/// Reads `dir/suite.json`; every export it lists must have its folder.
pub fn read_suite(dir: &Path) -> Result<Suite, String> {
    let path = dir.join("suite.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (made by scripts/export-pytorch)", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let field = |v: &serde_json::Value, k: &str| -> Result<serde_json::Value, String> {
        v.get(k).cloned().ok_or_else(|| format!("{}: an entry has no `{k}`", path.display()))
    };
    let text_of = |v: serde_json::Value| v.as_str().map(str::to_string).unwrap_or_default();
    let mut exports = Vec::new();
    for e in json.get("exports").and_then(|v| v.as_array()).into_iter().flatten() {
        let name = text_of(field(e, "name")?);
        let folder = dir.join(&name);
        if !folder.join("model.onnx").exists() {
            return Err(format!("{}: `{name}` is listed but {} is missing", path.display(), folder.display()));
        }
        exports.push(Export {
            model: text_of(field(e, "model")?),
            exporter: text_of(field(e, "exporter")?),
            dynamic: field(e, "dynamic")?.as_bool().unwrap_or(false),
            nodes: field(e, "nodes")?.as_u64().unwrap_or(0) as usize,
            dir: folder,
            name,
        });
    }
    let failed = json
        .get("failed")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .map(|f| {
            (text_of(f.get("name").cloned().unwrap_or_default()), text_of(f.get("error").cloned().unwrap_or_default()))
        })
        .collect();
    Ok(Suite { exports, failed })
}

/// Runs one export on `engine` against onnxruntime's outputs.
pub fn check(export: &Export, engine: Engine) -> Outcome {
    conformance::model_folder_outcome(&export.dir, engine, tolerance)
}
