//! The optimizer pipeline: saturate a graph with a rule library, extract the cheapest
//! program for a cost model, and report what happened.
//!
//! The extracted program is scored with the model's whole-program cost, as is the input;
//! if extraction did not beat the input (an extractor's per-node costs only approximate
//! fusion), the input is kept, so optimizing never makes a program worse by the model's
//! own measure.

use crate::choice::Choice;
use crate::costs::CostTable;
use crate::{dag, ilp, tree};
use egg::Language;
use saturate_costmodels::{CostModel, Pricing, Roofline};
use saturate_egraph::Graph;
use saturate_rewrites::saturate::{IterationReport, Limits, SaturationReport};
use saturate_rewrites::{saturate, Library};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which extractor picks the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractorKind {
    Tree,
    Dag,
    Ilp,
}

impl ExtractorKind {
    pub fn name(self) -> &'static str {
        match self {
            ExtractorKind::Tree => "tree",
            ExtractorKind::Dag => "dag",
            ExtractorKind::Ilp => "ilp",
        }
    }
}

/// How to optimize.
#[derive(Debug, Clone)]
pub struct OptimizeOptions {
    pub limits: Limits,
    pub extractor: ExtractorKind,
    /// Time the DAG-greedy passes may take before keeping what they have.
    pub dag_budget: Duration,
    /// Time the ILP solver may take before returning its best program.
    pub ilp_time_limit: Duration,
    /// Also extract with per-node costs of rooflines that weigh the target's rates
    /// differently ([`variants`]): more distinct candidates for a search that measures
    /// them, at the cost of more extractions. Every candidate is still scored by the
    /// target's own model.
    pub variants: bool,
}

/// The target's roofline with one rate moved: products cheaper, memory cheaper,
/// launches dearer. Each leans extraction towards another kind of program (more
/// products merged, more recomputation instead of traffic, fewer kernels).
pub fn variants(base: &Roofline) -> Vec<(&'static str, Roofline)> {
    vec![
        ("products 4× cheaper", Roofline { gemm_flops: base.gemm_flops * 4.0, ..base.clone() }),
        ("memory 4× cheaper", Roofline { bandwidth: base.bandwidth * 4.0, ..base.clone() }),
        ("launches 10× dearer", Roofline { launch: base.launch * 10.0, ..base.clone() }),
    ]
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            limits: Limits::default(),
            extractor: ExtractorKind::Dag,
            dag_budget: Duration::from_secs(10),
            ilp_time_limit: Duration::from_secs(10),
            variants: false,
        }
    }
}

/// What optimizing did.
#[derive(Debug, Clone)]
pub struct OptimizeReport {
    pub target: String,
    pub rules_loaded: usize,
    pub saturation: SaturationReport,
    pub extractor: &'static str,
    /// How the ILP solve ended, for `--extractor ilp`.
    pub ilp_status: Option<String>,
    pub saturate_seconds: f64,
    pub extract_seconds: f64,
    pub total_seconds: f64,
    /// Whole-program cost of the input and of the result, in seconds of the model.
    pub cost_before: f64,
    pub cost_after: f64,
    pub ops_before: BTreeMap<String, usize>,
    pub ops_after: BTreeMap<String, usize>,
    /// Nodes of the result that rules introduced, by rule.
    pub rules_in_result: BTreeMap<String, usize>,
    /// Extraction found nothing better than the input, which is returned.
    pub kept_input: bool,
    /// The whole-program cost of what extraction chose (kept or not).
    pub cost_extracted: f64,
    /// The ops of what extraction chose (kept or not).
    pub ops_extracted: BTreeMap<String, usize>,
    /// Every distinct program the extractors found, cheapest estimate first (the chosen
    /// one among them): what [`measured`](crate::measured) times. Without weights.
    pub candidates: Vec<Candidate>,
}

/// One program an extractor found.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Which extractor, under which per-node pricing (`dag, fused pricing`, …).
    pub source: String,
    /// The model's whole-program cost, in seconds.
    pub estimate: f64,
    /// The program, without weight data (see [`Graph::with_weights_from`]).
    pub program: Graph,
    pub ops: BTreeMap<String, usize>,
    /// Nodes of the program that rules introduced, by rule.
    pub rules: BTreeMap<String, usize>,
}

impl OptimizeReport {
    /// Makes the report describe `candidate` as the result (or the input, for `None`),
    /// as when the clock chose another program than the estimates did.
    pub fn adopt(&mut self, candidate: Option<&Candidate>) {
        match candidate {
            Some(c) => {
                self.cost_after = c.estimate;
                self.ops_after = c.ops.clone();
                self.rules_in_result = c.rules.clone();
                self.kept_input = false;
            }
            None => {
                self.cost_after = self.cost_before;
                self.ops_after = self.ops_before.clone();
                self.rules_in_result = BTreeMap::new();
                self.kept_input = true;
            }
        }
    }
}

/// Optimizes `graph` for `model`; `progress` sees each saturation iteration.
pub fn optimize(
    graph: &Graph,
    library: &Library,
    model: &dyn CostModel,
    opts: &OptimizeOptions,
    progress: impl FnMut(&IterationReport) + 'static,
) -> Result<(Graph, OptimizeReport), String> {
    let start = Instant::now();
    let cost_before = model.program_cost(graph).map_err(|e| e.to_string())?;
    let saturated = saturate(graph, library, &opts.limits, progress);
    let saturate_seconds = start.elapsed().as_secs_f64();

    let extract_start = Instant::now();
    let egraph = &saturated.egraph;
    let roots = &saturated.roots;
    let mut ilp_status = None;
    // extract under both per-node pricings; the whole-program cost picks the winner
    let mut candidates: Vec<Candidate> = Vec::new();
    let variants = if opts.variants { variants(model.roofline()) } else { Vec::new() };
    let mut pricings: Vec<(String, &dyn CostModel, Pricing)> = Vec::new();
    for pricing in [Pricing::Alone, Pricing::Fused] {
        let name = match pricing {
            Pricing::Alone => "alone pricing",
            Pricing::Fused => "fused pricing",
        };
        pricings.push((name.to_string(), model, pricing));
        for (variant, roofline) in &variants {
            pricings.push((format!("{name}, {variant}"), roofline as &dyn CostModel, pricing));
        }
    }
    for (pricing_name, per_node, pricing) in pricings {
        let costs = CostTable::new(egraph, per_node, pricing);
        let mut found: Vec<(&str, Choice)> = Vec::new();
        match opts.extractor {
            ExtractorKind::Tree => found.push(("tree", tree::extract(egraph, &costs))),
            ExtractorKind::Dag => {
                let budget = opts.dag_budget / 2;
                found.extend(dag::candidates(egraph, &costs, roots, Some(graph), budget));
                // the greedy tree is a program too, and a distinct point for the clock
                found.push(("tree", tree::extract(egraph, &costs)));
            }
            ExtractorKind::Ilp => {
                let warm = dag::extract(egraph, &costs, roots, Some(graph), opts.dag_budget / 2);
                let (choice, status) = ilp::extract(egraph, roots, &costs, &warm, opts.ilp_time_limit / 2);
                ilp_status = Some(format!("{status:?}"));
                found.push(("ilp", choice));
            }
        }
        for (extractor, choice) in found {
            if choice.topological(egraph, roots).is_err() {
                continue;
            }
            let program = choice.to_program(egraph, roots, graph)?;
            if candidates.iter().any(|c| c.program.expr == program.expr) {
                continue;
            }
            check_same_interface(graph, &program)?;
            let estimate = model.program_cost(&program).map_err(|e| e.to_string())?;
            candidates.push(Candidate {
                source: format!("{extractor}, {pricing_name}"),
                estimate,
                ops: program.op_histogram(),
                rules: rules_used(&choice, &saturated),
                program,
            });
        }
    }
    if candidates.is_empty() {
        return Err("extraction found no acyclic program".into());
    }
    // stable: among equal estimates the first found (DAG before tree) stays first
    candidates.sort_by(|a, b| a.estimate.total_cmp(&b.estimate));
    let best = &candidates[0];
    let cost_extracted = best.estimate;
    let extract_seconds = extract_start.elapsed().as_secs_f64();

    let kept_input = cost_extracted >= cost_before;
    let extracted_ops = best.ops.clone();
    let result = if kept_input { graph.canonicalize() } else { best.program.clone().with_weights_from(graph) };
    let rules_in_result = if kept_input { BTreeMap::new() } else { best.rules.clone() };
    let report = OptimizeReport {
        target: model.name().to_string(),
        rules_loaded: library.len(),
        saturation: saturated.report.clone(),
        extractor: opts.extractor.name(),
        ilp_status,
        saturate_seconds,
        extract_seconds,
        total_seconds: start.elapsed().as_secs_f64(),
        cost_before,
        cost_after: cost_extracted.min(cost_before),
        ops_before: graph.op_histogram(),
        ops_after: result.op_histogram(),
        rules_in_result,
        kept_input,
        cost_extracted,
        ops_extracted: extracted_ops,
        candidates,
    };
    Ok((result, report))
}

/// The extracted program must have the input's inputs and outputs, with their types.
fn check_same_interface(original: &Graph, extracted: &Graph) -> Result<(), String> {
    // metas, not check: the candidate carries no weight data yet
    let (a, b) = (original.metas().map_err(|e| e.to_string())?, extracted.metas().map_err(|e| e.to_string())?);
    for (p, q) in original.outputs.iter().zip(&extracted.outputs) {
        let (ta, tb) = (original.tensor_type(&a, p.id), extracted.tensor_type(&b, q.id));
        if p.name != q.name || ta != tb {
            return Err(format!("extraction changed output `{}` from {ta} to `{}` {tb}", p.name, q.name));
        }
    }
    if original.inputs.len() != extracted.inputs.len() {
        return Err("extraction changed the inputs".into());
    }
    Ok(())
}

/// How many nodes of the chosen program each rule introduced.
fn rules_used(choice: &Choice, saturated: &saturate_rewrites::Saturated) -> BTreeMap<String, usize> {
    let mut used = BTreeMap::new();
    let egraph = &saturated.egraph;
    let Ok(order) = choice.topological(egraph, &saturated.roots) else { return used };
    for class in order {
        let Some(node) = choice.get(egraph, class) else { continue };
        let node = node.clone().map_children(|c| egraph.find(c));
        if let Some(rule) = saturated.provenance.get(&node) {
            *used.entry(rule.clone()).or_insert(0) += 1;
        }
    }
    used
}
