//! Which cases f32 can compute: the part of the oracle that tells "wrong" from "not
//! computable in f32".
//!
//! The interpreter accumulates every sum in f64 and rounds once; a compiled program, like
//! any f32 runtime, sums in f32. Summing k terms tᵢ in f32 may be off by up to
//! (k − 1)·u·Σ|tᵢ| in the worst order (u = 2⁻²⁴, the unit roundoff), and is typically off
//! by about √k·u·Σ|tᵢ|, rounding errors being as likely up as down. Where even that
//! typical error exceeds the tolerance outputs are compared with — a product whose terms
//! cancel to a result far below their magnitudes — or where the terms sum past the
//! largest f32 while the exact result does not, f32 evaluation cannot be expected to
//! agree with the interpreter in any order, and a disagreement says nothing about the
//! compiler. Such a case is **beyond f32**: the fuzz report counts it apart, never as a
//! pass and never as a mismatch. (The worst-case bound would be the wrong test: it
//! exceeds the tolerance for any long sum of mixed signs, which f32 computes well, and
//! would hide a compiler that does not.)
//!
//! The ops checked are those that sum terms in f32 with no way back: products
//! (`matmul`, `gemm`, `matmul_bias_act`, the scores of `attention`), convolutions, and
//! sums over rows and windows (`reduce_sum`, `reduce_mean`, `avg_pool`,
//! `global_avg_pool`). Σ|tᵢ| is the same op evaluated on the absolute values of its
//! operands (activations left out). Normalizations are not listed: their results are
//! bounded, and the compiled row kernels redo in f64 any row whose f32 statistics
//! overflow, so f32 can compute them. Softmax and log-softmax are, for another reason:
//! they subtract each row's maximum, which turns the few roundings by which the engines'
//! inputs differ (a relative 4u assumed of any computed value) into an absolute error
//! of 4u·max|x|, far beyond the tolerance for rows of large, close values.
//!
//! Values that are infinite or NaN are a separate matter: IEEE arithmetic defines them,
//! the compiled program must produce them as the interpreter does, and [`Range::finite`]
//! records whether any occur (rewrite rules, laws of real arithmetic, are checked only
//! where none do).

use crate::compare::RTOL;
use crate::interp::eval_node;
use saturate_egraph::{Activation, DType, Float, Graph, Id, Language, Port, RecExpr, Tensor, TensorLang, View};

/// The unit roundoff of f32.
const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 24) as f64;

/// The absolute tolerance of a fuzz comparison: 1e-4 of the largest finite magnitude of
/// the expected tensor, at least 1e-4 (reductions and products sum in another order on
/// each side).
pub fn absolute_tolerance(expected: &Tensor) -> f64 {
    let scale = match expected {
        Tensor::F32(a) => a.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs())) as f64,
        _ => 0.0,
    };
    1e-4 * scale.max(1.0)
}

/// What one evaluation of a graph on given inputs tells about f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// Every f32 value the graph computes is finite.
    pub finite: bool,
    /// Why the case is beyond f32 (the first node found), if it is.
    pub beyond: Option<String>,
}

/// Evaluates every value of `graph` on `inputs` with the interpreter and assesses them.
pub fn assess(graph: &Graph, inputs: &[Tensor]) -> Result<Range, String> {
    let values = all_values(graph, inputs)?;
    let finite = values.iter().flatten().all(|v| v.as_f32().is_none_or(|a| a.iter().all(|x| x.is_finite())));
    for (id, node) in graph.expr.items() {
        if let Some(why) = beyond_f32(&graph.expr, id, node, &values)? {
            return Ok(Range { finite, beyond: Some(format!("node #{} ({}): {why}", usize::from(id), node)) });
        }
    }
    Ok(Range { finite, beyond: None })
}

/// The value of every tensor node (`None` for attributes).
fn all_values(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>, String> {
    let metas = graph.check().map_err(|e| e.to_string())?;
    let ids: Vec<usize> = (0..graph.expr.len()).filter(|&i| metas[i].tensor().is_some()).collect();
    let mut every = graph.clone();
    every.outputs = ids.iter().map(|&i| Port { name: format!("n{i}"), id: Id::from(i) }).collect();
    let outputs = crate::run(&every, inputs).map_err(|e| format!("the interpreter failed: {e}"))?;
    let mut values = vec![None; graph.expr.len()];
    for (i, v) in ids.into_iter().zip(outputs) {
        values[i] = Some(v);
    }
    Ok(values)
}

/// Why summing node `id`'s terms in f32 may miss the interpreter's result by more than
/// the tolerance, if it may.
fn beyond_f32(
    expr: &RecExpr<TensorLang>,
    id: Id,
    node: &TensorLang,
    values: &[Option<Tensor>],
) -> Result<Option<String>, String> {
    use TensorLang as L;
    let value = |c: &Id| values[usize::from(*c)].as_ref();
    let shape = |c: &Id| value(c).map_or(&[][..], |t| t.shape());
    let Some(result) = value(&id) else { return Ok(None) };
    if result.ty().dtype != DType::F32 || result.shape().contains(&0) {
        return Ok(None);
    }
    let mut probe = Probe { expr: expr.clone(), values };
    // (terms each output sums, the signed sums, Σ|terms|)
    use View as V;
    let (terms, signed, magnitude) = match node.view() {
        V::MatMul([a, _]) => (shape(a).last().copied().unwrap_or(1), result.clone(), probe.absolute(node)?),
        V::Gemm([a, _, _, alpha, beta, ta, _]) => {
            let k = if probe.int(*ta) != 0 { shape(a)[0] } else { shape(a)[1] };
            let positive =
                node.clone().map_children(|c| if c == *alpha || c == *beta { probe.abs_float(c) } else { c });
            (k + 1, result.clone(), probe.absolute(&positive)?)
        }
        V::MatMulBiasAct([a, b, bias, _]) => {
            let linear = L::MatMulBiasAct([*a, *b, *bias, probe.no_activation()]);
            let signed = probe.signed(&linear)?;
            (shape(a).last().copied().unwrap_or(1) + 1, signed, probe.absolute(&linear)?)
        }
        V::Conv([_, w, ..]) => (shape(w)[1..].iter().product::<usize>() + 1, result.clone(), probe.absolute(node)?),
        V::ConvBiasAct([x, w, b, s, p, d, g, _]) => {
            let linear = L::ConvBiasAct([*x, *w, *b, *s, *p, *d, *g, probe.no_activation()]);
            let signed = probe.signed(&linear)?;
            (shape(w)[1..].iter().product::<usize>() + 1, signed, probe.absolute(&linear)?)
        }
        V::WinogradWeights(_) => (9, result.clone(), probe.absolute(node)?),
        V::WinogradConv([x, u, b, p, tile, _]) => {
            // the transforms add terms of either sign and of different sizes, which
            // rounds more than the direct sums: counted as α²·g² terms per channel, g a
            // rough bound on the coefficients' growth (1 for F(2×2), whose coefficients
            // are ±1; 10 for F(4×4), whose rows of Bᵀ sum to 10 in magnitude)
            let area = shape(u).first().copied().unwrap_or(16);
            let growth_squared = if probe.int(*tile) == 4 { 100 } else { 1 };
            let linear = L::WinogradConv([*x, *u, *b, *p, *tile, probe.no_activation()]);
            let terms = shape(x).get(1).copied().unwrap_or(1) * area * growth_squared + 1;
            (terms, probe.signed(&linear)?, probe.absolute(&linear)?)
        }
        V::ReduceSum([x, ..]) | V::ReduceMean([x, ..]) | V::GlobalAvgPool(x) => {
            let (n, m) = (shape(x).iter().product::<usize>(), result.shape().iter().product::<usize>());
            (n / m.max(1), result.clone(), probe.absolute(node)?)
        }
        V::AvgPool([_, kernel, ..]) => {
            let k = probe.ints(*kernel).iter().product::<i64>() as usize;
            (k, result.clone(), probe.absolute(node)?)
        }
        V::Attention([q, k, _, _]) => {
            // the scores q·kᵀ: the rest (softmax, then weights in [0, 1] that sum to 1
            // times v) stays within v's magnitude
            let rank = shape(k).len();
            let mut perm: Vec<i64> = (0..rank as i64).collect();
            perm.swap(rank - 1, rank - 2);
            let perm = probe.expr.add(L::Ints(saturate_egraph::IntList(perm)));
            let kt = probe.expr.add(L::Transpose([*k, perm]));
            let scores = L::MatMul([*q, kt]);
            (shape(q).last().copied().unwrap_or(1), probe.signed(&scores)?, probe.absolute(&scores)?)
        }
        // no sums, or sums the compiled program computes robustly (row kernels redo
        // rows whose f32 statistics overflow in f64; softmax sums values in [0, 1])
        V::Input(_) | V::Weight(_) | V::Fill(_) | V::Leaf | V::Unary(..) | V::Binary(..) | V::Cast(_) | V::Where(_) => {
            return Ok(None)
        }
        // products: the compiled program multiplies in f64
        V::ArgMax(_) | V::ArgMin(_) | V::ReduceProd(_) | V::CumSum(_) => return Ok(None),
        V::Softmax([x, axis]) => return probe.shifted_by_row_max(*x, *axis, result, false),
        V::LogSoftmax([x, axis]) => return probe.shifted_by_row_max(*x, *axis, result, true),
        V::ReduceMax(_) | V::ReduceMin(_) | V::LayerNorm(_) | V::RmsNorm(_) => return Ok(None),
        V::BatchNorm(_) | V::Lrn(_) | V::MaxPool(_) | V::GlobalMaxPool(_) | V::Pad(_) => return Ok(None),
        V::Reshape(_) | V::Flatten(_) | V::Squeeze(_) | V::Unsqueeze(_) | V::Transpose(_) | V::Expand(_) => {
            return Ok(None)
        }
        V::Concat(_) | V::Slice(_) | V::Gather(_) | V::GatherElements(_) | V::ScatterElements(_) => return Ok(None),
    };
    Ok(exceeds_tolerance(terms, &signed, &magnitude))
}

/// Where the typical f32 error of the sums, √k·u·Σ|t|, exceeds the tolerance of a
/// finite result, or Σ|t| overflows f32, says so.
fn exceeds_tolerance(terms: usize, signed: &Tensor, magnitude: &Tensor) -> Option<String> {
    let (Tensor::F32(r), Tensor::F32(m)) = (signed, magnitude) else { return None };
    let atol = absolute_tolerance(signed);
    let slack = (terms as f64).sqrt() * UNIT_ROUNDOFF;
    for (&r, &m) in r.iter().zip(m.iter()) {
        if !r.is_finite() {
            continue; // infinite or NaN whatever the order: both sides must agree
        }
        if m.is_infinite() {
            return Some(format!("its terms sum past the largest f32 ({}), its result is {r}", f32::MAX));
        }
        let bound = slack * m as f64;
        if bound > atol + RTOL * (r as f64).abs() {
            return Some(format!(
                "summing {terms} terms of total magnitude {m:e} to {r:e} in f32 is typically off by {bound:.2e}, \
                 more than the tolerance"
            ));
        }
    }
    None
}

/// The relative error assumed of a value the graph computes: a few roundings, in which
/// the two engines differ (the interpreter's libm and f64 sums against the compiled
/// program's polynomials and f32 ones).
const COMPUTED_ERROR: f64 = 4.0 * UNIT_ROUNDOFF;

impl Probe<'_> {
    /// Softmax and log-softmax subtract each row's maximum, so an error of δ·|x| in an
    /// input that the graph computed becomes an absolute error of δ·max|x| in every
    /// log-softmax output and a relative one in every softmax output: rows of large,
    /// close values (a product of many terms, fed to a log-softmax) leave f32 nothing
    /// to agree on, however each engine computes the row.
    fn shifted_by_row_max(&mut self, x: Id, axis: Id, result: &Tensor, log: bool) -> Result<Option<String>, String> {
        use TensorLang as L;
        if matches!(self.expr[x], L::Input(_) | L::Weight(_) | L::Fill(_)) {
            return Ok(None); // exact in both engines
        }
        let Tensor::F32(out) = result else { return Ok(None) };
        let rank = out.ndim() as i64;
        let axis = self.int(axis);
        let axes = self.expr.add(L::Ints(saturate_egraph::IntList(vec![if axis < 0 { axis + rank } else { axis }])));
        let keep = self.expr.add(L::Int(1));
        let Tensor::F32(row_max) = self.absolute(&L::ReduceMax([x, axes, keep]))? else { return Ok(None) };
        let Some(row_max) = row_max.broadcast(out.raw_dim()) else { return Ok(None) };
        let atol = absolute_tolerance(result);
        for (&o, &m) in out.iter().zip(row_max.iter()) {
            if !o.is_finite() || !m.is_finite() {
                continue;
            }
            let shift = COMPUTED_ERROR * m as f64;
            let error = if log { shift } else { shift * o as f64 };
            if error > atol + RTOL * (o as f64).abs() {
                let what = if log { "log-softmax" } else { "softmax" };
                return Ok(Some(format!(
                    "a row of inputs up to {m:e} in magnitude, computed in f32, shifts the {what} of {o:e} by about \
                     {error:.2e}, more than the tolerance"
                )));
            }
        }
        Ok(None)
    }
}

/// Evaluates variants of one node on the values of the graph (signed, or absolute),
/// in a copy of the graph's expression that can take new leaves.
struct Probe<'v> {
    expr: RecExpr<TensorLang>,
    values: &'v [Option<Tensor>],
}

impl Probe<'_> {
    fn int(&self, id: Id) -> i64 {
        match &self.expr[id] {
            TensorLang::Int(v) => *v,
            _ => 0,
        }
    }

    fn ints(&self, id: Id) -> Vec<i64> {
        match &self.expr[id] {
            TensorLang::Ints(v) => v.0.clone(),
            _ => vec![],
        }
    }

    fn no_activation(&mut self) -> Id {
        self.expr.add(TensorLang::Act(Activation::Id))
    }

    fn abs_float(&mut self, id: Id) -> Id {
        match &self.expr[id] {
            TensorLang::Float(v) => self.expr.add(TensorLang::Float(Float::new(v.get().abs()))),
            _ => id,
        }
    }

    /// `node` (children in the expression, or nodes added to it) on the graph's values.
    fn signed(&mut self, node: &TensorLang) -> Result<Tensor, String> {
        self.evaluate(node, false)
    }

    /// `node` on the absolute values of its tensor operands.
    fn absolute(&mut self, node: &TensorLang) -> Result<Tensor, String> {
        self.evaluate(node, true)
    }

    fn evaluate(&mut self, node: &TensorLang, absolute: bool) -> Result<Tensor, String> {
        // children the graph does not hold (a transpose added here) are evaluated first
        let mut operands: Vec<(Id, Tensor)> = Vec::new();
        for &c in node.children() {
            let c_node = self.expr[c].clone();
            if c_node.is_attribute() {
                continue;
            }
            let value = match self.values.get(usize::from(c)).and_then(|v| v.clone()) {
                Some(v) => v,
                None => self.evaluate(&c_node, false)?,
            };
            let value = match (absolute, value) {
                (true, Tensor::F32(a)) => Tensor::F32(a.mapv(f32::abs)),
                (_, v) => v,
            };
            operands.push((c, value));
        }
        let id = self.expr.add(node.clone());
        eval_node(&self.expr, id, &|c| &operands.iter().find(|(o, _)| *o == c).expect("an operand").1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(body: &str) -> Graph {
        saturate_egraph::sexp::parse(&format!("(saturate-graph 1)\n{body}\n"), "t", None).unwrap()
    }

    fn tensor(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.to_vec()).unwrap())
    }

    #[test]
    fn ordinary_values_are_within_range() {
        let g = graph("(input %a f32 [2,3])\n(input %b f32 [3,2])\n(output \"y\" (matmul %a %b))");
        let r = assess(&g, &[tensor(&[2, 3], &[1., -2., 3., 0.5, 1., 2.]), tensor(&[3, 2], &[1., 2., 3., 4., 5., 6.])])
            .unwrap();
        assert_eq!(r, Range { finite: true, beyond: None });
    }

    #[test]
    fn products_whose_terms_overflow_are_beyond_f32() {
        // 1e20·1e20 overflows f32; the two terms cancel exactly, so the exact result is 1
        let g = graph("(input %a f32 [1,3])\n(input %b f32 [3,1])\n(output \"y\" (matmul %a %b))");
        let r = assess(&g, &[tensor(&[1, 3], &[1e20, -1e20, 1.0]), tensor(&[3, 1], &[1e20, 1e20, 1.0])]).unwrap();
        assert!(r.beyond.as_deref().is_some_and(|w| w.contains("matmul") && w.contains("largest f32")), "{r:?}");
    }

    #[test]
    fn sums_that_cancel_far_below_their_terms_are_beyond_f32() {
        let g = graph("(input %x f32 [4])\n(output \"y\" (reduce_sum %x [0] 0))");
        let r = assess(&g, &[tensor(&[4], &[1e8, 1.0, -1e8, 0.5])]).unwrap();
        assert!(r.beyond.as_deref().is_some_and(|w| w.contains("reduce_sum") && w.contains("4 terms")), "{r:?}");
        // the same sum without the cancellation is fine
        let r = assess(&g, &[tensor(&[4], &[1e8, 1.0, 1e8, 0.5])]).unwrap();
        assert_eq!(r.beyond, None);
    }

    #[test]
    fn attention_scores_and_activations_are_assessed_before_their_nonlinearity() {
        let g = graph(
            "(input %q f32 [1,2])\n(input %k f32 [1,2])\n(input %v f32 [1,1])\n\
             (output \"y\" (attention %q %k %v 1.0))",
        );
        let big = [tensor(&[1, 2], &[1e20, 1e20]), tensor(&[1, 2], &[1e20, -1e20]), tensor(&[1, 1], &[1.0])];
        assert!(assess(&g, &big).unwrap().beyond.is_some());
        // a sigmoid squashes its result into (0, 1); the product before it cancels
        let g = graph(
            "(input %a f32 [1,2])\n(input %b f32 [2,1])\n\
             (output \"y\" (matmul_bias_act %a %b (fill 0.0 [1]) act_sigmoid))",
        );
        let r = assess(&g, &[tensor(&[1, 2], &[1e8, 1e8 + 8.0]), tensor(&[2, 1], &[1.0, -1.0])]).unwrap();
        assert!(r.beyond.is_some(), "{r:?}");
    }

    /// Found by `saturate fuzz --seed 987953859` (case 86178): a log-softmax over
    /// products of fifteen layer-normed values near −5.3e6, where an ulp of the products
    /// is 0.5 and the engines' inputs differed by a few; the outputs differed by 2.
    #[test]
    fn softmax_rows_of_large_close_computed_values_are_beyond_f32() {
        let body = |op: &str| format!("(input %x f32 [1,3])\n(output \"y\" ({op} (mul %x (fill 1.0 [])) 1))");
        let large = [tensor(&[1, 3], &[-5.3146e6, -5.3125e6, -5.3133e6])];
        for op in ["log_softmax", "softmax"] {
            let r = assess(&graph(&body(op)), &large).unwrap();
            assert!(r.beyond.as_deref().is_some_and(|w| w.contains(op) && w.contains("row")), "{op}: {r:?}");
            // the same spread on small values is fine, and so are inputs both engines hold exactly
            let small = [tensor(&[1, 3], &[-4.0, -1.5, -3.0])];
            assert_eq!(assess(&graph(&body(op)), &small).unwrap().beyond, None, "{op}");
            let exact = graph(&format!("(input %x f32 [1,3])\n(output \"y\" ({op} %x 1))"));
            assert_eq!(assess(&exact, &large).unwrap().beyond, None, "{op}");
        }
    }

    #[test]
    fn non_finite_values_are_recorded_not_judged() {
        let g = graph("(input %x f32 [2])\n(output \"y\" (reduce_sum (exp %x) [0] 0))");
        let r = assess(&g, &[tensor(&[2], &[100.0, 1.0])]).unwrap();
        assert_eq!(r, Range { finite: false, beyond: None });
    }
}
