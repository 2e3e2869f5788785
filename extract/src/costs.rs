//! The cost of every e-node, from a [`CostModel`] and the e-class analysis.
//!
//! Every op node costs a little more than nothing (1 ps), so that along any path of a
//! chosen program costs strictly grow: then no extractor can choose a cycle of
//! zero-cost nodes (a reshape of a reshape of itself). A node whose tensor operands are
//! all constant classes costs only that: it runs at compile time.

use egg::{Id, Language};
use saturate_costmodels::{CostModel, NodeInfo, Pricing};
use saturate_egraph::{Meta, TensorEGraph, TensorLang};
use std::collections::HashMap;

/// The least cost of an op node.
pub const EPSILON: f64 = 1e-12;

/// Costs per class, one per node of the class (in the class's node order).
#[derive(Debug, Clone, Default)]
pub struct CostTable {
    pub costs: HashMap<Id, Vec<f64>>,
}

impl CostTable {
    /// Prices every node of `egraph` with `model`. Nodes of ill-typed classes cost
    /// infinity, so they are never chosen.
    pub fn new(egraph: &TensorEGraph, model: &dyn CostModel, pricing: Pricing) -> Self {
        let mut costs = HashMap::new();
        for class in egraph.classes() {
            let per_node =
                class.nodes.iter().map(|node| node_cost(egraph, node, class.data.meta(), model, pricing)).collect();
            costs.insert(class.id, per_node);
        }
        CostTable { costs }
    }

    pub fn get(&self, class: Id, node: usize) -> f64 {
        self.costs[&class][node]
    }
}

fn node_cost(
    egraph: &TensorEGraph,
    node: &TensorLang,
    meta: Option<&Meta>,
    model: &dyn CostModel,
    pricing: Pricing,
) -> f64 {
    if node.is_attribute() {
        return 0.0;
    }
    let Some(output) = meta.and_then(Meta::tensor) else { return f64::INFINITY };
    let mut children = Vec::with_capacity(node.len());
    for &c in node.children() {
        match egraph[c].data.meta() {
            Some(m) => children.push(m),
            None => return f64::INFINITY,
        }
    }
    let tensor_children: Vec<Id> =
        node.children().iter().copied().filter(|&c| egraph[c].data.tensor().is_some()).collect();
    let constant = match node {
        TensorLang::Input(_) => false,
        TensorLang::Weight(_) | TensorLang::Fill(_) => true,
        _ => !tensor_children.is_empty() && tensor_children.iter().all(|&c| egraph[c].data.facts.constant),
    };
    let cost = model.node_cost_as(&NodeInfo { node, output, children }, constant, pricing);
    if matches!(node, TensorLang::Input(_) | TensorLang::Weight(_) | TensorLang::Fill(_)) {
        cost
    } else {
        cost + EPSILON
    }
}
