//! Conformance against the ONNX backend test data of the `onnx==1.22.0` wheel:
//! the operator tests (`node/`, 1765 tests with inputs and expected outputs) and the
//! "light" model zoo (`light/`, nine CNNs with generated weights).
//!
//! `scripts/fetch-onnx-data` downloads the pinned wheel from PyPI and extracts both
//! folders to `data/onnx-1.22.0/`; [`data_dir`] finds them.
//!
//! Each node test is classified as
//! - **passed**: every output matches within rtol 1e-3, atol 1e-4;
//! - **unsupported**: the model is valid but uses something saturate does not support
//!   (an op, an element type such as float16, an attribute value); import says which;
//! - **failed**: anything else: a wrong value, an error, a panic. A failure in a test
//!   of a supported op is a bug.
//!
//! A test belongs to the op it tests: the op of its single node, or, for function tests
//! expanded into several nodes (`test_softmax_axis_0_expanded`), the op its name starts
//! with.

use crate::compare::{compare, ATOL, RTOL};
use crate::{load_for_inputs, run};
use saturate_egraph::onnx::{self, read_tensor_file, SUPPORTED_OPS};
use saturate_egraph::{DType, Graph, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The pinned ONNX release whose test data saturate checks against.
pub const ONNX_VERSION: &str = "1.22.0";

/// Where the extracted test data lives: `$SATURATE_ONNX_DATA`, or `data/onnx-1.22.0`
/// in the workspace.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("SATURATE_ONNX_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("data").join(format!("onnx-{ONNX_VERSION}")),
    }
}

/// Fails with instructions when the data has not been fetched.
pub fn require_data(dir: &Path) -> Result<(), String> {
    for sub in ["node", "light"] {
        if !dir.join(sub).is_dir() {
            return Err(format!(
                "ONNX test data not found at {}: run scripts/fetch-onnx-data (it downloads onnx=={ONNX_VERSION} from PyPI)",
                dir.join(sub).display()
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Unsupported(String),
    Failed(String),
}

/// The result of one node test.
#[derive(Debug, Clone)]
pub struct NodeTest {
    pub name: String,
    /// The ONNX op the test is about.
    pub op: String,
    pub outcome: Outcome,
}

/// Test folders under `node_dir`, sorted by name.
pub fn node_test_dirs(node_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(node_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// What computes a graph's outputs: the interpreter ([`interpreter`]) or a compiled
/// engine, which the caller passes in (this crate does not depend on the backend).
pub type Engine<'a> = &'a dyn Fn(&Graph, &[Tensor]) -> Result<Vec<Tensor>, EngineError>;

/// Why an engine did not compute a graph.
#[derive(Debug, Clone)]
pub struct EngineError {
    /// The engine does not run some op or feature of the graph (not a failure).
    pub unsupported: bool,
    pub message: String,
}

/// The reference interpreter as an [`Engine`].
pub fn interpreter(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
    run(graph, inputs).map_err(|e| EngineError { unsupported: false, message: e.to_string() })
}

/// Runs every node test under `node_dir` on `engine`, calling `progress` after each one.
pub fn run_node_tests(
    node_dir: &Path,
    engine: Engine,
    mut progress: impl FnMut(&NodeTest),
) -> std::io::Result<Vec<NodeTest>> {
    let dirs = node_test_dirs(node_dir)?;
    let ops = single_node_ops(&dirs);
    let mut results = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let test = run_node_test(&dir, &ops, engine);
        progress(&test);
        results.push(test);
    }
    Ok(results)
}

/// Runs one node test folder: `model.onnx` and `test_data_set_*/{input,output}_N.pb`.
/// `ops` maps single-node test names to their op (see [`run_node_tests`]).
fn run_node_test(dir: &Path, ops: &BTreeMap<String, String>, engine: Engine) -> NodeTest {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let op = test_op(&name, ops);
    let outcome = match catch_unwind(AssertUnwindSafe(|| node_test_outcome(dir, engine))) {
        Ok(outcome) => outcome,
        Err(panic) => Outcome::Failed(format!("panic: {}", panic_message(&panic))),
    };
    NodeTest { name, op, outcome }
}

/// How outputs are compared: `|a − b| ≤ atol + rtol·|b|`, with atol raised to `of_scale`
/// times the largest `|b|` of the output where that is more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
    pub of_scale: f64,
}

/// The ONNX runner's tolerance for node tests.
pub const NODE_TESTS: Tolerance = Tolerance { rtol: RTOL, atol: ATOL, of_scale: 0.0 };

fn node_test_outcome(dir: &Path, engine: Engine) -> Outcome {
    model_folder_outcome(dir, engine, |_| NODE_TESTS)
}

/// Runs a folder in the layout of the node tests (`model.onnx`, `test_data_set_*/`
/// `input_K.pb` and `output_K.pb`): the model is bound to the shapes of each set's
/// inputs, run on `engine`, and its outputs compared with the set's, at the tolerance
/// for each output's element type.
pub fn model_folder_outcome(dir: &Path, engine: Engine, tolerance: fn(DType) -> Tolerance) -> Outcome {
    let mut sets: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect(),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    sets.sort();
    if sets.is_empty() {
        return Outcome::Failed("no test_data_set folder".into());
    }
    let model_path = dir.join("model.onnx");
    let kinds = onnx::decode_model(&model_path).and_then(|m| {
        onnx::declared_inputs(&m)?;
        onnx::check_output_kinds(&m)
    });
    if let Err(e) = kinds {
        return classify(e);
    }
    for set in sets {
        let load = |prefix: &str| -> Result<Vec<Tensor>, saturate_egraph::Error> {
            let mut tensors = Vec::new();
            while let Some(path) = Some(set.join(format!("{prefix}_{}.pb", tensors.len()))).filter(|p| p.exists()) {
                tensors.push(read_tensor_file(&path)?.1);
            }
            Ok(tensors)
        };
        let (inputs, expected) = match (load("input"), load("output")) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => return classify(e),
        };
        let (graph, inputs) = match load_for_inputs(&dir.join("model.onnx"), inputs, &Default::default()) {
            Ok(loaded) => loaded,
            Err(e) => return classify(e),
        };
        let outputs = match engine(&graph, &inputs) {
            Ok(outputs) => outputs,
            Err(e) if e.unsupported => return Outcome::Unsupported(e.message),
            Err(e) => return Outcome::Failed(format!("run: {}", e.message)),
        };
        if outputs.len() != expected.len() {
            return Outcome::Failed(format!("{} outputs, expected {}", outputs.len(), expected.len()));
        }
        for (i, (got, want)) in outputs.iter().zip(&expected).enumerate() {
            let scale =
                want.to_f32_vec().iter().fold(0f64, |m, v| if v.is_finite() { m.max(v.abs() as f64) } else { m });
            let tolerance = tolerance(want.dtype());
            let atol = tolerance.atol.max(tolerance.of_scale * scale);
            if let Err(m) = compare(got, want, tolerance.rtol, atol) {
                return Outcome::Failed(format!("output {i}: {m}"));
            }
        }
    }
    Outcome::Passed
}

fn classify(e: saturate_egraph::Error) -> Outcome {
    if e.is_unsupported() {
        Outcome::Unsupported(e.to_string())
    } else {
        Outcome::Failed(e.to_string())
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// The op type of every single-node test model, by test name.
fn single_node_ops(dirs: &[PathBuf]) -> BTreeMap<String, String> {
    let mut ops = BTreeMap::new();
    for dir in dirs {
        let Ok(model) = onnx::decode_model(&dir.join("model.onnx")) else {
            continue;
        };
        if let Some([node]) = model.graph.as_ref().map(|g| g.node.as_slice()) {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            ops.insert(name, node.op_type.clone().unwrap_or_default());
        }
    }
    ops
}

/// The op a test is about: its single node's op; for an expanded function test
/// (`test_x_expanded`, `test_x_expanded_ver18`), the op of `test_x`; otherwise the
/// longest op name that prefixes the test name, ignoring case and underscores.
fn test_op(name: &str, single: &BTreeMap<String, String>) -> String {
    if let Some(op) = single.get(name) {
        return op.clone();
    }
    let base = match name.find("_expanded") {
        Some(i) => &name[..i],
        None => name,
    };
    if let Some(op) = single.get(base) {
        return op.clone();
    }
    let squash = |s: &str| s.replace('_', "").to_lowercase();
    let stem = squash(name.strip_prefix("test_").unwrap_or(name));
    single
        .values()
        .filter(|op| stem.starts_with(&squash(op)))
        .max_by_key(|op| op.len())
        .cloned()
        .unwrap_or_else(|| "(other)".into())
}

/// Per-op counts of passed, unsupported and failed tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub passed: usize,
    pub unsupported: usize,
    pub failed: usize,
}

impl Tally {
    pub fn total(&self) -> usize {
        self.passed + self.unsupported + self.failed
    }
}

/// Tallies results per op.
pub fn tally(results: &[NodeTest]) -> BTreeMap<String, Tally> {
    let mut table: BTreeMap<String, Tally> = BTreeMap::new();
    for r in results {
        let t = table.entry(r.op.clone()).or_default();
        match r.outcome {
            Outcome::Passed => t.passed += 1,
            Outcome::Unsupported(_) => t.unsupported += 1,
            Outcome::Failed(_) => t.failed += 1,
        }
    }
    table
}

/// Whether `op` is one saturate imports.
pub fn is_supported(op: &str) -> bool {
    SUPPORTED_OPS.contains(&op)
}

/// The conformance table as text: one line per op of the ones saturate supports,
/// then totals for those ops and over all tests.
pub fn render_table(results: &[NodeTest]) -> String {
    let table = tally(results);
    let mut out = String::from("op                      passed/total  (unsupported, failed)\n");
    let mut supported = Tally::default();
    for (op, t) in table.iter().filter(|(op, _)| is_supported(op)) {
        out.push_str(&format!("{op:<24}{:>6}/{:<6} ({}, {})\n", t.passed, t.total(), t.unsupported, t.failed));
        supported.passed += t.passed;
        supported.unsupported += t.unsupported;
        supported.failed += t.failed;
    }
    let all = results.iter().fold(Tally::default(), |mut acc, r| {
        match r.outcome {
            Outcome::Passed => acc.passed += 1,
            Outcome::Unsupported(_) => acc.unsupported += 1,
            Outcome::Failed(_) => acc.failed += 1,
        }
        acc
    });
    let covered: BTreeSet<&str> = table.keys().map(String::as_str).filter(|op| is_supported(op)).collect();
    out.push_str(&format!(
        "\nsupported ops ({} with tests): {}/{} passed ({} unsupported features, {} failed)\n",
        covered.len(),
        supported.passed,
        supported.total(),
        supported.unsupported,
        supported.failed
    ));
    out.push_str(&format!(
        "all {} node tests: {} passed, {} unsupported, {} failed\n",
        all.total(),
        all.passed,
        all.unsupported,
        all.failed
    ));
    out
}

/// The result of one light model.
#[derive(Debug, Clone)]
pub struct LightModel {
    pub name: String,
    pub outcome: Outcome,
    pub load_seconds: f64,
    pub run_seconds: f64,
}

/// The light models (`light/light_*.onnx`), sorted.
pub fn light_model_paths(light_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(light_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The input the ONNX test runner feeds light models: `arange(n) / n` in the input's shape.
pub fn arange_input(shape: &[usize]) -> Tensor {
    let n = shape.iter().product::<usize>();
    let values: Vec<f32> = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
    Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).expect("size matches"))
}

/// Runs a light model on the runner's input on `engine` and compares with
/// `<name>_output_0.pb`. DenseNet-121 gets rtol 2e-3, as in the ONNX runner.
pub fn run_light_model(path: &Path, engine: Engine) -> LightModel {
    let name =
        path.file_stem().map(|s| s.to_string_lossy().trim_start_matches("light_").to_string()).unwrap_or_default();
    let mut result = LightModel { name: name.clone(), outcome: Outcome::Passed, load_seconds: 0.0, run_seconds: 0.0 };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Outcome {
        let start = Instant::now();
        let graph = match crate::load_model(path) {
            Ok(g) => g,
            Err(e) => return classify(e),
        };
        result.load_seconds = start.elapsed().as_secs_f64();
        let metas = match graph.check() {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let inputs: Vec<Tensor> =
            graph.inputs.iter().map(|p| arange_input(&graph.tensor_type(&metas, p.id).shape)).collect();
        let start = Instant::now();
        let outputs = match engine(&graph, &inputs) {
            Ok(o) => o,
            Err(e) if e.unsupported => return Outcome::Unsupported(e.message),
            Err(e) => return Outcome::Failed(format!("run: {}", e.message)),
        };
        result.run_seconds = start.elapsed().as_secs_f64();
        let expected_path = path.with_file_name(format!("light_{name}_output_0.pb"));
        let expected = match read_tensor_file(&expected_path) {
            Ok((_, t)) => t,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let rtol = if name == "densenet121" { 2e-3 } else { RTOL };
        match compare(&outputs[0], &expected, rtol, ATOL) {
            Ok(()) => Outcome::Passed,
            Err(m) => Outcome::Failed(m.to_string()),
        }
    }));
    result.outcome = outcome.unwrap_or_else(|panic| Outcome::Failed(format!("panic: {}", panic_message(&panic))));
    result
}

#[cfg(test)]
mod tests {
    use super::test_op;
    use std::collections::BTreeMap;

    #[test]
    fn expanded_tests_belong_to_the_op_they_expand() {
        let single: BTreeMap<String, String> = [
            ("test_softmax_axis_0", "Softmax"),
            ("test_reduce_sum_keepdims", "ReduceSum"),
            ("test_reduce_sum_square_x", "ReduceSumSquare"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(test_op("test_softmax_axis_0_expanded", &single), "Softmax");
        assert_eq!(test_op("test_softmax_axis_0_expanded_ver18", &single), "Softmax");
        assert_eq!(test_op("test_reduce_sum_square_y_expanded", &single), "ReduceSumSquare");
        assert_eq!(test_op("test_unknown_thing", &single), "(other)");
    }
}
