//! The work an op does: floating-point operations and bytes moved, and what kind of
//! kernel runs it. Cost models turn work into seconds.

use saturate_egraph::{Activation, Meta, TensorLang, TensorType};

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

/// FLOPs per element of elementwise functions; transcendental ones cost more.
fn transcendental(node: &TensorLang) -> f64 {
    use TensorLang as L;
    match node {
        L::Exp(_) | L::Log(_) | L::Tanh(_) | L::Sigmoid(_) | L::Erf(_) | L::Pow(_) | L::Silu(_) => 12.0,
        L::Gelu(_) | L::GeluTanh(_) => 16.0,
        L::Sqrt(_) | L::Div(_) | L::Reciprocal(_) => 4.0,
        _ => 1.0,
    }
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
    use TensorLang as L;
    let out = info.output.numel() as f64;
    let bytes_out = bytes(info.output);
    let bytes_in: f64 = info.children.iter().filter_map(|m| m.tensor()).map(bytes).sum();
    let w = |kind, flops| Work { kind, flops, bytes_in, bytes_out };
    match info.node {
        L::Input(_) | L::Weight(_) | L::Fill(_) => {
            Work { kind: Kind::Source, flops: 0.0, bytes_in: 0.0, bytes_out: 0.0 }
        }
        L::Reshape(_) | L::Flatten(_) | L::Squeeze(_) | L::Unsqueeze(_) => {
            Work { kind: Kind::View, flops: 0.0, bytes_in: 0.0, bytes_out: 0.0 }
        }
        L::Slice(_) if contiguous_slice(info) => Work { kind: Kind::View, flops: 0.0, bytes_in: 0.0, bytes_out: 0.0 },
        L::Transpose(_) | L::Slice(_) | L::Concat(_) | L::Pad(_) | L::Expand(_) | L::Gather(_) | L::Cast(_) => {
            // a copy reads what it writes
            Work { kind: Kind::Copy, flops: 0.0, bytes_in: bytes_out, bytes_out }
        }
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
        L::Conv(_) | L::ConvBiasAct(_) => {
            let per_output: f64 = info.operand(1).map_or(1.0, |t| t.shape[1..].iter().product::<usize>() as f64);
            let act = if matches!(info.node, L::ConvBiasAct(_)) {
                activation_flops(info.children.get(7).copied())
            } else {
                0.0
            };
            w(Kind::Gemm, 2.0 * out * per_output + out * (1.0 + act))
        }
        L::Attention(_) => {
            // scores q·kᵀ, softmax, then probabilities · v
            let (q, v) = (info.operand(0), info.operand(2));
            let d = q.and_then(|t| t.shape.last().copied()).unwrap_or(1) as f64;
            let t = v.and_then(|t| t.shape.get(t.rank().wrapping_sub(2)).copied()).unwrap_or(1) as f64;
            let e = v.and_then(|t| t.shape.last().copied()).unwrap_or(1) as f64;
            let rows = out / e.max(1.0);
            w(Kind::Gemm, 2.0 * rows * t * d + 14.0 * rows * t + 2.0 * rows * t * e)
        }
        L::ReduceSum(_) | L::ReduceMean(_) | L::ReduceMax(_) | L::ReduceMin(_) => {
            w(Kind::Reduction, info.operand_numel(0))
        }
        L::Softmax(_) | L::LogSoftmax(_) => w(Kind::Reduction, 16.0 * out),
        L::LayerNorm(_) | L::RmsNorm(_) => w(Kind::Reduction, 8.0 * out),
        L::BatchNorm(_) => w(Kind::Elementwise, 2.0 * out),
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
        n if n.is_attribute() => Work { kind: Kind::Source, flops: 0.0, bytes_in: 0.0, bytes_out: 0.0 },
        n => w(Kind::Elementwise, out * transcendental(n)),
    }
}
