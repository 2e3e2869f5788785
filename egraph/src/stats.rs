//! Size and work of a graph, as `saturate info` reports them: parameter counts and
//! floating-point operations, summed from the work model ([`crate::work`]) the cost
//! models price.

use crate::{Graph, Result, TensorLang};

/// What `saturate info` prints about a graph besides its ports.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphStats {
    /// Elements in the weights table.
    pub weight_params: usize,
    /// Elements of splat constants (`fill` nodes), which stand in for weights in
    /// generated models such as the ONNX "light" zoo.
    pub fill_params: usize,
    /// Floating-point operations of one run.
    pub flops: u64,
    /// Op nodes (excluding inputs, weights and attribute leaves).
    pub ops: usize,
}

/// Computes [`GraphStats`].
pub fn stats(graph: &Graph) -> Result<GraphStats> {
    let metas = graph.check()?;
    let mut s = GraphStats {
        weight_params: graph.weights.values().map(|t| t.len()).sum(),
        fill_params: 0,
        flops: 0,
        ops: graph.op_histogram().values().sum(),
    };
    for (id, node) in graph.expr.items() {
        let Some(out) = metas[usize::from(id)].tensor() else {
            continue;
        };
        if let TensorLang::Fill(_) = node {
            s.fill_params += out.numel();
        }
        if let Some(w) = crate::work::node_work(&graph.expr, &metas, usize::from(id)) {
            s.flops += w.flops as u64;
        }
    }
    Ok(s)
}
