//! ILP extraction: the cheapest DAG exactly, by integer linear programming (microlp, a
//! pure-Rust branch and bound), warm-started from the DAG-greedy choice and stopped at a
//! time limit with the best program found by then.
//!
//! Over the classes reachable from the roots (attribute leaves aside, which cost nothing
//! and are always available):
//!
//! - a binary `x_n` per e-node: `n` is in the program;
//! - a root class has exactly one chosen node; a chosen node's child classes have one
//!   each: `x_n ≤ Σ_{m ∈ child} x_m`;
//! - at most one node per class: `Σ_{n ∈ c} x_n ≤ 1`;
//! - no cycles: an order `t_c ∈ [0, N]` with `t_c ≥ t_d + 1` whenever a chosen node of
//!   `c` uses class `d` (`t_c − t_d − N·x_n ≥ 1 − N`);
//! - minimize `Σ cost_n · x_n`, the DAG cost.

use crate::choice::Choice;
use crate::costs::CostTable;
use egg::{Id, Language};
use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOptions, Variable};
use saturate_egraph::TensorEGraph;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// What the ILP solve ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum IlpStatus {
    /// The solver proved the choice optimal.
    Optimal,
    /// The time limit stopped the search; the best program found is returned.
    Feasible,
    /// The solver returned nothing usable; the warm start is returned.
    Fallback(String),
}

/// The ILP choice for the program reachable from `roots`, starting from `warm`.
pub fn extract(
    egraph: &TensorEGraph,
    roots: &[Id],
    costs: &CostTable,
    warm: &Choice,
    time_limit: Duration,
) -> (Choice, IlpStatus) {
    let classes = reachable(egraph, roots);
    let is_attr = |c: Id| egraph[c].nodes.iter().all(|n| n.is_attribute());
    let tensor_classes: Vec<Id> = classes.iter().copied().filter(|&c| !is_attr(c)).collect();
    let n = tensor_classes.len() as f64;

    let mut problem = Problem::new(OptimizationDirection::Minimize);
    let mut x: HashMap<(Id, usize), Variable> = HashMap::new();
    let mut order: HashMap<Id, Variable> = HashMap::new();
    for &c in &tensor_classes {
        order.insert(c, problem.add_var(0.0, (0.0, n)));
        for (i, _) in egraph[c].nodes.iter().enumerate() {
            let cost = costs.get(c, i);
            if cost.is_finite() {
                // scaled to microseconds, so costs are not all tiny against the tolerances
                x.insert((c, i), problem.add_binary_var(cost * 1e6));
            }
        }
    }
    let class_vars = |c: Id| -> Vec<(Variable, f64)> {
        (0..egraph[c].nodes.len()).filter_map(|i| x.get(&(c, i)).map(|&v| (v, 1.0))).collect()
    };
    for &r in roots {
        let r = egraph.find(r);
        if !is_attr(r) {
            problem.add_constraint(class_vars(r).as_slice(), ComparisonOp::Eq, 1.0);
        }
    }
    for &c in &tensor_classes {
        let vars = class_vars(c);
        if vars.len() > 1 {
            problem.add_constraint(vars.as_slice(), ComparisonOp::Le, 1.0);
        }
        for (i, node) in egraph[c].nodes.iter().enumerate() {
            let Some(&xn) = x.get(&(c, i)) else { continue };
            for &child in node.children() {
                let d = egraph.find(child);
                if is_attr(d) {
                    continue;
                }
                if d == c {
                    problem.add_constraint([(xn, 1.0)], ComparisonOp::Eq, 0.0);
                    continue;
                }
                let mut need = class_vars(d);
                need.iter_mut().for_each(|(_, w)| *w = -1.0);
                need.push((xn, 1.0));
                problem.add_constraint(need.as_slice(), ComparisonOp::Le, 0.0);
                problem.add_constraint([(order[&c], 1.0), (order[&d], -1.0), (xn, -n)], ComparisonOp::Ge, 1.0 - n);
            }
        }
    }

    let warm_start = warm_assignment(egraph, roots, warm, &x, &order);
    let mut options = SolveOptions::default();
    options.time_limit = Some(time_limit);
    options.warm_start = warm_start;
    let solution = match problem.solve_with(options) {
        Ok(outcome) => match outcome.into_solution() {
            Ok(s) => s,
            Err(_) => return (warm.clone(), IlpStatus::Fallback("the time limit passed before any solution".into())),
        },
        Err(e) => return (warm.clone(), IlpStatus::Fallback(e.to_string())),
    };
    let status =
        if solution.status() == microlp::SolutionStatus::Optimal { IlpStatus::Optimal } else { IlpStatus::Feasible };
    let mut choice = warm.clone();
    for (&(c, i), &v) in &x {
        if solution.var_value(v) > 0.5 {
            choice.node.insert(c, i);
        }
    }
    match choice.topological(egraph, roots) {
        Ok(_) => (choice, status),
        Err(e) => (warm.clone(), IlpStatus::Fallback(format!("the solution was not a program ({e})"))),
    }
}

/// The warm start's values: chosen nodes 1, the rest 0, orders from depth.
fn warm_assignment(
    egraph: &TensorEGraph,
    roots: &[Id],
    warm: &Choice,
    x: &HashMap<(Id, usize), Variable>,
    order: &HashMap<Id, Variable>,
) -> Option<Vec<(Variable, f64)>> {
    let topo = warm.topological(egraph, roots).ok()?;
    let used: HashSet<Id> = topo.iter().copied().collect();
    let mut values: Vec<(Variable, f64)> = x
        .iter()
        .map(|(&(c, i), &v)| (v, if used.contains(&c) && warm.node.get(&c) == Some(&i) { 1.0 } else { 0.0 }))
        .collect();
    for (rank, c) in topo.iter().enumerate() {
        if let Some(&t) = order.get(c) {
            values.push((t, rank as f64));
        }
    }
    Some(values)
}

/// Classes reachable from `roots` through any node.
fn reachable(egraph: &TensorEGraph, roots: &[Id]) -> Vec<Id> {
    let mut seen: HashSet<Id> = HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| egraph.find(r)).collect();
    let mut out = Vec::new();
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        out.push(c);
        for node in &egraph[c].nodes {
            for &child in node.children() {
                stack.push(egraph.find(child));
            }
        }
    }
    out
}
