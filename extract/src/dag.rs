//! DAG-greedy extraction: like tree-greedy, but a class's cost is the cost of the set of
//! distinct classes its program uses, so a subgraph shared by several users is paid
//! once, as the compiled program computes it once.
//!
//! Each class keeps the cheapest node found so far and the set of classes (with their
//! node costs) beneath it; a node's set is the union of its children's sets and itself,
//! and its cost the sum over that set. Nodes whose children's sets contain their own class
//! would close a cycle and are skipped. The passes repeat until nothing improves.

use crate::choice::Choice;
use crate::costs::CostTable;
use egg::{Id, Language};
use saturate_egraph::TensorEGraph;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

type CostSet = Rc<HashMap<Id, f64>>;

struct Best {
    total: f64,
    node: usize,
    set: CostSet,
}

/// The DAG-greedy choice; gives up improving after `budget` and keeps what it has.
pub fn extract(egraph: &TensorEGraph, costs: &CostTable, budget: Duration) -> Choice {
    let start = Instant::now();
    let mut best: HashMap<Id, Best> = HashMap::new();
    let mut changed = true;
    while changed && start.elapsed() < budget {
        changed = false;
        for class in egraph.classes() {
            for (i, node) in class.nodes.iter().enumerate() {
                let own = costs.get(class.id, i);
                if !own.is_finite() {
                    continue;
                }
                let children: Option<Vec<&CostSet>> = node.children().iter().map(|&c| best.get(&egraph.find(c)).map(|b| &b.set)).collect();
                let Some(children) = children else { continue };
                if children.iter().any(|s| s.contains_key(&class.id)) {
                    continue; // would depend on itself
                }
                // cheap bound first: the union costs at least its largest part
                let largest = children.iter().map(|s| s.values().sum::<f64>()).fold(0.0, f64::max);
                if best.get(&class.id).is_some_and(|b| own + largest >= b.total) {
                    continue;
                }
                let set = union(&children, class.id, own);
                let total: f64 = set.values().sum();
                if best.get(&class.id).is_none_or(|b| total < b.total * (1.0 - 1e-12)) {
                    best.insert(class.id, Best { total, node: i, set: Rc::new(set) });
                    changed = true;
                }
            }
        }
    }
    Choice { node: best.into_iter().map(|(c, b)| (c, b.node)).collect() }
}

fn union(parts: &[&CostSet], class: Id, own: f64) -> HashMap<Id, f64> {
    let biggest = parts.iter().enumerate().max_by_key(|(_, s)| s.len()).map(|(i, _)| i);
    let mut set: HashMap<Id, f64> = biggest.map(|i| (*parts[i]).as_ref().clone()).unwrap_or_default();
    for (i, part) in parts.iter().enumerate() {
        if Some(i) != biggest {
            for (&k, &v) in part.iter() {
                set.entry(k).or_insert(v);
            }
        }
    }
    set.insert(class, own);
    set
}
