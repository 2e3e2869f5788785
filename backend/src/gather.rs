//! The gather and scatter IR: `out[pre, j, post] = x[pre, indices[j], post]` and its
//! kin, the ops whose reads (or writes) depend on data. Negative indices count from the end, as in ONNX.

use saturate_egraph::DType;

/// `gather_elements`: for each position of `indices` (shape `shape`), the element of
/// `x` at that position with its `axis` coordinate replaced by the index.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherElementsSpec {
    /// The shape of the indices (and of the output).
    pub shape: Vec<usize>,
    /// Element strides of `x`.
    pub x_strides: Vec<isize>,
    pub axis: usize,
    /// Size of `x` along the axis.
    pub dim: usize,
    pub dtype: DType,
}

/// `scatter_elements`: `x` copied to the output, then for each position of `indices`
/// in order the output element at that position (its `axis` coordinate replaced by the
/// index) combined with the update there.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterSpec {
    /// The shape of the indices and the updates.
    pub shape: Vec<usize>,
    /// Element strides of `x` (and of the output).
    pub x_strides: Vec<isize>,
    pub axis: usize,
    /// Size of `x` along the axis.
    pub dim: usize,
    /// Elements of `x`.
    pub len: usize,
    /// An index into `SCATTER_REDUCTIONS`.
    pub reduction: i64,
    pub dtype: DType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatherSpec {
    /// Product of the axes before the gathered one.
    pub pre: usize,
    /// Number of indices.
    pub count: usize,
    /// Size of the gathered axis.
    pub axis: usize,
    /// Elements per gathered slice (product of the axes after it).
    pub post: usize,
    pub dtype: DType,
}
