//! Reductions and normalizations to row kernels ([`RowSpec`]).
//!
//! The axes an op works along become the row: consecutive axes are one strided line of
//! the row-major data, so they need no copy; other sets are first transposed to the end.
//! Empty rows (reducing over a zero-size axis) are filled with the reduction's identity
//! as the interpreter defines it.

use super::elementwise::fill_spec;
use super::Lowering;
use crate::error::BackendError;
use crate::loops::{broadcast_strides, contiguous_strides, Expr, LoopSpec, Operand, Output};
use crate::plan::{Kernel, Loc, Step};
use crate::rows::{RowOp, RowSpec, Strided};
use crate::window::LrnSpec;
use saturate_egraph::{DType, Id};

impl Lowering<'_> {
    /// `reduce_*(x, axes, keepdims)`.
    pub(super) fn reduce(&mut self, i: usize, x: Id, axes: Id, op: RowOp) -> Result<(), BackendError> {
        let x = usize::from(x);
        let shape = self.ty(x).shape.clone();
        let dtype = self.ty(x).dtype;
        let axes: Vec<usize> = self.ints(axes).iter().map(|&a| a as usize).collect();
        if axes.is_empty() {
            // reduces nothing: the value itself
            self.locs[i] = Some(self.loc(x)?);
            return Ok(());
        }
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let len: usize = axes.iter().map(|&a| shape[a]).product();
        if len == 0 {
            let identity = match (op, dtype) {
                (RowOp::Prod, _) => 1.0,
                (RowOp::Sum, _) | (RowOp::Mean, DType::I64) | (_, DType::Bool) => 0.0,
                (RowOp::Mean, _) => f32::NAN,
                (RowOp::Max, DType::I64) => i64::MIN as f32,
                (RowOp::Min, DType::I64) => i64::MAX as f32,
                (RowOp::Max, _) => f32::NEG_INFINITY,
                _ => f32::INFINITY,
            };
            let out_shape = self.ty(i).shape.clone();
            return self.push_loop("reduce_empty", fill_spec(&out_shape, dtype, identity), vec![out], constant);
        }
        let (src, shape, axes) = self.with_axes_consecutive(x, &shape, &axes, constant)?;
        let own = contiguous_strides(&shape);
        let kept: Vec<usize> = (0..shape.len()).filter(|d| !axes.contains(d)).collect();
        let rows: Vec<usize> = kept.iter().map(|&d| shape[d]).collect();
        let last = *axes.last().expect("axes is not empty");
        let mut spec = RowSpec {
            x: Strided { strides: kept.iter().map(|&d| own[d]).collect(), step: own[last] },
            out: Strided { strides: contiguous_strides(&rows), step: 0 },
            rows,
            len,
            dtype,
            params: vec![],
            op,
        };
        spec.drop_unit_rows();
        self.push_rows("reduce", spec, vec![src, out], constant)
    }

    /// `softmax` and `log_softmax` along `axis`.
    pub(super) fn softmax(&mut self, i: usize, x: Id, axis: Id, op: RowOp) -> Result<(), BackendError> {
        let x = usize::from(x);
        let shape = self.ty(x).shape.clone();
        let axis = self.int(axis) as usize;
        let own = contiguous_strides(&shape);
        let others: Vec<usize> = (0..shape.len()).filter(|&d| d != axis).collect();
        let strides: Vec<isize> = others.iter().map(|&d| own[d]).collect();
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if shape[axis] == 0 || shape.contains(&0) {
            return Ok(());
        }
        let mut spec = RowSpec {
            rows: others.iter().map(|&d| shape[d]).collect(),
            len: shape[axis],
            dtype: self.ty(x).dtype,
            x: Strided { strides: strides.clone(), step: own[axis] },
            out: Strided { strides, step: own[axis] },
            params: vec![],
            op,
        };
        spec.drop_unit_rows();
        let src = self.loc(x)?;
        self.push_rows("softmax", spec, vec![src, out], constant)
    }

    /// `arg_max` and `arg_min` along `axis`: one i64 index per row, written in the
    /// order of the other axes.
    pub(super) fn arg_extreme(&mut self, i: usize, x: Id, axis: Id, op: RowOp) -> Result<(), BackendError> {
        let x = usize::from(x);
        let (shape, dtype) = (self.ty(x).shape.clone(), self.ty(x).dtype);
        let axis = self.int(axis) as usize;
        let own = contiguous_strides(&shape);
        let others: Vec<usize> = (0..shape.len()).filter(|&d| d != axis).collect();
        let rows: Vec<usize> = others.iter().map(|&d| shape[d]).collect();
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if shape.contains(&0) {
            return Ok(());
        }
        let mut spec = RowSpec {
            x: Strided { strides: others.iter().map(|&d| own[d]).collect(), step: own[axis] },
            out: Strided { strides: contiguous_strides(&rows), step: 0 },
            rows,
            len: shape[axis],
            dtype,
            params: vec![],
            op,
        };
        spec.drop_unit_rows();
        let src = self.loc(x)?;
        self.push_rows("arg_extreme", spec, vec![src, out], constant)
    }

    /// `layer_norm` (scale and bias) and `rms_norm` (scale only), over the axes from
    /// `axis` on.
    pub(super) fn normalize(
        &mut self,
        i: usize,
        x: Id,
        params: &[Id],
        axis: Id,
        eps: Id,
        layer: bool,
    ) -> Result<(), BackendError> {
        let x = usize::from(x);
        let shape = self.ty(x).shape.clone();
        let axis = self.int(axis) as usize;
        let eps = self.float(eps);
        let rows: Vec<usize> = shape[..axis].to_vec();
        let row_shape: Vec<usize> = shape[axis..].to_vec();
        let len: usize = row_shape.iter().product();
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if len == 0 || rows.contains(&0) {
            return Ok(());
        }
        let mut args = vec![self.loc(x)?];
        let mut strided = Vec::new();
        for &p in params {
            let (loc, step) = self.row_parameter(usize::from(p), &row_shape)?;
            args.push(loc);
            strided.push(Strided { strides: vec![0; rows.len()], step });
        }
        args.push(out);
        let strides = contiguous_strides(&rows).iter().map(|&s| s * len as isize).collect::<Vec<_>>();
        let mut spec = RowSpec {
            rows,
            len,
            dtype: DType::F32,
            x: Strided { strides: strides.clone(), step: 1 },
            out: Strided { strides, step: 1 },
            params: strided,
            op: if layer { RowOp::LayerNorm { eps } } else { RowOp::RmsNorm { eps } },
        };
        spec.drop_unit_rows();
        for p in &mut spec.params {
            p.strides = vec![0; spec.rows.len()];
        }
        self.push_rows("norm", spec, args, constant)
    }

    /// `global_avg_pool` and `global_max_pool`: a reduction over the spatial axes.
    pub(super) fn global_pool(&mut self, i: usize, x: Id, op: RowOp) -> Result<(), BackendError> {
        let x = usize::from(x);
        let shape = self.ty(x).shape.clone();
        let rows = shape[0] * shape[1];
        let len: usize = shape[2..].iter().product();
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if rows == 0 || len == 0 {
            return Ok(());
        }
        let spec = RowSpec {
            rows: vec![rows],
            len,
            dtype: DType::F32,
            x: Strided { strides: vec![len as isize], step: 1 },
            out: Strided { strides: vec![1], step: 0 },
            params: vec![],
            op,
        };
        let src = self.loc(x)?;
        self.push_rows("global_pool", spec, vec![src, out], constant)
    }

    /// A per-element parameter of a normalized row: its location and step (1 if it
    /// covers the row, 0 if it is one value), broadcast into a buffer otherwise.
    fn row_parameter(&mut self, p: usize, row_shape: &[usize]) -> Result<(Loc, isize), BackendError> {
        let len: usize = row_shape.iter().product();
        let numel = self.ty(p).numel();
        if numel == len {
            return Ok((self.loc(p)?, 1));
        }
        if numel == 1 {
            return Ok((self.loc(p)?, 0));
        }
        let dims = row_shape.to_vec();
        let spec = LoopSpec {
            operands: vec![Operand { dtype: DType::F32, strides: broadcast_strides(&self.ty(p).shape, &dims) }],
            exprs: vec![Expr::Load(0)],
            outputs: vec![Output { expr: 0, strides: contiguous_strides(&dims) }],
            dims,
        };
        let constant = self.fusion.constant[p];
        let buf = self.new_buffer(len * 4, constant);
        let src = self.loc(p)?;
        self.push_loop("broadcast", spec, vec![src, buf], constant)?;
        Ok((buf, 1))
    }

    /// `x` with `axes` consecutive: itself if they are, else a copy with them moved to
    /// the end (returned with its shape and the new axes).
    fn with_axes_consecutive(
        &mut self,
        x: usize,
        shape: &[usize],
        axes: &[usize],
        constant: bool,
    ) -> Result<(Loc, Vec<usize>, Vec<usize>), BackendError> {
        if axes.windows(2).all(|w| w[1] == w[0] + 1) {
            return Ok((self.loc(x)?, shape.to_vec(), axes.to_vec()));
        }
        let perm: Vec<usize> = (0..shape.len()).filter(|d| !axes.contains(d)).chain(axes.iter().copied()).collect();
        let new_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let own = contiguous_strides(shape);
        let dims = new_shape.clone();
        let dtype = self.ty(x).dtype;
        let spec = LoopSpec {
            operands: vec![Operand { dtype, strides: perm.iter().map(|&p| own[p]).collect() }],
            exprs: vec![Expr::Load(0)],
            outputs: vec![Output { expr: 0, strides: contiguous_strides(&dims) }],
            dims,
        };
        let buf = self.new_buffer(new_shape.iter().product::<usize>() * dtype.byte_size(), constant);
        let src = self.loc(x)?;
        self.push_loop("transpose", spec, vec![src, buf], constant)?;
        let k = shape.len() - axes.len();
        Ok((buf, new_shape, (k..shape.len()).collect()))
    }

    /// `lrn(x, size, alpha, beta, bias)` across channels.
    pub(super) fn lrn(&mut self, i: usize, x: Id, [size, alpha, beta, bias]: [Id; 4]) -> Result<(), BackendError> {
        let x = usize::from(x);
        let shape = self.ty(x).shape.clone();
        let spec = LrnSpec {
            batch: shape[0],
            channels: shape[1],
            spatial: shape[2..].iter().product(),
            size: self.int(size) as usize,
            alpha: self.float(alpha),
            beta: self.float(beta),
            bias: self.float(bias),
        };
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let planes = spec.batch * spec.channels;
        if planes * spec.spatial == 0 {
            return Ok(());
        }
        let per_outer = spec.spatial * spec.size;
        let index = self.jit.define("lrn", |b, params| crate::jit::window::generate_lrn(b, params, &spec))?;
        let src = self.loc(x)?;
        let program = self.wide.and_then(|isa| crate::wide::LrnProgram::new(&spec, isa)).map(crate::wide::Program::Lrn);
        self.steps.push(Step {
            kernel: Kernel::wide_or_loop(index, program, planes, per_outer),
            args: vec![src, out],
            writes: vec![false, true],
            constant,
        });
        Ok(())
    }

    /// Generates the row kernel of `spec` and adds its step; `args` are the input, the
    /// parameters, then the output.
    pub(super) fn push_rows(
        &mut self,
        what: &str,
        spec: RowSpec,
        args: Vec<Loc>,
        constant: bool,
    ) -> Result<(), BackendError> {
        if spec.row_count() == 0 || spec.len == 0 {
            return Ok(());
        }
        let index = self.jit.define(what, |b, params| crate::jit::rows::generate(b, params, &spec))?;
        let outer = spec.rows[0];
        // a row kernel reads its row two or three times, with an exp or a square on each
        let per_outer = spec.row_count() / outer.max(1) * spec.len * 4;
        let writes = (0..args.len()).map(|k| k + 1 == args.len()).collect();
        let program =
            self.wide.and_then(|isa| crate::wide::RowProgram::new(&spec, isa)).map(crate::wide::Program::Rows);
        let kernel = Kernel::wide_or_loop(index, program, outer, per_outer);
        self.steps.push(Step { kernel, args, writes, constant });
        Ok(())
    }
}
