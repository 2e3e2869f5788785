//! Ops that move data without computing on it: reshape, expand, transpose, concat,
//! slice, gather. They work on every dtype.

use super::elementwise::view_as;
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use saturate_egraph::{map_tensor as per_dtype, Element, Tensor};

/// The same elements in row-major order, under a new shape.
pub fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    fn go<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>, String> {
        let data: Vec<T> = a.iter().cloned().collect();
        ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| format!("reshape {:?} to {shape:?}: {e}", a.shape()))
    }
    Ok(per_dtype!(x, a => go(a, shape)?))
}

/// Broadcasts `x` against `shape` (the result has the broadcast of both shapes).
pub fn expand(x: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    let target = saturate_egraph::shape::broadcast(x.shape(), shape)
        .ok_or_else(|| format!("cannot expand {:?} to {shape:?}", x.shape()))?;
    Ok(per_dtype!(x, a => view_as(a, &target).to_owned()))
}

pub fn transpose(x: &Tensor, perm: &[usize]) -> Tensor {
    per_dtype!(x, a => a.view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned())
}

pub fn concat(parts: &[&Tensor], axis: usize) -> Result<Tensor, String> {
    fn go<T: Element>(first: &ArrayD<T>, parts: &[&Tensor], axis: usize) -> Result<ArrayD<T>, String> {
        let views: Vec<ArrayViewD<T>> =
            parts.iter().map(|p| T::array(p).map(|a| a.view())).collect::<Option<_>>().ok_or_else(|| {
                format!("concat of mixed types {:?}", parts.iter().map(|p| p.dtype()).collect::<Vec<_>>())
            })?;
        debug_assert_eq!(views[0].shape(), first.shape());
        ndarray::concatenate(Axis(axis), &views).map_err(|e| format!("concat: {e}"))
    }
    let first = parts.first().ok_or("concat of nothing")?;
    Ok(per_dtype!(first, a => go(a, parts, axis)?))
}

/// Takes, along each axis, the indices `start, start+step, …` up to (not including)
/// `end`; starts and ends are already clamped (a negative step may end at -1).
pub fn slice(x: &Tensor, starts: &[i64], ends: &[i64], steps: &[i64]) -> Tensor {
    let picks: Vec<Vec<usize>> = (0..starts.len())
        .map(|i| {
            let (mut at, end, step) = (starts[i], ends[i], steps[i]);
            let mut picked = Vec::new();
            while (step > 0 && at < end) || (step < 0 && at > end) {
                picked.push(at as usize);
                at += step;
            }
            picked
        })
        .collect();
    fn go<T: Clone>(a: &ArrayD<T>, picks: &[Vec<usize>]) -> ArrayD<T> {
        let mut out = a.clone();
        for (axis, indices) in picks.iter().enumerate() {
            out = out.select(Axis(axis), indices);
        }
        out
    }
    per_dtype!(x, a => go(a, &picks))
}

/// numpy `take` along `axis`: negative indices count from the end.
pub fn gather(x: &Tensor, indices: &Tensor, axis: usize) -> Result<Tensor, String> {
    let idx = indices.as_i64().ok_or("gather indices must be i64")?;
    let dim = x.shape()[axis] as i64;
    let flat: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            if (0..dim).contains(&j) {
                Ok(j as usize)
            } else {
                Err(format!("gather index {i} is out of range for axis {axis} of size {dim}"))
            }
        })
        .collect::<Result<_, _>>()?;
    fn go<T: Clone>(a: &ArrayD<T>, flat: &[usize], idx_shape: &[usize], axis: usize) -> ArrayD<T> {
        let picked = a.select(Axis(axis), flat);
        let mut shape = a.shape()[..axis].to_vec();
        shape.extend(idx_shape);
        shape.extend(&a.shape()[axis + 1..]);
        let data: Vec<T> = picked.iter().cloned().collect();
        ArrayD::from_shape_vec(IxDyn(&shape), data).expect("gathered sizes match")
    }
    Ok(per_dtype!(x, a => go(a, &flat, idx.shape(), axis)))
}

/// `out[p] = x[p with its axis coordinate replaced by indices[p]]`, over the positions
/// `p` of `indices` (negative indices count from the end).
pub fn gather_elements(x: &Tensor, indices: &Tensor, axis: usize) -> Result<Tensor, String> {
    let idx = indices.as_i64().ok_or("gather_elements indices must be i64")?;
    let dim = x.shape()[axis] as i64;
    fn go<T: Clone>(a: &ArrayD<T>, idx: &ArrayD<i64>, axis: usize, dim: i64) -> Result<ArrayD<T>, String> {
        let mut values = Vec::with_capacity(idx.len());
        for (pos, &i) in idx.indexed_iter() {
            let j = if i < 0 { i + dim } else { i };
            if !(0..dim).contains(&j) {
                return Err(format!("gather_elements index {i} is out of range for axis {axis} of size {dim}"));
            }
            let mut at: Vec<usize> = ndarray::Dimension::slice(&pos).to_vec();
            at[axis] = j as usize;
            values.push(a[IxDyn(&at)].clone());
        }
        Ok(ArrayD::from_shape_vec(idx.raw_dim(), values).expect("sizes match"))
    }
    Ok(per_dtype!(x, a => go(a, idx, axis, dim)?))
}

/// `x` with, for each position `p` of `indices` in order, the element at `p` with its
/// axis coordinate replaced by `indices[p]` combined with `updates[p]` by the reduction
/// (`SCATTER_REDUCTIONS`: replaced, added, multiplied, max, min). Computed in the
/// element type, in that order, as the ONNX reference does; max and min propagate NaN.
pub fn scatter_elements(
    x: &Tensor,
    indices: &Tensor,
    updates: &Tensor,
    axis: usize,
    reduction: i64,
) -> Result<Tensor, String> {
    let idx = indices.as_i64().ok_or("scatter_elements indices must be i64")?;
    let dim = x.shape()[axis] as i64;
    fn go<T: Copy>(
        a: &ArrayD<T>,
        idx: &ArrayD<i64>,
        u: &ArrayD<T>,
        axis: usize,
        dim: i64,
        combine: impl Fn(T, T) -> T,
    ) -> Result<ArrayD<T>, String> {
        let mut out = a.clone();
        for ((pos, &i), &v) in idx.indexed_iter().zip(u.iter()) {
            let j = if i < 0 { i + dim } else { i };
            if !(0..dim).contains(&j) {
                return Err(format!("scatter_elements index {i} is out of range for axis {axis} of size {dim}"));
            }
            let mut at: Vec<usize> = ndarray::Dimension::slice(&pos).to_vec();
            at[axis] = j as usize;
            let old = &mut out[IxDyn(&at)];
            *old = combine(*old, v);
        }
        Ok(out)
    }
    let f32_combine = |r: i64| -> fn(f32, f32) -> f32 {
        match r {
            1 => |o, v| o + v,
            2 => |o, v| o * v,
            3 => |o, v| if o.is_nan() || v.is_nan() { f32::NAN } else { o.max(v) },
            4 => |o, v| if o.is_nan() || v.is_nan() { f32::NAN } else { o.min(v) },
            _ => |_, v| v,
        }
    };
    let i64_combine = |r: i64| -> fn(i64, i64) -> i64 {
        match r {
            1 => i64::wrapping_add,
            2 => i64::wrapping_mul,
            3 => |o, v| o.max(v),
            4 => |o, v| o.min(v),
            _ => |_, v| v,
        }
    };
    Ok(match (x, updates) {
        (Tensor::F32(a), Tensor::F32(u)) => Tensor::F32(go(a, idx, u, axis, dim, f32_combine(reduction))?),
        (Tensor::I64(a), Tensor::I64(u)) => Tensor::I64(go(a, idx, u, axis, dim, i64_combine(reduction))?),
        (x, u) if reduction == 0 && x.dtype() == u.dtype() => {
            fn replace<T: Element>(
                a: &ArrayD<T>,
                idx: &ArrayD<i64>,
                u: &Tensor,
                axis: usize,
                dim: i64,
            ) -> Result<ArrayD<T>, String> {
                go(a, idx, T::array(u).expect("dtypes checked"), axis, dim, |_, v| v)
            }
            per_dtype!(x, a => replace(a, idx, u, axis, dim)?)
        }
        _ => {
            return Err("scatter_elements data and updates must have one element type (only f32 and i64 combine)".into())
        }
    })
}

/// Pads every axis with `pads[i]` elements before and `pads[i + rank]` after, all equal
/// to `value` (converted to `x`'s type as `cast` converts).
pub fn pad(x: &Tensor, pads: &[usize], value: f32) -> Result<Tensor, String> {
    fn go<T: Element>(a: &ArrayD<T>, pads: &[usize], value: T) -> ArrayD<T> {
        let rank = a.ndim();
        let shape: Vec<usize> = (0..rank).map(|i| a.shape()[i] + pads[i] + pads[i + rank]).collect();
        let mut out = ArrayD::from_elem(IxDyn(&shape), value);
        let region: Vec<ndarray::SliceInfoElem> =
            (0..rank).map(|i| ndarray::SliceInfoElem::from(pads[i]..pads[i] + a.shape()[i])).collect();
        out.slice_mut(region.as_slice()).assign(a);
        out
    }
    Ok(per_dtype!(x, a => go(a, pads, value.cast())))
}
