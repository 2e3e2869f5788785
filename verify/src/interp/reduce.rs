//! Reductions and normalizations: reduce ops, softmax, layer norm, batch norm, LRN.
//! Sums, means and variances are accumulated in f64.

use super::elementwise::view_as;
use ndarray::{ArrayD, Axis, IxDyn};
use saturate_egraph::shape::reduced_shape;
use saturate_egraph::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reduction {
    Sum,
    Prod,
    Mean,
    Max,
    Min,
}

/// Reduces `x` over `axes` (sorted, distinct); reduced axes stay as size 1 if `keep`.
pub fn reduce(x: &Tensor, axes: &[usize], keep: bool, r: Reduction) -> Result<Tensor, String> {
    let out_shape = |shape: &[usize]| reduced_shape(shape, axes, keep);
    Ok(match x {
        Tensor::F32(a) => {
            let rows = rows_over(a, axes);
            let values = rows
                .iter()
                .map(|row| {
                    let n = row.len() as f64;
                    let v = match r {
                        Reduction::Sum => row.iter().map(|&v| v as f64).sum(),
                        Reduction::Prod => row.iter().map(|&v| v as f64).product(),
                        Reduction::Mean => row.iter().map(|&v| v as f64).sum::<f64>() / n,
                        Reduction::Max => row.iter().fold(f64::NEG_INFINITY, |m, &v| nan_max(m, v as f64)),
                        Reduction::Min => row.iter().fold(f64::INFINITY, |m, &v| -nan_max(-m, -(v as f64))),
                    };
                    v as f32
                })
                .collect();
            Tensor::F32(ArrayD::from_shape_vec(IxDyn(&out_shape(a.shape())), values).expect("sizes match"))
        }
        Tensor::I64(a) => {
            let rows = rows_over(a, axes);
            let values = rows
                .iter()
                .map(|row| match r {
                    Reduction::Sum => row.iter().fold(0i64, |s, &v| s.wrapping_add(v)),
                    Reduction::Prod => row.iter().fold(1i64, |s, &v| s.wrapping_mul(v)),
                    Reduction::Mean if row.is_empty() => 0,
                    Reduction::Mean => row.iter().fold(0i64, |s, &v| s.wrapping_add(v)) / row.len() as i64,
                    Reduction::Max => row.iter().copied().max().unwrap_or(i64::MIN),
                    Reduction::Min => row.iter().copied().min().unwrap_or(i64::MAX),
                })
                .collect();
            Tensor::I64(ArrayD::from_shape_vec(IxDyn(&out_shape(a.shape())), values).expect("sizes match"))
        }
        Tensor::Bool(a) => {
            // max of booleans is "any", min is "all"
            let rows = rows_over(a, axes);
            let values = rows
                .iter()
                .map(|row| match r {
                    Reduction::Max => row.iter().any(|&v| v),
                    Reduction::Min => row.iter().all(|&v| v),
                    _ => false,
                })
                .collect();
            if matches!(r, Reduction::Sum | Reduction::Prod | Reduction::Mean) {
                return Err("cannot sum or multiply booleans".into());
            }
            Tensor::Bool(ArrayD::from_shape_vec(IxDyn(&out_shape(a.shape())), values).expect("sizes match"))
        }
        other => return Err(format!("reductions compute on f32, i64 or bool, not {}", other.dtype())),
    })
}

/// The index of the largest (`max`) or smallest element along `axis`: the first of
/// ties, or the last if `last`; a NaN counts as both the largest and the smallest (the
/// first NaN, or the last). The result is i64, the axis kept as size 1 if `keep`.
pub fn arg_extreme(x: &Tensor, axis: usize, keep: bool, last: bool, max: bool) -> Result<Tensor, String> {
    let values: Vec<f64> = match x {
        Tensor::F32(a) => a.iter().map(|&v| v as f64).collect(),
        Tensor::I64(a) => a.iter().map(|&v| v as f64).collect(),
        other => return Err(format!("arg_max/arg_min of {}", other.dtype())),
    };
    let shape = x.shape().to_vec();
    let a = ArrayD::from_shape_vec(IxDyn(&shape), values).expect("sizes match");
    let rows = rows_over(&a, &[axis]);
    let better = |v: f64, best: f64| {
        if best.is_nan() {
            false
        } else if v.is_nan() {
            true
        } else if max {
            v > best
        } else {
            v < best
        }
    };
    let indices: Vec<i64> = rows
        .iter()
        .map(|row| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate().skip(1) {
                let tie = v == row[best] || (v.is_nan() && row[best].is_nan());
                if better(v, row[best]) || (last && tie) {
                    best = k;
                }
            }
            best as i64
        })
        .collect();
    let out = reduced_shape(&shape, &[axis], keep);
    Ok(Tensor::I64(ArrayD::from_shape_vec(IxDyn(&out), indices).expect("sizes match")))
}

/// Running sums along `axis` (f32 accumulated in f64, i64 wrapping): each element's sum
/// includes it, or with `exclusive` stops before it; `reverse` runs from the end.
pub fn cum_sum(x: &Tensor, axis: usize, exclusive: bool, reverse: bool) -> Result<Tensor, String> {
    fn scan<T: Copy, A: Copy>(
        a: &ArrayD<T>,
        axis: usize,
        exclusive: bool,
        reverse: bool,
        zero: A,
        add: impl Fn(A, T) -> A,
        out: impl Fn(A) -> T,
    ) -> ArrayD<T> {
        let mut y = a.clone();
        for mut lane in y.lanes_mut(Axis(axis)) {
            let n = lane.len();
            let mut acc = zero;
            for k in 0..n {
                let i = if reverse { n - 1 - k } else { k };
                let v = lane[i];
                if exclusive {
                    lane[i] = out(acc);
                    acc = add(acc, v);
                } else {
                    acc = add(acc, v);
                    lane[i] = out(acc);
                }
            }
        }
        y
    }
    Ok(match x {
        Tensor::F32(a) => Tensor::F32(scan(a, axis, exclusive, reverse, 0f64, |s, v| s + v as f64, |s| s as f32)),
        Tensor::I64(a) => Tensor::I64(scan(a, axis, exclusive, reverse, 0i64, i64::wrapping_add, |s| s)),
        other => return Err(format!("cum_sum of {}", other.dtype())),
    })
}

/// max that propagates NaN.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The elements of `a` grouped by output position: one row per combination of the
/// kept axes, holding the elements along the reduced axes, in row-major order.
fn rows_over<T: Copy>(a: &ArrayD<T>, axes: &[usize]) -> Vec<Vec<T>> {
    let kept: Vec<usize> = (0..a.ndim()).filter(|i| !axes.contains(i)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let permuted = a.view().permuted_axes(IxDyn(&perm));
    let outer: usize = kept.iter().map(|&i| a.shape()[i]).product();
    let inner: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let flat: Vec<T> = permuted.iter().copied().collect();
    if inner == 0 {
        return vec![Vec::new(); outer];
    }
    flat.chunks(inner).map(<[T]>::to_vec).collect()
}

/// Softmax (or log-softmax) along `axis`, computed in f64 after subtracting the max.
pub fn softmax(x: &ArrayD<f32>, axis: usize, log: bool) -> ArrayD<f32> {
    let mut out = x.clone();
    for mut lane in out.lanes_mut(Axis(axis)) {
        let values: Vec<f64> = lane.iter().map(|&v| v as f64).collect();
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let shifted: Vec<f64> = values.iter().map(|v| v - max).collect();
        let sum: f64 = shifted.iter().map(|v| v.exp()).sum();
        for (o, s) in lane.iter_mut().zip(shifted) {
            *o = if log { (s - sum.ln()) as f32 } else { (s.exp() / sum) as f32 };
        }
    }
    out
}

/// Normalizes over the axes from `axis` on: `(x - mean) / sqrt(var + eps) · scale + bias`.
pub fn layer_norm(
    x: &ArrayD<f32>,
    scale: &ArrayD<f32>,
    bias: &ArrayD<f32>,
    axis: usize,
    eps: f32,
) -> Result<ArrayD<f32>, String> {
    let inner: usize = x.shape()[axis..].iter().product();
    let x = x.as_standard_layout();
    let flat = x.as_slice().expect("standard layout");
    let mut normalized = Vec::with_capacity(flat.len());
    if inner > 0 {
        for row in flat.chunks(inner) {
            let n = row.len() as f64;
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + eps as f64).sqrt();
            normalized.extend(row.iter().map(|&v| (v as f64 - mean) * inv));
        }
    }
    let shape = x.shape().to_vec();
    let normalized = ArrayD::from_shape_vec(IxDyn(&shape), normalized).expect("sizes match");
    let (scale, bias) = (view_as(scale, &shape), view_as(bias, &shape));
    Ok(ndarray::Zip::from(&normalized)
        .and(&scale)
        .and(&bias)
        .map_collect(|&n, &s, &b| (n * s as f64 + b as f64) as f32))
}

/// Root-mean-square normalization over the axes from `axis` on:
/// `x / sqrt(mean(x²) + eps) · scale`.
pub fn rms_norm(x: &ArrayD<f32>, scale: &ArrayD<f32>, axis: usize, eps: f32) -> ArrayD<f32> {
    let inner: usize = x.shape()[axis..].iter().product();
    let x = x.as_standard_layout();
    let flat = x.as_slice().expect("standard layout");
    let mut normalized = Vec::with_capacity(flat.len());
    if inner > 0 {
        for row in flat.chunks(inner) {
            let mean_square = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / row.len() as f64;
            let inv = 1.0 / (mean_square + eps as f64).sqrt();
            normalized.extend(row.iter().map(|&v| v as f64 * inv));
        }
    }
    let shape = x.shape().to_vec();
    let normalized = ArrayD::from_shape_vec(IxDyn(&shape), normalized).expect("sizes match");
    ndarray::Zip::from(&normalized).and(&view_as(scale, &shape)).map_collect(|&n, &s| (n * s as f64) as f32)
}

/// Inference batch norm over channel axis 1.
pub fn batch_norm(x: &ArrayD<f32>, [scale, bias, mean, var]: [&ArrayD<f32>; 4], eps: f32) -> ArrayD<f32> {
    let mut out = x.clone();
    for (c, mut channel) in out.axis_iter_mut(Axis(1)).enumerate() {
        let inv = 1.0 / (var[[c]] as f64 + eps as f64).sqrt();
        let (s, b, m) = (scale[[c]] as f64, bias[[c]] as f64, mean[[c]] as f64);
        channel.mapv_inplace(|v| ((v as f64 - m) * inv * s + b) as f32);
    }
    out
}

/// Local response normalization across channels:
/// `x / (bias + alpha/size · Σ x²)^beta`, the sum over a window of `size` channels
/// centred on each one (`floor((size-1)/2)` before, `ceil((size-1)/2)` after).
pub fn lrn(x: &ArrayD<f32>, size: usize, alpha: f32, beta: f32, bias: f32) -> ArrayD<f32> {
    let channels = x.shape()[1];
    let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let mut out = x.clone();
    for (n, mut sample) in out.axis_iter_mut(Axis(0)).enumerate() {
        let input = x.index_axis(Axis(0), n);
        for c in 0..channels {
            let lo = c.saturating_sub(before);
            let hi = (c + after).min(channels - 1);
            let mut square_sum = ArrayD::<f64>::zeros(input.index_axis(Axis(0), c).raw_dim());
            for j in lo..=hi {
                square_sum.zip_mut_with(&input.index_axis(Axis(0), j), |s, &v| *s += (v as f64) * (v as f64));
            }
            let mut target = sample.index_axis_mut(Axis(0), c);
            ndarray::Zip::from(&mut target).and(&square_sum).for_each(|o, &s| {
                let denom = (bias as f64 + alpha as f64 / size as f64 * s).powf(beta as f64);
                *o = (*o as f64 / denom) as f32;
            });
        }
    }
    out
}
