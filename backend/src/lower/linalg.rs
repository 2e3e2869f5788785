//! Matrix products: numpy `matmul` (batched, broadcast, 1-D operands promoted), ONNX
//! `gemm` (transposes, alpha, beta·C) and `matmul_bias_act`. Each is a GEMM-crate call;
//! a bias or `beta·C` is written into the destination first and the product
//! accumulated onto it, and an activation runs as a loop over the result in place.

use super::elementwise::activation_op;
use super::Lowering;
use crate::error::BackendError;
use crate::gemm::MatMul;
use crate::loops::{broadcast_strides, contiguous_strides, increment, Binary, Expr, LoopSpec, Operand, Output, Unary};
use crate::plan::{Kernel, Loc, Step};
use crate::rows::{RowOp, RowSpec, Strided};
use saturate_egraph::{Activation, DType, Id};

impl Lowering<'_> {
    pub(super) fn matmul(
        &mut self,
        i: usize,
        a: Id,
        b: Id,
        epilogue: Option<(Id, Activation)>,
    ) -> Result<(), BackendError> {
        let (a, b) = (usize::from(a), usize::from(b));
        let (a_shape, b_shape) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        let out_shape = self.ty(i).shape.clone();
        let ((la, a_strides), (lb, b_strides)) = (self.operand(a)?, self.operand(b)?);
        // promote 1-D operands to matrices
        let (a_mat, a_strides) =
            if a_shape.len() == 1 { (vec![1, a_shape[0]], vec![0, a_strides[0]]) } else { (a_shape, a_strides) };
        let (b_mat, b_strides) =
            if b_shape.len() == 1 { (vec![b_shape[0], 1], vec![b_strides[0], 0]) } else { (b_shape, b_strides) };
        let (ra, rb) = (a_mat.len(), b_mat.len());
        let (m, k) = (a_mat[ra - 2], a_mat[ra - 1]);
        let n = b_mat[rb - 1];
        let batch = strided_batch_offsets(
            (&a_mat[..ra - 2], &a_strides[..ra - 2]),
            (&b_mat[..rb - 2], &b_strides[..rb - 2]),
            m * n,
        );
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let product = MatMul {
            m,
            n,
            k,
            batch,
            a_strides: [a_strides[ra - 2], a_strides[ra - 1]],
            b_strides: [b_strides[rb - 2], b_strides[rb - 1]],
            alpha: 1.0,
            accumulate: false,
        }
        .batch_as_rows();
        self.push_matmul(product, la, lb, out, constant);
        if let Some((bias, act)) = epilogue {
            let bias = usize::from(bias);
            let strides = broadcast_strides(&self.ty(bias).shape, &out_shape);
            self.epilogue(out, &out_shape, Some((bias, strides, 1.0)), activation_op(act), constant)?;
        }
        Ok(())
    }

    pub(super) fn gemm(
        &mut self,
        i: usize,
        [a, b, c]: [Id; 3],
        [alpha, beta]: [Id; 2],
        [ta, tb]: [Id; 2],
    ) -> Result<(), BackendError> {
        let (a, b, c) = (usize::from(a), usize::from(b), usize::from(c));
        let (alpha, beta) = (self.float(alpha), self.float(beta));
        let (ta, tb) = (self.int(ta) != 0, self.int(tb) != 0);
        let (a_shape, b_shape) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        let (m, k) = if ta { (a_shape[1], a_shape[0]) } else { (a_shape[0], a_shape[1]) };
        let n = if tb { b_shape[0] } else { b_shape[1] };
        let out_shape = self.ty(i).shape.clone();
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let adds_c = beta != 0.0 && self.splat(c) != Some(0.0);
        let product = MatMul {
            m,
            n,
            k,
            batch: vec![[0, 0, 0]],
            a_strides: if ta { [1, m as isize] } else { [k as isize, 1] },
            b_strides: if tb { [1, k as isize] } else { [n as isize, 1] },
            alpha,
            accumulate: false,
        };
        let (la, lb) = (self.loc(a)?, self.loc(b)?);
        self.push_matmul(product, la, lb, out, constant);
        if adds_c {
            let strides = broadcast_strides(&self.ty(c).shape, &out_shape);
            self.epilogue(out, &out_shape, Some((c, strides, beta)), None, constant)?;
        }
        Ok(())
    }

    /// One pass over a product's result `out`, in place: `act(out + scale · add)`, with
    /// `add` (a bias, or gemm's C) read with the given strides over `shape`.
    pub(super) fn epilogue(
        &mut self,
        out: Loc,
        shape: &[usize],
        add: Option<(usize, Vec<isize>, f32)>,
        act: Option<Unary>,
        constant: bool,
    ) -> Result<(), BackendError> {
        self.epilogue_from(None, out, shape, add, act, constant)
    }

    /// [`epilogue`](Self::epilogue), reading the product from `source` (a location and
    /// its strides over `shape`) instead of `out` when given: a copy even with nothing
    /// to add.
    pub(super) fn epilogue_from(
        &mut self,
        source: Option<(Loc, Vec<isize>)>,
        out: Loc,
        shape: &[usize],
        add: Option<(usize, Vec<isize>, f32)>,
        act: Option<Unary>,
        constant: bool,
    ) -> Result<(), BackendError> {
        let dims = super::elementwise::loop_dims(shape);
        let own = contiguous_strides(&dims);
        let copies = source.is_some();
        let (from, strides) = source.unwrap_or((out, own.clone()));
        let mut operands = vec![Operand { dtype: DType::F32, strides }];
        let mut args = vec![from];
        let mut exprs = vec![Expr::Load(0)];
        if let Some((node, strides, scale)) = add {
            match self.splat(node) {
                Some(v) if v * scale == 0.0 => {} // adding zero
                Some(v) => {
                    exprs.push(Expr::F32(v * scale));
                    exprs.push(Expr::Binary(Binary::Add, 0, 1));
                }
                None => {
                    let strides = if shape.is_empty() { vec![0] } else { strides };
                    operands.push(Operand { dtype: DType::F32, strides });
                    args.push(self.loc(node)?);
                    exprs.push(Expr::Load(1));
                    if scale != 1.0 {
                        exprs.push(Expr::F32(scale));
                        exprs.push(Expr::Binary(Binary::Mul, 1, 2));
                    }
                    exprs.push(Expr::Binary(Binary::Add, 0, exprs.len() - 1));
                }
            }
        }
        if let Some(op) = act {
            exprs.push(Expr::Unary(op, exprs.len() - 1));
        }
        if exprs.len() == 1 && !copies {
            return Ok(()); // nothing to add, no activation
        }
        args.push(out);
        let spec = LoopSpec { outputs: vec![Output { expr: exprs.len() - 1, strides: own }], dims, operands, exprs };
        self.push_loop("epilogue", spec, args, constant)
    }

    /// `softmax(scale · q·kᵀ) · v`: a product into a scores buffer, a softmax over its
    /// rows in place, a product with `v`.
    pub(super) fn attention(&mut self, i: usize, [q, k, v]: [Id; 3], scale: Id) -> Result<(), BackendError> {
        let (q, k, v) = (usize::from(q), usize::from(k), usize::from(v));
        let scale = self.float(scale);
        let (qs, ks, vs) = (self.ty(q).shape.clone(), self.ty(k).shape.clone(), self.ty(v).shape.clone());
        let (s_len, d) = (qs[qs.len() - 2], qs[qs.len() - 1]);
        let t_len = ks[ks.len() - 2];
        let e = vs[vs.len() - 1];
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let (batch_shape, first) =
            batch_offsets(&qs[..qs.len() - 2], &ks[..ks.len() - 2], [s_len * d, t_len * d, s_len * t_len]);
        let count: usize = batch_shape.iter().product();
        if count * s_len * t_len * e == 0 {
            return Ok(());
        }
        let scores = self.new_buffer(count * s_len * t_len * 4, constant);
        let product = MatMul {
            m: s_len,
            n: t_len,
            k: d,
            batch: first,
            a_strides: [d as isize, 1],
            b_strides: [1, d as isize],
            alpha: scale,
            accumulate: false,
        };
        let (lq, lk) = (self.loc(q)?, self.loc(k)?);
        self.push_matmul(product, lq, lk, scores, constant);
        let rows = RowSpec {
            rows: vec![count * s_len],
            len: t_len,
            dtype: DType::F32,
            x: Strided { strides: vec![t_len as isize], step: 1 },
            out: Strided { strides: vec![t_len as isize], step: 1 },
            params: vec![],
            op: RowOp::Softmax,
        };
        self.push_rows("attention_softmax", rows, vec![scores, scores], constant)?;
        let (_, second) = batch_offsets(&batch_shape, &vs[..vs.len() - 2], [s_len * t_len, t_len * e, s_len * e]);
        let product = MatMul {
            m: s_len,
            n: e,
            k: t_len,
            batch: second,
            a_strides: [t_len as isize, 1],
            b_strides: [e as isize, 1],
            alpha: 1.0,
            accumulate: false,
        };
        let lv = self.loc(v)?;
        self.push_matmul(product, scores, lv, out, constant);
        Ok(())
    }

    pub(super) fn push_matmul(&mut self, product: MatMul, a: Loc, b: Loc, out: Loc, constant: bool) {
        let step =
            Step { kernel: Kernel::MatMul(product), args: vec![a, b, out], writes: vec![false, false, true], constant };
        self.steps.push(step);
    }
}

/// The broadcast batch shape of two stacks of matrices, and for each product of the
/// batch the element offsets of its `a`, `b` and (contiguous) result, given the element
/// counts of one matrix of each.
fn batch_offsets(a_batch: &[usize], b_batch: &[usize], sizes: [usize; 3]) -> (Vec<usize>, Vec<[usize; 3]>) {
    let shape: Vec<usize> = saturate_egraph::shape::broadcast(a_batch, b_batch).expect("type checking broadcast these");
    let packed = |dims: &[usize], size: usize| -> Vec<isize> {
        contiguous_strides(dims).iter().map(|&s| s * size as isize).collect()
    };
    let (sa, sb) = (packed(a_batch, sizes[0]), packed(b_batch, sizes[1]));
    (shape, strided_batch_offsets((a_batch, &sa), (b_batch, &sb), sizes[2]))
}

/// The offsets of each product of a batch whose operands' batch axes have the given
/// shapes and element strides (broadcast against each other); results are packed,
/// `out_size` elements each.
fn strided_batch_offsets(a: (&[usize], &[isize]), b: (&[usize], &[isize]), out_size: usize) -> Vec<[usize; 3]> {
    let shape: Vec<usize> = saturate_egraph::shape::broadcast(a.0, b.0).expect("type checking broadcast these");
    // each operand's stride along each axis of the broadcast shape (0 where it broadcasts)
    let aligned = |(dims, strides): (&[usize], &[isize])| -> Vec<isize> {
        let skip = shape.len() - dims.len();
        (0..shape.len()).map(|j| if j < skip || dims[j - skip] == 1 { 0 } else { strides[j - skip] }).collect()
    };
    let (sa, sb) = (aligned(a), aligned(b));
    let count: usize = shape.iter().product();
    let mut offsets = Vec::with_capacity(count);
    let mut index = vec![0usize; shape.len()];
    for p in 0..count {
        let ao: isize = index.iter().zip(&sa).map(|(&x, &s)| x as isize * s).sum();
        let bo: isize = index.iter().zip(&sb).map(|(&x, &s)| x as isize * s).sum();
        offsets.push([ao as usize, bo as usize, p * out_size]);
        increment(&mut index, &shape);
    }
    offsets
}
