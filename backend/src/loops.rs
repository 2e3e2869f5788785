//! The fused-loop IR: what one generated elementwise loop computes.
//!
//! A [`LoopSpec`] is an iteration space (`dims`, outermost first), the buffers it reads
//! ([`Operand`]s, each with an element stride per dimension: 0 where the operand is
//! broadcast, anything else where it is read transposed or per channel), a list of
//! expressions in SSA order, and the buffers it writes ([`Output`]s, also strided). The
//! code generator ([`crate::jit::loops`]) turns it into one function; lowering
//! ([`crate::lower`]) builds it from a group of elementwise graph nodes.
//!
//! Keeping this IR separate from `TensorLang` keeps the generator small: it knows about
//! arithmetic and strides, not about ONNX.

use saturate_egraph::{DType, UnaryOp};

#[derive(Debug, Clone, PartialEq)]
pub struct LoopSpec {
    pub dims: Vec<usize>,
    pub operands: Vec<Operand>,
    pub exprs: Vec<Expr>,
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub dtype: DType,
    /// Element stride per dimension of the loop.
    pub strides: Vec<isize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub expr: usize,
    pub strides: Vec<isize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expr {
    Load(usize),
    F32(f32),
    I64(i64),
    Bool(bool),
    Unary(Unary, usize),
    Binary(Binary, usize, usize),
    Where(usize, usize, usize),
    Cast(usize, DType),
}

/// A unary function of the op table with its params (`params[..n]` for its n params).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unary {
    pub op: UnaryOp,
    pub params: [f32; 2],
}

impl Unary {
    /// A function without params.
    pub fn of(op: UnaryOp) -> Unary {
        Unary { op, params: [0.0; 2] }
    }
}

/// Binary ops are the op table's.
pub use saturate_egraph::BinaryOp as Binary;

/// Whether `op` compares (its result is bool).
pub fn is_comparison(op: Binary) -> bool {
    op.desc().compare.is_some()
}

impl LoopSpec {
    /// Roughly how much work one element of the loop is, in units of a cheap vector op
    /// (a copy, an add, a relu: 1; a polynomial-and-division function: 8), for
    /// deciding whether splitting it across threads pays.
    pub fn work_per_element(&self) -> usize {
        use saturate_egraph::UnaryOp as U;
        let cost = |e: &Expr| match e {
            Expr::Unary(u, _) => match u.op {
                U::Exp | U::Log | U::Tanh | U::Sigmoid | U::Erf | U::Gelu | U::GeluTanh | U::Silu | U::Softplus => 8,
                _ => 1,
            },
            Expr::Binary(..) | Expr::Where(..) | Expr::Cast(..) => 1,
            _ => 0,
        };
        self.exprs.iter().map(cost).sum::<usize>().max(1)
    }

    /// The element type of every expression, in order.
    pub fn dtypes(&self) -> Vec<DType> {
        let mut out: Vec<DType> = Vec::with_capacity(self.exprs.len());
        for e in &self.exprs {
            let t = match *e {
                Expr::Load(k) => self.operands[k].dtype,
                Expr::F32(_) => DType::F32,
                Expr::I64(_) => DType::I64,
                Expr::Bool(_) => DType::Bool,
                Expr::Unary(u, _) if u.op.desc().predicate.is_some() => DType::Bool,
                Expr::Unary(_, x) => out[x],
                Expr::Binary(op, _, _) if is_comparison(op) => DType::Bool,
                Expr::Binary(_, a, _) => out[a],
                Expr::Where(_, a, _) => out[a],
                Expr::Cast(_, to) => to,
            };
            out.push(t);
        }
        out
    }

    /// Number of elements the loop visits.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reorders the dimensions other than the inner one so that operand `k` is read in
    /// its memory order (its strides decreasing outward, ties kept in order). A strided
    /// copy that reads in memory order writes a few output pages in turn instead of
    /// reading one page per element row: with the 4 KiB pages of a caller's tensors,
    /// the other order misses the TLB on every row (a `[16,511,12,64]` head transpose:
    /// 14 ms against 3 ms).
    pub fn read_in_memory_order(&mut self, k: usize) {
        let Some(inner) = self.dims.len().checked_sub(1) else { return };
        let strides = self.operands[k].strides.clone();
        let mut order: Vec<usize> = (0..inner).collect();
        order.sort_by_key(|&d| std::cmp::Reverse(strides[d].unsigned_abs()));
        order.push(inner);
        let permute = |v: &Vec<isize>| order.iter().map(|&d| v[d]).collect::<Vec<isize>>();
        self.dims = order.iter().map(|&d| self.dims[d]).collect();
        for o in &mut self.operands {
            o.strides = permute(&o.strides);
        }
        for o in &mut self.outputs {
            o.strides = permute(&o.strides);
        }
    }

    /// Merges adjacent dimensions that every operand and output walks contiguously
    /// (stride of the outer = stride of the inner × its size), and drops size-1
    /// dimensions: fewer, longer loops, and the inner one as long as possible.
    pub fn coalesce(&mut self) {
        let mut strides: Vec<&mut Vec<isize>> = self
            .operands
            .iter_mut()
            .map(|o| &mut o.strides)
            .chain(self.outputs.iter_mut().map(|o| &mut o.strides))
            .collect();
        let mut d = 0;
        while d < self.dims.len() {
            if self.dims[d] == 1 && self.dims.len() > 1 {
                self.dims.remove(d);
                for s in strides.iter_mut() {
                    s.remove(d);
                }
                continue;
            }
            d += 1;
        }
        let mut d = self.dims.len();
        while d > 1 {
            d -= 1;
            let inner = self.dims[d];
            if strides.iter().all(|s| s[d - 1] == s[d] * inner as isize) {
                self.dims[d - 1] *= inner;
                self.dims.remove(d);
                for s in strides.iter_mut() {
                    let keep = s[d];
                    s.remove(d);
                    s[d - 1] = keep;
                }
            }
        }
    }
}

/// Advances a row-major multi-index over `shape` by one (back to all zeros after the
/// last).
pub fn increment(index: &mut [usize], shape: &[usize]) {
    for d in (0..index.len()).rev() {
        index[d] += 1;
        if index[d] < shape[d] {
            return;
        }
        index[d] = 0;
    }
}

/// Row-major element strides of a shape.
pub fn contiguous_strides(dims: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; dims.len()];
    let mut acc = 1isize;
    for (s, &d) in strides.iter_mut().zip(dims).rev() {
        *s = acc;
        acc *= d as isize;
    }
    strides
}

/// Strides for reading a tensor of shape `shape` broadcast (numpy rules: aligned on the
/// right, size-1 dimensions repeated) to `to`.
pub fn broadcast_strides(shape: &[usize], to: &[usize]) -> Vec<isize> {
    let own = contiguous_strides(shape);
    let offset = to.len() - shape.len();
    (0..to.len()).map(|d| if d < offset || shape[d - offset] == 1 { 0 } else { own[d - offset] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dims: &[usize], strides: &[&[isize]]) -> LoopSpec {
        LoopSpec {
            dims: dims.to_vec(),
            operands: strides.iter().map(|s| Operand { dtype: DType::F32, strides: s.to_vec() }).collect(),
            exprs: vec![Expr::Load(0)],
            outputs: vec![Output { expr: 0, strides: contiguous_strides(dims) }],
        }
    }

    #[test]
    fn contiguous_operands_coalesce_to_one_dimension() {
        let mut s = spec(&[2, 3, 4], &[&[12, 4, 1]]);
        s.coalesce();
        assert_eq!(s.dims, vec![24]);
        assert_eq!(s.operands[0].strides, vec![1]);
        assert_eq!(s.outputs[0].strides, vec![1]);
    }

    #[test]
    fn a_broadcast_row_keeps_its_dimension() {
        // [2,3,4] + [4]: the operand repeats every 4 elements
        let mut s = spec(&[2, 3, 4], &[&broadcast_strides(&[4], &[2, 3, 4])]);
        s.coalesce();
        assert_eq!(s.dims, vec![6, 4]);
        assert_eq!(s.operands[0].strides, vec![0, 1]);
    }

    #[test]
    fn size_one_dimensions_are_dropped() {
        let mut s = spec(&[1, 5, 1], &[&[5, 1, 1]]);
        s.coalesce();
        assert_eq!(s.dims, vec![5]);
    }
}
