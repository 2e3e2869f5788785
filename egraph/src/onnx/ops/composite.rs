//! ONNX ops that import as a composition of saturate's ops, each written as the ONNX
//! operator spec defines it: `PRelu` as a select, the norm reductions (`ReduceL1`,
//! `ReduceL2`, `ReduceSumSquare`, `ReduceLogSumExp`) around `reduce_sum`, `DepthToSpace`
//! and `SpaceToDepth` as reshape–transpose–reshape, `InstanceNormalization` and
//! `GroupNormalization` as a layer norm over regrouped axes, `Trilu` and `OneHot` as
//! selects against constant masks and ranges.
//!
//! Composing keeps the op table small (the e-graph, the interpreter, the JIT and the
//! rules see ops they already know) and lets the optimizer fuse the parts with their
//! neighbours; the constant parts (masks, ranges, reshaped weights) fold at import.

use super::Cx;
use crate::{DType, Result, Tensor, TensorLang as L};
use egg::Id;

/// `PRelu(x, slope)`: x where x ≥ 0, slope·x below (slope broadcast to x).
pub(super) fn prelu(cx: &mut Cx) -> Result<Id> {
    let (x, slope) = (cx.input(0)?, cx.input(1)?);
    let zero = cx.zero_like(x);
    let negative = cx.add(L::Less([x, zero]))?;
    let scaled = cx.add(L::Mul([x, slope]))?;
    cx.add(L::Where([negative, scaled, x]))
}

/// Which norm reduction.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Norm {
    L1,
    L2,
    SumSquare,
    LogSumExp,
}

/// The norm reductions over the axes `reduce` reads, keepdims as given.
pub(super) fn norm(cx: &mut Cx, norm: Norm) -> Result<Id> {
    let x = cx.input(0)?;
    let Some((axes, keep)) = cx.reduce_axes(x, 18)? else {
        // noop_with_empty_axes: the elementwise part alone, as the spec computes it
        return match norm {
            Norm::L1 => cx.add(L::Abs(x)),
            Norm::L2 => cx.add(L::Abs(x)),
            Norm::SumSquare => cx.add(L::Mul([x, x])),
            Norm::LogSumExp => Ok(x),
        };
    };
    let sum = |cx: &mut Cx, y: Id, keep: bool| {
        let (a, k) = (cx.imp.b.ints(axes.clone()), cx.imp.b.int(keep as i64));
        cx.add(L::ReduceSum([y, a, k]))
    };
    match norm {
        Norm::L1 => {
            let a = cx.add(L::Abs(x))?;
            sum(cx, a, keep)
        }
        Norm::SumSquare | Norm::L2 => {
            let sq = cx.add(L::Mul([x, x]))?;
            let s = sum(cx, sq, keep)?;
            if norm == Norm::L2 {
                cx.add(L::Sqrt(s))
            } else {
                Ok(s)
            }
        }
        Norm::LogSumExp => {
            // m + log Σ exp(x − m), m the maximum: no overflow for large x
            let (a, one) = (cx.imp.b.ints(axes.clone()), cx.imp.b.int(1));
            let m = cx.add(L::ReduceMax([x, a, one]))?;
            let d = cx.add(L::Sub([x, m]))?;
            let e = cx.add(L::Exp(d))?;
            let s = sum(cx, e, true)?;
            let l = cx.add(L::Log(s))?;
            let y = cx.add(L::Add([l, m]))?;
            if keep {
                return Ok(y);
            }
            let a = cx.imp.b.ints(axes);
            cx.add(L::Squeeze([y, a]))
        }
    }
}

/// `ReduceLogSum`: log Σ x over the axes.
pub(super) fn reduce_log_sum(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let Some((axes, keep)) = cx.reduce_axes(x, 18)? else { return cx.add(L::Log(x)) };
    let (a, k) = (cx.imp.b.ints(axes), cx.imp.b.int(keep as i64));
    let s = cx.add(L::ReduceSum([x, a, k]))?;
    cx.add(L::Log(s))
}

/// `LpNormalization(x, axis, p)`: x divided by its L1 or L2 norm along the axis.
pub(super) fn lp_normalization(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let axis = cx.axis_attr("axis", Some(-1), cx.rank(x))?;
    let p = cx.int_attr("p", Some(2))?;
    let (a, keep) = (cx.imp.b.ints(vec![axis as i64]), cx.imp.b.int(1));
    let norm = match p {
        1 => {
            let ax = cx.add(L::Abs(x))?;
            cx.add(L::ReduceSum([ax, a, keep]))?
        }
        2 => {
            let sq = cx.add(L::Mul([x, x]))?;
            let s = cx.add(L::ReduceSum([sq, a, keep]))?;
            cx.add(L::Sqrt(s))?
        }
        other => return Err(cx.attr_error(format!("p = {other}; LpNormalization has p = 1 or 2"))),
    };
    // a zero norm divides by one (the row is all zeros), as the ONNX reference does
    let zero = cx.zero_like(norm);
    let is_zero = cx.add(L::Equal([norm, zero]))?;
    let one = cx.imp.b.fill(1.0, &[]);
    let safe = cx.add(L::Where([is_zero, one, norm]))?;
    cx.add(L::Div([x, safe]))
}

/// `RMSNormalization(x, scale, axis, epsilon)` (opset 23) is saturate's `rms_norm`.
pub(super) fn rms_normalization(cx: &mut Cx) -> Result<Id> {
    let (x, scale) = (cx.input(0)?, cx.input(1)?);
    let axis = cx.axis_attr("axis", Some(-1), cx.rank(x))?;
    let eps = cx.float_attr("epsilon", 1e-5)?;
    let (a, e) = (cx.imp.b.int(axis as i64), cx.imp.b.float(eps));
    cx.add(L::RmsNorm([x, scale, a, e]))
}

/// `NegativeLogLikelihoodLoss(input [N,C,…], target [N,…], weight [C]?)`: per element
/// −input[n, target, …]·weight[target], 0 where the target is `ignore_index`; then
/// none, the sum, or the mean weighted by the weights of the targets (`reduction`).
pub(super) fn nll_loss(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    let (input, target) = (cx.input(0)?, cx.input(1)?);
    let weight = cx.opt_input(2);
    let loss = negative_log_likelihood(cx, input, target, weight)?;
    Ok(vec![Some(loss)])
}

/// `SoftmaxCrossEntropyLoss(scores, labels, weights?)`: the NLL loss of
/// log_softmax(scores) along axis 1; the second output, if asked, is that log-softmax.
pub(super) fn softmax_cross_entropy(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    let (scores, labels) = (cx.input(0)?, cx.input(1)?);
    let weight = cx.opt_input(2);
    if cx.rank(scores) < 2 {
        return Err(cx.attr_error("scores need shape [N, C, …]".into()));
    }
    let axis = cx.imp.b.int(1);
    let log_prob = cx.add(L::LogSoftmax([scores, axis]))?;
    let loss = negative_log_likelihood(cx, log_prob, labels, weight)?;
    Ok(vec![Some(loss), Some(log_prob)])
}

fn negative_log_likelihood(cx: &mut Cx, input: Id, target: Id, weight: Option<Id>) -> Result<Id> {
    if cx.rank(input) < 2 || cx.rank(target) + 1 != cx.rank(input) {
        return Err(cx.attr_error("needs input [N, C, d…] and target [N, d…]".into()));
    }
    let reduction = cx.string_attr("reduction", "mean")?;
    let target = match cx.ty(target).dtype {
        DType::I64 => target,
        _ => {
            let d = cx.imp.b.dtype(DType::I64);
            cx.add(L::Cast([target, d]))?
        }
    };
    // ignored targets (which may lie outside 0..C) gather class 0, and weigh nothing
    let kept = match cx.attr("ignore_index").and_then(|a| a.i) {
        Some(ignore) => {
            let i = cx.constant_part(Tensor::I64(ndarray::arr0(ignore).into_dyn()), "ignore_index");
            let ignored = cx.add(L::Equal([target, i]))?;
            Some(cx.add(L::Not(ignored))?)
        }
        None => None,
    };
    let safe = match kept {
        Some(k) => {
            let zero = cx.constant_part(Tensor::I64(ndarray::arr0(0).into_dyn()), "zero_class");
            cx.add(L::Where([k, target, zero]))?
        }
        None => target,
    };
    let axis1 = cx.imp.b.ints(vec![1]);
    let at = cx.add(L::Unsqueeze([safe, axis1]))?;
    let one = cx.imp.b.int(1);
    let picked = cx.add(L::GatherElements([input, at, one]))?;
    let axis1 = cx.imp.b.ints(vec![1]);
    let picked = cx.add(L::Squeeze([picked, axis1]))?;
    let w = match weight {
        Some(weight) => {
            let zero = cx.imp.b.int(0);
            Some(cx.add(L::Gather([weight, safe, zero]))?)
        }
        None => None,
    };
    let w = match (w, kept) {
        (Some(w), Some(k)) => {
            let zero = cx.imp.b.fill(0.0, &[]);
            Some(cx.add(L::Where([k, w, zero]))?)
        }
        (None, Some(k)) => {
            let f = cx.imp.b.dtype(DType::F32);
            Some(cx.add(L::Cast([k, f]))?)
        }
        (w, None) => w,
    };
    let neg = cx.add(L::Neg(picked))?;
    let loss = match w {
        Some(w) => cx.add(L::Mul([neg, w]))?,
        None => neg,
    };
    let everything = |cx: &mut Cx, x: Id| -> Result<Id> {
        let rank = cx.rank(x) as i64;
        let (a, k) = (cx.imp.b.ints((0..rank).collect()), cx.imp.b.int(0));
        cx.add(L::ReduceSum([x, a, k]))
    };
    match reduction.as_str() {
        "none" => Ok(loss),
        "sum" => everything(cx, loss),
        "mean" => {
            let total = everything(cx, loss)?;
            let count = match w {
                Some(w) => everything(cx, w)?,
                None => cx.imp.b.fill(cx.ty(target).numel() as f32, &[]),
            };
            cx.add(L::Div([total, count]))
        }
        other => Err(cx.attr_error(format!("reduction `{other}` is not none, sum or mean"))),
    }
}

/// `Hardmax(x, axis)`: 1 at the first largest element along the axis, 0 elsewhere.
pub(super) fn hardmax(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let axis = cx.axis_attr("axis", Some(-1), shape.len())?;
    let b = &mut cx.imp.b;
    let attrs = [b.int(axis as i64), b.int(1), b.int(0)];
    let at = cx.add(L::ArgMax([x, attrs[0], attrs[1], attrs[2]]))?;
    let mut range_shape = vec![1; shape.len()];
    range_shape[axis] = shape[axis];
    let range = (0..shape[axis] as i64).collect();
    let range = Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&range_shape), range).expect("sizes"));
    let range = cx.constant_part(range, "positions");
    let hot = cx.add(L::Equal([range, at]))?;
    let d = cx.imp.b.dtype(cx.ty(x).dtype);
    cx.add(L::Cast([hot, d]))
}

/// `LpPool(x, p)`: (Σ |x|ᵖ over each window)^(1/p), the sum an average over the whole
/// window (pads included) times its size.
pub(super) fn lp_pool(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let p = cx.int_attr("p", Some(2))?;
    if p < 1 {
        return Err(cx.attr_error(format!("p = {p} must be at least 1")));
    }
    let a = cx.add(L::Abs(x))?;
    let pw = cx.imp.b.fill(p as f32, &[]);
    let powered = cx.add(L::Pow([a, pw]))?;
    let avg = super::pool_of(cx, powered, false, Some(true))?;
    let taps = cx.ints_attr("kernel_shape")?.unwrap_or_default().iter().product::<i64>() as f32;
    let n = cx.imp.b.fill(taps, &[]);
    let sum = cx.add(L::Mul([avg, n]))?;
    let root = cx.imp.b.fill(1.0 / p as f32, &[]);
    cx.add(L::Pow([sum, root]))
}

/// `CenterCropPad(x, shape, axes)`: each axis cropped (the start at ⌊(d − n)/2⌋) or
/// zero-padded (⌊(n − d)/2⌋ before) to its target size, centred.
pub(super) fn center_crop_pad(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let rank = shape.len();
    let target = cx.const_ints(1)?;
    let axes: Vec<usize> = match cx.ints_attr("axes")? {
        Some(a) => a.iter().map(|&v| cx.normalize_axes(&[v], rank).map(|n| n[0] as usize)).collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if target.len() != axes.len() {
        return Err(cx.attr_error(format!("{} target sizes for {} axes", target.len(), axes.len())));
    }
    let (mut starts, mut ends) =
        ((0..rank).map(|_| 0i64).collect::<Vec<_>>(), shape.iter().map(|&d| d as i64).collect::<Vec<_>>());
    let mut pads = vec![0usize; 2 * rank];
    for (&axis, &n) in axes.iter().zip(&target) {
        let d = shape[axis] as i64;
        if n < d {
            starts[axis] = (d - n) / 2;
            ends[axis] = starts[axis] + n;
        } else if n > d {
            let before = (n - d) / 2;
            pads[axis] = before as usize;
            pads[axis + rank] = (n - d - before) as usize;
        }
    }
    let b = &mut cx.imp.b;
    let (s, e, st) = (b.ints(starts), b.ints(ends), b.ints(vec![1; rank]));
    let cropped = cx.add(L::Slice([x, s, e, st]))?;
    if pads.iter().all(|&p| p == 0) {
        return Ok(cropped);
    }
    let (p, v) = (cx.imp.b.dims(&pads), cx.imp.b.float(0.0));
    cx.add(L::Pad([cropped, p, v]))
}

/// `TopK(x, k, axis, largest)`: the k largest (or smallest) elements along the axis in
/// order, first of ties first, and their indices — k rounds of arg_max (arg_min), each
/// masking the element it took. For the k of models (small); a larger k is refused.
pub(super) fn top_k(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    const LARGEST_K: usize = 64;
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let axis = cx.axis_attr("axis", Some(-1), shape.len())?;
    let k = *cx.const_ints(1)?.first().unwrap_or(&0) as usize;
    let largest = cx.int_attr("largest", Some(1))? != 0;
    if k == 0 || k > shape[axis] {
        return Err(cx.attr_error(format!("k = {k} must be in 1..={}", shape[axis])));
    }
    if k > LARGEST_K {
        return Err(cx.unsupported(&format!("TopK with k = {k} (up to {LARGEST_K})")));
    }
    let worst = match (cx.ty(x).dtype, largest) {
        (DType::F32, true) => Tensor::scalar_f32(f32::NEG_INFINITY),
        (DType::F32, false) => Tensor::scalar_f32(f32::INFINITY),
        (DType::I64, true) => Tensor::I64(ndarray::arr0(i64::MIN).into_dyn()),
        (DType::I64, false) => Tensor::I64(ndarray::arr0(i64::MAX).into_dyn()),
        (other, _) => return Err(cx.attr_error(format!("TopK of {other}"))),
    };
    let worst = cx.constant_part(worst, "taken");
    let mut range_shape = vec![1; shape.len()];
    range_shape[axis] = shape[axis];
    let positions = Tensor::I64(
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&range_shape), (0..shape[axis] as i64).collect())
            .expect("sizes"),
    );
    let positions = cx.constant_part(positions, "positions");
    let (mut values, mut indices) = (Vec::new(), Vec::new());
    let mut rest = x;
    for round in 0..k {
        let b = &mut cx.imp.b;
        let attrs = [b.int(axis as i64), b.int(1), b.int(0)];
        let children = [rest, attrs[0], attrs[1], attrs[2]];
        let at = cx.add(if largest { L::ArgMax(children) } else { L::ArgMin(children) })?;
        let a = cx.imp.b.int(axis as i64);
        values.push(cx.add(L::GatherElements([x, at, a]))?);
        indices.push(at);
        if round + 1 < k {
            let taken = cx.add(L::Equal([positions, at]))?;
            rest = cx.add(L::Where([taken, worst, rest]))?;
        }
    }
    let join = |cx: &mut Cx, parts: Vec<Id>| -> Result<Id> {
        if parts.len() == 1 {
            return Ok(parts[0]);
        }
        let a = cx.imp.b.int(axis as i64);
        cx.add(L::Concat(std::iter::once(a).chain(parts).collect::<Vec<_>>().into_boxed_slice()))
    };
    let (values, indices) = (join(cx, values)?, join(cx, indices)?);
    Ok(vec![Some(values), Some(indices)])
}

/// `DepthToSpace(x, blocksize, mode)`: [N, C, H, W] → [N, C/b², H·b, W·b].
pub(super) fn depth_to_space(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let [n, c, h, w] = cx.nchw(x)?;
    let b = cx.int_attr("blocksize", None)? as usize;
    if b == 0 || c % (b * b) != 0 {
        return Err(cx.attr_error(format!("{c} channels are not a multiple of blocksize² = {}", b * b)));
    }
    let (shape, perm): (Vec<usize>, [i64; 6]) = match cx.string_attr("mode", "DCR")?.as_str() {
        "DCR" => (vec![n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2]),
        "CRD" => (vec![n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]),
        other => return Err(cx.attr_error(format!("mode `{other}` is not DCR or CRD"))),
    };
    cx.regroup(x, &shape, &perm, &[n, c / (b * b), h * b, w * b])
}

/// `SpaceToDepth(x, blocksize)`: [N, C, H, W] → [N, C·b², H/b, W/b].
pub(super) fn space_to_depth(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let [n, c, h, w] = cx.nchw(x)?;
    let b = cx.int_attr("blocksize", None)? as usize;
    if b == 0 || h % b != 0 || w % b != 0 {
        return Err(cx.attr_error(format!("{h}×{w} is not a multiple of blocksize {b}")));
    }
    cx.regroup(x, &[n, c, h / b, b, w / b, b], &[0, 3, 5, 1, 2, 4], &[n, c * b * b, h / b, w / b])
}

/// `InstanceNormalization(x, scale, bias, epsilon)`: each (sample, channel) plane
/// normalized, then scaled and shifted per channel.
pub(super) fn instance_norm(cx: &mut Cx) -> Result<Id> {
    let (x, scale, bias) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let shape = cx.shape(x);
    if shape.len() < 3 {
        return Err(cx.attr_error(format!("needs an input of rank ≥ 3, got rank {}", shape.len())));
    }
    let eps = cx.float_attr("epsilon", 1e-5)?;
    let planes: usize = shape[2..].iter().product();
    let normalized = cx.normalize_grouped(x, &[shape[0], shape[1], planes], eps)?;
    let normalized = cx.reshape(normalized, &shape)?;
    cx.scale_shift(normalized, [scale, bias], &channel_view(&shape))
}

/// `GroupNormalization(x, scale, bias, num_groups, epsilon)`: channels in groups, each
/// (sample, group) normalized, then scaled and shifted — per channel (opset 21), or per
/// group (the opset 18 form, scale and bias of length num_groups).
pub(super) fn group_norm(cx: &mut Cx) -> Result<Id> {
    let (x, scale, bias) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let shape = cx.shape(x);
    if shape.len() < 2 {
        return Err(cx.attr_error(format!("needs an input of rank ≥ 2, got rank {}", shape.len())));
    }
    let groups = cx.int_attr("num_groups", None)? as usize;
    let (n, c) = (shape[0], shape[1]);
    if groups == 0 || c % groups != 0 {
        return Err(cx.attr_error(format!("{c} channels do not split into {groups} groups")));
    }
    let eps = cx.float_attr("epsilon", 1e-5)?;
    let inner: usize = shape[1..].iter().product::<usize>() / groups;
    let grouped = cx.normalize_grouped(x, &[n, groups, inner], eps)?;
    let params = cx.ty(scale).numel();
    if params == c {
        let back = cx.reshape(grouped, &shape)?;
        cx.scale_shift(back, [scale, bias], &channel_view(&shape))
    } else if params == groups {
        let shifted = cx.scale_shift(grouped, [scale, bias], &[groups, 1])?;
        cx.reshape(shifted, &shape)
    } else {
        Err(cx.attr_error(format!("scale has {params} elements; expected {c} (channels) or {groups} (groups)")))
    }
}

/// `[C, 1, …]` for per-channel parameters of an `[N, C, …]` tensor.
fn channel_view(shape: &[usize]) -> Vec<usize> {
    std::iter::once(shape[1]).chain(std::iter::repeat_n(1, shape.len() - 2)).collect()
}

/// `Trilu(x, k, upper)`: the upper (or lower) triangle of the last two axes from
/// diagonal k on, zeros elsewhere.
pub(super) fn trilu(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    if shape.len() < 2 {
        return Err(cx.attr_error("needs an input of rank ≥ 2".into()));
    }
    let k = match cx.input_name(1) {
        Some(_) => *cx.const_ints(1)?.first().unwrap_or(&0),
        None => 0,
    };
    let upper = cx.int_attr("upper", Some(1))? != 0;
    let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let keep: Vec<bool> = (0..rows * cols)
        .map(|e| {
            let (i, j) = ((e / cols) as i64, (e % cols) as i64);
            if upper {
                j - i >= k
            } else {
                j - i <= k
            }
        })
        .collect();
    let mask = Tensor::Bool(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[rows, cols]), keep).expect("sizes"));
    let mask = cx.constant_part(mask, "mask");
    let zero = cx.zero_like(x);
    cx.add(L::Where([mask, x, zero]))
}

/// `OneHot(indices, depth, values, axis)`: `values[1]` where the new axis's position
/// equals the index (negative indices count from depth), `values[0]` elsewhere.
pub(super) fn one_hot(cx: &mut Cx) -> Result<Id> {
    let (indices, values) = (cx.input(0)?, cx.input(2)?);
    let depth = cx.const_input(1)?;
    let depth = match depth.dtype() {
        DType::F32 => depth.to_f32_vec().first().copied().unwrap_or(0.0) as i64,
        _ => depth.to_i64_vec().first().copied().unwrap_or(0),
    };
    if depth < 1 {
        return Err(cx.attr_error(format!("depth {depth} must be at least 1")));
    }
    let rank = cx.rank(indices) + 1;
    let axis = cx.axis_attr("axis", Some(-1), rank)?;
    let idx = match cx.ty(indices).dtype {
        DType::I64 => indices,
        _ => {
            let d = cx.imp.b.dtype(DType::I64);
            cx.add(L::Cast([indices, d]))?
        }
    };
    // negative indices count from the end
    let zero = cx.constant_part(Tensor::I64(ndarray::arr0(0).into_dyn()), "zero");
    let d = cx.constant_part(Tensor::I64(ndarray::arr0(depth).into_dyn()), "depth");
    let negative = cx.add(L::Less([idx, zero]))?;
    let wrapped = cx.add(L::Add([idx, d]))?;
    let idx = cx.add(L::Where([negative, wrapped, idx]))?;
    let a = cx.imp.b.ints(vec![axis as i64]);
    let idx = cx.add(L::Unsqueeze([idx, a]))?;
    let mut range_shape = vec![1; rank];
    range_shape[axis] = depth as usize;
    let range = Tensor::I64(
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&range_shape), (0..depth).collect()).expect("sizes"),
    );
    let range = cx.constant_part(range, "range");
    let hot = cx.add(L::Equal([idx, range]))?;
    let pick = |cx: &mut Cx, i: i64| -> Result<Id> {
        let at = cx.constant_part(Tensor::I64(ndarray::arr0(i).into_dyn()), "value_index");
        let axis0 = cx.imp.b.int(0);
        cx.add(L::Gather([values, at, axis0]))
    };
    let (off, on) = (pick(cx, 0)?, pick(cx, 1)?);
    cx.add(L::Where([hot, on, off]))
}
