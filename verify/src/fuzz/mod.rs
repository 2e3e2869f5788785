//! Differential fuzzing: random well-shaped graphs ([`gen`]), each run three ways and
//! compared with the interpreter on the original:
//!
//! 1. compiled(original) ≈ interpreter(original): the code generator;
//! 2. interpreter(optimized) ≈ interpreter(original): the rewrite rules and extraction;
//! 3. compiled(optimized) ≈ interpreter(original): both together.
//!
//! The compiler and the optimizer come in as [`Engines`] (this crate does not depend on
//! them). Cases are proptest values, so a failure shrinks to a minimal list of
//! instructions — a minimal graph — which [`run`] returns as an S-expression; saved
//! under `tests/fuzz-regressions/`, the test suite replays it with [`check`].
//!
//! Outputs are compared with rtol 1e-3 and an absolute tolerance of 1e-4 times the
//! output's largest finite magnitude (at least 1), as reductions and products sum in a
//! different order on each side.
//!
//! Rewrite rules are laws of real arithmetic: `x − x → 0` is wrong for an infinite `x`,
//! and `x·0 → 0` loses the sign of a negative zero (which `1/x` turns into −inf). So the
//! two properties about the optimized graph are checked only where every value of the
//! original computation is finite; the compiler's property always is.

pub mod gen;

use crate::compare::compare;
use gen::Instr;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use saturate_egraph::{DType, Graph, Tensor};
use std::time::{Duration, Instant};

/// Compiles and runs a graph.
pub type Compiled<'a> = &'a dyn Fn(&Graph, &[Tensor]) -> Result<Vec<Tensor>, String>;
/// Optimizes a graph.
pub type Optimize<'a> = &'a dyn Fn(&Graph) -> Result<Graph, String>;

/// What the properties exercise besides the interpreter.
pub struct Engines<'a> {
    pub compiled: Compiled<'a>,
    pub optimize: Optimize<'a>,
}

/// Saturation limits for fuzz cases: the small generated graphs saturate long before
/// them, and a case must stay a fraction of a second.
pub fn limits() -> saturate_rewrites::Limits {
    saturate_rewrites::Limits {
        node_limit: 5_000,
        iter_limit: 6,
        time_limit: Duration::from_millis(500),
        ..saturate_rewrites::Limits::default()
    }
}

/// The inputs every case runs on: standard normal, seed 0.
pub fn inputs(graph: &Graph) -> Vec<Tensor> {
    let metas = graph.check().expect("generated graphs type-check");
    let mut rng = crate::rng::Rng::new(0);
    graph
        .inputs
        .iter()
        .map(|p| {
            let ty = graph.tensor_type(&metas, p.id);
            let shape = ndarray::IxDyn(&ty.shape);
            match ty.dtype {
                DType::F32 => Tensor::F32(
                    ndarray::ArrayD::from_shape_vec(shape, (0..ty.numel()).map(|_| rng.normal() as f32).collect())
                        .expect("sizes match"),
                ),
                DType::I64 => Tensor::I64(ndarray::ArrayD::zeros(shape)),
                DType::Bool => Tensor::Bool(ndarray::ArrayD::from_elem(shape, false)),
            }
        })
        .collect()
}

fn close(what: &str, got: &[Tensor], want: &[Tensor]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} outputs, expected {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let scale = match w {
            Tensor::F32(a) => a.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs())) as f64,
            _ => 0.0,
        };
        compare(g, w, 1e-3, 1e-4 * scale.max(1.0)).map_err(|m| format!("{what}: output {i}: {m}"))?;
    }
    Ok(())
}

/// Whether every f32 value `graph` computes on `inputs` is finite (and no zero it divides
/// by is one a rewrite could re-sign): the domain where rewrite rules hold.
fn all_values_finite(graph: &Graph, inputs: &[Tensor]) -> bool {
    let metas = match graph.check() {
        Ok(m) => m,
        Err(_) => return false,
    };
    let mut every = graph.clone();
    every.outputs = (0..graph.expr.len())
        .filter(|&i| metas[i].tensor().is_some_and(|t| t.dtype == DType::F32))
        .map(|i| saturate_egraph::Port { name: format!("n{i}"), id: saturate_egraph::Id::from(i) })
        .collect();
    match crate::run(&every, inputs) {
        Ok(values) => values.iter().all(|v| v.as_f32().is_none_or(|a| a.iter().all(|x| x.is_finite()))),
        Err(_) => false,
    }
}

/// Checks the three properties on `graph`.
pub fn check(graph: &Graph, engines: &Engines) -> Result<(), String> {
    let inputs = inputs(graph);
    let want = crate::run(graph, &inputs).map_err(|e| format!("the interpreter failed: {e}"))?;
    let compiled = (engines.compiled)(graph, &inputs).map_err(|e| format!("compiling the original: {e}"))?;
    close("compiled(original) vs interpreter(original)", &compiled, &want)?;
    if !all_values_finite(graph, &inputs) {
        return Ok(());
    }
    let optimized = (engines.optimize)(graph).map_err(|e| format!("optimizing: {e}"))?;
    let interpreted = crate::run(&optimized, &inputs).map_err(|e| format!("interpreting the optimized graph: {e}"))?;
    close("interpreter(optimized) vs interpreter(original)", &interpreted, &want)?;
    let compiled =
        (engines.compiled)(&optimized, &inputs).map_err(|e| format!("compiling the optimized graph: {e}"))?;
    close("compiled(optimized) vs interpreter(original)", &compiled, &want)
}

/// The strategy: 1 to 23 instructions.
pub fn programs() -> impl Strategy<Value = Vec<Instr>> {
    let instr = (0..gen::OPS.len() as u8, any::<u16>(), any::<u16>(), any::<u32>())
        .prop_map(|(op, a, b, seed)| Instr { op, a, b, seed });
    prop::collection::vec(instr, 1..24)
}

/// How a campaign went.
pub enum Outcome {
    /// Every case passed.
    Passed { cases: usize },
    /// A case failed: why, and the minimal graph it shrank to, as an S-expression.
    Failed { cases: usize, reason: String, graph: String },
}

/// Runs `cases` random programs from `seed` (stopping early after `time`, if given),
/// calling `progress` with the number of cases done.
pub fn run(
    cases: usize,
    seed: u64,
    time: Option<Duration>,
    engines: &Engines,
    mut progress: impl FnMut(usize),
) -> Outcome {
    let start = Instant::now();
    let mut done = 0;
    // batches with derived seeds, so a time limit can stop between them
    let mut batch = 0u64;
    while done < cases && time.is_none_or(|t| start.elapsed() < t) {
        let n = (cases - done).min(50);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(&batch.to_le_bytes());
        let config = Config { cases: n as u32, failure_persistence: None, max_shrink_iters: 2048, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        let result = runner.run(&programs(), |instrs| {
            let graph = gen::build(&instrs);
            check(&graph, engines).map_err(TestCaseError::fail)
        });
        match result {
            Ok(()) => done += n,
            Err(TestError::Fail(reason, instrs)) => {
                let graph = saturate_egraph::sexp::to_string_inline(&gen::build(&instrs));
                return Outcome::Failed { cases: done, reason: reason.to_string(), graph };
            }
            Err(TestError::Abort(reason)) => {
                return Outcome::Failed { cases: done, reason: format!("aborted: {reason}"), graph: String::new() }
            }
        }
        batch += 1;
        progress(done);
    }
    Outcome::Passed { cases: done }
}
