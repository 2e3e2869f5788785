//! `saturate optimize` and `saturate calibrate`: the optimizer's options, its report as
//! text or JSON, and the progress line on a terminal.

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use saturate_backend::calibrate;
use saturate_costmodels::cpu;
use saturate_egraph::{sexp, Graph};
use saturate_extract::{choose_by_clock, optimize, ExtractorKind, Measured, OptimizeOptions, OptimizeReport};
use saturate_rewrites::{Library, Limits};
use saturate_verify::peer::PeerTiming;
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
    /// Time the input and the N best distinct programs extraction found on this CPU's
    /// JIT, and keep the fastest, so the result is never slower by the clock (0: keep
    /// the best estimate untimed). Default: 1 for `optimize` on the cpu target, 0 for
    /// `run --optimize`, `bench --optimize` and the GPU targets.
    #[arg(long, value_name = "N")]
    pub measure: Option<usize>,
    /// Seconds of timing for each program --measure times (in 3 interleaved rounds; the
    /// median of its fastest round counts).
    #[arg(long, default_value_t = 0.6, value_name = "S")]
    pub measure_time: f64,
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
            // more distinct programs, when more than one is to be timed
            variants: self.target == "cpu" && self.measure.is_some_and(|k| k > 1),
        })
    }
}

/// How `--measure` times programs: on which inputs, at how many threads.
pub struct Clock<'a> {
    pub inputs: &'a [saturate_egraph::Tensor],
    pub threads: usize,
    pub kernels: saturate_backend::Kernels,
}

/// Optimizes for `run --optimize` and `bench --optimize` (timing candidates only when
/// `--measure N` is given), printing a one-line summary on stderr.
pub fn optimize_for_run(graph: &Graph, args: &OptimizeArgs, clock: &Clock) -> Result<Graph> {
    let (optimized, report, measured) = optimize_measured(graph, args, 0, clock)?;
    let timed = match measured.as_ref().and_then(|m| Some((m.input_ms()?, m.chosen_ms()?))) {
        Some((before, after)) => format!("; measured {before:.3} ms → {after:.3} ms"),
        None => String::new(),
    };
    eprintln!(
        "optimized for {} in {:.2} s: estimated cost {} → {}{timed}",
        report.target,
        report.total_seconds,
        seconds(report.cost_before),
        seconds(report.cost_after)
    );
    Ok(optimized)
}

/// Optimizes, then, for the cpu target, times the input and the best candidates with
/// `clock` (`--measure`, else `default_measure` of them) and keeps the fastest.
pub fn optimize_measured(
    graph: &Graph,
    args: &OptimizeArgs,
    default_measure: usize,
    clock: &Clock,
) -> Result<(Graph, OptimizeReport, Option<Measured>)> {
    let on_cpu = args.target == "cpu";
    if args.measure.is_some_and(|k| k > 0) && !on_cpu {
        bail!(
            "--measure times programs on this CPU's JIT, which says nothing of {}: leave it out for GPU targets",
            args.target
        );
    }
    if !(args.measure_time > 0.0 && args.measure_time.is_finite()) {
        bail!("--measure-time must be a positive number of seconds");
    }
    let k = if on_cpu { args.measure.unwrap_or(default_measure) } else { 0 };
    let (optimized, mut report) = optimize_graph(graph, args)?;
    if k == 0 {
        return Ok((optimized, report, None));
    }
    drop(optimized);
    let options = saturate_backend::Options { threads: clock.threads, kernels: clock.kernels };
    let per_program = Duration::from_secs_f64(args.measure_time);
    let tty = std::io::stderr().is_terminal();
    let (program, measured) = choose_by_clock(graph, &mut report, k, |programs| {
        if tty {
            eprint!("\r  timing {} programs on the JIT…   ", programs.len());
            let _ = std::io::stderr().flush();
        }
        let times = saturate_backend::bench::compare(programs, clock.inputs, &options, per_program);
        if tty {
            eprint!("\r{:60}\r", "");
        }
        times.into_iter().map(|t| t.map(|t| t.best_round_ms).map_err(|e| e.to_string())).collect()
    });
    Ok((program, report, Some(measured)))
}

pub fn optimize_graph(graph: &Graph, args: &OptimizeArgs) -> Result<(Graph, OptimizeReport)> {
    let library = args.library()?;
    let model = model_for_target(&args.target)?;
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

/// What `saturate optimize` was asked to do besides optimizing.
pub struct OptimizeCmd<'a> {
    pub model: &'a Path,
    pub dims: saturate_egraph::onnx::Dims,
    pub output: Option<&'a Path>,
    pub force: bool,
    pub json: bool,
    /// Threads of the JIT for `--measure`, and of the peer.
    pub threads: usize,
    /// A peer engine to time the input on (`--compare onnxruntime`).
    pub compare: Option<&'a str>,
    /// Draw the e-graph's growth and the candidates' estimates against the clock here.
    pub plot: Option<&'a Path>,
}

/// The clock's findings for the report: the trials, and the peer's time or why not.
struct Timings {
    threads: usize,
    measured: Measured,
    peer: Option<Result<PeerTiming, String>>,
}

pub fn optimize_cmd(cmd: &OptimizeCmd, args: &OptimizeArgs) -> Result<ExitCode> {
    if let Some(out) = cmd.output {
        if !matches!(out.extension().and_then(|e| e.to_str()), Some("sexp" | "onnx")) {
            bail!("{}: the output must be a .sexp or .onnx file", out.display());
        }
        super::refuse_overwrite(out, cmd.force)?;
    }
    if let Some(plot) = cmd.plot {
        super::plot::check_output(plot, cmd.force)?;
    }
    if let Some(peer) = cmd.compare {
        if !saturate_verify::peer::PEERS.contains(&peer) {
            bail!("--compare {peer}: the peers are {}", saturate_verify::peer::PEERS.join(", "));
        }
        if args.target != "cpu" || args.measure == Some(0) {
            bail!("--compare times the model on this CPU next to the JIT: it needs the cpu target and --measure of 1 or more");
        }
    }
    let graph = saturate_verify::load_model_with_dims(cmd.model, &cmd.dims)?;
    let inputs = saturate_verify::fuzz::draws::draw(&graph, 0).map_err(anyhow::Error::msg)?;
    let clock = Clock { inputs: &inputs, threads: cmd.threads, kernels: saturate_backend::Kernels::Widest };
    let (optimized, report, measured) = optimize_measured(&graph, args, 1, &clock)?;
    let timings = measured.map(|measured| Timings {
        threads: cmd.threads,
        measured,
        peer: cmd.compare.map(|peer| {
            saturate_verify::peer::time_on_peer(peer, cmd.model, &graph, &inputs, cmd.threads, args.measure_time)
        }),
    });
    if let Some(out) = cmd.output {
        match out.extension().and_then(|e| e.to_str()) {
            Some("onnx") => saturate_egraph::onnx::save(&optimized, out)?,
            _ => sexp::write_file(&optimized, out)?,
        }
    }
    let mut value = report_json(cmd.model, &report);
    value["measured"] = timings.as_ref().map_or(serde_json::Value::Null, timings_json);
    if let Some(plot) = cmd.plot {
        let name = cmd.model.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        super::plot::draw(&[super::plot::Report::from_json(&name, &value)?], plot)?;
    }
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(cmd.model, &report);
        match &timings {
            Some(t) => print_timings(t),
            None if args.target != "cpu" => {
                println!("\nnot measured: the JIT runs on this CPU, not on {}", args.target)
            }
            None => println!("\nnot measured (--measure 0)"),
        }
        if let Some(out) = cmd.output {
            println!("\nwrote {}", out.display());
        }
        if let Some(plot) = cmd.plot {
            println!("drew {}", plot.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_timings(t: &Timings) {
    let m = &t.measured;
    println!(
        "\nmeasured on this CPU's JIT ({} thread(s), random inputs; the median of each program's fastest of {} interleaved rounds):",
        t.threads,
        saturate_backend::bench::COMPARE_ROUNDS
    );
    let width = m.trials.iter().map(|t| t.source.chars().count()).max().unwrap_or(0).max(7);
    println!("  {:<width$} {:>12} {:>12}", "program", "estimate", "measured");
    for (i, trial) in m.trials.iter().enumerate() {
        let measured = match &trial.measured_ms {
            Ok(ms) => format!("{ms:.3} ms"),
            Err(e) => format!("failed: {e}"),
        };
        let mark = if i == m.chosen { "  ← kept" } else { "" };
        println!("  {:<width$} {:>12} {:>12}{mark}", trial.source, seconds(trial.estimate), measured);
    }
    if let Some(r) = m.rematch {
        println!(
            "rematch of the fastest against the input: {:.3} ms against {:.3} ms: {}",
            r.kept_ms,
            r.input_ms,
            if r.upheld { "kept" } else { "lost, so the input is kept" }
        );
    }
    if let (Some(before), Some(after)) = (m.input_ms(), m.chosen_ms()) {
        let from = if m.rematch.is_some() { ", from the rematch" } else { "" };
        println!("measured speedup: {:.2}× ({before:.3} ms → {after:.3} ms{from})", before / after);
        if m.chosen != m.estimated_best() {
            println!(
                "  (the clock overruled the estimates: their pick measured {})",
                match &m.trials[m.estimated_best()].measured_ms {
                    Ok(ms) => format!("{ms:.3} ms"),
                    Err(e) => format!("nothing: {e}"),
                }
            );
        }
    }
    match &t.peer {
        Some(Ok(p)) => {
            let after =
                m.chosen_ms().map_or(String::new(), |a| format!("; optimized/{}: {:.2}×", p.engine, a / p.median_ms));
            println!("{} {} on the input: {:.3} ms{after}", p.engine, p.version, p.median_ms);
        }
        Some(Err(e)) => println!("not compared: {e}"),
        None => {}
    }
}

fn timings_json(t: &Timings) -> serde_json::Value {
    let m = &t.measured;
    let ms = |r: &Result<f64, String>| r.as_ref().ok().copied();
    json!({
        "threads": t.threads,
        "programs": m.trials.iter().enumerate().map(|(i, trial)| json!({
            "source": trial.source,
            "estimate_seconds": trial.estimate,
            "median_ms": ms(&trial.measured_ms),
            "error": trial.measured_ms.as_ref().err(),
            "kept": i == m.chosen,
        })).collect::<Vec<_>>(),
        "input_ms": m.input_ms(),
        "optimized_ms": m.chosen_ms(),
        "speedup": m.input_ms().zip(m.chosen_ms()).map(|(b, a)| b / a),
        "estimates_pick": m.estimated_best(),
        "rematch": m.rematch.map(|r| json!({
            "winner": r.winner, "input_ms": r.input_ms, "winner_ms": r.kept_ms, "upheld": r.upheld,
        })),
        "peer": match &t.peer {
            Some(Ok(p)) => json!({"engine": p.engine, "version": p.version, "median_ms": p.median_ms, "runs": p.runs}),
            Some(Err(e)) => json!({"error": e}),
            None => serde_json::Value::Null,
        },
    })
}

/// A duration for people: ms or µs.
pub fn seconds(s: f64) -> String {
    if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn print_report(model: &Path, r: &OptimizeReport) {
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

pub fn calibrate(json: bool) -> Result<ExitCode> {
    eprintln!("timing this backend's kernels on this CPU (one thread)…");
    let roofline = cpu::calibrate().map_err(|e| anyhow!(e))?.roofline;
    let table = calibrate::calibrate(&mut progress_bar()).map_err(|e| anyhow!(e))?;
    let path = calibrate::save(&table).map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&table)?);
        return Ok(ExitCode::SUCCESS);
    }
    let t = &table;
    let gflops = |seconds_per_flop: f64| 1e-9 / seconds_per_flop;
    let peak = t.products.seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let stream = |bytes: f64| 1e-9 / t.streams.at(&[bytes]);
    let per_element = |op: &str| t.elementwise.get(op).map_or("–".to_string(), |s| format!("{:.2} ns", s * 1e9));
    println!("{}", t.host);
    println!("  kernels      {}", t.kernels);
    println!("  measured     {} points in {:.1} s", t.points(), t.calibration_seconds);
    println!(
        "  products     {:.1} GFLOP/s at best, {:.1} as GEMV (1×1024·1024×1024), {:.1} at 64×128·128×128",
        gflops(peak),
        gflops(t.products.at(&[1.0, 1024.0, 1024.0])),
        gflops(t.products.at(&[64.0, 128.0, 128.0]))
    );
    let convolution = |kind: &str, c: f64| {
        t.convolutions.get(kind).map_or("–".to_string(), |g| format!("{:.1}", gflops(g.at(&[64.0, 3136.0, c]))))
    };
    println!(
        "  convolution  3×3 64→64 on 56²: {} GFLOP/s, by Winograd F(2×2) {} and F(4×4) {} (in the direct one's FLOPs); 1×1: {}",
        convolution("spatial", 576.0),
        convolution("winograd2", 576.0),
        convolution("winograd4", 576.0),
        convolution("pointwise", 64.0)
    );
    println!(
        "  loops        {:.1} GB/s in L1, {:.1} GB/s from memory; an op in a chain: add {}, exp {}, tanh {}, erf {}",
        stream(8192.0 * 8.0),
        stream(2.5e8),
        per_element("add"),
        per_element("exp"),
        per_element("tanh"),
        per_element("erf")
    );
    println!("  launch       {:.2} µs a kernel, {:.2} µs a run", t.launch * 1e6, t.run_overhead * 1e6);
    println!(
        "  roofline     GEMM {:.1} GFLOP/s, loops {:.1} GFLOP/s, {:.1} GB/s",
        roofline.gemm_flops / 1e9,
        roofline.vector_flops / 1e9,
        roofline.bandwidth / 1e9
    );
    if !t.unmeasured.is_empty() {
        let names: Vec<&str> = t.unmeasured.keys().map(String::as_str).collect();
        println!("  not measured (priced by the roofline): {}", names.join(", "));
    }
    println!("saved to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr (drawn only on a terminal) for a calibration.
fn progress_bar() -> impl FnMut(calibrate::Progress) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {bar:30} {pos}/{len} {wide_msg}").expect("the template is valid"),
    );
    move |p: calibrate::Progress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(p.what.to_string());
        if p.done + 1 >= p.total {
            bar.finish_and_clear();
        }
    }
}

/// The cost model of `target`; for the cpu, the measured one, calibrated first if this
/// host has no calibration for these kernels.
pub fn model_for_target(target: &str) -> Result<Box<dyn saturate_costmodels::CostModel>> {
    if target == "cpu" && calibrate::cached().is_none() {
        eprintln!("timing this backend's kernels for the cpu cost model (once for this CPU and build; `saturate calibrate` redoes it)…");
    }
    calibrate::model_for(target, &mut progress_bar()).map_err(|e| anyhow!(e))
}
