//! Timing a model on a peer engine (onnxruntime, or OpenVINO) for `saturate optimize
//! --compare`: the speedup a user cares about is against what they already run.
//!
//! The peer runs in Python, through `benches/peer_time.py` (built into this binary, so
//! an installed `saturate` needs no source tree) and the first interpreter found of:
//! `$SATURATE_PYTHON`, the project's `.venv` (made by `scripts/python-env`), its
//! `.venv-bench`. The model is handed over as ONNX (a `.sexp` graph is exported first)
//! with the same input tensors saturate timed, as TensorProto files.

use saturate_egraph::{onnx, Graph, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The peer's timing of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerTiming {
    pub engine: String,
    pub version: String,
    pub median_ms: f64,
    pub runs: usize,
}

/// The engines `time_on_peer` knows.
pub const PEERS: [&str; 2] = ["onnxruntime", "openvino"];

const SCRIPT: &str = include_str!("../../benches/peer_time.py");

/// Where to look for a Python with the peers installed, in order.
fn pythons() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(p) = std::env::var_os("SATURATE_PYTHON") {
        found.push(PathBuf::from(p));
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    for venv in [".venv", ".venv-bench"] {
        found.push(source.join(venv).join("bin").join("python"));
    }
    found
}

/// The first Python that can import `engine`'s module, or a message saying how to get one.
fn python_with(engine: &str) -> Result<PathBuf, String> {
    let candidates = pythons();
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", &format!("import {engine}, onnx, numpy")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    let setup = if engine == "openvino" { "scripts/python-env --bench" } else { "scripts/python-env" };
    Err(format!(
        "no Python with {engine} found (tried {}); run `{setup}` in saturate's source tree, \
         or set SATURATE_PYTHON to a python that has {engine}, onnx and numpy",
        tried.join(", ")
    ))
}

/// Times `model` (the file given, if it is ONNX; else `graph` exported) on `engine` with
/// `inputs`, at `threads` threads, for at least `min_seconds`.
pub fn time_on_peer(
    engine: &str,
    model: &Path,
    graph: &Graph,
    inputs: &[Tensor],
    threads: usize,
    min_seconds: f64,
) -> Result<PeerTiming, String> {
    if !PEERS.contains(&engine) {
        return Err(format!("unknown peer `{engine}`: one of {}", PEERS.join(", ")));
    }
    let python = python_with(engine)?;
    let dir = scratch_dir()?;
    let result = (|| {
        let onnx_model = if model.extension().is_some_and(|e| e == "onnx") {
            model.to_path_buf()
        } else {
            let path = dir.join("model.onnx");
            onnx::save(graph, &path).map_err(|e| format!("exporting the model for {engine}: {e}"))?;
            path
        };
        let script = dir.join("peer_time.py");
        std::fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
        let mut args = vec![
            script.display().to_string(),
            engine.to_string(),
            onnx_model.display().to_string(),
            threads.to_string(),
            min_seconds.to_string(),
        ];
        for (i, (tensor, port)) in inputs.iter().zip(&graph.inputs).enumerate() {
            let path = dir.join(format!("input_{i}.pb"));
            onnx::write_tensor_file(&path, tensor, &port.name).map_err(|e| format!("{}: {e}", path.display()))?;
            args.push(path.display().to_string());
        }
        let out = Command::new(&python).args(&args).output().map_err(|e| format!("{}: {e}", python.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
            return Err(format!("{engine} failed on {}: {last}", onnx_model.display()));
        }
        parse(&String::from_utf8_lossy(&out.stdout))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn parse(stdout: &str) -> Result<PeerTiming, String> {
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("the peer printed `{stdout}`: {e}"))?;
    let field = |k: &str| v.get(k).ok_or_else(|| format!("the peer's report lacks `{k}`"));
    Ok(PeerTiming {
        engine: field("engine")?.as_str().unwrap_or_default().to_string(),
        version: field("version")?.as_str().unwrap_or_default().to_string(),
        median_ms: field("median_ms")?.as_f64().ok_or("median_ms is not a number")?,
        runs: field("runs")?.as_u64().unwrap_or(0) as usize,
    })
}

/// A fresh folder under the system's temporary directory, for this call only.
fn scratch_dir() -> Result<PathBuf, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("saturate-peer-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_report_parses_and_a_bad_one_is_named() {
        let t = parse(r#"{"engine": "onnxruntime", "runs": 12, "median_ms": 1.5, "p25_ms": 1.4, "p75_ms": 1.6, "version": "1.23.2"}"#)
            .unwrap();
        assert_eq!((t.engine.as_str(), t.version.as_str(), t.median_ms, t.runs), ("onnxruntime", "1.23.2", 1.5, 12));
        assert!(parse("Traceback").unwrap_err().contains("Traceback"));
        assert!(parse(r#"{"engine": "x"}"#).unwrap_err().contains("version"));
    }

    #[test]
    fn an_unknown_peer_is_refused_with_the_list() {
        let g = crate::suite::nasrnn();
        let err = time_on_peer("tvm", Path::new("x.onnx"), &g, &[], 1, 0.1).unwrap_err();
        assert!(err.contains("onnxruntime, openvino"), "{err}");
    }
}
