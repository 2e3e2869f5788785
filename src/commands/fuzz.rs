//! `saturate fuzz`: differential fuzzing campaigns (see `saturate_verify::fuzz`).

use anyhow::{bail, Result};
use saturate_egraph::{Graph, Tensor};
use saturate_extract::{optimize, OptimizeOptions};
use saturate_rewrites::Library;
use saturate_verify::fuzz::{self, Engines, Outcome};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub fn fuzz(cases: usize, seed: u64, time: Option<f64>, save: Option<&Path>) -> Result<ExitCode> {
    let library = Library::builtin().map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let model = saturate_costmodels::cpu::host_model().map_err(|e| anyhow::anyhow!(e))?;
    let compiled = |g: &Graph, inputs: &[Tensor]| {
        saturate_backend::compile(g, &saturate_backend::Options { threads: 1 })
            .and_then(|mut exe| exe.run(inputs))
            .map_err(|e| e.to_string())
    };
    let options = OptimizeOptions { limits: fuzz::limits(), ..OptimizeOptions::default() };
    let optimized =
        |g: &Graph| optimize(g, &library, &model, &options, |_| {}).map(|(g, _)| g).map_err(|e| e.to_string());
    let engines = Engines { compiled: &compiled, optimize: &optimized };
    let tty = std::io::stderr().is_terminal();
    let outcome = fuzz::run(cases, seed, time.map(Duration::from_secs_f64), &engines, |done| {
        if tty {
            eprint!("\r{done}/{cases} cases");
        }
    });
    if tty {
        eprintln!();
    }
    match outcome {
        Outcome::Passed { cases } => {
            println!("{cases} random graphs (seed {seed}): compiled, optimized and both agree with the interpreter");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Failed { cases, reason, graph } => {
            println!("MISMATCH after {cases} passing cases (seed {seed}): {reason}\n\nminimal graph:\n{graph}");
            if let Some(dir) = save {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("seed-{seed}-case-{cases}.sexp"));
                if path.exists() {
                    bail!("{} already exists", path.display());
                }
                std::fs::write(&path, &graph)?;
                println!("saved as {} (the test suite replays it)", path.display());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
