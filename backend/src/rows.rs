//! The row IR: ops that work along one line of a tensor at a time — reductions,
//! softmax, log-softmax, layer and RMS normalization.
//!
//! A [`RowSpec`] is a space of rows (`rows`, outermost first) and a row length; the
//! input and output are [`Strided`]: a stride per row dimension and a step along the row
//! (a contiguous row has step 1, the code generator then uses `f32x4`). Reductions
//! write one element per row. Lowering ([`crate::lower`]) arranges the reduced or
//! normalized axes into a row, copying first when they are not one strided line.

use saturate_egraph::DType;

#[derive(Debug, Clone, PartialEq)]
pub struct RowSpec {
    pub rows: Vec<usize>,
    pub len: usize,
    pub dtype: DType,
    pub x: Strided,
    pub out: Strided,
    /// Per-element parameters along the row (layer norm's scale and bias, RMS norm's
    /// scale): row strides all 0, step 1 (or 0 for one value).
    pub params: Vec<Strided>,
    pub op: RowOp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Strided {
    pub strides: Vec<isize>,
    pub step: isize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowOp {
    Sum,
    /// Πx, for f32 in f64 (partial products would overflow or vanish in f32).
    Prod,
    /// Σx / n (for i64, the truncated quotient).
    Mean,
    Max,
    Min,
    Softmax,
    LogSoftmax,
    /// `(x − mean)/√(var + eps) · scale + bias`.
    LayerNorm {
        eps: f32,
    },
    /// `x/√(mean(x²) + eps) · scale`.
    RmsNorm {
        eps: f32,
    },
    /// Running sums along the row (f32 in f64), written in place of each element.
    CumSum {
        exclusive: bool,
        reverse: bool,
    },
    /// The i64 index of the largest (`max`) or smallest element, the first of ties or
    /// the `last`; a NaN counts as both.
    ArgExtreme {
        max: bool,
        last: bool,
    },
}

impl RowOp {
    /// One output element per row (a reduction) rather than a whole row.
    pub fn reduces(self) -> bool {
        matches!(self, RowOp::Sum | RowOp::Prod | RowOp::Mean | RowOp::Max | RowOp::Min | RowOp::ArgExtreme { .. })
    }
}

impl RowSpec {
    /// The element type of the output: the input's, or i64 for indices.
    pub fn out_dtype(&self) -> DType {
        match self.op {
            RowOp::ArgExtreme { .. } => DType::I64,
            _ => self.dtype,
        }
    }

    pub fn row_count(&self) -> usize {
        self.rows.iter().product()
    }

    /// Drops row dimensions of size 1 (keeping one), so the outermost dimension, which
    /// threads split, is a real one.
    pub fn drop_unit_rows(&mut self) {
        let mut d = 0;
        while d < self.rows.len() {
            if self.rows[d] == 1 && self.rows.len() > 1 {
                self.rows.remove(d);
                self.x.strides.remove(d);
                self.out.strides.remove(d);
                continue;
            }
            d += 1;
        }
        if self.rows.is_empty() {
            self.rows.push(1);
            self.x.strides.push(0);
            self.out.strides.push(0);
        }
    }
}
