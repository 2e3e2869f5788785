//! Differential fuzzing: random well-shaped graphs ([`gen`]), each run three ways and
//! compared with the interpreter on the original:
//!
//! 1. compiled(original) ≈ interpreter(original): the code generator;
//! 2. interpreter(optimized) ≈ interpreter(original): the rewrite rules and extraction;
//! 3. compiled(optimized) ≈ interpreter(original): both together.
//!
//! The compiler and the optimizer come in as [`Engines`] (this crate does not depend on
//! them). Cases are proptest values, so a failure shrinks to a minimal list of
//! instructions — a minimal graph — which a campaign ([`run`]) reports as an
//! S-expression; saved under `tests/fuzz-regressions/`, the test suite replays it
//! ([`replay`]).
//!
//! Each case's inputs are searched ([`draws`]) to keep it inside what f32 computes, and
//! each case ends in one of four [`Class`]es:
//!
//! - **agreed**: all three properties hold;
//! - **not finite**: some value is infinite or NaN; the compiled program agrees with the
//!   interpreter on them, but the rewrite properties are not checked — rules are laws of
//!   real arithmetic: `x − x → 0` is wrong for an infinite `x`, and `x·0 → 0` loses the
//!   sign of a negative zero (which `1/x` turns into −inf);
//! - **beyond f32**: some op's f32 evaluation may miss the interpreter's f64-accumulated
//!   result by more than the tolerance in any summation order ([`range`]); nothing is
//!   compared, and the case is neither a pass nor a mismatch;
//! - a **mismatch**: a property fails (the campaign shrinks and reports it).
//!
//! Outputs are compared with rtol 1e-3 and an absolute tolerance of 1e-4 times the
//! output's largest finite magnitude (at least 1), as reductions and products sum in a
//! different order on each side.

pub mod draws;
pub mod gen;
pub mod range;

use crate::compare::compare;
use gen::Instr;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use saturate_egraph::{Graph, Tensor};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Compiles and runs a graph.
pub type Compiled<'a> = &'a dyn Fn(&Graph, &[Tensor]) -> Result<Vec<Tensor>, String>;
/// Optimizes a graph.
pub type Optimize<'a> = &'a dyn Fn(&Graph) -> Result<Optimized, String>;

/// What the properties exercise besides the interpreter.
pub struct Engines<'a> {
    pub compiled: Compiled<'a>,
    pub optimize: Optimize<'a>,
}

/// An optimized graph and the rules that made it.
#[derive(Debug, Clone)]
pub struct Optimized {
    pub graph: Graph,
    /// Applications of each rule during saturation.
    pub fired: BTreeMap<String, usize>,
    /// Nodes of the optimized program each rule introduced.
    pub in_program: BTreeMap<String, usize>,
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

/// How a case ended, short of a mismatch.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// All three properties hold.
    Agreed,
    /// Some value is infinite or NaN: the compiled program agrees; rewrites not checked.
    NotFinite,
    /// Not computable in f32 (why): not compared.
    BeyondF32(String),
}

/// A case that did not mismatch: its class, the draw of its inputs, what optimizing did.
#[derive(Debug, Clone)]
pub struct Checked {
    pub class: Class,
    pub draw: usize,
    /// What the first draw gave, before the search moved on.
    pub first: range::Range,
    pub optimized: Option<Optimized>,
}

fn close(what: &str, got: &[Tensor], want: &[Tensor]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} outputs, expected {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        compare(g, w, crate::compare::RTOL, range::absolute_tolerance(w))
            .map_err(|m| format!("{what}: output {i}: {m}"))?;
    }
    Ok(())
}

/// Checks the three properties on `graph`, on the inputs [`draws::search`] finds; a
/// mismatch is an error that names the property and the draw.
pub fn check(graph: &Graph, engines: &Engines) -> Result<Checked, String> {
    check_on(graph, draws::search(graph)?, engines)
}

/// [`check`] on draw `k`'s inputs, not searched (a saved regression's).
pub fn check_draw(graph: &Graph, k: usize, engines: &Engines) -> Result<Checked, String> {
    check_on(graph, draws::pinned(graph, k)?, engines)
}

fn check_on(graph: &Graph, chosen: draws::Chosen, engines: &Engines) -> Result<Checked, String> {
    let draws::Chosen { draw, inputs, range, first } = chosen;
    let done = |class| Ok(Checked { class, draw, first: first.clone(), optimized: None });
    if let Some(why) = range.beyond {
        return done(Class::BeyondF32(why));
    }
    let on = |e: String| format!("{e} (inputs: draw {draw})");
    let want = crate::run(graph, &inputs).map_err(|e| on(format!("the interpreter failed: {e}")))?;
    let compiled = (engines.compiled)(graph, &inputs).map_err(|e| on(format!("compiling the original: {e}")))?;
    close("compiled(original) vs interpreter(original)", &compiled, &want).map_err(on)?;
    if !range.finite {
        return done(Class::NotFinite);
    }
    let optimized = (engines.optimize)(graph).map_err(|e| on(format!("optimizing: {e}")))?;
    let interpreted =
        crate::run(&optimized.graph, &inputs).map_err(|e| on(format!("interpreting the optimized graph: {e}")))?;
    close("interpreter(optimized) vs interpreter(original)", &interpreted, &want).map_err(on)?;
    let compiled =
        (engines.compiled)(&optimized.graph, &inputs).map_err(|e| on(format!("compiling the optimized graph: {e}")))?;
    close("compiled(optimized) vs interpreter(original)", &compiled, &want).map_err(on)?;
    Ok(Checked { class: Class::Agreed, draw, first, optimized: Some(optimized) })
}

/// Replays a saved regression: the graph of `path`, on the draw its comment
/// `; inputs: draw K` names (draw 0 if none, what every case ran on before draws were
/// searched).
pub fn replay(path: &Path, engines: &Engines) -> Result<Checked, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let graph =
        saturate_egraph::sexp::parse(&text, &path.display().to_string(), path.parent()).map_err(|e| e.to_string())?;
    check_draw(&graph, saved_draw(&text)?, engines)
}

/// The draw a saved regression names.
fn saved_draw(text: &str) -> Result<usize, String> {
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("; inputs: draw ") {
            let k = rest.split_whitespace().next().unwrap_or("");
            return k.parse().map_err(|_| format!("`{line}`: the draw is a number"));
        }
    }
    Ok(0)
}

/// The text a campaign saves for a mismatch: what found it, why, the draw, the graph.
pub fn regression_text(m: &Mismatch, seed: u64) -> String {
    let reason: String = m.reason.lines().map(|l| format!("; {l}\n")).collect();
    format!(
        "; Found by `saturate fuzz --seed {seed}` (case {}):\n{reason}; inputs: draw {}\n{}",
        m.case, m.draw, m.graph
    )
}

/// The strategy: 1 to 23 instructions.
pub fn programs() -> impl Strategy<Value = Vec<Instr>> {
    let instr = (0..gen::OPS.len() as u8, any::<u16>(), any::<u16>(), any::<u32>())
        .prop_map(|(op, a, b, seed)| Instr { op, a, b, seed });
    prop::collection::vec(instr, 1..24)
}

/// A case the campaign found failing, shrunk.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Its number in the campaign (from 1).
    pub case: usize,
    pub reason: String,
    /// The minimal graph, as an S-expression.
    pub graph: String,
    /// The draw of its inputs.
    pub draw: usize,
}

/// An example of a class, for the report.
#[derive(Debug, Clone)]
pub struct Example {
    pub why: String,
    pub graph: String,
}

/// How a campaign went.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub cases: usize,
    pub agreed: usize,
    pub not_finite: usize,
    pub beyond_f32: usize,
    /// The first case beyond f32.
    pub beyond_example: Option<Example>,
    /// Cases whose inputs came from a draw after the first.
    pub later_draws: usize,
    /// Cases whose first draw was beyond f32, or not finite: what the search started from.
    pub first_beyond_f32: usize,
    pub first_not_finite: usize,
    pub mismatches: Vec<Mismatch>,
    /// Generated nodes, per op.
    pub ops: BTreeMap<String, usize>,
    /// Rule applications during saturation, summed over the optimized cases.
    pub fired: BTreeMap<String, usize>,
    /// Nodes rules introduced into the optimized programs, summed.
    pub in_programs: BTreeMap<String, usize>,
    pub seconds: f64,
}

impl Report {
    /// The rules of `all` that never fired in the campaign, in the order given.
    pub fn never_fired<'r>(&self, all: &'r [String]) -> Vec<&'r str> {
        all.iter().filter(|r| !self.fired.contains_key(*r)).map(String::as_str).collect()
    }

    /// The ops of the language no generated graph held (sources excepted).
    pub fn ops_not_generated(&self) -> Vec<&'static str> {
        saturate_egraph::OPS.iter().skip(3).filter(|op| !self.ops.contains_key(**op)).copied().collect()
    }

    fn record(&mut self, graph: &Graph, checked: &Checked) {
        for (op, n) in graph.op_histogram() {
            *self.ops.entry(op).or_insert(0) += n;
        }
        if checked.draw > 0 {
            self.later_draws += 1;
        }
        if checked.first.beyond.is_some() {
            self.first_beyond_f32 += 1;
        } else if !checked.first.finite {
            self.first_not_finite += 1;
        }
        match &checked.class {
            Class::Agreed => self.agreed += 1,
            Class::NotFinite => self.not_finite += 1,
            Class::BeyondF32(why) => {
                self.beyond_f32 += 1;
                if self.beyond_example.is_none() {
                    let graph = saturate_egraph::sexp::to_string_inline(graph);
                    self.beyond_example = Some(Example { why: why.clone(), graph });
                }
            }
        }
        if let Some(o) = &checked.optimized {
            for (rule, n) in &o.fired {
                *self.fired.entry(rule.clone()).or_insert(0) += n;
            }
            for (rule, n) in &o.in_program {
                *self.in_programs.entry(rule.clone()).or_insert(0) += n;
            }
        }
    }
}

/// A campaign stops after this many distinct mismatches: they are usually one bug.
pub const MAX_MISMATCHES: usize = 10;

/// Runs `cases` random programs from `seed` (stopping early after `time`, if given),
/// calling `progress` with the report so far after each batch. A mismatch is shrunk,
/// recorded, and the campaign goes on with the next batch, up to [`MAX_MISMATCHES`].
pub fn run(
    cases: usize,
    seed: u64,
    time: Option<Duration>,
    engines: &Engines,
    mut progress: impl FnMut(&Report),
) -> Report {
    let start = Instant::now();
    let report = RefCell::new(Report { seed, ..Report::default() });
    // batches with derived seeds, so a time limit can stop between them
    let mut batch = 0u64;
    loop {
        let done = report.borrow().cases;
        if done >= cases
            || time.is_some_and(|t| start.elapsed() >= t)
            || report.borrow().mismatches.len() >= MAX_MISMATCHES
        {
            break;
        }
        let n = (cases - done).min(50);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(&batch.to_le_bytes());
        let config = Config { cases: n as u32, failure_persistence: None, max_shrink_iters: 2048, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        // after a batch's first failure, proptest calls again only to shrink it
        let shrinking = std::cell::Cell::new(false);
        let result = runner.run(&programs(), |instrs| {
            let graph = gen::build(&instrs);
            let outcome = check(&graph, engines);
            if !shrinking.get() {
                let mut r = report.borrow_mut();
                r.cases += 1;
                match &outcome {
                    Ok(checked) => r.record(&graph, checked),
                    Err(_) => shrinking.set(true),
                }
            }
            outcome.map(|_| ()).map_err(TestCaseError::fail)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, instrs)) => {
                let graph = gen::build(&instrs);
                let draw = draws::search(&graph).map_or(0, |c| c.draw);
                let mut r = report.borrow_mut();
                let graph = saturate_egraph::sexp::to_string_inline(&graph);
                if !r.mismatches.iter().any(|m| m.graph == graph) {
                    let case = r.cases;
                    r.mismatches.push(Mismatch { case, reason: reason.to_string(), graph, draw });
                }
            }
            Err(TestError::Abort(reason)) => {
                let mut r = report.borrow_mut();
                let case = r.cases;
                r.mismatches.push(Mismatch {
                    case,
                    reason: format!("aborted: {reason}"),
                    graph: String::new(),
                    draw: 0,
                });
                break;
            }
        }
        batch += 1;
        report.borrow_mut().seconds = start.elapsed().as_secs_f64();
        progress(&report.borrow());
    }
    let mut report = report.into_inner();
    report.seconds = start.elapsed().as_secs_f64();
    report
}
