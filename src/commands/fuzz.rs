//! `saturate fuzz`: differential fuzzing campaigns (see `saturate_verify::fuzz`).

use anyhow::Result;
use saturate_egraph::{Graph, Tensor};
use saturate_extract::{optimize, OptimizeOptions};
use saturate_rewrites::Library;
use saturate_verify::fuzz::{self, Engines, Optimized, Report};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub struct FuzzArgs<'a> {
    pub cases: usize,
    pub seed: u64,
    pub time: Option<f64>,
    pub save: Option<&'a Path>,
    pub json: bool,
}

pub fn fuzz(args: FuzzArgs) -> Result<ExitCode> {
    if args.cases == 0 && args.time.is_none() {
        anyhow::bail!("--cases 0 runs until --time is up; give --time SECONDS too");
    }
    let limit = if args.cases == 0 { usize::MAX } else { args.cases };
    let library = Library::builtin().map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let rule_names: Vec<String> = library.rules.iter().map(|r| r.name.clone()).collect();
    // a fixed model: a seed must pick the same programs on every machine
    let model = saturate_costmodels::cpu::reference();
    let compiled = |g: &Graph, inputs: &[Tensor]| {
        saturate_backend::compile(g, &saturate_backend::Options::for_fuzzing(g))
            .and_then(|mut exe| exe.run(inputs))
            .map_err(|e| e.to_string())
    };
    let options = OptimizeOptions { limits: fuzz::limits(), ..OptimizeOptions::default() };
    let optimized = |g: &Graph| {
        optimize(g, &library, &model, &options, |_| {})
            .map(|(graph, report)| Optimized {
                graph,
                fired: report.saturation.fired,
                in_program: report.rules_in_result,
            })
            .map_err(|e| e.to_string())
    };
    let engines = Engines { compiled: &compiled, optimize: &optimized };
    let tty = std::io::stderr().is_terminal();
    let budget = match (args.cases, args.time) {
        (0, Some(t)) => format!("for {t} s"),
        (n, Some(t)) => format!("{n} cases (or {t} s)"),
        (n, None) => format!("{n} cases"),
    };
    if !args.json {
        println!("fuzzing {budget} from seed {} (`--seed {}` repeats them)", args.seed, args.seed);
    }
    let report = fuzz::run(limit, args.seed, args.time.map(Duration::from_secs_f64), &engines, |r| {
        if tty {
            eprint!("\r{} cases, {} mismatch(es), {:.0} s", r.cases, r.mismatches.len(), r.seconds);
        }
    });
    if tty {
        eprintln!();
    }
    let saved = match args.save {
        Some(dir) => save(&report, dir)?,
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&report, &rule_names, &saved))?);
    } else {
        print_report(&report, &rule_names, &saved);
    }
    Ok(if report.mismatches.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Writes each mismatch's minimal graph into `dir`, never over an existing file;
/// returns the paths written.
fn save(report: &Report, dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for m in report.mismatches.iter().filter(|m| !m.graph.is_empty()) {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("seed-{}-case-{}.sexp", report.seed, m.case));
        if path.exists() {
            eprintln!("warning: {} already exists; not overwritten", path.display());
            continue;
        }
        std::fs::write(&path, fuzz::regression_text(m, report.seed))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

fn share(n: usize, of: usize) -> String {
    format!("{n:>7}  ({:.1} %)", 100.0 * n as f64 / of.max(1) as f64)
}

fn print_report(r: &Report, rules: &[String], saved: &[String]) {
    println!("{} random graphs in {:.1} s:", r.cases, r.seconds);
    println!("  agreed, all three ways            {}", share(r.agreed, r.cases));
    println!(
        "  not finite: compiled agrees       {}  infinities or NaNs; rewrites (laws of real arithmetic) not checked",
        share(r.not_finite, r.cases)
    );
    println!(
        "  beyond f32: not compared          {}  an op's f32 sums cannot be expected to meet the tolerance",
        share(r.beyond_f32, r.cases)
    );
    println!("  mismatches                        {}", share(r.mismatches.len(), r.cases));
    println!(
        "inputs, searched to avoid NaN, infinity and f32's limits: on the first draw {} case(s) were beyond f32 \
         and {} not finite; {} ran on a later draw",
        r.first_beyond_f32, r.first_not_finite, r.later_draws
    );
    if let Some(e) = &r.beyond_example {
        println!("\nbeyond f32, for example: {}\n{}", e.why, e.graph.trim_end());
    }

    let width = r.ops.keys().map(String::len).max().unwrap_or(0);
    // the sources (input, weight, fill) are not ops a graph computes
    println!("\nops generated (nodes), {} of the language's {}:", r.ops.len(), saturate_egraph::OPS.len() - 3);
    let cells: Vec<String> = r.ops.iter().map(|(op, n)| format!("{op:<width$} {n:>6}")).collect();
    for row in cells.chunks(4) {
        println!("  {}", row.join("    "));
    }
    let missing = r.ops_not_generated();
    if !missing.is_empty() {
        println!("  never generated: {}", missing.join(", "));
    }

    let applications: usize = r.fired.values().sum();
    println!(
        "\nrules: {} of {} fired ({applications} applications in the optimized cases); {} are in optimized programs",
        r.fired.len(),
        rules.len(),
        r.in_programs.len()
    );
    let mut top: Vec<(&String, &usize)> = r.fired.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let most: Vec<String> = top.iter().take(12).map(|(name, n)| format!("{name} {n}")).collect();
    println!("  most fired: {}", most.join(", "));
    let never = r.never_fired(rules);
    println!("  never fired ({}): {}", never.len(), never.join(", "));

    for m in &r.mismatches {
        println!("\nMISMATCH at case {} (seed {}): {}\n\nminimal graph:\n{}", m.case, r.seed, m.reason, m.graph);
    }
    for path in saved {
        println!("saved as {path} (the test suite replays it)");
    }
    if r.mismatches.is_empty() {
        println!("\nno mismatch: compiled, optimized and both agree with the interpreter");
    }
}

fn json(r: &Report, rules: &[String], saved: &[String]) -> serde_json::Value {
    serde_json::json!({
        "seed": r.seed,
        "cases": r.cases,
        "seconds": r.seconds,
        "agreed": r.agreed,
        "not_finite": r.not_finite,
        "beyond_f32": r.beyond_f32,
        "beyond_f32_example": r.beyond_example.as_ref().map(|e| serde_json::json!({"why": e.why, "graph": e.graph})),
        "later_draws": r.later_draws,
        "first_draw_beyond_f32": r.first_beyond_f32,
        "first_draw_not_finite": r.first_not_finite,
        "mismatches": r.mismatches.iter().map(|m| serde_json::json!({
            "case": m.case, "reason": m.reason, "graph": m.graph, "draw": m.draw,
        })).collect::<Vec<_>>(),
        "ops": r.ops,
        "ops_not_generated": r.ops_not_generated(),
        "rules": rules.len(),
        "rules_fired": r.fired,
        "rules_in_programs": r.in_programs,
        "rules_never_fired": r.never_fired(rules),
        "saved": saved,
    })
}
