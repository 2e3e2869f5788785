//! Tree-greedy extraction: each class takes the node whose own cost plus its children's
//! best costs is least. A subgraph shared by two users is counted twice, which is what
//! a tree-shaped program would cost.

use crate::choice::Choice;
use crate::costs::CostTable;
use egg::{Id, Language};
use saturate_egraph::TensorEGraph;
use std::collections::HashMap;

/// The tree-greedy choice for every class that has a finite cost.
pub fn extract(egraph: &TensorEGraph, costs: &CostTable) -> Choice {
    let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
    loop {
        let mut changed = false;
        for class in egraph.classes() {
            for (i, node) in class.nodes.iter().enumerate() {
                let own = costs.get(class.id, i);
                if !own.is_finite() {
                    continue;
                }
                let children: Option<f64> =
                    node.children().iter().map(|&c| best.get(&egraph.find(c)).map(|b| b.0)).sum();
                let Some(children) = children else { continue };
                let total = own + children;
                if best.get(&class.id).is_none_or(|b| total < b.0 * (1.0 - 1e-12)) {
                    best.insert(class.id, (total, i));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Choice { node: best.into_iter().map(|(c, (_, i))| (c, i)).collect() }
}
