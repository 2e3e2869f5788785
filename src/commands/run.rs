//! `saturate run`: load, optionally optimize, run on the interpreter or the JIT, write outputs.

use super::engine::{self, Engine};
use super::optimize::{optimize_for_run, Clock, OptimizeArgs};
use anyhow::{bail, Context, Result};
use saturate_egraph::onnx::{read_tensor_file, write_tensor_file};
use saturate_verify::compare::{compare, ATOL, RTOL};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `saturate run` was asked to do.
pub struct RunArgs<'a> {
    pub model: &'a Path,
    /// Sizes of symbolic dimensions (`--dim`); the inputs bind the rest.
    pub dims: saturate_egraph::onnx::Dims,
    pub inputs: &'a [PathBuf],
    pub output_dir: &'a Path,
    pub force: bool,
    pub expected: Option<&'a Path>,
    /// Optimize before running, with these options.
    pub optimize: Option<&'a OptimizeArgs>,
    pub engine: Engine,
    pub threads: usize,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let RunArgs { model, dims, inputs: input_files, output_dir, force, expected, optimize, engine, threads } = args;
    let inputs = input_files.iter().map(|p| read_tensor_file(p).map(|(_, t)| t)).collect::<Result<Vec<_>, _>>()?;
    let (mut graph, inputs) = saturate_verify::load_for_inputs(model, inputs, &dims)?;
    if let Some(opts) = optimize {
        let clock = Clock { inputs: &inputs, threads, kernels: saturate_backend::Kernels::Widest };
        graph = optimize_for_run(&graph, opts, &clock)?;
    }
    let outputs = engine::run(engine, threads, &graph, &inputs).map_err(|e| anyhow::anyhow!(e.message))?;
    std::fs::create_dir_all(output_dir).with_context(|| format!("cannot create {}", output_dir.display()))?;
    let paths: Vec<PathBuf> = (0..outputs.len()).map(|i| output_dir.join(format!("output_{i}.pb"))).collect();
    if !force {
        if let Some(existing) = paths.iter().find(|p| p.exists()) {
            bail!("{} already exists; pass --force to overwrite", existing.display());
        }
    }
    for ((port, tensor), path) in graph.outputs.iter().zip(&outputs).zip(&paths) {
        write_tensor_file(path, tensor, &port.name)?;
        println!("{}: `{}` {}", path.display(), port.name, tensor.ty());
    }
    let Some(dir) = expected else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut all_match = true;
    for (i, (port, tensor)) in graph.outputs.iter().zip(&outputs).enumerate() {
        let path = dir.join(format!("output_{i}.pb"));
        let (_, want) = read_tensor_file(&path)?;
        match compare(tensor, &want, RTOL, ATOL) {
            Ok(()) => println!("output {i} (`{}`) matches {}", port.name, path.display()),
            Err(m) => {
                all_match = false;
                println!("output {i} (`{}`) DIFFERS from {}: {m}", port.name, path.display());
            }
        }
    }
    Ok(if all_match { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
