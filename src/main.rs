//! The `saturate` command line: argument parsing here, one module a command in
//! [`commands`], which print what the crates compute.

mod commands;

use clap::{Parser, Subcommand};
use commands::engine::Engine;
use commands::optimize::OptimizeArgs;
use commands::DimArgs;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "saturate",
    version,
    about = "A tensor-graph optimizer built on equality saturation",
    long_about = "saturate loads a model (ONNX, or its own S-expression graph format), \
                  optimizes it by equality saturation, runs it, and reports on it.\n\nModels are .onnx files (opsets 7 to 21) or .sexp graphs. \
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
        #[command(flatten)]
        dims: DimArgs,
        /// An input tensor file (.pb); repeat once per model input, in order.
        #[arg(long = "input", value_name = "FILE.pb")]
        inputs: Vec<PathBuf>,
        /// Directory to write output_N.pb into (created if missing).
        #[arg(long, value_name = "DIR")]
        output_dir: PathBuf,
        /// Which engine computes the outputs.
        #[arg(long, value_enum, default_value_t = Engine::Jit)]
        engine: Engine,
        /// Threads for the JIT (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Overwrite existing output files.
        #[arg(long)]
        force: bool,
        /// Compare each output with DIR/output_N.pb (rtol 1e-3, atol 1e-4); exit 1 if any differs.
        #[arg(long, value_name = "DIR")]
        expected: Option<PathBuf>,
        /// Optimize the model first (with the options below), then run the result.
        #[arg(long)]
        optimize: bool,
        #[command(flatten)]
        opt: OptimizeArgs,
    },
    /// Optimize a model: saturate it with the rewrite rules, extract the cheapest program.
    #[command(long_about = "Optimize a model by equality saturation: load it into an e-graph, apply the \
        rewrite rules (built in, plus --rules files) until saturation or a limit, then extract the \
        program the target's cost model rates cheapest. Prints a report (per-iteration e-graph size, \
        stop reason, time per phase, estimated cost before and after, op counts, the rules that fired \
        and those whose results are in the program); --json prints it as one object.\n\n\
        On the cpu target it then measures: the input and the --measure N best distinct programs \
        extraction found (default 1) are compiled with the JIT and timed against each other on \
        random inputs, in interleaved rounds, and the fastest is kept, so the result is never \
        slower by the clock than the input. The report lists each program's estimate and \
        measured median and the measured speedup; --compare onnxruntime also times the input on \
        onnxruntime (from the project's Python environment: scripts/python-env).\n\n\
        -o writes the optimized program (.sexp or .onnx).")]
    Optimize {
        /// The model: a .onnx file or a .sexp graph.
        model: PathBuf,
        #[command(flatten)]
        dims: DimArgs,
        #[command(flatten)]
        opt: OptimizeArgs,
        /// Write the optimized program here (.sexp or .onnx).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Overwrite OUT if it exists.
        #[arg(long)]
        force: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Threads of the JIT when --measure times programs, and of --compare's peer
        /// (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Also time the input model on a peer engine (onnxruntime or openvino), through
        /// the project's Python environment (scripts/python-env).
        #[arg(long, value_name = "ENGINE")]
        compare: Option<String>,
        /// Draw the e-graph's growth per iteration and the measured candidates' estimate
        /// against their time into FILE.svg.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Draw reports of `optimize --json` (one or a whole suite's) as an SVG picture.
    #[command(long_about = "Draw one or more reports written by `saturate optimize --json` into an SVG \
        picture: the e-graph's growth per iteration of saturation, and each measured candidate's \
        estimated cost against its measured time (in ms for one report, relative to each model's input \
        for several), with the diagonal where estimate and clock agree. benches/fidelity draws its suite \
        this way.")]
    Plot {
        /// Reports written by `saturate optimize --json` (with --measure, for the right panel).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// The picture to write (.svg).
        #[arg(short, long, value_name = "FILE.svg")]
        output: PathBuf,
        /// Overwrite the picture if it exists.
        #[arg(long)]
        force: bool,
    },
    /// List the rewrite rules (name, theme, sides, guards), or the guards and functions rules can use.
    Rules {
        #[command(flatten)]
        opt: OptimizeArgs,
        /// Print an array with one object a directed rule.
        #[arg(long)]
        json: bool,
        /// List the guards `:when` can call, with their docs.
        #[arg(long)]
        guards: bool,
        /// List the functions `:let` can call, with their docs.
        #[arg(long)]
        functions: bool,
    },
    /// List the ops of the language (kind, ONNX names, fused or not) and the ONNX ops that import.
    #[command(long_about = "List the op table: every op of saturate's language in order, with its kind \
        (elementwise, reduction, normalization, window, layout, linear algebra), the ONNX ops that \
        import to it, and whether rewrite rules introduce it (fused ops); then every ONNX op import \
        supports. Rule files use these names; --json prints one object.")]
    Ops {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Time this backend's kernels on this CPU, on a grid of shapes, for the cpu cost model.
    #[command(long_about = "Time this backend's own kernels on this CPU over a grid of shapes (products \
        by M, N and K; 1×1 and 3×3 convolutions by channels and size; every elementwise op in a loop; \
        loops and copies by size; row kernels and windows by shape) for the measured cpu cost model, \
        which interpolates between the points. Takes well under a minute, on one thread. The result is \
        cached (in $SATURATE_CACHE_DIR, default ~/.cache/saturate), keyed by the CPU and the version of \
        the backend's kernels: `optimize` measures once by itself when the cache is missing or stale, \
        and this command measures again.")]
    Calibrate {
        /// Print the whole table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Differential fuzzing: random graphs, compiled and optimized, against the interpreter.
    #[command(long_about = "Generate random well-shaped graphs over every op of the language \
        (broadcasting, size-1 and odd-sized axes), and check for each that the compiled program, the \
        optimized program and the compiled optimized program all compute what the interpreter \
        computes on the original.\n\n\
        Each case's inputs are searched (normal, then values away from zero, then positive ones) to \
        avoid NaN, infinity and f32's limits. Every case ends in one class: agreed (all three ways); \
        not finite (some value is infinite or NaN: the compiled program must agree, the rewrites, \
        laws of real arithmetic, are not checked); beyond f32 (an op's terms overflow f32, or the \
        typical f32 error of its sums exceeds the tolerance: not compared); or a mismatch, which shrinks to \
        a minimal graph, printed as an S-expression and saved with --save DIR (the test suite \
        replays tests/fuzz-regressions/). The campaign goes on after a mismatch (up to 10).\n\n\
        The report counts each class, the ops generated and the rules that fired in the optimized \
        cases, and names the rules that never fired. The cost model is a fixed roofline, so a seed \
        repeats the same cases on any machine. Exits 1 if any case mismatched.")]
    Fuzz {
        /// How many random graphs (0: no limit, until --time is up).
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// Seed of the campaign (the same seed generates the same graphs).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after this many seconds, even if fewer cases ran.
        #[arg(long, value_name = "SECONDS")]
        time: Option<f64>,
        /// Save each mismatch's minimal graph in this folder (never over an existing file).
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Compile a model with the JIT once and time many runs: median and spread.
    #[command(long_about = "Compile a model with the JIT once, warm up, then time runs until at least \
        10 runs and --min-time seconds: prints the compile time and the median, min, quartiles and \
        max of the run times. Without --input, the model runs on standard-normal inputs (fixed \
        seed). Models are .onnx, .sexp or suite:NAME (bert, nasrnn, resnext50, nasnet_a, inception_v3).")]
    Bench {
        /// The model: a .onnx file, a .sexp graph, or suite:NAME.
        model: PathBuf,
        #[command(flatten)]
        dims: DimArgs,
        /// An input tensor file (.pb); repeat once per model input, in order.
        #[arg(long = "input", value_name = "FILE.pb")]
        inputs: Vec<PathBuf>,
        /// Threads for the JIT (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Measure for at least this many seconds.
        #[arg(long, default_value_t = 2.0, value_name = "S")]
        min_time: f64,
        /// Print one JSON object (median_ms, compile_ms, …).
        #[arg(long)]
        json: bool,
        /// Also print the time per kind of kernel (generated loops by op, GEMMs by shape).
        #[arg(long)]
        profile: bool,
        /// The code of fused elementwise loops and row kernels: `widest` (AVX-512 or
        /// AVX2 where the host has them, Cranelift's f32x4 loops elsewhere) or `clif`
        /// (Cranelift's loops only, for comparison).
        #[arg(long, value_enum, default_value_t = KernelChoice::Widest)]
        kernels: KernelChoice,
        /// Optimize the model first (with the options below), then time the result.
        #[arg(long)]
        optimize: bool,
        #[command(flatten)]
        opt: OptimizeArgs,
    },
    /// Describe a model: inputs, outputs, op histogram, parameters, FLOPs.
    Info {
        /// The model: a .onnx file or a .sexp graph.
        model: PathBuf,
        #[command(flatten)]
        dims: DimArgs,
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
        #[command(flatten)]
        dims: DimArgs,
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
    /// Run the ONNX backend test data (or the PyTorch export suite) and print the table.
    #[command(long_about = "Run the ONNX backend test data (onnx==1.22.0) through the reference \
        interpreter: every node test, then the nine light models. Prints, per supported op, \
        passed/total, and totals over supported ops and over all 1765 tests.\n\n\
        Fetch the data first with scripts/fetch-onnx-data.\n\n\
        With --exports DIR: the PyTorch export suite in DIR (tests/data/pytorch holds the small \
        variants; scripts/export-pytorch makes others), each export run three ways — the \
        interpreter, the JIT, the JIT after optimizing — against onnxruntime's outputs.")]
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
        /// Which engine runs the tests.
        #[arg(long, value_enum, default_value_t = Engine::Interp)]
        engine: Engine,
        /// Run the PyTorch export suite in DIR three ways instead (see above).
        #[arg(long, value_name = "DIR")]
        exports: Option<PathBuf>,
        #[command(flatten)]
        opt: OptimizeArgs,
    },
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { model, dims, inputs, output_dir, engine, threads, force, expected, optimize, opt } => {
            commands::run::run(commands::run::RunArgs {
                engine,
                threads: threads.unwrap_or_else(all_cores),
                model: &model,
                dims: dims.map(),
                inputs: &inputs,
                output_dir: &output_dir,
                force,
                expected: expected.as_deref(),
                optimize: optimize.then_some(&opt),
            })
        }
        Command::Info { model, dims, json } => commands::info::info(&model, &dims.map(), json),
        Command::Convert { model, dims, output, force } => {
            commands::convert::convert(&model, &dims.map(), &output, force)
        }
        Command::Optimize { model, dims, opt, output, force, json, threads, compare, plot } => {
            let cmd = commands::optimize::OptimizeCmd {
                model: &model,
                dims: dims.map(),
                output: output.as_deref(),
                force,
                json,
                threads: threads.unwrap_or_else(all_cores),
                compare: compare.as_deref(),
                plot: plot.as_deref(),
            };
            commands::optimize::optimize_cmd(&cmd, &opt)
        }
        Command::Plot { reports, output, force } => commands::plot::plot_cmd(&reports, &output, force),
        Command::Rules { opt, json, guards, functions } => commands::rules::rules(&opt, json, guards, functions),
        Command::Ops { json } => commands::ops::ops(json),
        Command::Calibrate { json } => commands::optimize::calibrate(json),
        Command::Fuzz { cases, seed, time, save, json } => {
            commands::fuzz::fuzz(commands::fuzz::FuzzArgs { cases, seed, time, save: save.as_deref(), json })
        }
        Command::Bench { model, dims, inputs, threads, min_time, json, profile, kernels, optimize, opt } => {
            commands::bench::bench(commands::bench::BenchArgs {
                kernels: match kernels {
                    KernelChoice::Widest => saturate_backend::Kernels::Widest,
                    KernelChoice::Clif => saturate_backend::Kernels::Clif,
                },
                model: &model,
                dims: dims.map(),
                inputs: &inputs,
                optimize: optimize.then_some(&opt),
                threads: threads.unwrap_or_else(all_cores),
                min_time,
                json,
                profile,
            })
        }
        Command::Conformance { exports: Some(dir), opt, .. } => commands::conformance::exports(&dir, &opt),
        Command::Conformance { data, verbose, no_models, engine, exports: None, .. } => {
            commands::conformance::conformance(data, verbose, no_models, engine)
        }
        Command::CheckRules { files, instances, seed, only, show } => {
            commands::check_rules::check_rules(&files, instances, seed, only.as_deref(), show)
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

fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `saturate … | head` should stop quietly when `head` closes the pipe, as other Unix
/// tools do, instead of panicking on the next print: Rust ignores SIGPIPE by default.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `--kernels` of `saturate bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KernelChoice {
    Widest,
    Clif,
}
