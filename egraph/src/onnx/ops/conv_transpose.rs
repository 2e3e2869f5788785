//! `ConvTranspose`, composed as the convolution it is the transpose of: the input with
//! `stride − 1` zeros inserted between its elements, padded by `dilation·(k − 1)` less
//! the transpose's own pads (cropped where that is negative, `output_padding` added at
//! the end), convolved at stride 1 with the kernel flipped and its channel axes swapped
//! within each group. The kernel work happens at import when the weight is a constant;
//! the convolution runs on the backend's convolution kernels.

use super::Cx;
use crate::{Result, TensorLang as L};
use egg::Id;

pub(super) fn conv_transpose(cx: &mut Cx) -> Result<Id> {
    let (x, w) = (cx.input(0)?, cx.input(1)?);
    let (xs, ws) = (cx.shape(x), cx.shape(w));
    if xs.len() < 3 || ws.len() != xs.len() {
        return Err(cx.attr_error(format!(
            "needs input [N,C,…] and weight [C,M/group,…] of equal rank ≥ 3, got {xs:?} and {ws:?}"
        )));
    }
    let n = xs.len() - 2;
    let group = cx.int_attr("group", Some(1))? as usize;
    let (c, m_per_group) = (ws[0], ws[1]);
    if group == 0 || c % group != 0 || xs[1] != c {
        return Err(cx.attr_error(format!("{} input channels, a weight for {c}, {group} groups", xs[1])));
    }
    let kernel = ws[2..].to_vec();
    let strides = cx.spatial_attr("strides", n)?;
    let dilations = cx.spatial_attr("dilations", n)?;
    let output_padding = match cx.ints_attr("output_padding")? {
        Some(p) if p.len() == n => p.iter().map(|&v| v.max(0) as usize).collect(),
        Some(p) => return Err(cx.attr_error(format!("output_padding has {} values for {n} axes", p.len()))),
        None => vec![0; n],
    };
    // negative where output_shape asks for more than the transpose's full extent
    let pads = transpose_pads(cx, &xs[2..], &kernel, &strides, &dilations, &output_padding)?;

    // the convolution's weight: [M, C/group, k…], each group's channel axes swapped, flipped
    let weight = {
        let g = cx.reshape(w, &[&[group, c / group, m_per_group][..], &kernel].concat())?;
        let mut perm: Vec<i64> = vec![0, 2, 1];
        perm.extend(3..3 + n as i64);
        let p = cx.imp.b.ints(perm);
        let t = cx.add(L::Transpose([g, p]))?;
        let r = cx.reshape(t, &[&[group * m_per_group, c / group][..], &kernel].concat())?;
        let rank = 2 + n;
        let starts: Vec<i64> = (0..rank).map(|d| if d < 2 { 0 } else { ws[d] as i64 - 1 }).collect();
        let ends: Vec<i64> =
            (0..rank).map(|d| if d < 2 { [group * m_per_group, c / group][d] as i64 } else { -1 }).collect();
        let steps: Vec<i64> = (0..rank).map(|d| if d < 2 { 1 } else { -1 }).collect();
        let b = &mut cx.imp.b;
        let (s, e, st) = (b.ints(starts), b.ints(ends), b.ints(steps));
        cx.add(L::Slice([r, s, e, st]))?
    };

    // the input, zeros inserted, then cropped where the padding is negative
    let mut y = x;
    for (a, &s) in strides.iter().enumerate() {
        if s > 1 {
            y = insert_zeros(cx, y, 2 + a, s)?;
        }
    }
    let shape = cx.shape(y);
    let mut conv_pads = vec![0usize; 2 * n];
    let (mut starts, mut ends): (Vec<i64>, Vec<i64>) =
        ((0..shape.len()).map(|_| 0).collect(), shape.iter().map(|&d| d as i64).collect());
    for i in 0..n {
        let reach = (dilations[i] * (kernel[i] - 1)) as i64;
        let before = reach - pads[i];
        let after = reach - pads[i + n] + output_padding[i] as i64;
        let d = shape[2 + i] as i64;
        if before >= 0 {
            conv_pads[i] = before as usize;
        } else {
            starts[2 + i] = -before;
        }
        if after >= 0 {
            conv_pads[i + n] = after as usize;
        } else {
            ends[2 + i] = d + after;
        }
    }
    if starts.iter().any(|&s| s != 0) || ends.iter().zip(&shape).any(|(&e, &d)| e != d as i64) {
        let b = &mut cx.imp.b;
        let (s, e, st) = (b.ints(starts), b.ints(ends), b.ints(vec![1; shape.len()]));
        y = cx.add(L::Slice([y, s, e, st]))?;
    }
    let bias = match cx.opt_input(2) {
        Some(b) => b,
        None => cx.imp.b.fill(0.0, &[group * m_per_group]),
    };
    let b = &mut cx.imp.b;
    let attrs = [b.dims(&vec![1; n]), b.dims(&conv_pads), b.dims(&dilations), b.int(group as i64)];
    cx.add(L::Conv([y, weight, bias, attrs[0], attrs[1], attrs[2], attrs[3]]))
}

/// The transpose's pads, begins then ends: given, from `output_shape`, or from
/// `auto_pad` (SAME_UPPER puts the extra one at the end, SAME_LOWER at the start). From
/// `output_shape` they are negative where it is larger than the transpose's extent.
fn transpose_pads(
    cx: &Cx,
    spatial: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    output_padding: &[usize],
) -> Result<Vec<i64>> {
    let n = spatial.len();
    let auto = cx.string_attr("auto_pad", "NOTSET")?;
    let full = |i: usize| strides[i] * (spatial[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1;
    let target: Option<Vec<usize>> = match cx.ints_attr("output_shape")? {
        Some(shape) => {
            let shape: Vec<usize> = shape.iter().map(|&v| v.max(0) as usize).collect();
            // given for the spatial axes (or the whole shape)
            Some(if shape.len() == n { shape } else { shape[shape.len().saturating_sub(n)..].to_vec() })
        }
        None if auto == "SAME_UPPER" || auto == "SAME_LOWER" => Some((0..n).map(|i| spatial[i] * strides[i]).collect()),
        None => None,
    };
    let Some(target) = target else {
        let pads = cx.ints_attr("pads")?.unwrap_or_else(|| vec![0; 2 * n]);
        if pads.len() != 2 * n || pads.iter().any(|&p| p < 0) {
            return Err(cx.attr_error(format!("pads needs {} non-negative values", 2 * n)));
        }
        return Ok(pads);
    };
    let mut pads = vec![0i64; 2 * n];
    for i in 0..n {
        let total = full(i) as i64 - target[i] as i64;
        let (half, rest) = (total / 2, total - total / 2);
        let (begin, end) = if total < 0 {
            (0, total) // a larger output grows at the end, as output_padding does
        } else if auto == "SAME_UPPER" {
            (half, rest)
        } else {
            (rest, half)
        };
        pads[i] = begin;
        pads[i + n] = end;
    }
    Ok(pads)
}

/// `x` with `s − 1` zeros between consecutive elements along `axis`.
fn insert_zeros(cx: &mut Cx, x: Id, axis: usize, s: usize) -> Result<Id> {
    let shape = cx.shape(x);
    let a = cx.imp.b.ints(vec![axis as i64 + 1]);
    let u = cx.add(L::Unsqueeze([x, a]))?;
    let rank = shape.len() + 1;
    let mut pads = vec![0usize; 2 * rank];
    pads[rank + axis + 1] = s - 1;
    let (p, v) = (cx.imp.b.dims(&pads), cx.imp.b.float(0.0));
    let padded = cx.add(L::Pad([u, p, v]))?;
    let mut merged = shape.clone();
    merged[axis] *= s;
    let r = cx.reshape(padded, &merged)?;
    // the trailing zeros of the last element go
    let mut ends: Vec<i64> = merged.iter().map(|&d| d as i64).collect();
    ends[axis] = ((shape[axis] - 1) * s + 1) as i64;
    let b = &mut cx.imp.b;
    let (st, e, step) = (b.ints(vec![0; merged.len()]), b.ints(ends), b.ints(vec![1; merged.len()]));
    cx.add(L::Slice([r, st, e, step]))
}
