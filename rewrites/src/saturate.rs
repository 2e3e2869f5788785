//! Equality saturation of a [`Graph`] with a [`Library`]: egg's `Runner` with node,
//! iteration and time limits, the [`ParallelBackoff`] scheduler, and a report of what
//! happened in each iteration.

use crate::library::Library;
use crate::schedule::ParallelBackoff;
use egg::{Id, Runner, StopReason};
use saturate_egraph::{Graph, TensorEGraph, TensorLang};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Bounds on one saturation run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Stop once the e-graph holds this many e-nodes (bounds memory).
    pub node_limit: usize,
    pub iter_limit: usize,
    pub time_limit: Duration,
    /// Backoff: matches per rule and iteration before a ban.
    pub match_limit: usize,
    /// Backoff: iterations of a first ban.
    pub ban_length: usize,
    /// Search rules in parallel.
    pub parallel: bool,
    /// Iterations in which multi-pattern rules run (Tensat's k_multi).
    pub multi_iterations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            node_limit: 50_000,
            iter_limit: 12,
            time_limit: Duration::from_secs(10),
            match_limit: 1_000,
            ban_length: 3,
            parallel: true,
            multi_iterations: 2,
        }
    }
}

/// One iteration of saturation.
#[derive(Debug, Clone)]
pub struct IterationReport {
    pub nodes: usize,
    pub classes: usize,
    /// Applications that changed the e-graph.
    pub applied: usize,
    pub seconds: f64,
}

/// What saturation did.
#[derive(Debug, Clone, Default)]
pub struct SaturationReport {
    pub iterations: Vec<IterationReport>,
    pub stop_reason: String,
    pub seconds: f64,
    pub nodes: usize,
    pub classes: usize,
    /// Applications that changed the e-graph, per rule.
    pub fired: BTreeMap<String, usize>,
    /// Matches whose right-hand side did not type-check, per rule.
    pub ill_typed: BTreeMap<String, usize>,
    /// Times each rule was banned by the scheduler.
    pub bans: BTreeMap<String, usize>,
}

/// The saturated e-graph with one root class per graph output.
pub struct Saturated {
    pub egraph: TensorEGraph,
    pub roots: Vec<Id>,
    pub report: SaturationReport,
    /// For the e-nodes rules added (children canonical), the rule that added each.
    pub provenance: HashMap<TensorLang, String>,
}

/// Adds `graph` to a fresh e-graph; returns the e-graph and the class of each output.
pub fn egraph_of(graph: &Graph) -> (TensorEGraph, Vec<Id>) {
    let mut egraph = TensorEGraph::default();
    let mut ids: Vec<Id> = Vec::with_capacity(graph.expr.len());
    for node in graph.expr.as_ref() {
        let node = egg::Language::map_children(node.clone(), |c| ids[usize::from(c)]);
        ids.push(egraph.add(node));
    }
    egraph.rebuild();
    let roots = graph.outputs.iter().map(|p| egraph.find(ids[usize::from(p.id)])).collect();
    (egraph, roots)
}

/// Saturates `graph` with `library` under `limits`; `progress` sees each iteration.
pub fn saturate(
    graph: &Graph,
    library: &Library,
    limits: &Limits,
    mut progress: impl FnMut(&IterationReport) + 'static,
) -> Saturated {
    let (egraph, roots) = egraph_of(graph);
    let compiled = library.compile();
    let multi = library.rules.iter().filter(|r| r.is_multi()).map(|r| egg::Symbol::from(r.name.as_str()));
    let scheduler = ParallelBackoff::new(limits.match_limit, limits.ban_length, limits.parallel)
        .with_multi_rules(multi, limits.multi_iterations);
    let start = Instant::now();
    let mut runner = Runner::default()
        .with_egraph(egraph)
        .with_node_limit(limits.node_limit)
        .with_iter_limit(limits.iter_limit)
        .with_time_limit(limits.time_limit)
        .with_scheduler(scheduler.clone())
        .with_hook(move |runner| {
            if let Some(it) = runner.iterations.last() {
                progress(&iteration_report(it));
            }
            Ok(())
        })
        .run(&compiled.rewrites);
    let seconds = start.elapsed().as_secs_f64();
    runner.egraph.rebuild();

    let mut report = SaturationReport {
        iterations: runner.iterations.iter().map(iteration_report).collect(),
        stop_reason: match &runner.stop_reason {
            Some(StopReason::Saturated) => "saturated".into(),
            Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
            Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
            Some(StopReason::TimeLimit(s)) => format!("time limit ({s:.1} s)"),
            Some(StopReason::Other(s)) => s.clone(),
            None => "not stopped".into(),
        },
        seconds,
        nodes: runner.egraph.total_number_of_nodes(),
        classes: runner.egraph.number_of_classes(),
        ..Default::default()
    };
    for it in &runner.iterations {
        for (rule, n) in &it.applied {
            *report.fired.entry(rule.to_string()).or_default() += n;
        }
    }
    for (rule, counts) in &compiled.counts {
        let n = counts.ill_typed.load(Ordering::Relaxed);
        if n > 0 {
            report.ill_typed.insert(rule.clone(), n);
        }
    }
    let roots = roots.iter().map(|&r| runner.egraph.find(r)).collect();
    let mut provenance = HashMap::new();
    for (node, rule) in compiled.provenance.lock().expect("provenance lock").iter() {
        let node = egg::Language::map_children(node.clone(), |c| runner.egraph.find(c));
        provenance.entry(node).or_insert_with(|| rule.to_string());
    }
    Saturated { egraph: runner.egraph, roots, report, provenance }
}

fn iteration_report(it: &egg::Iteration<()>) -> IterationReport {
    IterationReport {
        nodes: it.egraph_nodes,
        classes: it.egraph_classes,
        applied: it.applied.values().sum(),
        seconds: it.total_time,
    }
}
