//! Elementwise groups to loops: one [`LoopSpec`] per group, iterating over the shape of
//! the group's root (the node whose value leaves the group).
//!
//! Every member of a group has a shape that broadcasts to the root's, so every value a
//! member reads from outside the group is read with broadcast strides over the root's
//! shape (a member's own broadcasting composes with its consumer's). `fill` constants
//! become literals; batch-norm's per-channel vectors are read along the channel axis.

use super::Lowering;
use crate::error::BackendError;
use crate::loops::{broadcast_strides, contiguous_strides, Binary, Expr, LoopSpec, Operand, Output, Unary};
use crate::plan::Loc;
use saturate_egraph::{Activation, DType, Id, UnaryOp, View};
use std::collections::HashMap;

/// A loop that sets every element of a `shape` tensor to `value`.
pub fn fill_spec(shape: &[usize], dtype: DType, value: f32) -> LoopSpec {
    let dims = loop_dims(shape);
    let mut exprs = vec![match dtype.compute() {
        DType::F32 => Expr::F32(value),
        DType::I64 => Expr::I64(value as i64),
        _ => Expr::Bool(value != 0.0),
    }];
    if dtype.is_storage_only() {
        exprs.push(Expr::Cast(0, dtype));
    }
    LoopSpec {
        outputs: vec![Output { expr: exprs.len() - 1, strides: contiguous_strides(&dims) }],
        dims,
        operands: vec![],
        exprs,
    }
}

/// The loop dimensions for a tensor shape: a scalar is one element.
pub fn loop_dims(shape: &[usize]) -> Vec<usize> {
    if shape.is_empty() {
        vec![1]
    } else {
        shape.to_vec()
    }
}

/// The unary op an activation applies, if any.
pub fn activation_op(act: Activation) -> Option<Unary> {
    act.unary().map(Unary::of)
}

/// Builds one loop: its spec and the locations of its operands.
struct GroupBuilder {
    spec: LoopSpec,
    args: Vec<Loc>,
    exprs_of: HashMap<usize, usize>,
    operands_of: HashMap<(usize, Vec<isize>), usize>,
}

impl GroupBuilder {
    fn push(&mut self, e: Expr) -> usize {
        self.spec.exprs.push(e);
        self.spec.exprs.len() - 1
    }
}

impl Lowering<'_> {
    /// Lowers the group whose root is `root` and whose members (in order) are `members`.
    pub(super) fn lower_group(&mut self, root: usize, members: &[usize]) -> Result<(), BackendError> {
        let dims = loop_dims(&self.ty(root).shape);
        let mut g = GroupBuilder {
            spec: LoopSpec { dims: dims.clone(), operands: vec![], exprs: vec![], outputs: vec![] },
            args: vec![],
            exprs_of: HashMap::new(),
            operands_of: HashMap::new(),
        };
        for &m in members {
            let e = self.member(&mut g, m)?;
            g.exprs_of.insert(m, e);
        }
        let out = self.output(root);
        g.spec.outputs.push(Output { expr: g.exprs_of[&root], strides: contiguous_strides(&dims) });
        g.args.push(out);
        let constant = self.fusion.constant[root];
        self.push_loop(self.nodes[root].to_string().as_str(), g.spec, g.args, constant)
    }

    /// The expression for node `c` read by the group: its own expression if it is a
    /// member, a literal if it is a `fill`, else a load with `strides` (broadcast strides
    /// over the loop when `None`).
    fn read(&mut self, g: &mut GroupBuilder, c: Id, strides: Option<Vec<isize>>) -> Result<usize, BackendError> {
        let c = usize::from(c);
        if let Some(&e) = g.exprs_of.get(&c) {
            return Ok(e);
        }
        if let Some(v) = self.splat(c) {
            return Ok(g.push(Expr::F32(v)));
        }
        if let Some((bias, channel)) = self.deferred_bias[c].clone() {
            if strides.is_none() && self.ty(c).shape == g.spec.dims {
                let value = self.load(g, c, contiguous_strides(&g.spec.dims))?;
                let bias = self.read(g, Id::from(bias), Some(channel))?;
                return Ok(g.push(Expr::Binary(Binary::Add, value, bias)));
            }
            // read another way (broadcast): add the bias in a pass of its own first
            let shape = self.ty(c).shape.clone();
            let loc = self.loc(c)?;
            self.epilogue(loc, &shape, Some((bias, channel, 1.0)), None, false)?;
            self.deferred_bias[c] = None;
        }
        let strides = strides.unwrap_or_else(|| broadcast_strides(&self.ty(c).shape, &g.spec.dims));
        self.load(g, c, strides)
    }

    /// A load of node `c` with `strides` over the loop (one operand per node and strides).
    fn load(&mut self, g: &mut GroupBuilder, c: usize, strides: Vec<isize>) -> Result<usize, BackendError> {
        let key = (c, strides.clone());
        let operand = match g.operands_of.get(&key) {
            Some(&k) => k,
            None => {
                let loc = self.loc(c)?;
                g.spec.operands.push(Operand { dtype: self.ty(c).dtype, strides });
                g.args.push(loc);
                g.operands_of.insert(key, g.spec.operands.len() - 1);
                g.spec.operands.len() - 1
            }
        };
        Ok(g.push(Expr::Load(operand)))
    }

    fn member(&mut self, g: &mut GroupBuilder, m: usize) -> Result<usize, BackendError> {
        use View as L;
        let node = self.nodes[m].clone();
        let e = match node.view() {
            L::Unary(op, c) => {
                let mut params = [0.0; 2];
                for (p, &id) in params.iter_mut().zip(&c[1..]) {
                    *p = self.float(id);
                }
                let x = self.read(g, c[0], None)?;
                g.push(Expr::Unary(Unary { op, params }, x))
            }
            L::Binary(op, &[a, b]) => self.binary(g, op, a, b)?,
            L::Where(&[c, a, b]) => {
                let c = self.read(g, c, None)?;
                let a = self.read(g, a, None)?;
                let b = self.read(g, b, None)?;
                g.push(Expr::Where(c, a, b))
            }
            L::BatchNorm(&[x, scale, bias, mean, var, eps]) => {
                self.batch_norm(g, m, [x, scale, bias, mean, var], eps)?
            }
            _ => unreachable!("{node} is not an elementwise op"),
        };
        Ok(e)
    }

    fn binary(&mut self, g: &mut GroupBuilder, op: Binary, a: Id, b: Id) -> Result<usize, BackendError> {
        // `fill` literals are f32, and type checking puts them only beside f32 operands
        let x = self.read(g, a, None)?;
        let y = self.read(g, b, None)?;
        if op == Binary::Pow && self.ty(usize::from(a)).dtype == DType::F32 {
            // x² and x³ as products (GPT-2's GELU cubes its input): the loop then needs
            // no logarithm and exponential, and may run on the wide vectors, which have
            // no pow; within an ulp and a half of powf
            match g.spec.exprs[y] {
                Expr::F32(2.0) => return Ok(g.push(Expr::Binary(Binary::Mul, x, x))),
                Expr::F32(3.0) => {
                    let square = g.push(Expr::Binary(Binary::Mul, x, x));
                    return Ok(g.push(Expr::Binary(Binary::Mul, square, x)));
                }
                _ => {}
            }
        }
        Ok(g.push(Expr::Binary(op, x, y)))
    }

    /// `(x − mean) / √(var + ε) · scale + bias`, the vectors read along the channel axis.
    fn batch_norm(
        &mut self,
        g: &mut GroupBuilder,
        node: usize,
        [x, scale, bias, mean, var]: [Id; 5],
        eps: Id,
    ) -> Result<usize, BackendError> {
        // the node's channel axis (its axis 1) within the loop, which runs over the
        // group root's shape: aligned on the right, as broadcasting aligns them
        let shape = self.ty(node).shape.clone();
        let mut channel = vec![0isize; g.spec.dims.len()];
        if shape.len() > 1 && shape[1] > 1 {
            channel[g.spec.dims.len() - shape.len() + 1] = 1;
        }
        let x = self.read(g, x, None)?;
        let per_channel = |this: &mut Self, g: &mut GroupBuilder, v: Id| this.read(g, v, Some(channel.clone()));
        let constant = |v: &Id| self.fusion.constant[usize::from(*v)];
        let one_shape = self.ty(usize::from(scale)).shape == self.ty(usize::from(var)).shape;
        if !self.fusion.constant[node] && [scale, bias, mean, var].iter().all(constant) && one_shape {
            // constant statistics (every exported model's): `scale / √(var + ε)` once a
            // channel, at compile time, rather than a square root and a division for
            // every element (BN + ReLU alone on a Zen 3 core 0.59 → 0.48 ms at 224×56²;
            // DenseNet-121 the same, its normalizations waiting on memory); the
            // centring stays first, so no cancellation is added
            let factor = self.batch_norm_factor(scale, var, eps)?;
            let mean = per_channel(self, g, mean)?;
            let centered = g.push(Expr::Binary(Binary::Sub, x, mean));
            let factor = {
                g.spec.operands.push(Operand { dtype: DType::F32, strides: channel.clone() });
                g.args.push(factor);
                g.push(Expr::Load(g.spec.operands.len() - 1))
            };
            let scaled = g.push(Expr::Binary(Binary::Mul, centered, factor));
            let bias = per_channel(self, g, bias)?;
            return Ok(g.push(Expr::Binary(Binary::Add, scaled, bias)));
        }
        let (scale, bias, mean, var) = (
            per_channel(self, g, scale)?,
            per_channel(self, g, bias)?,
            per_channel(self, g, mean)?,
            per_channel(self, g, var)?,
        );
        let eps = g.push(Expr::F32(self.float(eps)));
        let centered = g.push(Expr::Binary(Binary::Sub, x, mean));
        let var_eps = g.push(Expr::Binary(Binary::Add, var, eps));
        let std = g.push(Expr::Unary(Unary::of(UnaryOp::Sqrt), var_eps));
        let normalized = g.push(Expr::Binary(Binary::Div, centered, std));
        let scaled = g.push(Expr::Binary(Binary::Mul, normalized, scale));
        Ok(g.push(Expr::Binary(Binary::Add, scaled, bias)))
    }

    /// A constant buffer of `scale / √(var + ε)`, one value a channel, computed by a
    /// loop that runs once, at compile time.
    fn batch_norm_factor(&mut self, scale: Id, var: Id, eps: Id) -> Result<Loc, BackendError> {
        let (scale, var) = (usize::from(scale), usize::from(var));
        let dims = loop_dims(&self.ty(var).shape);
        let strides = |this: &Self, v: usize| broadcast_strides(&this.ty(v).shape, &dims);
        let operands = vec![
            Operand { dtype: DType::F32, strides: strides(self, scale) },
            Operand { dtype: DType::F32, strides: strides(self, var) },
        ];
        let exprs = vec![
            Expr::Load(0),
            Expr::Load(1),
            Expr::F32(self.float(eps)),
            Expr::Binary(Binary::Add, 1, 2),
            Expr::Unary(Unary::of(UnaryOp::Sqrt), 3),
            Expr::Binary(Binary::Div, 0, 4),
        ];
        let outputs = vec![Output { expr: 5, strides: contiguous_strides(&dims) }];
        let factor = self.new_buffer(dims.iter().product::<usize>() * 4, true);
        let args = vec![self.loc(scale)?, self.loc(var)?, factor];
        self.push_loop("batch_norm_factor", LoopSpec { dims, operands, exprs, outputs }, args, true)?;
        Ok(factor)
    }
}
