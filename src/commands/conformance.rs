//! `saturate conformance`: the ONNX test data through the interpreter or the JIT.

use super::engine::{self, Engine};
use anyhow::Result;
use saturate_verify::conformance;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

pub fn conformance(data: Option<PathBuf>, verbose: bool, no_models: bool, engine: Engine) -> Result<ExitCode> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run =
        move |g: &saturate_egraph::Graph, inputs: &[saturate_egraph::Tensor]| engine::run(engine, threads, g, inputs);
    let dir = data.unwrap_or_else(conformance::data_dir);
    conformance::require_data(&dir).map_err(anyhow::Error::msg)?;
    let tests = conformance::node_test_dirs(&dir.join("node"))?;
    let total = tests.len();
    let tty = std::io::stderr().is_terminal();
    let mut done = 0;
    let start = Instant::now();
    let results = conformance::run_node_tests(&dir.join("node"), &run, |t| {
        done += 1;
        if tty {
            eprint!("\r[{done}/{total}] {:<60}", t.name);
        }
    })?;
    if tty {
        eprintln!("\r{:<80}", "");
    }
    println!(
        "ONNX {} node tests on the {engine:?} engine ({:.1} s)\n",
        conformance::ONNX_VERSION,
        start.elapsed().as_secs_f64()
    );
    print!("{}", conformance::render_table(&results));
    let mut bad = 0;
    for t in results.iter().filter(|t| conformance::is_supported(&t.op)) {
        match &t.outcome {
            conformance::Outcome::Failed(why) => {
                bad += 1;
                println!("FAILED {} ({}): {why}", t.name, t.op);
            }
            conformance::Outcome::Unsupported(why) if verbose => {
                println!("unsupported {} ({}): {why}", t.name, t.op)
            }
            _ => {}
        }
    }
    if !no_models {
        println!("\nlight models (input arange(n)/n, compared with output_0.pb):");
        for path in conformance::light_model_paths(&dir.join("light"))? {
            let m = conformance::run_light_model(&path, &run);
            let status = match &m.outcome {
                conformance::Outcome::Passed => "match".to_string(),
                conformance::Outcome::Unsupported(why) | conformance::Outcome::Failed(why) => {
                    bad += 1;
                    format!("MISMATCH: {why}")
                }
            };
            println!("  {:<14} load {:>6.2} s  run {:>6.2} s  {status}", m.name, m.load_seconds, m.run_seconds);
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `conformance --exports DIR`: every export of the suite on the interpreter, the JIT,
/// and the JIT after optimizing, against onnxruntime's outputs.
pub fn exports(dir: &std::path::Path, opt: &super::optimize::OptimizeArgs) -> Result<ExitCode> {
    use conformance::{EngineError, Outcome};
    use saturate_verify::exports;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let suite = exports::read_suite(dir).map_err(anyhow::Error::msg)?;
    let interp = |g: &saturate_egraph::Graph, i: &[saturate_egraph::Tensor]| engine::run(Engine::Interp, threads, g, i);
    let jit = |g: &saturate_egraph::Graph, i: &[saturate_egraph::Tensor]| engine::run(Engine::Jit, threads, g, i);
    let optimized = |g: &saturate_egraph::Graph, i: &[saturate_egraph::Tensor]| {
        let (g, _) = super::optimize::optimize_graph(g, opt)
            .map_err(|e| EngineError { unsupported: false, message: format!("optimize: {e:#}") })?;
        engine::run(Engine::Jit, threads, &g, i)
    };
    let ways: [conformance::Engine; 3] = [&interp, &jit, &optimized];
    println!("{:<44} {:>5}  {:<8} {:<8} {:<8} {:>7}", "export", "nodes", "interp", "jit", "jit opt", "seconds");
    let mut bad = Vec::new();
    for export in &suite.exports {
        let start = Instant::now();
        let outcomes: Vec<Outcome> = ways.iter().map(|&way| exports::check(export, way)).collect();
        let cell = |o: &Outcome| if *o == Outcome::Passed { "match" } else { "MISMATCH" };
        println!(
            "{:<44} {:>5}  {:<8} {:<8} {:<8} {:>7.2}",
            export.name,
            export.nodes,
            cell(&outcomes[0]),
            cell(&outcomes[1]),
            cell(&outcomes[2]),
            start.elapsed().as_secs_f64()
        );
        for (way, o) in ["interp", "jit", "jit opt"].iter().zip(&outcomes) {
            if let Outcome::Failed(why) | Outcome::Unsupported(why) = o {
                bad.push(format!("{} ({way}): {why}", export.name));
            }
        }
    }
    for (name, why) in &suite.failed {
        println!("{name:<44} torch could not export it: {why}");
    }
    let passed =
        suite.exports.len() - bad.iter().map(|b| b.split(' ').next()).collect::<std::collections::BTreeSet<_>>().len();
    println!("\n{passed} of {} exports match onnxruntime three ways", suite.exports.len());
    for b in &bad {
        println!("  {b}");
    }
    Ok(if bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
