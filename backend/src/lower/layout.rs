//! Layout ops as generated strided copies: each is a [`LoopSpec`] with one load, whose
//! operand strides say where every output element comes from (a permutation of the
//! input's strides, zeros for broadcast axes, the step times the stride for a slice), and
//! whose output may start at an offset (the part of a concatenation, the interior of a
//! padded tensor). A slice that is one contiguous block is a view and copies nothing.

use super::elementwise::{fill_spec, loop_dims};
use super::Lowering;
use crate::error::BackendError;
use crate::gather::GatherSpec;
use crate::loops::{broadcast_strides, contiguous_strides, Expr, LoopSpec, Operand, Output};
use crate::plan::{Kernel, Step};
use saturate_egraph::{DType, Id};

impl Lowering<'_> {
    /// A loop copying `x` (read with `strides` from `offset` elements in) into a fresh
    /// buffer for node `i`, converting to `to` if given.
    fn copy(
        &mut self,
        i: usize,
        x: usize,
        strides: Vec<isize>,
        offset: usize,
        to: Option<DType>,
    ) -> Result<(), BackendError> {
        let ty = self.ty(i).clone();
        let dims = loop_dims(&ty.shape);
        let strides = if ty.shape.is_empty() { vec![0] } else { strides };
        let from = self.ty(x).dtype;
        let src = self.loc(x)?.at(offset * from.byte_size());
        let mut exprs = vec![Expr::Load(0)];
        if let Some(to) = to {
            exprs.push(Expr::Cast(0, to));
        }
        let mut spec = LoopSpec {
            outputs: vec![Output { expr: exprs.len() - 1, strides: contiguous_strides(&dims) }],
            dims,
            operands: vec![Operand { dtype: from, strides }],
            exprs,
        };
        spec.read_in_memory_order(0);
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        self.push_loop(self.nodes[i].to_string().as_str(), spec, vec![src, out], constant)
    }

    pub(super) fn transpose(&mut self, i: usize, x: Id, perm: Id) -> Result<(), BackendError> {
        let x = usize::from(x);
        let own = contiguous_strides(&self.ty(x).shape);
        let strides = self.ints(perm).iter().map(|&p| own[p as usize]).collect();
        self.copy(i, x, strides, 0, None)
    }

    pub(super) fn expand(&mut self, i: usize, x: Id) -> Result<(), BackendError> {
        let x = usize::from(x);
        let strides = broadcast_strides(&self.ty(x).shape, &self.ty(i).shape);
        self.copy(i, x, strides, 0, None)
    }

    pub(super) fn cast(&mut self, i: usize, x: Id) -> Result<(), BackendError> {
        let x = usize::from(x);
        let strides = contiguous_strides(&self.ty(x).shape);
        let to = self.ty(i).dtype;
        self.copy(i, x, strides, 0, Some(to))
    }

    pub(super) fn slice(&mut self, i: usize, x: Id, starts: Id, steps: Id) -> Result<(), BackendError> {
        let x = usize::from(x);
        let in_shape = self.ty(x).shape.clone();
        let out_shape = self.ty(i).shape.clone();
        let own = contiguous_strides(&in_shape);
        let (starts, steps) = (self.ints(starts), self.ints(steps));
        let offset: isize = starts.iter().zip(&own).map(|(&s, &st)| s as isize * st).sum();
        let offset = usize::try_from(offset).expect("slice starts are clamped into the tensor");
        if is_contiguous_block(&in_shape, &out_shape, &steps) {
            let loc = self.loc(x)?.at(offset * self.ty(x).dtype.byte_size());
            self.locs[i] = Some(loc);
            return Ok(());
        }
        let strides = own.iter().zip(&steps).map(|(&st, &step)| st * step as isize).collect();
        self.copy(i, x, strides, offset, None)
    }

    pub(super) fn concat(&mut self, i: usize, children: &[Id]) -> Result<(), BackendError> {
        let axis = self.int(children[0]) as usize;
        let out_shape = self.ty(i).shape.clone();
        let out_strides = contiguous_strides(&out_shape);
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let mut along = 0usize;
        for &c in &children[1..] {
            let c = usize::from(c);
            let ty = self.ty(c).clone();
            let dims = loop_dims(&ty.shape);
            let part = out.at(along * out_strides[axis] as usize * ty.dtype.byte_size());
            let spec = LoopSpec {
                dims: dims.clone(),
                operands: vec![Operand { dtype: ty.dtype, strides: contiguous_strides(&dims) }],
                exprs: vec![Expr::Load(0)],
                outputs: vec![Output {
                    expr: 0,
                    strides: if ty.shape.is_empty() { vec![0] } else { out_strides.clone() },
                }],
            };
            let src = self.loc(c)?;
            if src != part {
                // not written in place (see `place_concat_inputs`)
                self.push_loop("concat", spec, vec![src, part], constant)?;
            }
            along += ty.shape[axis];
        }
        Ok(())
    }

    pub(super) fn pad(&mut self, i: usize, x: Id, pads: Id, value: Id) -> Result<(), BackendError> {
        let x = usize::from(x);
        let ty = self.ty(i).clone();
        let x_ty = self.ty(x).clone();
        let pads = self.ints(pads);
        let value = self.float(value);
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        self.push_loop("pad_fill", fill_spec(&ty.shape, ty.dtype, value), vec![out], constant)?;
        let out_strides = contiguous_strides(&ty.shape);
        let interior: isize = pads[..x_ty.rank()].iter().zip(&out_strides).map(|(&p, &s)| p as isize * s).sum();
        let dims = loop_dims(&x_ty.shape);
        let spec = LoopSpec {
            dims: dims.clone(),
            operands: vec![Operand { dtype: x_ty.dtype, strides: contiguous_strides(&dims) }],
            exprs: vec![Expr::Load(0)],
            outputs: vec![Output { expr: 0, strides: if x_ty.shape.is_empty() { vec![0] } else { out_strides } }],
        };
        let src = self.loc(x)?;
        let dst = out.at(interior as usize * ty.dtype.byte_size());
        self.push_loop("pad_copy", spec, vec![src, dst], constant)
    }
}

/// Whether slicing `in_shape` to `out_shape` with unit steps takes one contiguous block
/// of the row-major data: every axis after the first partial one is taken whole, and
/// every axis before it has one element.
fn is_contiguous_block(in_shape: &[usize], out_shape: &[usize], steps: &[i64]) -> bool {
    if steps.iter().any(|&s| s != 1) {
        return out_shape.iter().product::<usize>() <= 1;
    }
    let Some(first_partial) = (0..in_shape.len()).find(|&d| out_shape[d] != in_shape[d]) else { return true };
    out_shape[..first_partial].iter().all(|&d| d == 1)
        && (first_partial + 1..in_shape.len()).all(|d| out_shape[d] == in_shape[d])
}

impl Lowering<'_> {
    /// `gather(x, indices, axis)`.
    pub(super) fn gather_elements(&mut self, i: usize, x: Id, indices: Id, axis: Id) -> Result<(), BackendError> {
        let (x, indices) = (usize::from(x), usize::from(indices));
        let axis = self.int(axis) as usize;
        let spec = crate::gather::GatherElementsSpec {
            shape: self.ty(indices).shape.clone(),
            x_strides: crate::loops::contiguous_strides(&self.ty(x).shape),
            axis,
            dim: self.ty(x).shape[axis],
            dtype: self.ty(x).dtype,
        };
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let count = self.ty(indices).numel();
        if count == 0 {
            return Ok(());
        }
        let index =
            self.jit.define("gather_elements", |b, params| crate::jit::gather::generate_elements(b, params, &spec))?;
        let args = vec![self.loc(x)?, self.loc(indices)?, out];
        self.steps.push(Step {
            kernel: Kernel::Loop { index, outer: count, per_outer: 1 },
            args,
            writes: vec![false, false, true],
            constant,
        });
        Ok(())
    }

    /// `scatter_elements(x, indices, updates, axis, reduction)`: one single-threaded
    /// step, as repeated targets apply in order.
    pub(super) fn scatter_elements(
        &mut self,
        i: usize,
        operands: [Id; 3],
        axis: Id,
        reduction: Id,
    ) -> Result<(), BackendError> {
        let [x, indices, updates] = operands.map(usize::from);
        let axis = self.int(axis) as usize;
        let spec = crate::gather::ScatterSpec {
            shape: self.ty(indices).shape.clone(),
            x_strides: crate::loops::contiguous_strides(&self.ty(x).shape),
            axis,
            dim: self.ty(x).shape[axis],
            len: self.ty(x).numel(),
            reduction: self.int(reduction),
            dtype: self.ty(x).dtype,
        };
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if spec.len == 0 {
            return Ok(());
        }
        let index =
            self.jit.define("scatter_elements", |b, params| crate::jit::gather::generate_scatter(b, params, &spec))?;
        let args = vec![self.loc(x)?, self.loc(indices)?, self.loc(updates)?, out];
        self.steps.push(Step {
            kernel: Kernel::Loop { index, outer: 1, per_outer: spec.len },
            args,
            writes: vec![false, false, false, true],
            constant,
        });
        Ok(())
    }

    /// The index, counted from the start of an axis of `len`, if `indices` is one
    /// constant integer within it.
    fn constant_index(&self, indices: usize, len: usize) -> Option<usize> {
        let saturate_egraph::TensorLang::Weight([name, ..]) = self.nodes[indices] else { return None };
        let tensor = self.graph.weights.get(self.graph.name_of(name))?;
        if tensor.len() != 1 || tensor.dtype() != DType::I64 {
            return None;
        }
        let v = tensor.to_i64_vec()[0];
        let v = if v < 0 { v + len as i64 } else { v };
        (0..len as i64).contains(&v).then_some(v as usize)
    }

    pub(super) fn gather(&mut self, i: usize, x: Id, indices: Id, axis: Id) -> Result<(), BackendError> {
        let (x, indices) = (usize::from(x), usize::from(indices));
        let shape = self.ty(x).shape.clone();
        let axis = self.int(axis) as usize;
        if let Some(index) = self.constant_index(indices, shape[axis]) {
            // one element along the axis (Swin's q, k and v out of one tensor): a block
            // of the input read in place when nothing lies outside the axis, else a
            // strided copy, which splits across threads as the gather loop does not
            let own = contiguous_strides(&shape);
            let offset = index * own[axis] as usize;
            if shape[..axis].iter().product::<usize>() == 1 {
                self.locs[i] = Some(self.loc(x)?.at(offset * self.ty(x).dtype.byte_size()));
                return Ok(());
            }
            let index_dims = self.ty(indices).shape.len();
            let strides = own[..axis]
                .iter()
                .copied()
                .chain(std::iter::repeat_n(0, index_dims))
                .chain(own[axis + 1..].iter().copied())
                .collect();
            return self.copy(i, x, strides, offset, None);
        }
        let spec = GatherSpec {
            pre: shape[..axis].iter().product(),
            count: self.ty(indices).numel(),
            axis: shape[axis],
            post: shape[axis + 1..].iter().product(),
            dtype: self.ty(x).dtype,
        };
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        let outer = spec.pre * spec.count;
        if outer * spec.post == 0 {
            return Ok(());
        }
        let per_outer = spec.post;
        let index = self.jit.define("gather", |b, params| crate::jit::gather::generate(b, params, &spec))?;
        let args = vec![self.loc(x)?, self.loc(indices)?, out];
        self.steps.push(Step {
            kernel: Kernel::Loop { index, outer, per_outer },
            args,
            writes: vec![false, false, true],
            constant,
        });
        Ok(())
    }
}
