//! The `saturate` command line: argument parsing and printing only; the work lives in
//! the crates (`saturate-egraph` for models, `saturate-verify` for running them).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use saturate_egraph::onnx::{read_tensor_file, write_tensor_file};
use saturate_egraph::{sexp, stats::stats, Graph};
use saturate_rewrites::Library;
use saturate_verify::compare::{compare, ATOL, RTOL};
use saturate_verify::{conformance, rulecheck};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "saturate",
    version,
    about = "A tensor-graph optimizer built on equality saturation",
    long_about = "saturate loads a model (ONNX, or its own S-expression graph format), \
                  runs it, and reports on it.\n\nModels are .onnx files (opsets 7 to 21) or .sexp graphs. \
                  Tensors on disk are ONNX TensorProto files (.pb), as in the ONNX test data."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on input tensors and write its outputs as TensorProto files.
    #[command(long_about = "Run a model on input tensors and write its outputs.\n\n\
        Inputs are TensorProto (.pb) files, one per model input that has no initializer, \
        in the order the model lists them. Outputs are written to DIR/output_0.pb, \
        output_1.pb, …, each named after the model's output. Existing files are not \
        overwritten unless --force is given.")]
    Run {
        /// The model: a .onnx file or a .sexp graph.
        model: PathBuf,
        /// An input tensor file (.pb); repeat once per model input, in order.
        #[arg(long = "input", value_name = "FILE.pb")]
        inputs: Vec<PathBuf>,
        /// Directory to write output_N.pb into (created if missing).
        #[arg(long, value_name = "DIR")]
        output_dir: PathBuf,
        /// Which engine computes the outputs.
        #[arg(long, value_enum, default_value_t = Engine::Interp)]
        engine: Engine,
        /// Overwrite existing output files.
        #[arg(long)]
        force: bool,
        /// Compare each output with DIR/output_N.pb (rtol 1e-3, atol 1e-4); exit 1 if any differs.
        #[arg(long, value_name = "DIR")]
        expected: Option<PathBuf>,
    },
    /// Describe a model: inputs, outputs, op histogram, parameters, FLOPs.
    Info {
        /// The model: a .onnx file or a .sexp graph.
        model: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert a model between ONNX and saturate's S-expression graph format.
    #[command(long_about = "Convert a model between ONNX and saturate's S-expression graph format; \
        the extension of OUT (.sexp or .onnx) picks the format.\n\n\
        In .sexp output, weights with more than 16 elements go to a side file next to OUT, with \
        the same name and the extension .weights. ONNX output uses opset 19. Reading the \
        result back gives the same graph.")]
    Convert {
        /// The model: a .onnx file or a .sexp graph.
        model: PathBuf,
        /// Where to write the converted model (.sexp or .onnx).
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
        /// Overwrite OUT (and its .weights file) if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Check rewrite rules: evaluate both sides of each on random instances.
    #[command(long_about = "Check rewrite rules with the reference interpreter: for every rule, random \
        instances of its left-hand side (shapes with broadcasting and size-1 dims, attributes, \
        inputs with both signs, zeros and large magnitudes) are rewritten by the rule's own applier, \
        and both sides are evaluated and compared (rtol 1e-3, atol 1e-4). A rule that disagrees is \
        reported by name with a counterexample graph, and the command exits 1.\n\n\
        With no FILE, checks the built-in library.")]
    CheckRules {
        /// Rule files to check (default: the built-in library).
        files: Vec<PathBuf>,
        /// Distinct instances each rule must agree on.
        #[arg(long, default_value_t = 10)]
        instances: usize,
        /// Seed of the random instances.
        #[arg(long, default_value_t = 0x5A7)]
        seed: u64,
        /// Check only rules whose name contains this text.
        #[arg(long)]
        only: Option<String>,
        /// Also print one instance each rule was checked on.
        #[arg(long)]
        show: bool,
    },
    /// Run the ONNX backend test data through the interpreter and print the table.
    #[command(long_about = "Run the ONNX backend test data (onnx==1.22.0) through the reference \
        interpreter: every node test, then the nine light models. Prints, per supported op, \
        passed/total, and totals over supported ops and over all 1765 tests.\n\n\
        Fetch the data first with scripts/fetch-onnx-data.")]
    Conformance {
        /// The extracted data (holding node/ and light/); default: data/onnx-1.22.0 in the
        /// source tree, or $SATURATE_ONNX_DATA.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Also list every test of a supported op that did not pass, with the reason.
        #[arg(long)]
        verbose: bool,
        /// Skip the light models.
        #[arg(long)]
        no_models: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    /// The reference interpreter (exact, slow).
    Interp,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { model, inputs, output_dir, engine: Engine::Interp, force, expected } => {
            run(&model, &inputs, &output_dir, force, expected.as_deref())
        }
        Command::Info { model, json } => info(&model, json),
        Command::Convert { model, output, force } => convert(&model, &output, force),
        Command::Conformance { data, verbose, no_models } => conformance_cmd(data, verbose, no_models),
        Command::CheckRules { files, instances, seed, only, show } => {
            check_rules(&files, instances, seed, only.as_deref(), show)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    model: &Path,
    input_files: &[PathBuf],
    output_dir: &Path,
    force: bool,
    expected: Option<&Path>,
) -> Result<ExitCode> {
    let inputs = input_files.iter().map(|p| read_tensor_file(p).map(|(_, t)| t)).collect::<Result<Vec<_>, _>>()?;
    let (graph, inputs) = saturate_verify::load_for_inputs(model, inputs)?;
    let outputs = saturate_verify::run(&graph, &inputs)?;
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

fn info(model: &Path, json: bool) -> Result<ExitCode> {
    let graph = saturate_verify::load_model(model)?;
    let metas = graph.check()?;
    let s = stats(&graph)?;
    let ports = |ports: &[saturate_egraph::Port]| -> Vec<(String, String)> {
        ports.iter().map(|p| (p.name.clone(), graph.tensor_type(&metas, p.id).to_string())).collect()
    };
    let (inputs, outputs) = (ports(&graph.inputs), ports(&graph.outputs));
    let histogram = graph.op_histogram();
    if json {
        let obj = serde_json::json!({
            "model": model.display().to_string(),
            "inputs": inputs.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "outputs": outputs.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "ops": histogram,
            "op_count": s.ops,
            "weight_parameters": s.weight_params,
            "splat_parameters": s.fill_params,
            "flops": s.flops,
        });
        println!("{}", serde_json::to_string_pretty(&obj)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("model   {}", model.display());
    for (n, t) in &inputs {
        println!("input   {n}: {t}");
    }
    for (n, t) in &outputs {
        println!("output  {n}: {t}");
    }
    println!(
        "params  {} ({} in weights, {} in splat constants)",
        group_digits(s.weight_params + s.fill_params),
        group_digits(s.weight_params),
        group_digits(s.fill_params)
    );
    println!("flops   {} per run ({:.3} GFLOP)", group_digits(s.flops as usize), s.flops as f64 / 1e9);
    println!("ops     {} nodes", s.ops);
    let width = histogram.keys().map(String::len).max().unwrap_or(0);
    let mut by_count: Vec<_> = histogram.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (op, n) in by_count {
        println!("  {op:<width$}  {n}");
    }
    Ok(ExitCode::SUCCESS)
}

fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn convert(model: &Path, output: &Path, force: bool) -> Result<ExitCode> {
    let to_sexp = match output.extension().and_then(|e| e.to_str()) {
        Some("sexp") => true,
        Some("onnx") => false,
        _ => bail!("{}: the output must be a .sexp or .onnx file", output.display()),
    };
    let side = output.with_extension("weights");
    if !force {
        let written: &[&Path] = if to_sexp { &[output, side.as_path()] } else { &[output] };
        if let Some(existing) = written.iter().find(|p| p.exists()) {
            bail!("{} already exists; pass --force to overwrite", existing.display());
        }
    }
    let graph: Graph = saturate_verify::load_model(model)?;
    if to_sexp {
        sexp::write_file(&graph, output)?;
    } else {
        saturate_egraph::onnx::save(&graph, output)?;
    }
    let weights = if to_sexp && side.exists() { format!(" and {}", side.display()) } else { String::new() };
    println!("wrote {}{weights}", output.display());
    Ok(ExitCode::SUCCESS)
}

fn check_rules(files: &[PathBuf], instances: usize, seed: u64, only: Option<&str>, show: bool) -> Result<ExitCode> {
    let mut library = Library::default();
    if files.is_empty() {
        library = Library::builtin()?;
    }
    for f in files {
        library.add_file(f)?;
    }
    let rules: Vec<_> = library.rules.iter().filter(|r| only.is_none_or(|o| r.name.contains(o))).cloned().collect();
    let opts = rulecheck::CheckOptions { instances, seed, ..Default::default() };
    let start = Instant::now();
    let verdicts = rulecheck::check_rules(&rules, &opts);
    let (mut ok, mut bad, mut unchecked) = (0, 0, 0);
    for (rule, verdict) in rules.iter().zip(&verdicts) {
        match verdict {
            rulecheck::Verdict::Agrees { example, .. } => {
                ok += 1;
                if show {
                    println!("ok {} ({}:{}), for instance:\n{example}", rule.name, rule.file, rule.line);
                }
            }
            rulecheck::Verdict::Disagrees(cx) => {
                bad += 1;
                println!(
                    "UNSOUND {} ({}:{}): {}\ncounterexample:\n{}",
                    rule.name, rule.file, rule.line, cx.reason, cx.graph
                );
            }
            rulecheck::Verdict::Unchecked { instances, reason } => {
                unchecked += 1;
                println!(
                    "UNCHECKED {} ({}:{}): only {instances} instance(s) where it applies; last reason: {reason}",
                    rule.name, rule.file, rule.line
                );
            }
        }
    }
    println!(
        "{} rules: {ok} agree on ≥ {instances} instances, {bad} disagree, {unchecked} unchecked ({:.1} s)",
        rules.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(if bad + unchecked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn conformance_cmd(data: Option<PathBuf>, verbose: bool, no_models: bool) -> Result<ExitCode> {
    let dir = data.unwrap_or_else(conformance::data_dir);
    conformance::require_data(&dir).map_err(anyhow::Error::msg)?;
    let tests = conformance::node_test_dirs(&dir.join("node"))?;
    let total = tests.len();
    let tty = std::io::stderr().is_terminal();
    let mut done = 0;
    let start = Instant::now();
    let results = conformance::run_node_tests(&dir.join("node"), |t| {
        done += 1;
        if tty {
            eprint!("\r[{done}/{total}] {:<60}", t.name);
        }
    })?;
    if tty {
        eprintln!("\r{:<80}", "");
    }
    println!("ONNX {} node tests ({:.1} s)\n", conformance::ONNX_VERSION, start.elapsed().as_secs_f64());
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
            let m = conformance::run_light_model(&path);
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
