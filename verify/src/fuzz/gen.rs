//! Random well-shaped graphs, from a list of [`Instr`]uctions.
//!
//! Each instruction names an op, two operand choices and a seed for its attributes; the
//! [`build`]er applies them in order to a growing list of values, so a list is always a
//! valid program: an instruction whose op does not fit its operands (a matmul of
//! mismatched sizes, `and` on floats) is skipped, because the builder type-checks every
//! node. That makes shrinking natural: dropping instructions or lowering numbers gives a
//! smaller graph, never an invalid one.
//!
//! Shapes are small and odd on purpose: dimensions from {1, 2, 3, 4, 5, 7, 9}, so
//! broadcasting, size-1 axes and lengths that are not multiples of four (the SIMD
//! tails) come up constantly.
//!
//! Some ops jump where their operand crosses a point — floor and ceil at integers,
//! comparisons and casts at ties and zero, sqrt, log, reciprocal, division and pow at
//! zero or in sign. Fed a sum computed in another order (f32 against the interpreter's
//! f64, or a rewritten expression), they turn a last-bit difference into a different
//! answer. So each value records whether it is *exact* — computed from inputs and
//! constants by ops that only move, select or compare values — and those ops only take
//! exact operands. Both facts are each op's fuzz class in the op table
//! (`saturate_egraph::ops::Fuzz`); so are the ops to choose from, and the unary and
//! binary functions are generated from their rows (dtype, params by role), so a new
//! one is fuzzed without code here.

use crate::rng::Rng;
use saturate_egraph::ops::{Attr, BinaryDesc, Desc, Fuzz, UnaryDesc};
use saturate_egraph::{
    desc_of, Activation, BinaryOp, DType, Graph, GraphBuilder, Id, Language, Port, Tensor, TensorLang, TensorType,
};
use std::collections::BTreeMap;

/// One step of a generated program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instr {
    pub op: u8,
    pub a: u16,
    pub b: u16,
    pub seed: u32,
}

/// The ops instructions choose from (`op % OPS.len()`): `input` (a new input), then every
/// op of the language but the sources, in the order of the op table.
pub static OPS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    std::iter::once("input").chain(saturate_egraph::OPS.iter().copied().filter(|op| !SOURCES.contains(op))).collect()
});

const SOURCES: [&str; 3] = ["input", "weight", "fill"];

/// The fuzz class of an op, from its row of the op table.
fn class(op: &str) -> Fuzz {
    desc_of(op).map_or(Fuzz::EXACT, |d| d.fuzz())
}

const DIMS: &[usize] = &[1, 2, 3, 4, 5, 7, 9];

/// Builds the graph of `instrs`: one f32 input to start, each instruction's result a new
/// value, and the last value (and the last bool or i64 one, if any) as outputs.
pub fn build(instrs: &[Instr]) -> Graph {
    let mut g = Gen { b: GraphBuilder::default(), values: Vec::new(), inputs: Vec::new(), weights: BTreeMap::new() };
    let first = instrs.first().map_or(0, |i| i.seed);
    g.new_input(&mut Rng::new(u64::from(first)), None);
    for (k, instr) in instrs.iter().enumerate() {
        let mut rng = Rng::new(u64::from(instr.seed) ^ ((k as u64) << 40));
        g.apply(instr, &mut rng);
    }
    g.finish()
}

struct Gen {
    b: GraphBuilder,
    /// Every value so far: its node, type, and whether it is exact.
    values: Vec<(Id, TensorType, bool)>,
    inputs: Vec<Port>,
    weights: BTreeMap<String, Tensor>,
}

impl Gen {
    fn finish(self) -> Graph {
        let mut outputs = vec![Port { name: "y".into(), id: self.values.last().expect("an input at least").0 }];
        // and the last bool or i64 value: integer and boolean results that no later f32
        // value reads would otherwise be dead code
        if let Some(&(id, _, _)) =
            self.values.iter().rev().find(|(id, t, _)| t.dtype != DType::F32 && *id != outputs[0].id)
        {
            outputs.push(Port { name: "z".into(), id });
        }
        Graph { expr: self.b.expr, inputs: self.inputs, outputs, weights: self.weights }.canonicalize()
    }

    fn push(&mut self, node: TensorLang, exact: bool) -> Option<Id> {
        let id = self.b.add(node).ok()?;
        let ty = self.b.tensor_type(id)?.clone();
        if ty.numel() > 4096 {
            return None; // keep cases small and fast
        }
        self.values.push((id, ty, exact));
        Some(id)
    }

    fn is_exact(&self, id: Id) -> bool {
        // sources not in the list (fresh constants) are exact
        self.values.iter().find(|v| v.0 == id).is_none_or(|v| v.2)
    }

    /// The `k`-th value of `dtype` (among exact ones if `exact`).
    fn pick(&self, k: u16, dtype: DType, exact: bool) -> Option<(Id, TensorType)> {
        let fits: Vec<&(Id, TensorType, bool)> =
            self.values.iter().filter(|(_, t, e)| t.dtype == dtype && (*e || !exact)).collect();
        if fits.is_empty() {
            return None;
        }
        let (id, ty, _) = fits[k as usize % fits.len()];
        Some((*id, ty.clone()))
    }

    /// A weight of i64 indices into an axis of size `d`, drawn from `-d..d` (negative
    /// ones count from the end).
    fn random_indices(&mut self, rng: &mut Rng, shape: Vec<usize>, d: i64) -> Id {
        let n: usize = shape.iter().product();
        let idx: Vec<i64> = (0..n).map(|_| rng.range(-d, d - 1)).collect();
        let name = format!("i{}", self.weights.len());
        let t = Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), idx).expect("sizes"));
        self.weights.insert(name.clone(), t);
        self.b.weight(&name, &TensorType::new(DType::I64, shape))
    }

    fn random_shape(rng: &mut Rng, rank: usize) -> Vec<usize> {
        (0..rank).map(|_| *rng.pick(DIMS)).collect()
    }

    fn new_input(&mut self, rng: &mut Rng, shape: Option<Vec<usize>>) -> Id {
        let shape = shape.unwrap_or_else(|| {
            let rank = rng.below(5);
            Self::random_shape(rng, rank)
        });
        let name = format!("x{}", self.inputs.len());
        let id = self.b.input(&name, &TensorType::f32(shape.clone()));
        self.inputs.push(Port { name: name.clone(), id });
        self.values.push((id, TensorType::f32(shape), true));
        id
    }

    /// A constant operand: a weight with random data (positive if asked), or a fill.
    fn constant(&mut self, rng: &mut Rng, shape: &[usize], positive: bool) -> Id {
        if rng.chance(0.25) {
            // zero and one too: lowering treats those fills specially
            let v = match (positive, rng.below(4)) {
                (true, 0) => 1.0,
                (true, _) => 0.5 + rng.unit() as f32,
                (false, 0) => 0.0,
                (false, 1) => 1.0,
                _ => rng.normal() as f32,
            };
            return self.b.fill(v, shape);
        }
        let n: usize = shape.iter().product();
        let data: Vec<f32> =
            (0..n).map(|_| if positive { 0.5 + rng.unit() as f32 } else { rng.normal() as f32 }).collect();
        let name = format!("w{}", self.weights.len());
        let t = Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), data).expect("sizes match"));
        self.weights.insert(name.clone(), t);
        self.b.weight(&name, &TensorType::f32(shape.to_vec()))
    }

    /// A second operand for `x`: an existing value it broadcasts with, or a new input or
    /// constant of a shape that broadcasts (some axes 1, maybe fewer axes).
    fn partner(&mut self, rng: &mut Rng, choice: u16, x: &TensorType, exact: bool) -> Id {
        let fits: Vec<Id> = self
            .values
            .iter()
            .filter(|(_, t, e)| {
                t.dtype == x.dtype && (*e || !exact) && saturate_egraph::shape::broadcast(&t.shape, &x.shape).is_some()
            })
            .map(|(id, _, _)| *id)
            .collect();
        if !fits.is_empty() && rng.chance(0.5) {
            return fits[choice as usize % fits.len()];
        }
        let drop = if x.shape.is_empty() { 0 } else { rng.below(x.shape.len() + 1) };
        let shape: Vec<usize> = x.shape[drop..].iter().map(|&d| if rng.chance(0.3) { 1 } else { d }).collect();
        if x.dtype != DType::F32 {
            return self.b.fill(1.0, &shape); // rejected for non-f32 ops: the instruction is skipped
        }
        if rng.chance(0.5) {
            self.new_input(rng, Some(shape))
        } else {
            self.constant(rng, &shape, false)
        }
    }

    fn apply(&mut self, instr: &Instr, rng: &mut Rng) {
        let op = OPS[instr.op as usize % OPS.len()];
        let sensitive = class(op).sensitive;
        if op == "input" {
            self.new_input(rng, None);
            return;
        }
        let node = match desc_of(op) {
            Some(Desc::Unary(d)) => self.unary(instr, rng, d, sensitive),
            Some(Desc::Binary(d)) => self.binary(instr, rng, d, sensitive),
            _ => self.other(op, instr, rng, sensitive),
        };
        let Some(node) = node else { return };
        let exact = class(op).exact && node.children().iter().all(|&c| self.is_exact(c));
        self.push(node, exact);
    }

    /// A unary function of a value it is defined on, with params drawn by their roles.
    fn unary(&mut self, instr: &Instr, rng: &mut Rng, d: &UnaryDesc, sensitive: bool) -> Option<TensorLang> {
        let dtype = if d.float.is_some() || d.predicate.is_some() { DType::F32 } else { DType::Bool };
        let (x, _) = self.pick(instr.a, dtype, sensitive)?;
        let mut children = vec![x];
        if let [lo, hi] = d.params {
            if (lo.role, hi.role) == (Attr::ClipLo, Attr::ClipHi) {
                let (lo, hi) = *rng.pick(&[(-1.0, 1.0), (0.0, 6.0), (f32::NEG_INFINITY, 0.5), (-0.5, f32::INFINITY)]);
                children.extend([self.b.float(lo), self.b.float(hi)]);
            }
        }
        for p in &d.params[children.len() - 1..] {
            let v = match p.role {
                Attr::Flag01 => *rng.pick(&[0.0, 1.0]),
                _ => *rng.pick(&[0.01, 0.2, 1.5]),
            };
            children.push(self.b.float(v));
        }
        egg::FromOp::from_op(d.name, children).ok()
    }

    /// A binary op of two values that broadcast (bool ones for logical ops).
    fn binary(&mut self, instr: &Instr, rng: &mut Rng, d: &BinaryDesc, sensitive: bool) -> Option<TensorLang> {
        let op = BinaryOp::ALL.iter().copied().find(|op| op.desc().name == d.name).expect("a row of the table");
        if d.float.is_none() && d.compare.is_none() {
            if d.logical.is_some() {
                let (p, _) = self.pick(instr.a, DType::Bool, false)?;
                let (q, _) = self.pick(instr.b, DType::Bool, false)?;
                return Some(op.node([p, q]));
            }
            // integer-only ops (mod): an i64 value and non-zero divisors that broadcast
            let (p, pt) = self.pick(instr.a, DType::I64, false)?;
            let drop = if pt.shape.is_empty() { 0 } else { rng.below(pt.rank() + 1) };
            let shape: Vec<usize> = pt.shape[drop..].iter().map(|&d| if rng.chance(0.3) { 1 } else { d }).collect();
            let n: usize = shape.iter().product();
            let divisors: Vec<i64> = (0..n).map(|_| *rng.pick(&[-5i64, -3, -2, -1, 1, 2, 3, 7])).collect();
            let name = format!("i{}", self.weights.len());
            let t = Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), divisors).expect("sizes"));
            self.weights.insert(name.clone(), t);
            let q = self.b.weight(&name, &TensorType::new(DType::I64, shape));
            return Some(op.node([p, q]));
        }
        let (x, xt) = self.pick(instr.a, DType::F32, sensitive)?;
        let y = self.partner(rng, instr.b, &xt, sensitive);
        Some(op.node([x, y]))
    }

    /// Every other op, by name.
    fn other(&mut self, op: &str, instr: &Instr, rng: &mut Rng, sensitive: bool) -> Option<TensorLang> {
        use TensorLang as L;
        let (x, xt) = self.pick(instr.a, DType::F32, sensitive)?;
        let rank = xt.rank();
        Some(match op {
            "where" => {
                let (c, _) = self.pick(instr.b, DType::Bool, false)?;
                let y = self.partner(rng, instr.b, &xt, false);
                L::Where([c, x, y])
            }
            "cast" => {
                let source = match rng.below(3) {
                    0 => x,
                    1 => self.pick(instr.b, DType::Bool, true).map_or(x, |v| v.0),
                    _ => self.pick(instr.b, DType::I64, true).map_or(x, |v| v.0),
                };
                let to = *rng.pick(&DType::ALL);
                if to.is_storage_only() {
                    // through a stored type and back: its rounding, wrapping or saturation
                    let d = self.b.dtype(to);
                    let stored = self.b.add(L::Cast([source, d])).ok()?;
                    let back = self.b.dtype(to.compute());
                    L::Cast([stored, back])
                } else {
                    L::Cast([source, self.b.dtype(to)])
                }
            }
            "matmul" | "matmul_bias_act" => {
                if rank == 0 {
                    return None;
                }
                let k = xt.shape[rank - 1];
                let n = *rng.pick(DIMS);
                let batch: Vec<usize> =
                    if rank > 2 && rng.chance(0.5) { xt.shape[..rank - 2].to_vec() } else { Vec::new() };
                let mut shape = batch;
                shape.extend([k, n]);
                let w =
                    if rng.chance(0.5) { self.constant(rng, &shape, false) } else { self.new_input(rng, Some(shape)) };
                if op == "matmul" {
                    L::MatMul([x, w])
                } else {
                    let bias = self.constant(rng, &[n], false);
                    let act = self.b.add(L::Act(*rng.pick(&Activation::ALL))).expect("a leaf");
                    L::MatMulBiasAct([x, w, bias, act])
                }
            }
            "gemm" => {
                if rank != 2 {
                    return None;
                }
                let (ta, tb) = (rng.below(2) as i64, rng.below(2) as i64);
                let (m, k) = if ta == 1 { (xt.shape[1], xt.shape[0]) } else { (xt.shape[0], xt.shape[1]) };
                let n = *rng.pick(DIMS);
                let w = self.constant(rng, &if tb == 1 { [n, k] } else { [k, n] }, false);
                let c_shape: Vec<usize> = match rng.below(3) {
                    0 => vec![n],
                    1 => vec![m, n],
                    _ => vec![1],
                };
                let c = self.constant(rng, &c_shape, false);
                let (alpha, beta) = (self.b.float(*rng.pick(&[1.0, 0.5])), self.b.float(*rng.pick(&[1.0, 0.0, 2.0])));
                let (ta, tb) = (self.b.int(ta), self.b.int(tb));
                L::Gemm([x, w, c, alpha, beta, ta, tb])
            }
            "reduce_sum" | "reduce_prod" | "reduce_mean" | "reduce_max" | "reduce_min" => {
                let axes: Vec<i64> = (0..rank as i64).filter(|_| rng.chance(0.5)).collect();
                let (axes, keep) = (self.b.ints(axes), self.b.int(rng.below(2) as i64));
                match op {
                    "reduce_sum" => L::ReduceSum([x, axes, keep]),
                    "reduce_prod" => L::ReduceProd([x, axes, keep]),
                    "reduce_mean" => L::ReduceMean([x, axes, keep]),
                    "reduce_max" => L::ReduceMax([x, axes, keep]),
                    _ => L::ReduceMin([x, axes, keep]),
                }
            }
            "softmax" | "log_softmax" => {
                if rank == 0 {
                    return None;
                }
                let axis = self.b.int(rng.below(rank) as i64);
                if op == "softmax" {
                    L::Softmax([x, axis])
                } else {
                    L::LogSoftmax([x, axis])
                }
            }
            "cum_sum" => {
                if rank == 0 {
                    return None;
                }
                let axis = self.b.int(rng.below(rank) as i64);
                let (exclusive, reverse) = (self.b.int(rng.below(2) as i64), self.b.int(rng.below(2) as i64));
                L::CumSum([x, axis, exclusive, reverse])
            }
            "arg_max" | "arg_min" => {
                if rank == 0 {
                    return None;
                }
                let axis = self.b.int(rng.below(rank) as i64);
                let (keep, last) = (self.b.int(rng.below(2) as i64), self.b.int(rng.below(2) as i64));
                if op == "arg_max" {
                    L::ArgMax([x, axis, keep, last])
                } else {
                    L::ArgMin([x, axis, keep, last])
                }
            }
            "layer_norm" | "rms_norm" => {
                if rank == 0 {
                    return None;
                }
                let axis = rng.below(rank);
                let scale = self.constant(rng, &xt.shape[axis..], false);
                let (a, eps) = (self.b.int(axis as i64), self.b.float(1e-5));
                if op == "layer_norm" {
                    let bias = self.constant(rng, &xt.shape[axis..], false);
                    L::LayerNorm([x, scale, bias, a, eps])
                } else {
                    L::RmsNorm([x, scale, a, eps])
                }
            }
            "batch_norm" => {
                if rank < 2 {
                    return None;
                }
                let c = xt.shape[1];
                let (scale, bias, mean) =
                    (self.constant(rng, &[c], false), self.constant(rng, &[c], false), self.constant(rng, &[c], false));
                let var = self.constant(rng, &[c], true);
                let eps = self.b.float(1e-5);
                L::BatchNorm([x, scale, bias, mean, var, eps])
            }
            "lrn" => {
                if rank < 3 {
                    return None;
                }
                let size = self.b.int(*rng.pick(&[1, 2, 3, 5]));
                // 0.75 is every model's beta (the wide kernel's square roots); others
                // take its exp and ln
                let beta = *rng.pick(&[0.75, 0.75, 0.6, 1.0]);
                let (alpha, beta, bias) =
                    (self.b.float(1e-2), self.b.float(beta), self.b.float(*rng.pick(&[1.0, 2.0])));
                L::Lrn([x, size, alpha, beta, bias])
            }
            "reshape" => {
                let n = xt.numel();
                let divisors: Vec<usize> = (1..=n).filter(|d| n % d == 0).collect();
                let d = *rng.pick(&divisors);
                let shape = if rng.chance(0.5) { vec![n] } else { vec![d, n / d] };
                let s = self.b.dims(&shape);
                L::Reshape([x, s])
            }
            "flatten" => {
                let axis = self.b.int(rng.below(rank + 1) as i64);
                L::Flatten([x, axis])
            }
            "squeeze" => {
                let axes: Vec<i64> = (0..rank).filter(|&d| xt.shape[d] == 1).map(|d| d as i64).collect();
                let a = self.b.ints(axes);
                L::Squeeze([x, a])
            }
            "unsqueeze" => {
                let a = self.b.ints(vec![rng.below(rank + 1) as i64]);
                L::Unsqueeze([x, a])
            }
            "transpose" => {
                let p = self.b.ints(rng.permutation(rank));
                L::Transpose([x, p])
            }
            "expand" => {
                let shape: Vec<usize> = xt.shape.iter().map(|&d| if d == 1 { *rng.pick(DIMS) } else { d }).collect();
                let mut shape = shape;
                if rng.chance(0.3) {
                    shape.insert(0, *rng.pick(DIMS));
                }
                let s = self.b.dims(&shape);
                L::Expand([x, s])
            }
            "concat" => {
                if rank == 0 {
                    return None;
                }
                let axis = rng.below(rank);
                let mut other = xt.shape.clone();
                other[axis] = *rng.pick(DIMS);
                let y = if rng.chance(0.5) { x } else { self.new_input(rng, Some(other)) };
                let a = self.b.int(axis as i64);
                L::Concat(vec![a, x, y].into_boxed_slice())
            }
            "slice" => {
                let (mut starts, mut ends, mut steps) = (Vec::new(), Vec::new(), Vec::new());
                for &d in &xt.shape {
                    let step = *rng.pick(&[1i64, 1, 2, -1]);
                    let (s, e) = if step > 0 {
                        let s = rng.below(d) as i64;
                        (s, s + 1 + rng.below(d - s as usize) as i64)
                    } else {
                        let s = rng.below(d) as i64;
                        (s, rng.range(-1, s - 1))
                    };
                    starts.push(s);
                    ends.push(e);
                    steps.push(step);
                }
                let (s, e, st) = (self.b.ints(starts), self.b.ints(ends), self.b.ints(steps));
                L::Slice([x, s, e, st])
            }
            "gather" => {
                if rank == 0 {
                    return None;
                }
                let axis = rng.below(rank);
                let d = xt.shape[axis] as i64;
                let count = *rng.pick(&[1usize, 2, 3, 5]);
                let indices = self.random_indices(rng, vec![count], d);
                let a = self.b.int(axis as i64);
                L::Gather([x, indices, a])
            }
            "gather_elements" => {
                if rank == 0 {
                    return None;
                }
                // indices no larger than x off the axis, any length along it
                let axis = rng.below(rank);
                let d = xt.shape[axis] as i64;
                let shape: Vec<usize> = (0..rank)
                    .map(|k| if k == axis { *rng.pick(&[1usize, 2, 3, 5]) } else { 1 + rng.below(xt.shape[k]) })
                    .collect();
                let indices = self.random_indices(rng, shape, d);
                let a = self.b.int(axis as i64);
                L::GatherElements([x, indices, a])
            }
            "scatter_elements" => {
                if rank == 0 {
                    return None;
                }
                // indices no larger than x, updates of their shape (repeated targets
                // apply in order, on every engine alike)
                let axis = rng.below(rank);
                let d = xt.shape[axis] as i64;
                let shape: Vec<usize> = (0..rank).map(|k| 1 + rng.below(xt.shape[k])).collect();
                let indices = self.random_indices(rng, shape.clone(), d);
                let updates = self.new_input(rng, Some(shape));
                let reduction = rng.below(saturate_egraph::ops::SCATTER_REDUCTIONS.len()) as i64;
                let (a, r) = (self.b.int(axis as i64), self.b.int(reduction));
                L::ScatterElements([x, indices, updates, a, r])
            }
            "conv" | "conv_bias_act" => {
                if !(3..=4).contains(&rank) {
                    return None;
                }
                let spatial = rank - 2;
                let c = xt.shape[1];
                let group = *rng.pick(&[1, 1, c]);
                let m = group * *rng.pick(&[1usize, 2, 3]);
                let kernel: Vec<usize> = (0..spatial).map(|d| 1 + rng.below(xt.shape[2 + d].min(3))).collect();
                let mut wshape = vec![m, c / group];
                wshape.extend(&kernel);
                let w = self.constant(rng, &wshape, false);
                let bias = self.constant(rng, &[m], false);
                let strides: Vec<usize> = (0..spatial).map(|_| 1 + rng.below(2)).collect();
                let pads: Vec<usize> = (0..2 * spatial).map(|_| rng.below(2)).collect();
                let dilations: Vec<usize> = (0..spatial).map(|_| 1 + rng.below(2)).collect();
                let (s, p, d, g) =
                    (self.b.dims(&strides), self.b.dims(&pads), self.b.dims(&dilations), self.b.int(group as i64));
                if op == "conv" {
                    L::Conv([x, w, bias, s, p, d, g])
                } else {
                    let act = self.b.add(L::Act(*rng.pick(&Activation::ALL))).expect("a leaf");
                    L::ConvBiasAct([x, w, bias, s, p, d, g, act])
                }
            }
            "winograd_weights" | "winograd_conv" => {
                // a 3×3 convolution by Winograd's algorithm: pads of 0 or 1 that leave
                // an output, and the weights transformed by the op before
                if rank != 4 {
                    return None;
                }
                let pads: Vec<usize> = (0..4).map(|_| rng.below(2)).collect();
                if (0..2).any(|d| xt.shape[2 + d] + pads[d] + pads[d + 2] < 3) {
                    return None;
                }
                let m = *rng.pick(&[1usize, 2, 3, 5]);
                let w = self.constant(rng, &[m, xt.shape[1], 3, 3], false);
                let tile = self.b.int(*rng.pick(&[2, 4]));
                if op == "winograd_weights" {
                    return Some(L::WinogradWeights([w, tile]));
                }
                let u = self.b.add(L::WinogradWeights([w, tile])).expect("3×3 filters");
                let bias = self.constant(rng, &[m], false);
                let act = self.b.add(L::Act(*rng.pick(&Activation::ALL))).expect("a leaf");
                L::WinogradConv([x, u, bias, self.b.dims(&pads), tile, act])
            }
            "max_pool" | "avg_pool" => {
                if !(3..=4).contains(&rank) {
                    return None;
                }
                let spatial = rank - 2;
                let kernel: Vec<usize> = (0..spatial).map(|d| 1 + rng.below(xt.shape[2 + d].min(3))).collect();
                let strides: Vec<usize> = (0..spatial).map(|_| 1 + rng.below(2)).collect();
                let pads: Vec<usize> = (0..2 * spatial).map(|i| rng.below(kernel[i % spatial])).collect();
                let (k, s, p) = (self.b.dims(&kernel), self.b.dims(&strides), self.b.dims(&pads));
                let (d, ceil) = (self.b.dims(&vec![1; spatial]), self.b.int(rng.below(2) as i64));
                if op == "max_pool" {
                    L::MaxPool([x, k, s, p, d, ceil])
                } else {
                    let include = self.b.int(rng.below(2) as i64);
                    L::AvgPool([x, k, s, p, d, ceil, include])
                }
            }
            "global_avg_pool" => L::GlobalAvgPool(x),
            "global_max_pool" => L::GlobalMaxPool(x),
            "pad" => {
                let pads: Vec<usize> = (0..2 * rank).map(|_| rng.below(3)).collect();
                let (p, v) = (self.b.dims(&pads), self.b.float(*rng.pick(&[0.0, 1.5])));
                L::Pad([x, p, v])
            }
            "attention" => {
                if rank < 2 {
                    return None;
                }
                let (d, t, e) = (xt.shape[rank - 1], *rng.pick(DIMS), *rng.pick(DIMS));
                let batch = &xt.shape[..rank - 2];
                let with = |last: [usize; 2]| batch.iter().copied().chain(last).collect::<Vec<_>>();
                let k = self.new_input(rng, Some(with([t, d])));
                let v = self.new_input(rng, Some(with([t, e])));
                let scale = self.b.float(*rng.pick(&[0.125, 1.0]));
                L::Attention([x, k, v, scale])
            }
            other => unreachable!("{other} is in OPS but has no generator in verify/src/fuzz/gen.rs"),
        })
    }
}
