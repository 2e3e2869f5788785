//! Size and work of a graph, as `saturate info` reports them: parameter counts and
//! floating-point operations per node (a multiply-add counts as two).

use crate::infer::Meta;
use crate::{Graph, Result, TensorLang, TensorType};
use egg::Language;

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
    let ty = |id: egg::Id| metas[usize::from(id)].tensor().cloned();
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
        s.flops += node_flops(node, out, &ty, &metas);
    }
    Ok(s)
}

fn node_flops(node: &TensorLang, out: &TensorType, ty: &dyn Fn(egg::Id) -> Option<TensorType>, metas: &[Meta]) -> u64 {
    use TensorLang as L;
    let n = out.numel() as u64;
    let input = |i: usize| ty(node.children()[i]).map_or(0, |t| t.numel() as u64);
    let ints = |id: egg::Id| match &metas[usize::from(id)] {
        Meta::Ints(v) => v.clone(),
        _ => Vec::new(),
    };
    match node {
        L::MatMul([a, _]) => {
            let k = ty(*a).and_then(|t| t.shape.last().copied()).unwrap_or(0) as u64;
            2 * n * k
        }
        L::Gemm([a, _, _, _, _, ta, _]) => {
            let a = ty(*a).map(|t| t.shape).unwrap_or_default();
            let transposed = matches!(metas[usize::from(*ta)], Meta::Int(1));
            let k = if transposed { a.first() } else { a.get(1) }.copied().unwrap_or(0) as u64;
            2 * n * k + n
        }
        L::Conv([_, w, ..]) => {
            let w = ty(*w).map(|t| t.shape).unwrap_or_default();
            let per_output: u64 = w[1..].iter().map(|&d| d as u64).product();
            2 * n * per_output + n
        }
        L::MaxPool([_, k, ..]) | L::AvgPool([_, k, ..]) => n * ints(*k).iter().product::<i64>().max(1) as u64,
        L::GlobalAvgPool(_) | L::GlobalMaxPool(_) => input(0),
        L::ReduceSum(_) | L::ReduceMean(_) | L::ReduceMax(_) | L::ReduceMin(_) => input(0),
        L::Softmax(_) | L::LogSoftmax(_) => 5 * n,
        L::LayerNorm(_) => 8 * n,
        L::BatchNorm(_) => 2 * n,
        L::Lrn([_, size, ..]) => match metas[usize::from(*size)] {
            Meta::Int(size) => n * (size as u64 + 4),
            _ => n,
        },
        L::Input(_) | L::Weight(_) | L::Fill(_) => 0,
        L::Reshape(_) | L::Flatten(_) | L::Squeeze(_) | L::Unsqueeze(_) | L::Transpose(_) | L::Expand(_) => 0,
        L::Concat(_) | L::Slice(_) | L::Gather(_) | L::Cast(_) => 0,
        _ if node.is_attribute() => 0,
        _ => n, // elementwise
    }
}
