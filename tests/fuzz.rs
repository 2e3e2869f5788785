//! Differential fuzzing in the test suite: a fixed budget of random graphs from a fixed
//! seed (compiled, optimized, and both, against the interpreter), every minimal graph a
//! campaign ever saved under tests/fuzz-regressions/ replayed on its own inputs, and the
//! campaign machinery itself checked against a compiler that is wrong on purpose.

use saturate_egraph::{Graph, Tensor};
use saturate_extract::{optimize, OptimizeOptions};
use saturate_rewrites::Library;
use saturate_verify::fuzz::{self, Class, Engines, Optimized};

/// Random graphs per test run, and the seed (fixed, so a failure here reproduces with
/// `saturate fuzz --cases 600 --seed 2026`).
const CASES: usize = 600;
const SEED: u64 = 2026;

fn compiled(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    saturate_backend::compile(g, &saturate_backend::Options::for_fuzzing(g))
        .and_then(|mut exe| exe.run(inputs))
        .map_err(|e| e.to_string())
}

fn with_engines<T>(compiled: fuzz::Compiled, f: impl FnOnce(&Engines) -> T) -> T {
    let library = Library::builtin().unwrap();
    // a fixed model, as `saturate fuzz` uses: the host's calibration, measured under
    // load, would choose other programs from run to run
    let model = saturate_costmodels::cpu::reference();
    let options = OptimizeOptions { limits: fuzz::limits(), ..OptimizeOptions::default() };
    let optimized = |g: &Graph| {
        optimize(g, &library, &model, &options, |_| {})
            .map(|(graph, r)| Optimized { graph, fired: r.saturation.fired, in_program: r.rules_in_result })
            .map_err(|e| e.to_string())
    };
    f(&Engines { compiled, optimize: &optimized })
}

#[test]
fn random_graphs_agree_compiled_optimized_and_interpreted() {
    let report = with_engines(&compiled, |engines| fuzz::run(CASES, SEED, None, engines, |_| {}));
    if let Some(m) = report.mismatches.first() {
        panic!("case {} of seed {SEED}: {}\nminimal graph:\n{}", m.case, m.reason, m.graph);
    }
    assert_eq!(report.cases, CASES);
    assert_eq!(report.agreed + report.not_finite + report.beyond_f32, CASES);
    // the input search keeps nearly every case inside what f32 computes
    assert!(report.agreed * 100 >= CASES * 95, "only {} of {CASES} cases agreed all three ways", report.agreed);
    assert!(report.beyond_f32 * 100 <= CASES, "{} of {CASES} cases beyond f32", report.beyond_f32);
    // and the optimizer did work on them
    assert!(report.fired.len() >= 100, "only {} rules fired", report.fired.len());
}

#[test]
fn saved_regressions_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sexp"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the regressions folder holds the cases fuzzing found");
    with_engines(&compiled, |engines| {
        for path in &files {
            let checked = fuzz::replay(path, engines).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // a regression that is beyond f32 would check nothing
            assert!(!matches!(checked.class, Class::BeyondF32(_)), "{}: {:?}", path.display(), checked.class);
            println!("{}: {:?} on draw {}", path.display(), checked.class, checked.draw);
        }
    });
}

/// A sum whose terms cancel to far below their magnitude on every draw of inputs is
/// beyond f32: classed apart, not compared, and the reason names the op.
#[test]
fn a_case_no_draw_brings_inside_f32_is_classed_beyond_it() {
    let text = "(saturate-graph 1)\n(input %x f32 [6])\n\
                (output \"y\" (reduce_sum (concat 0 (mul %x (fill 1e8 [])) %x (mul %x (fill -1e8 []))) [0] 0))\n";
    let graph = saturate_egraph::sexp::parse(text, "t", None).unwrap();
    let checked = with_engines(&compiled, |engines| fuzz::check(&graph, engines)).unwrap();
    match checked.class {
        Class::BeyondF32(why) => assert!(why.contains("reduce_sum") && why.contains("18 terms"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn generated_graphs_cover_every_op_of_the_language() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..CASES {
        let instrs = fuzz::programs().new_tree(&mut runner).unwrap().current();
        seen.extend(fuzz::gen::build(&instrs).op_histogram().into_keys());
    }
    let sources = ["input", "weight", "fill"];
    let missing: Vec<&&str> =
        saturate_egraph::OPS.iter().filter(|op| !sources.contains(op) && !seen.contains(**op)).collect();
    assert!(missing.is_empty(), "ops {CASES} generated graphs never used: {missing:?}");
}

/// A compiler that is wrong on purpose (it adds 1 to every output of a graph with a
/// `tanh`): the campaign finds it, shrinks it to a graph with a tanh, goes on after it,
/// and the text it saves replays to the same mismatch on the same inputs.
#[test]
fn a_campaign_finds_shrinks_and_saves_a_wrong_compiler() {
    let broken = |g: &Graph, inputs: &[Tensor]| -> Result<Vec<Tensor>, String> {
        let mut out = compiled(g, inputs)?;
        if g.op_histogram().contains_key("tanh") {
            for t in &mut out {
                if let Tensor::F32(a) = t {
                    a.mapv_inplace(|v| v + 1.0);
                }
            }
        }
        Ok(out)
    };
    with_engines(&broken, |engines| {
        let report = fuzz::run(200, 5, None, engines, |_| {});
        assert!(!report.mismatches.is_empty(), "the broken tanh went unnoticed");
        let m = &report.mismatches[0];
        assert!(m.graph.contains("(tanh"), "{}", m.graph);
        assert!(m.graph.lines().filter(|l| l.starts_with("(let")).count() <= 3, "not shrunk:\n{}", m.graph);
        assert!(report.cases > m.case || report.mismatches.len() == fuzz::MAX_MISMATCHES, "stopped at the first");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("found.sexp");
        std::fs::write(&path, fuzz::regression_text(m, 5)).unwrap();
        let again = fuzz::replay(&path, engines).unwrap_err();
        assert!(again.contains("compiled(original) vs interpreter(original)"), "{again}");
        assert!(again.contains(&format!("draw {}", m.draw)), "{again}");
    });
}
