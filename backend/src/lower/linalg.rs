//! Matrix products: numpy `matmul` (batched, broadcast, 1-D operands promoted), ONNX
//! `gemm` (transposes, alpha, beta·C) and `matmul_bias_act`. Each is a GEMM-crate call;
//! a bias or `beta·C` is written into the destination first and the product
//! accumulated onto it, and an activation runs as a loop over the result in place.

use super::elementwise::activation_op;
use super::Lowering;
use crate::error::BackendError;
use crate::gemm::MatMul;
use crate::loops::{broadcast_strides, contiguous_strides, Binary, Expr, LoopSpec, Operand, Output};
use crate::plan::{Kernel, Loc, Step};
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
        // promote 1-D operands to matrices
        let a_mat = if a_shape.len() == 1 { vec![1, a_shape[0]] } else { a_shape.clone() };
        let b_mat = if b_shape.len() == 1 { vec![b_shape[0], 1] } else { b_shape.clone() };
        let (m, k) = (a_mat[a_mat.len() - 2], a_mat[a_mat.len() - 1]);
        let n = b_mat[b_mat.len() - 1];
        let a_batch = &a_mat[..a_mat.len() - 2];
        let b_batch = &b_mat[..b_mat.len() - 2];
        let batch_shape: Vec<usize> =
            saturate_egraph::shape::broadcast(a_batch, b_batch).expect("type checking broadcast these");
        let (sa, sb) = (broadcast_strides(a_batch, &batch_shape), broadcast_strides(b_batch, &batch_shape));
        let count: usize = batch_shape.iter().product();
        let mut batch = Vec::with_capacity(count);
        let mut index = vec![0usize; batch_shape.len()];
        for p in 0..count {
            let ao: isize = index.iter().zip(&sa).map(|(&x, &s)| x as isize * s).sum();
            let bo: isize = index.iter().zip(&sb).map(|(&x, &s)| x as isize * s).sum();
            batch.push([ao as usize * m * k, bo as usize * k * n, p * m * n]);
            increment(&mut index, &batch_shape);
        }
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let mut accumulate = false;
        if let Some((bias, _)) = epilogue {
            self.broadcast_into(out, &out_shape, usize::from(bias), None, constant)?;
            accumulate = true;
        }
        let product =
            MatMul { m, n, k, batch, a_strides: [k as isize, 1], b_strides: [n as isize, 1], alpha: 1.0, accumulate };
        let (la, lb) = (self.loc(a)?, self.loc(b)?);
        self.push_matmul(product, la, lb, out, constant);
        if let Some(op) = epilogue.and_then(|(_, act)| activation_op(act)) {
            self.in_place(out, &out_shape, Expr::Unary(op, 0), constant)?;
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
        if adds_c {
            self.broadcast_into(out, &out_shape, c, Some(beta), constant)?;
        }
        let product = MatMul {
            m,
            n,
            k,
            batch: vec![[0, 0, 0]],
            a_strides: if ta { [1, m as isize] } else { [k as isize, 1] },
            b_strides: if tb { [1, k as isize] } else { [n as isize, 1] },
            alpha,
            accumulate: adds_c,
        };
        let (la, lb) = (self.loc(a)?, self.loc(b)?);
        self.push_matmul(product, la, lb, out, constant);
        Ok(())
    }

    fn push_matmul(&mut self, product: MatMul, a: Loc, b: Loc, out: Loc, constant: bool) {
        let step =
            Step { kernel: Kernel::MatMul(product), args: vec![a, b, out], writes: vec![false, false, true], constant };
        self.steps.push(step);
    }

    /// Writes `src` (times `scale`), broadcast to `shape`, into `dst`.
    fn broadcast_into(
        &mut self,
        dst: Loc,
        shape: &[usize],
        src: usize,
        scale: Option<f32>,
        constant: bool,
    ) -> Result<(), BackendError> {
        let dims = super::elementwise::loop_dims(shape);
        let mut exprs = Vec::new();
        let mut operands = Vec::new();
        let mut args = Vec::new();
        match self.splat(src) {
            Some(v) => exprs.push(Expr::F32(v)),
            None => {
                operands.push(Operand { dtype: DType::F32, strides: broadcast_strides(&self.ty(src).shape, &dims) });
                exprs.push(Expr::Load(0));
                args.push(self.loc(src)?);
            }
        }
        if let Some(s) = scale.filter(|&s| s != 1.0) {
            exprs.push(Expr::F32(s));
            exprs.push(Expr::Binary(Binary::Mul, exprs.len() - 2, exprs.len() - 1));
        }
        args.push(dst);
        let spec = LoopSpec {
            outputs: vec![Output { expr: exprs.len() - 1, strides: contiguous_strides(&dims) }],
            dims,
            operands,
            exprs,
        };
        self.push_loop("bias", spec, args, constant)
    }

    /// Applies `expr` (over `Load(0)`) to the f32 tensor at `loc`, in place.
    fn in_place(&mut self, loc: Loc, shape: &[usize], expr: Expr, constant: bool) -> Result<(), BackendError> {
        let dims = super::elementwise::loop_dims(shape);
        let strides = contiguous_strides(&dims);
        let spec = LoopSpec {
            dims,
            operands: vec![Operand { dtype: DType::F32, strides: strides.clone() }],
            exprs: vec![Expr::Load(0), expr],
            outputs: vec![Output { expr: 1, strides }],
        };
        self.push_loop("epilogue", spec, vec![loc, loc], constant)
    }
}

/// Advances a row-major multi-index by one.
fn increment(index: &mut [usize], shape: &[usize]) {
    for d in (0..index.len()).rev() {
        index[d] += 1;
        if index[d] < shape[d] {
            return;
        }
        index[d] = 0;
    }
}
