//! `saturate bench`: compile a model once, time many runs on the JIT.

use super::optimize::{optimize_for_run, Clock, OptimizeArgs};
use anyhow::Result;
use saturate_backend::bench::{measure, BenchOptions};
use saturate_egraph::onnx::read_tensor_file;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub struct BenchArgs<'a> {
    pub model: &'a Path,
    pub dims: saturate_egraph::onnx::Dims,
    pub inputs: &'a [PathBuf],
    pub optimize: Option<&'a OptimizeArgs>,
    pub threads: usize,
    pub min_time: f64,
    pub json: bool,
    /// Also print where the time goes, per kind of kernel.
    pub profile: bool,
    pub kernels: saturate_backend::Kernels,
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    let given = args.inputs.iter().map(|p| read_tensor_file(p).map(|(_, t)| t)).collect::<Result<Vec<_>, _>>()?;
    // without --input: the model as it loads, on standard-normal inputs (fixed seed)
    let random_inputs = given.is_empty();
    let (mut graph, inputs) = if random_inputs {
        let graph = saturate_verify::load_model_with_dims(args.model, &args.dims)?;
        let inputs = saturate_verify::fuzz::draws::draw(&graph, 0).map_err(anyhow::Error::msg)?;
        (graph, inputs)
    } else {
        saturate_verify::load_for_inputs(args.model, given, &args.dims)?
    };
    let random_inputs = random_inputs && !graph.inputs.is_empty();
    if let Some(opts) = args.optimize {
        let clock = Clock { inputs: &inputs, threads: args.threads, kernels: args.kernels };
        graph = optimize_for_run(&graph, opts, &clock)?;
    }
    let start = Instant::now();
    let options = saturate_backend::Options { threads: args.threads, kernels: args.kernels };
    let mut exe = saturate_backend::compile(&graph, &options)?;
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    let options = BenchOptions { min_time: Duration::from_secs_f64(args.min_time), ..Default::default() };
    let timing = measure(&mut exe, &inputs, &options)?;
    let gemm_gflops = exe.gemm_gflops(&inputs, 3)?;
    let peak_gflops = saturate_backend::gemm::peak_gflops();
    let (packed, gemm_crate) = exe.product_kernels();
    if args.json {
        let mut report = serde_json::to_value(&timing)?;
        let extra = serde_json::json!({
            "model": args.model.display().to_string(),
            "optimized": args.optimize.is_some(),
            "threads": args.threads,
            "compile_ms": compile_ms,
            "kernel_calls": exe.steps(),
            "arena_bytes": exe.arena_bytes(),
            "random_inputs": random_inputs,
            "gemm_gflops": gemm_gflops,
            "gemm_peak_gflops_one_core": peak_gflops,
            "convolutions": exe.convolution_algorithms().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "products_packed": packed,
            "products_gemm_crate": gemm_crate,
        });
        report.as_object_mut().expect("timing is an object").extend(extra.as_object().expect("an object").clone());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}{} on {} thread(s): compiled in {compile_ms:.0} ms ({} kernel calls, {:.1} MB arena){}",
            args.model.display(),
            if args.optimize.is_some() { " (optimized)" } else { "" },
            args.threads,
            exe.steps(),
            exe.arena_bytes() as f64 / 1e6,
            if random_inputs { "; random inputs" } else { "" },
        );
        println!(
            "median {:.3} ms over {} runs (min {:.3}, 25% {:.3}, 75% {:.3}, max {:.3})",
            timing.median_ms, timing.runs, timing.min_ms, timing.p25_ms, timing.p75_ms, timing.max_ms
        );
        if args.profile {
            let rows = exe.profile(&inputs, 5)?;
            let total: f64 = rows.iter().map(|r| r.1).sum();
            println!("\nper kernel (time per run, calls per run):");
            const SHOWN: usize = 20;
            for (label, seconds, calls) in rows.iter().take(SHOWN) {
                println!("  {:>8.3} ms {:>5.1}% {calls:>5}  {label}", seconds * 1e3, 100.0 * seconds / total);
            }
            if rows.len() > SHOWN {
                let rest: f64 = rows[SHOWN..].iter().map(|r| r.1).sum();
                println!(
                    "  {:>8.3} ms {:>5.1}%        {} more kinds",
                    rest * 1e3,
                    100.0 * rest / total,
                    rows.len() - SHOWN
                );
            }
            let products: f64 = rows.iter().filter(|r| r.0.starts_with("matmul ")).map(|r| r.1).sum();
            // clamped: a sum of nothing is -0.0, which would print as "-0.000 ms"
            let products = products.max(0.0);
            println!(
                "matrix products {:.3} ms ({:.1}%), other kernels {:.3} ms",
                products * 1e3,
                100.0 * products / total,
                (total - products) * 1e3
            );
        }
        let algorithms = exe.convolution_algorithms();
        if !algorithms.is_empty() {
            let list: Vec<String> = algorithms.iter().map(|(name, n)| format!("{n} {name}")).collect();
            println!("convolutions (layout NCHW): {}", list.join(", "));
        }
        if packed + gemm_crate > 0 {
            println!("matrix product calls: {packed} on packed weights, {gemm_crate} through the GEMM crate");
        }
        if gemm_gflops > 0.0 {
            println!(
                "matrix products in the model: {gemm_gflops:.1} GFLOP/s (one-core peak of the GEMM: {peak_gflops:.1})"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
