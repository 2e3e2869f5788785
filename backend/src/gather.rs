//! The gather IR: `out[pre, j, post] = x[pre, indices[j], post]`, the one op whose
//! reads depend on data. Negative indices count from the end, as in ONNX.

use saturate_egraph::DType;

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
