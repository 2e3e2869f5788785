//! `saturate optimize` and `saturate calibrate`: the optimizer's options, its report as
//! text or JSON, and the progress line on a terminal.

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use saturate_costmodels::{cpu, model_for};
use saturate_egraph::{sexp, Graph};
use saturate_extract::{optimize, ExtractorKind, OptimizeOptions, OptimizeReport};
use saturate_rewrites::{Library, Limits};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Options shared by `optimize` and `run --optimize`.
#[derive(Args, Clone, Debug)]
pub struct OptimizeArgs {
    /// Hardware to optimize for: cpu (calibrated on this host), gpu-v100, gpu-h100.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu-v100", "gpu-h100"])]
    pub target: String,
    /// A rule file to add to the library (repeatable).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Leave out the built-in rules (use only --rules files).
    #[arg(long)]
    pub no_default_rules: bool,
    /// How to pick the program from the e-graph.
    #[arg(long, value_enum, default_value_t = Extractor::Dag)]
    pub extractor: Extractor,
    /// Stop saturating at this many e-nodes.
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    pub node_limit: usize,
    /// Stop saturating after this many iterations.
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub iter_limit: usize,
    /// Stop saturating after this many seconds (the ILP extractor gets as much again).
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub time_limit: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Extractor {
    /// DAG-greedy: shared subgraphs counted once (default).
    Dag,
    /// Tree-greedy: shared subgraphs counted once per use.
    Tree,
    /// Exact ILP (pure-Rust solver), warm-started from DAG-greedy, within the time limit.
    Ilp,
}

impl OptimizeArgs {
    pub fn library(&self) -> Result<Library> {
        let mut library = if self.no_default_rules { Library::default() } else { Library::builtin()? };
        for file in &self.rules {
            library.add_file(file)?;
        }
        if library.is_empty() {
            bail!("no rules: --no-default-rules needs at least one --rules FILE");
        }
        Ok(library)
    }

    pub fn options(&self) -> Result<OptimizeOptions> {
        if !(self.time_limit > 0.0 && self.time_limit.is_finite()) {
            bail!("--time-limit must be a positive number of seconds");
        }
        let limit = Duration::from_secs_f64(self.time_limit);
        Ok(OptimizeOptions {
            limits: Limits {
                node_limit: self.node_limit,
                iter_limit: self.iter_limit,
                time_limit: limit,
                ..Limits::default()
            },
            extractor: match self.extractor {
                Extractor::Dag => ExtractorKind::Dag,
                Extractor::Tree => ExtractorKind::Tree,
                Extractor::Ilp => ExtractorKind::Ilp,
            },
            dag_budget: limit,
            ilp_time_limit: limit,
        })
    }
}

/// Optimizes for `run --optimize`, printing a one-line summary on stderr.
pub fn optimize_for_run(graph: &Graph, args: &OptimizeArgs) -> Result<Graph> {
    let (optimized, report) = optimize_graph(graph, args)?;
    eprintln!(
        "optimized for {} in {:.2} s: estimated cost {} → {}",
        report.target,
        report.total_seconds,
        seconds(report.cost_before),
        seconds(report.cost_after)
    );
    Ok(optimized)
}

pub fn optimize_graph(graph: &Graph, args: &OptimizeArgs) -> Result<(Graph, OptimizeReport)> {
    let library = args.library()?;
    let model = model_for(&args.target).map_err(|e| anyhow!(e))?;
    let options = args.options()?;
    let tty = std::io::stderr().is_terminal();
    let progress = move |it: &saturate_rewrites::saturate::IterationReport| {
        if tty {
            eprint!("\r  saturating: {} e-nodes, {} classes, {:.2} s   ", it.nodes, it.classes, it.seconds);
            let _ = std::io::stderr().flush();
        }
    };
    let result = optimize(graph, &library, model.as_ref(), &options, progress).map_err(|e| anyhow!(e));
    if tty {
        eprint!("\r{:60}\r", "");
    }
    result
}

pub fn optimize_cmd(
    model: &Path,
    dims: &saturate_egraph::onnx::Dims,
    args: &OptimizeArgs,
    output: Option<&Path>,
    force: bool,
    json: bool,
) -> Result<ExitCode> {
    if let Some(out) = output {
        if !matches!(out.extension().and_then(|e| e.to_str()), Some("sexp" | "onnx")) {
            bail!("{}: the output must be a .sexp or .onnx file", out.display());
        }
        super::refuse_overwrite(out, force)?;
    }
    let graph = saturate_verify::load_model_with_dims(model, dims)?;
    let (optimized, report) = optimize_graph(&graph, args)?;
    if let Some(out) = output {
        match out.extension().and_then(|e| e.to_str()) {
            Some("onnx") => saturate_egraph::onnx::save(&optimized, out)?,
            _ => sexp::write_file(&optimized, out)?,
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report_json(model, &report))?);
    } else {
        print_report(model, &report, output);
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration for people: ms or µs.
pub fn seconds(s: f64) -> String {
    if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn print_report(model: &Path, r: &OptimizeReport, output: Option<&Path>) {
    println!("optimized {} for {} ({} rules, {} extraction)", model.display(), r.target, r.rules_loaded, r.extractor);
    println!("\niteration   e-nodes   classes   applied   seconds");
    for (i, it) in r.saturation.iterations.iter().enumerate() {
        println!("{:>9} {:>9} {:>9} {:>9} {:>9.3}", i + 1, it.nodes, it.classes, it.applied, it.seconds);
    }
    println!("stopped: {}", r.saturation.stop_reason);
    println!(
        "\ntime: saturation {:.3} s, extraction {:.3} s, total {:.3} s",
        r.saturate_seconds, r.extract_seconds, r.total_seconds
    );
    let change = if r.cost_before > 0.0 { 100.0 * (r.cost_after / r.cost_before - 1.0) } else { 0.0 };
    println!(
        "estimated cost ({}): {} → {} ({change:+.1} %)",
        r.target,
        seconds(r.cost_before),
        seconds(r.cost_after),
        change = change
    );
    if r.kept_input {
        println!(
            "  (extraction chose a program of cost {}, no better, so the input is kept)",
            seconds(r.cost_extracted)
        );
        println!("  extracted ops: {:?}", r.ops_extracted);
    }
    if let Some(status) = &r.ilp_status {
        println!("ILP: {status}");
    }
    println!("\nops before → after:");
    let ops: std::collections::BTreeSet<&String> = r.ops_before.keys().chain(r.ops_after.keys()).collect();
    for op in ops {
        let (b, a) = (r.ops_before.get(op).copied().unwrap_or(0), r.ops_after.get(op).copied().unwrap_or(0));
        if a != b {
            println!("  {op:<18} {b:>5} → {a}");
        } else {
            println!("  {op:<18} {b:>5}");
        }
    }
    let mut fired: Vec<(&String, &usize)> = r.saturation.fired.iter().collect();
    fired.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("\nrules that fired most:");
    for (rule, n) in fired.iter().take(12) {
        println!("  {rule:<48} {n}");
    }
    println!("\nrules whose results are in the program:");
    if r.rules_in_result.is_empty() {
        println!("  (none)");
    }
    let mut used: Vec<(&String, &usize)> = r.rules_in_result.iter().collect();
    used.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (rule, n) in used {
        println!("  {rule:<48} {n}");
    }
    if let Some(out) = output {
        println!("\nwrote {}", out.display());
    }
}

fn report_json(model: &Path, r: &OptimizeReport) -> serde_json::Value {
    json!({
        "model": model.display().to_string(),
        "target": r.target,
        "rules_loaded": r.rules_loaded,
        "extractor": r.extractor,
        "iterations": r.saturation.iterations.iter().map(|it| json!({
            "egraph_nodes": it.nodes, "egraph_classes": it.classes, "applied": it.applied, "seconds": it.seconds,
        })).collect::<Vec<_>>(),
        "egraph_nodes": r.saturation.nodes,
        "egraph_classes": r.saturation.classes,
        "stop_reason": r.saturation.stop_reason,
        "saturate_seconds": r.saturate_seconds,
        "extract_seconds": r.extract_seconds,
        "total_seconds": r.total_seconds,
        "cost_before": r.cost_before,
        "cost_after": r.cost_after,
        "kept_input": r.kept_input,
        "ilp_status": r.ilp_status,
        "ops_before": r.ops_before,
        "ops_after": r.ops_after,
        "rules_fired": r.saturation.fired,
        "rules_in_result": r.rules_in_result,
        "ill_typed_matches": r.saturation.ill_typed,
    })
}

pub fn calibrate() -> Result<ExitCode> {
    eprintln!("measuring this CPU (one core)…");
    let cal = cpu::calibrate().map_err(|e| anyhow!(e))?;
    let r = &cal.roofline;
    println!("{}", cal.cpu);
    println!("  GEMM        {:.1} GFLOP/s", r.gemm_flops / 1e9);
    println!("  elementwise {:.1} GFLOP/s", r.vector_flops / 1e9);
    println!("  bandwidth   {:.1} GB/s", r.bandwidth / 1e9);
    println!("  launch      {:.1} µs", r.launch * 1e6);
    println!("saved to {}", cpu::cache_path().display());
    Ok(ExitCode::SUCCESS)
}
