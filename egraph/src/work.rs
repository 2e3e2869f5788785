//! The work an op does: floating-point operations and bytes moved, and what kind of
//! kernel runs it — the one FLOP and byte model of saturate: `saturate info` sums it,
//! cost models turn it into seconds. A multiply-add counts as two FLOPs; the
//! elementwise functions cost what their rows of the op table say.

use crate::{Activation, Meta, TensorLang, TensorType, View};

/// How an op runs, which decides how a model prices it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Inputs, weights, constants: already in memory.
    Source,
    /// A new view of the same data (reshape and friends): free.
    View,
    /// Moves data without arithmetic (transpose, slice, concat, pad, expand, gather).
    Copy,
    /// One output element from the same position of its operands: fusable into loops.
    Elementwise,
    /// Reductions and normalizations over axes.
    Reduction,
    /// Matrix products and convolutions: compute-bound kernels.
    Gemm,
}

/// The work of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    pub kind: Kind,
    pub flops: f64,
    /// Bytes of all tensor operands.
    pub bytes_in: f64,
    pub bytes_out: f64,
}

/// A node with the types of its operands and attributes, as cost models see it.
pub struct NodeInfo<'a> {
    pub node: &'a TensorLang,
    pub output: &'a TensorType,
    /// Per child: the child's meta (tensor type or attribute value).
    pub children: Vec<&'a Meta>,
}

impl NodeInfo<'_> {
    fn operand(&self, i: usize) -> Option<&TensorType> {
        self.children.get(i).and_then(|m| m.tensor())
    }

    fn operand_numel(&self, i: usize) -> f64 {
        self.operand(i).map_or(0.0, |t| t.numel() as f64)
    }
}

fn bytes(t: &TensorType) -> f64 {
    (t.numel() * t.dtype.byte_size()) as f64
}

fn activation_flops(m: Option<&Meta>) -> f64 {
    match m {
        Some(Meta::Act(Activation::Id)) => 0.0,
        Some(Meta::Act(Activation::Relu)) => 1.0,
        Some(Meta::Act(Activation::Gelu | Activation::GeluTanh)) => 16.0,
        Some(Meta::Act(_)) => 12.0,
        _ => 0.0,
    }
}

/// Whether a slice selects one contiguous block of its input (in row-major order):
/// leading axes reduced to one index, then one axis cut to a range with step 1, then whole
/// axes. Such a slice is a view at an offset; the backend does not copy it.
fn contiguous_slice(info: &NodeInfo) -> bool {
    let Some(x) = info.operand(0) else { return false };
    let out = &info.output.shape;
    let steps = match info.children.get(3) {
        Some(Meta::Ints(s)) => s,
        _ => return false,
    };
    if steps.iter().any(|&s| s != 1) {
        return false;
    }
    // the first axis the slice cuts (or the first with more than one element)
    let Some(first) = (0..out.len()).find(|&i| out[i] != 1) else { return true };
    (first + 1..out.len()).all(|i| out[i] == x.shape[i])
}

/// The work of `info.node`.
pub fn work(info: &NodeInfo) -> Work {
    use View as L;
    let out = info.output.numel() as f64;
    let bytes_out = bytes(info.output);
    let bytes_in: f64 = info.children.iter().filter_map(|m| m.tensor()).map(bytes).sum();
    let w = |kind, flops| Work { kind, flops, bytes_in, bytes_out };
    let none = |kind| Work { kind, flops: 0.0, bytes_in: 0.0, bytes_out: 0.0 };
    // a copy reads what it writes
    let copy = Work { kind: Kind::Copy, flops: 0.0, bytes_in: bytes_out, bytes_out };
    match info.node.view() {
        L::Input(_) | L::Weight(_) | L::Fill(_) | L::Leaf => none(Kind::Source),
        L::Unary(op, _) => w(Kind::Elementwise, out * op.desc().flops),
        L::Binary(op, _) => w(Kind::Elementwise, out * op.desc().flops),
        L::Where(_) => w(Kind::Elementwise, out),
        L::BatchNorm(_) => w(Kind::Elementwise, 2.0 * out),
        L::Reshape(_) | L::Flatten(_) | L::Squeeze(_) | L::Unsqueeze(_) => none(Kind::View),
        L::Slice(_) if contiguous_slice(info) => none(Kind::View),
        L::Transpose(_) | L::Slice(_) | L::Concat(_) | L::Pad(_) | L::Expand(_) | L::Gather(_) | L::Cast(_) => copy,
        L::GatherElements(_) | L::ScatterElements(_) => copy,
        L::MatMul(_) => {
            let k = info.operand(0).and_then(|t| t.shape.last().copied()).unwrap_or(1) as f64;
            w(Kind::Gemm, 2.0 * out * k)
        }
        L::MatMulBiasAct(_) => {
            let k = info.operand(0).and_then(|t| t.shape.last().copied()).unwrap_or(1) as f64;
            w(Kind::Gemm, 2.0 * out * k + out * (1.0 + activation_flops(info.children.get(3).copied())))
        }
        L::Gemm(_) => {
            let a = info.operand(0).map(|t| t.shape.clone()).unwrap_or_default();
            let transposed = matches!(info.children.get(5), Some(Meta::Int(1)));
            let k = if transposed { a.first() } else { a.get(1) }.copied().unwrap_or(1) as f64;
            w(Kind::Gemm, 2.0 * out * k + 2.0 * out)
        }
        L::Conv(_) => w(Kind::Gemm, conv_flops(info, out) + out),
        L::ConvBiasAct(_) => {
            let act = activation_flops(info.children.get(7).copied());
            w(Kind::Gemm, conv_flops(info, out) + out * (1.0 + act))
        }
        // nine multiply-adds an element: a row of G ⊗ G by a filter
        L::WinogradWeights(_) => w(Kind::Gemm, 18.0 * out),
        L::WinogradConv(_) => match (info.operand(0), info.children.get(4)) {
            (Some(x), Some(Meta::Int(m))) => {
                let act = activation_flops(info.children.get(5).copied());
                w(Kind::Gemm, winograd_flops(x, info.output, *m) + out * (1.0 + act))
            }
            _ => w(Kind::Gemm, 0.0),
        },
        L::Attention(_) => {
            // scores q·kᵀ, softmax, then probabilities · v
            let (q, v) = (info.operand(0), info.operand(2));
            let d = q.and_then(|t| t.shape.last().copied()).unwrap_or(1) as f64;
            let t = v.and_then(|t| t.shape.get(t.rank().wrapping_sub(2)).copied()).unwrap_or(1) as f64;
            let e = v.and_then(|t| t.shape.last().copied()).unwrap_or(1) as f64;
            let rows = out / e.max(1.0);
            w(Kind::Gemm, 2.0 * rows * t * d + 14.0 * rows * t + 2.0 * rows * t * e)
        }
        L::ReduceSum(_) | L::ReduceProd(_) | L::ReduceMean(_) | L::ReduceMax(_) | L::ReduceMin(_) => {
            w(Kind::Reduction, info.operand_numel(0))
        }
        L::ArgMax(_) | L::ArgMin(_) | L::CumSum(_) => w(Kind::Reduction, info.operand_numel(0)),
        L::Softmax(_) | L::LogSoftmax(_) => w(Kind::Reduction, 16.0 * out),
        L::LayerNorm(_) | L::RmsNorm(_) => w(Kind::Reduction, 8.0 * out),
        L::Lrn(_) => {
            let size = match info.children.get(1) {
                Some(Meta::Int(s)) => *s as f64,
                _ => 5.0,
            };
            w(Kind::Reduction, out * (2.0 + 2.0 * size + 12.0))
        }
        L::MaxPool(_) | L::AvgPool(_) => {
            let taps = match info.children.get(1) {
                Some(Meta::Ints(k)) => k.iter().product::<i64>().max(1) as f64,
                _ => 1.0,
            };
            w(Kind::Reduction, out * taps)
        }
        L::GlobalAvgPool(_) | L::GlobalMaxPool(_) => w(Kind::Reduction, info.operand_numel(0)),
    }
}

/// Multiply-adds of a convolution: one per weight of an output's window.
fn conv_flops(info: &NodeInfo, out: f64) -> f64 {
    let per_output: f64 = info.operand(1).map_or(1.0, |t| t.shape[1..].iter().product::<usize>() as f64);
    2.0 * out * per_output
}

/// FLOPs of `winograd_conv` of tile `m` from `x` [N,C,H,W] to `out` [N,K,OH,OW]: the
/// input transform, the (m+2)² products over the channels, the output transform.
fn winograd_flops(x: &TensorType, out: &TensorType, m: i64) -> f64 {
    let Some(tile) = crate::WinogradTile::of(m) else { return 0.0 };
    let (channels, k) = (x.shape[1] as f64, out.shape[1] as f64);
    let tiles = tile.tiles(out.shape[0], [out.shape[2], out.shape[3]]) as f64;
    let [input, output] = tile.transform_flops();
    tiles * (channels * input + 2.0 * (tile.alpha() * tile.alpha()) as f64 * k * channels + k * output)
}

/// The work of node `i` of a checked graph (`metas` from [`crate::Graph::check`]); `None`
/// for attribute leaves.
pub fn node_work(expr: &egg::RecExpr<TensorLang>, metas: &[Meta], i: usize) -> Option<Work> {
    use egg::Language;
    let output = metas[i].tensor()?;
    let node = &expr[egg::Id::from(i)];
    let children = node.children().iter().map(|&c| &metas[usize::from(c)]).collect();
    Some(work(&NodeInfo { node, output, children }))
}

#[cfg(test)]
mod tests {
    use crate::stats::stats;

    /// `saturate info` sums the model the cost models price: a fused op counts its
    /// products, not one FLOP an element.
    #[test]
    fn info_counts_fused_ops_as_the_cost_models_do() {
        let text = "(saturate-graph 1)\n(input %q f32 [2,4,8])\n(input %k f32 [2,6,8])\n(input %v f32 [2,6,5])\n\
                    (output \"y\" (attention %q %k %v 0.5))\n";
        let g = crate::sexp::parse(text, "t", None).unwrap();
        // scores 2·(8 rows)·6·8, softmax 14·8·6, then 2·8·6·5
        assert_eq!(stats(&g).unwrap().flops, 768 + 672 + 480);
        let text = "(saturate-graph 1)\n(input %a f32 [3,4])\n(input %b f32 [4,5])\n\
                    (output \"y\" (matmul_bias_act %a %b (fill 0.5 [5]) act_relu))\n";
        let g = crate::sexp::parse(text, "t", None).unwrap();
        // 2·15·4 for the product, then per element the bias and the relu
        assert_eq!(stats(&g).unwrap().flops, 120 + 15 * 2);
    }
}
