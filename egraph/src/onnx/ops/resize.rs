//! `Resize` (opset 11 on), composed as the ONNX spec defines it: one axis at a time,
//! each output position maps back to a coordinate of the input
//! (`coordinate_transformation_mode`), whose neighbours are gathered along the axis
//! and weighted — one for `nearest`, two for `linear`, four for `cubic` — with the
//! indices and weights computed here, at import, as constants. Neighbours past an edge
//! take the edge's value (or weigh nothing, with `exclude_outside`); with
//! `tf_crop_and_resize`, positions that map outside the input take
//! `extrapolation_value`. Anti-aliasing (`antialias=1`) is not supported.

use super::Cx;
use crate::{Result, Tensor, TensorLang as L};
use egg::Id;

/// How output positions map to input coordinates, as the attributes say.
struct Mapping {
    mode: String,
    nearest: String,
    transform: String,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f32,
}

pub(super) fn resize(cx: &mut Cx) -> Result<Id> {
    if cx.imp.opset < 11 {
        return Err(cx.unsupported("Resize before opset 11"));
    }
    if cx.int_attr("antialias", Some(0))? != 0 {
        return Err(cx.unsupported("antialias=1"));
    }
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let rank = shape.len();
    // in the order given: scales, sizes and roi follow it
    let axes: Vec<usize> = match cx.ints_attr("axes")? {
        Some(a) => a.iter().map(|&v| cx.normalize_axes(&[v], rank).map(|n| n[0] as usize)).collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    let m = Mapping {
        mode: cx.string_attr("mode", "nearest")?,
        nearest: cx.string_attr("nearest_mode", "round_prefer_floor")?,
        transform: cx.string_attr("coordinate_transformation_mode", "half_pixel")?,
        cubic_a: cx.float_attr("cubic_coeff_a", -0.75)? as f64,
        exclude_outside: cx.int_attr("exclude_outside", Some(0))? != 0,
        extrapolation: cx.float_attr("extrapolation_value", 0.0)?,
    };
    if !matches!(m.mode.as_str(), "nearest" | "linear" | "cubic") {
        return Err(cx.attr_error(format!("mode `{}` is not nearest, linear or cubic", m.mode)));
    }
    let (sizes, scales) = sizes_and_scales(cx, &shape, &axes)?;
    let given_sizes = cx.input_name(3).is_some();
    let roi = roi(cx, &axes)?;
    let mut y = x;
    for (k, &axis) in axes.iter().enumerate() {
        let (input, output) = (shape[axis], sizes[k]);
        if output == input && scales[k] == 1.0 && m.transform != "tf_crop_and_resize" {
            continue; // the identity on this axis
        }
        // the resized length the coordinates use: the size, or input·scale unrounded
        let length = if given_sizes { output as f64 } else { input as f64 * scales[k] };
        y = resize_axis(cx, y, rank, axis, (input, output, length), scales[k], roi[k], &m)?;
    }
    Ok(y)
}

/// The output size and the scale of each resized axis, from `scales` or `sizes`
/// (with `keep_aspect_ratio_policy`).
fn sizes_and_scales(cx: &Cx, shape: &[usize], axes: &[usize]) -> Result<(Vec<usize>, Vec<f64>)> {
    if cx.input_name(3).is_some() {
        let sizes: Vec<usize> = cx.const_ints(3)?.into_iter().map(|s| s.max(0) as usize).collect();
        if sizes.len() != axes.len() {
            return Err(cx.attr_error(format!("{} sizes for {} axes", sizes.len(), axes.len())));
        }
        let ratios: Vec<f64> = axes.iter().zip(&sizes).map(|(&a, &s)| s as f64 / shape[a] as f64).collect();
        let policy = cx.string_attr("keep_aspect_ratio_policy", "stretch")?;
        let common = match policy.as_str() {
            "stretch" => return Ok((sizes, ratios)),
            "not_larger" => ratios.iter().copied().fold(f64::INFINITY, f64::min),
            "not_smaller" => ratios.iter().copied().fold(0.0, f64::max),
            other => return Err(cx.attr_error(format!("keep_aspect_ratio_policy `{other}`"))),
        };
        // numpy rounds half to even
        let sizes = axes.iter().map(|&a| (common * shape[a] as f64).round_ties_even() as usize).collect();
        return Ok((sizes, vec![common; axes.len()]));
    }
    let scales = cx.const_floats(2)?;
    if scales.len() != axes.len() {
        return Err(cx.attr_error(format!("{} scales for {} axes", scales.len(), axes.len())));
    }
    let sizes = axes.iter().zip(&scales).map(|(&a, &s)| (shape[a] as f64 * s).floor() as usize).collect();
    Ok((sizes, scales))
}

/// The region of interest of each resized axis (start, end), for tf_crop_and_resize.
fn roi(cx: &Cx, axes: &[usize]) -> Result<Vec<(f64, f64)>> {
    if cx.input_name(1).is_none() {
        return Ok(vec![(0.0, 1.0); axes.len()]);
    }
    let roi = cx.const_floats(1)?;
    if roi.is_empty() {
        return Ok(vec![(0.0, 1.0); axes.len()]);
    }
    let n = roi.len() / 2;
    if roi.len() != 2 * axes.len() && n < axes.iter().copied().max().map_or(0, |a| a + 1) {
        return Err(cx.attr_error(format!("roi has {} values for {} axes", roi.len(), axes.len())));
    }
    Ok(axes
        .iter()
        .enumerate()
        .map(|(k, &a)| if roi.len() == 2 * axes.len() { (roi[k], roi[k + n]) } else { (roi[a], roi[a + n]) })
        .collect())
}

/// Resizes one axis: for each tap, a gather of constant indices times constant weights,
/// summed.
#[allow(clippy::too_many_arguments)] // one axis's geometry and the attributes
fn resize_axis(
    cx: &mut Cx,
    x: Id,
    rank: usize,
    axis: usize,
    (input, output, length): (usize, usize, f64),
    scale: f64,
    roi: (f64, f64),
    m: &Mapping,
) -> Result<Id> {
    let coordinates: Vec<f64> =
        (0..output).map(|j| original(m, j as f64, scale, input, (output, length), roi)).collect();
    let taps: Vec<(Vec<i64>, Vec<f32>)> = match m.mode.as_str() {
        "nearest" => vec![(coordinates.iter().map(|&c| nearest(m, c, input)).collect(), vec![1.0; output])],
        "linear" => weighted(&coordinates, input, 2, m.exclude_outside, |r| vec![1.0 - r, r]),
        _ => weighted(&coordinates, input, 4, m.exclude_outside, |r| cubic(m.cubic_a, r)),
    };
    let mut view = vec![1usize; rank];
    view[axis] = output;
    let mut sum: Option<Id> = None;
    for (k, (indices, weights)) in taps.into_iter().enumerate() {
        let at = cx.constant_part(Tensor::I64(ndarray::Array1::from(indices).into_dyn()), &format!("taps{axis}_{k}"));
        let a = cx.imp.b.int(axis as i64);
        let picked = cx.add(L::Gather([x, at, a]))?;
        let term = if weights.iter().all(|&w| w == 1.0) {
            picked
        } else {
            let w = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&view), weights).expect("sizes");
            let w = cx.constant_part(Tensor::F32(w), &format!("weights{axis}_{k}"));
            cx.add(L::Mul([picked, w]))?
        };
        sum = Some(match sum {
            None => term,
            Some(s) => cx.add(L::Add([s, term]))?,
        });
    }
    let y = sum.expect("at least one tap");
    if m.transform != "tf_crop_and_resize" {
        return Ok(y);
    }
    // positions that map outside the input take the extrapolation value
    let outside: Vec<bool> = coordinates.iter().map(|&c| c < 0.0 || c > (input - 1) as f64).collect();
    if !outside.contains(&true) {
        return Ok(y);
    }
    let mask = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&view), outside).expect("sizes");
    let mask = cx.constant_part(Tensor::Bool(mask), &format!("outside{axis}"));
    let value = cx.imp.b.fill(m.extrapolation, &[]);
    cx.add(L::Where([mask, value, y]))
}

/// The input coordinate of output position `x`, as `coordinate_transformation_mode` says;
/// `length` is the resized length the spec's formulas use (`input·scale`, unrounded, when
/// scales are given).
fn original(m: &Mapping, x: f64, scale: f64, input: usize, (output, length): (usize, f64), roi: (f64, f64)) -> f64 {
    let inp = input as f64;
    let out = length;
    match m.transform.as_str() {
        "asymmetric" => x / scale,
        "align_corners" if output == 1 => 0.0,
        "align_corners" => x * (inp - 1.0) / (out - 1.0),
        "pytorch_half_pixel" if output == 1 => 0.0,
        "pytorch_half_pixel" => (x + 0.5) / scale - 0.5,
        "half_pixel_symmetric" => {
            let adjustment = output as f64 / (scale * inp);
            let offset = inp / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        "tf_crop_and_resize" if output == 1 => 0.5 * (roi.0 + roi.1) * (inp - 1.0),
        "tf_crop_and_resize" => roi.0 * (inp - 1.0) + x * (roi.1 - roi.0) * (inp - 1.0) / (out - 1.0),
        // half_pixel, the default
        _ => (x + 0.5) / scale - 0.5,
    }
}

/// The nearest input index to coordinate `c`, as `nearest_mode` rounds, clamped.
fn nearest(m: &Mapping, c: f64, input: usize) -> i64 {
    let half = (c - c.floor() - 0.5).abs() < 1e-9;
    let i = match m.nearest.as_str() {
        "floor" => c.floor(),
        "ceil" => c.ceil(),
        "round_prefer_ceil" if half => c.ceil(),
        "round_prefer_ceil" => c.round(),
        // round_prefer_floor, the default
        _ if half => c.floor(),
        _ => c.round(),
    };
    (i as i64).clamp(0, input as i64 - 1)
}

/// `n` taps around each coordinate (from floor(c) − n/2 + 1), their weights from
/// `coefficients(c − floor(c))`; outside the input a tap takes the edge, or with
/// `exclude_outside` weighs nothing and the others are renormalized.
fn weighted(
    coordinates: &[f64],
    input: usize,
    n: usize,
    exclude_outside: bool,
    coefficients: impl Fn(f64) -> Vec<f64>,
) -> Vec<(Vec<i64>, Vec<f32>)> {
    let mut taps: Vec<(Vec<i64>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); n];
    for &c in coordinates {
        let base = c.floor();
        let mut w = coefficients(c - base);
        let first = base as i64 - (n as i64 / 2 - 1);
        let inside = |i: i64| (0..input as i64).contains(&i);
        if exclude_outside {
            for (k, wk) in w.iter_mut().enumerate() {
                if !inside(first + k as i64) {
                    *wk = 0.0;
                }
            }
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|wk| *wk /= total);
            }
        }
        for (k, tap) in taps.iter_mut().enumerate() {
            tap.0.push((first + k as i64).clamp(0, input as i64 - 1));
            tap.1.push(w[k] as f32);
        }
    }
    taps
}

/// The cubic convolution weights of the four taps around a coordinate whose fraction is
/// `r` (Keys' kernel with coefficient `a`).
fn cubic(a: f64, r: f64) -> Vec<f64> {
    let outer = |t: f64| ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
    let inner = |t: f64| ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    vec![outer(r + 1.0), inner(r), inner(1.0 - r), outer(2.0 - r)]
}
