//! Differential fuzzing in the test suite: a fixed budget of random graphs (compiled,
//! optimized, and both, against the interpreter), and every minimal graph a campaign
//! ever saved under tests/fuzz-regressions/, replayed.

use saturate_egraph::{Graph, Tensor};
use saturate_extract::{optimize, OptimizeOptions};
use saturate_rewrites::Library;
use saturate_verify::fuzz::{self, Engines, Outcome};

/// Random graphs per test run, and the seed (fixed, so a failure here reproduces with
/// `saturate fuzz --cases 600 --seed 2026`).
const CASES: usize = 600;
const SEED: u64 = 2026;

fn with_engines<T>(f: impl FnOnce(&Engines) -> T) -> T {
    let library = Library::builtin().unwrap();
    let model = saturate_costmodels::cpu::host_model().unwrap();
    let compiled = |g: &Graph, inputs: &[Tensor]| {
        saturate_backend::compile(g, &saturate_backend::Options { threads: 1 })
            .and_then(|mut exe| exe.run(inputs))
            .map_err(|e| e.to_string())
    };
    let options = OptimizeOptions { limits: fuzz::limits(), ..OptimizeOptions::default() };
    let optimized =
        |g: &Graph| optimize(g, &library, &model, &options, |_| {}).map(|(g, _)| g).map_err(|e| e.to_string());
    f(&Engines { compiled: &compiled, optimize: &optimized })
}

#[test]
fn random_graphs_agree_compiled_optimized_and_interpreted() {
    let outcome = with_engines(|engines| fuzz::run(CASES, SEED, None, engines, |_| {}));
    match outcome {
        Outcome::Passed { cases } => assert_eq!(cases, CASES),
        Outcome::Failed { cases, reason, graph } => {
            panic!("after {cases} passing cases: {reason}\nminimal graph:\n{graph}")
        }
    }
}

#[test]
fn saved_regressions_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "the regressions folder holds the cases fuzzing found");
    with_engines(|engines| {
        for path in &files {
            let graph = saturate_egraph::sexp::read_file(path).unwrap();
            fuzz::check(&graph, engines).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    });
}

#[test]
fn generated_graphs_cover_every_op_the_jit_runs() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..CASES {
        let instrs = fuzz::programs().new_tree(&mut runner).unwrap().current();
        seen.extend(fuzz::gen::build(&instrs).op_histogram().into_keys());
    }
    let missing: Vec<&&str> = saturate_backend::lower::SUPPORTED
        .iter()
        .filter(|op| !["input", "weight", "fill"].contains(op) && !seen.contains(**op))
        .collect();
    assert!(missing.is_empty(), "ops {CASES} generated graphs never used: {missing:?}");
}
