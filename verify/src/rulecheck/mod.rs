//! The rule checker: every rewrite rule is evaluated, both sides, by the reference
//! interpreter on random instances, and a rule that disagrees is reported with a
//! counterexample.
//!
//! For each rule, random instances of its left-hand side are built ([`instance`]):
//! shapes, attributes and values chosen to suit the pattern, including broadcasting,
//! size-1 dimensions, and the witnesses its guards ask for. Each instance goes into an
//! e-graph and through the rule's own applier (the same code saturation runs: lets,
//! guards, type checks), so the checker tests exactly what saturation would do. Where the
//! rule applies, both sides are run on several random input draws and compared within
//! rtol 1e-3, atol 1e-4. A rule passes when it agrees on at least
//! [`CheckOptions::instances`] distinct instances.

pub mod instance;
pub mod values;

use crate::compare::compare;
use crate::rng::Rng;
use crate::run;
use egg::{ENodeOrVar, Id, Language, Subst, Var};
use instance::{index_bounds, Builder, Instance};
use saturate_egraph::{Graph, Port, Tensor, TensorEGraph, TensorLang};
use saturate_rewrites::apply::{typecheck, RuleApplier};
use saturate_rewrites::rule::DirectedRule;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// How hard to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Distinct instances (shapes and attributes) a rule must agree on.
    pub instances: usize,
    /// Random input draws per instance.
    pub draws: usize,
    /// Instances to try building before giving up on a rule.
    pub attempts: usize,
    pub seed: u64,
    pub rtol: f64,
    pub atol: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { instances: 10, draws: 3, attempts: 8000, seed: 0x5A7, rtol: 1e-3, atol: 1e-4 }
    }
}

/// The outcome for one rule.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Both sides agreed on this many distinct instances; `example` is one of them.
    Agrees { instances: usize, example: String },
    /// The sides disagree; here is where.
    Disagrees(Box<Counterexample>),
    /// Not enough instances where the rule applies could be built.
    Unchecked { instances: usize, reason: String },
}

/// A concrete case where a rule's sides differ.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// The instance as an S-expression graph with outputs `lhs` and `rhs` (inputs are
    /// weights holding the failing values).
    pub graph: String,
    pub reason: String,
}

/// Checks one rule.
pub fn check_rule(rule: &DirectedRule, opts: &CheckOptions) -> Verdict {
    let builder = Builder::new(rule);
    let applier = RuleApplier::new(rule, Arc::default());
    let mut rng = Rng::new(opts.seed ^ name_hash(&rule.name));
    let mut seen: HashSet<String> = HashSet::new();
    let mut why_not = String::from("no instance could be built");
    let mut example = String::new();
    for _ in 0..opts.attempts {
        if seen.len() >= opts.instances {
            break;
        }
        let mut inst = match builder.build(&mut rng) {
            Ok(inst) => inst,
            Err(e) => {
                why_not = format!("instances do not type-check: {e}");
                continue;
            }
        };
        index_bounds(&mut inst);
        let (lhs, rhs) = match apply(rule, &applier, &mut inst) {
            Ok(sides) => sides,
            Err(e) => {
                why_not = e;
                continue;
            }
        };
        // an empty result checks nothing
        if lhs.iter().any(|&id| inst.b.tensor_type(id).is_none_or(|t| t.numel() == 0)) {
            why_not = "instances where it applies have empty results".into();
            continue;
        }
        let key = instance_key(&inst, &lhs);
        let graph = instance_graph(&inst, &lhs, &rhs);
        for _ in 0..opts.draws {
            let inputs: Vec<Tensor> =
                inst.inputs.iter().map(|i| values::random_tensor(&mut rng, &i.ty, i.values)).collect();
            if let Err(reason) = agree(&graph, &inputs, lhs.len(), opts) {
                return Verdict::Disagrees(Box::new(Counterexample {
                    graph: counterexample_text(&graph, &inst, &inputs),
                    reason,
                }));
            }
        }
        if example.is_empty() {
            example = saturate_egraph::sexp::to_string_inline(&graph);
        }
        seen.insert(key);
    }
    if seen.len() >= opts.instances {
        Verdict::Agrees { instances: seen.len(), example }
    } else {
        Verdict::Unchecked { instances: seen.len(), reason: why_not }
    }
}

/// Checks every rule, in parallel; results in the rules' order.
pub fn check_rules(rules: &[DirectedRule], opts: &CheckOptions) -> Vec<Verdict> {
    use rayon::prelude::*;
    rules.par_iter().map(|r| check_rule(r, opts)).collect()
}

fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Runs the rule's applier on the instance; returns the left and right roots of each part.
fn apply(rule: &DirectedRule, applier: &RuleApplier, inst: &mut Instance) -> Result<(Vec<Id>, Vec<Id>), String> {
    // the instance as an e-graph, where the applier runs exactly as in saturation
    let mut egraph = TensorEGraph::default();
    let mut class: Vec<Id> = Vec::with_capacity(inst.b.expr.len());
    for node in inst.b.expr.as_ref() {
        class.push(egraph.add(node.clone().map_children(|c| class[usize::from(c)])));
    }
    egraph.rebuild();
    let mut subst = Subst::with_capacity(inst.vars.len());
    for (v, id) in &inst.vars {
        subst.insert(*v, egraph.find(class[usize::from(*id)]));
    }
    let prepared = applier.prepare(&mut egraph, &subst).ok_or("the guards never held")?;
    let targets: Vec<Id> = match rule.lhs.as_slice() {
        [(None, _)] => vec![inst.roots[0]],
        parts => parts.iter().map(|(v, _)| inst.vars[&v.expect("multi-rules bind parts")]).collect(),
    };
    for ((_, pat), target) in applier.rhs().iter().zip(&targets) {
        let want = egraph[class[usize::from(*target)]].data.meta().cloned();
        match (typecheck(&egraph, pat, &prepared), want) {
            (Ok(got), Some(want)) if got == want => {}
            (Ok(got), want) => return Err(format!("the right-hand side has type {got:?}, the match {want:?}")),
            (Err(e), _) => return Err(format!("the right-hand side does not type-check: {e}")),
        }
    }
    // bring the :let attributes into the instance, then build each right-hand side
    let mut ids: HashMap<Var, Id> = inst.vars.clone();
    for (v, _) in &rule.lets {
        let leaf = egraph[prepared[*v]].nodes[0].clone();
        ids.insert(*v, inst.b.add(leaf)?);
    }
    let mut rhs = Vec::new();
    for (_, pat) in applier.rhs() {
        let mut built: Vec<Id> = Vec::with_capacity(pat.as_ref().len());
        for node in pat.as_ref() {
            let id = match node {
                ENodeOrVar::Var(v) => ids[v],
                ENodeOrVar::ENode(n) => inst.b.add(n.clone().map_children(|c| built[usize::from(c)]))?,
            };
            built.push(id);
        }
        rhs.push(*built.last().expect("patterns are not empty"));
    }
    Ok((targets, rhs))
}

/// A key that tells instances apart by their shapes and attributes.
fn instance_key(inst: &Instance, lhs: &[Id]) -> String {
    let graph = Graph {
        expr: inst.b.expr.clone(),
        inputs: inst.inputs.iter().map(|i| Port { name: i.name.clone(), id: i.id }).collect(),
        outputs: lhs.iter().map(|&id| Port { name: "lhs".into(), id }).collect(),
        weights: inst.weights.clone(),
    };
    let text = saturate_egraph::sexp::to_string_inline(&graph);
    // values of constant witnesses do not make an instance distinct
    text.lines().filter(|l| !l.starts_with("(weight")).collect::<Vec<_>>().join("\n")
}

/// The instance as a graph with outputs `lhs_i` and `rhs_i`.
fn instance_graph(inst: &Instance, lhs: &[Id], rhs: &[Id]) -> Graph {
    let mut outputs: Vec<Port> = lhs.iter().enumerate().map(|(i, &id)| Port { name: format!("lhs_{i}"), id }).collect();
    outputs.extend(rhs.iter().enumerate().map(|(i, &id)| Port { name: format!("rhs_{i}"), id }));
    Graph {
        expr: inst.b.expr.clone(),
        inputs: inst.inputs.iter().map(|i| Port { name: i.name.clone(), id: i.id }).collect(),
        outputs,
        weights: inst.weights.clone(),
    }
}

/// Runs both sides and compares each part.
fn agree(graph: &Graph, inputs: &[Tensor], parts: usize, opts: &CheckOptions) -> Result<(), String> {
    let outputs = match run(graph, inputs) {
        Ok(o) => o,
        Err(e) => return Err(format!("evaluation failed: {e}")),
    };
    for i in 0..parts {
        compare(&outputs[parts + i], &outputs[i], opts.rtol, opts.atol)
            .map_err(|m| format!("part {i}: rhs vs lhs: {m}"))?;
    }
    Ok(())
}

/// The failing instance with its inputs turned into weights holding the failing values.
fn counterexample_text(graph: &Graph, inst: &Instance, inputs: &[Tensor]) -> String {
    let mut g = graph.clone();
    let mut weights: BTreeMap<String, Tensor> = g.weights.clone();
    let mut expr = g.expr.as_ref().to_vec();
    for (spec, value) in inst.inputs.iter().zip(inputs) {
        if let TensorLang::Input(children) = expr[usize::from(spec.id)].clone() {
            expr[usize::from(spec.id)] = TensorLang::Weight(children);
            weights.insert(spec.name.clone(), value.clone());
        }
    }
    g.expr = expr.into();
    g.inputs.clear();
    g.weights = weights;
    saturate_egraph::sexp::to_string_inline(&g)
}
