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
