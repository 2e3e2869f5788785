//! ONNX's indexed reads and writes by whole index tuples: `GatherND` and `ScatterND`
//! import as `gather` / `scatter_elements` along axis 0 of the data flattened to
//! `[indexed positions, rest]`, each index tuple turned into one linear row index
//! (negative indices counting from their axis's end). `ScatterElements` (and the
//! deprecated `Scatter`) is an op of its own.
//!
//! The linear index is i64 arithmetic the e-graph already has (slice, where, mul, add),
//! so constant index tensors fold at import and dynamic ones run as a small fused loop.
//! An index outside its axis is an error only when the interpreter checks it directly;
//! after flattening it may name another row, as ONNX leaves out-of-range indices
//! undefined.

use super::Cx;
use crate::ops::SCATTER_REDUCTIONS;
use crate::{DType, Result, Tensor, TensorLang as L};
use egg::Id;

/// `ScatterElements(data, indices, updates, axis, reduction)` (and `Scatter`).
pub(super) fn scatter_elements(cx: &mut Cx) -> Result<Id> {
    let (data, indices, updates) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let axis = cx.axis_attr("axis", Some(0), cx.rank(data))?;
    let reduction = reduction(cx)?;
    let indices = as_i64(cx, indices)?;
    let b = &mut cx.imp.b;
    let (a, r) = (b.int(axis as i64), b.int(reduction));
    cx.add(L::ScatterElements([data, indices, updates, a, r]))
}

/// `ScatterND(data, indices, updates, reduction)`: `data` with the slices
/// `data[indices[p]]` replaced by (or combined with) `updates[p]`, in order.
pub(super) fn scatter_nd(cx: &mut Cx) -> Result<Id> {
    let (data, indices, updates) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let reduction = reduction(cx)?;
    let (d, q) = (cx.shape(data), cx.shape(indices));
    let k = tuple_length(cx, &q, d.len(), 0)?;
    let lead = &q[..q.len() - 1];
    let want: Vec<usize> = lead.iter().chain(&d[k..]).copied().collect();
    if cx.shape(updates) != want {
        return Err(cx.attr_error(format!(
            "updates have shape {:?}; indices {q:?} and data {d:?} need {want:?}",
            cx.shape(updates)
        )));
    }
    let (rows, inner) = (lead.iter().product::<usize>(), d[k..].iter().product::<usize>());
    let linear = linear_index(cx, indices, &d[..k])?;
    let linear = cx.reshape(linear, &[rows, 1])?;
    let s = cx.imp.b.dims(&[rows, inner]);
    let linear = cx.add(L::Expand([linear, s]))?;
    let table = cx.reshape(data, &[d[..k].iter().product(), inner])?;
    let updates = cx.reshape(updates, &[rows, inner])?;
    let b = &mut cx.imp.b;
    let (a, r) = (b.int(0), b.int(reduction));
    let scattered = cx.add(L::ScatterElements([table, linear, updates, a, r]))?;
    cx.reshape(scattered, &d)
}

/// `GatherND(data, indices, batch_dims)`: `out[p] = data[batch(p), indices[p]]`, a
/// slice of `data` for each index tuple (the last axis of `indices`).
pub(super) fn gather_nd(cx: &mut Cx) -> Result<Id> {
    let (data, indices) = (cx.input(0)?, cx.input(1)?);
    let (d, q) = (cx.shape(data), cx.shape(indices));
    let batch = cx.int_attr("batch_dims", Some(0))?;
    let batch = usize::try_from(batch).ok().filter(|&b| b < q.len() && b <= d.len()).ok_or_else(|| {
        cx.attr_error(format!("batch_dims {batch} must be below the rank of the indices {}", q.len()))
    })?;
    if d[..batch] != q[..batch] {
        return Err(cx.attr_error(format!(
            "the first {batch} dims of data {d:?} and indices {q:?} (the batch dims) must agree"
        )));
    }
    let k = tuple_length(cx, &q, d.len(), batch)?;
    let indexed = &d[batch..batch + k];
    let per_batch: usize = indexed.iter().product();
    let mut linear = linear_index(cx, indices, indexed)?;
    if batch > 0 {
        // each batch position reads its own block of rows
        let count: usize = d[..batch].iter().product();
        let mut shape = q[..batch].to_vec();
        shape.resize(q.len() - 1, 1);
        let offsets = (0..count as i64).map(|b| b * per_batch as i64).collect();
        let offsets = Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), offsets).expect("sizes"));
        let offsets = cx.constant_part(offsets, "batch_offsets");
        linear = cx.add(L::Add([linear, offsets]))?;
    }
    let rest = &d[batch + k..];
    let table = cx.reshape(data, &[d[..batch + k].iter().product(), rest.iter().product()])?;
    let zero = cx.imp.b.int(0);
    let gathered = cx.add(L::Gather([table, linear, zero]))?;
    let out: Vec<usize> = q[..q.len() - 1].iter().chain(rest).copied().collect();
    cx.reshape(gathered, &out)
}

/// The length `k` of the index tuples (the last dim of the indices), checked to fit the
/// data's rank after `batch` batch dims.
fn tuple_length(cx: &Cx, q: &[usize], rank: usize, batch: usize) -> Result<usize> {
    match q.last() {
        Some(&k) if batch + k <= rank => Ok(k),
        Some(&k) => Err(cx.attr_error(format!("index tuples of length {k} do not fit data of rank {rank}"))),
        None => Err(cx.attr_error("indices must have rank ≥ 1 (their last axis holds the index tuples)".into())),
    }
}

/// `Σⱼ wrap(indices[…, j]) · strideⱼ` over the last axis of `indices`, the row-major
/// position of each index tuple in a tensor of shape `dims`; shape `indices[..-1]`.
fn linear_index(cx: &mut Cx, indices: Id, dims: &[usize]) -> Result<Id> {
    let q = cx.shape(indices);
    let lead = q[..q.len() - 1].to_vec();
    if dims.is_empty() {
        let zeros = vec![0i64; lead.iter().product()];
        let zeros = Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&lead), zeros).expect("sizes"));
        return Ok(cx.constant_part(zeros, "rows"));
    }
    let indices = as_i64(cx, indices)?;
    let last = q.len() - 1;
    let zero = cx.constant_part(Tensor::I64(ndarray::arr0(0).into_dyn()), "zero");
    let mut sum = None;
    let mut stride: i64 = dims.iter().map(|&n| n as i64).product();
    for (j, &n) in dims.iter().enumerate() {
        stride /= n.max(1) as i64;
        let mut starts = vec![0; q.len()];
        let mut ends: Vec<i64> = q.iter().map(|&n| n as i64).collect();
        (starts[last], ends[last]) = (j as i64, j as i64 + 1);
        let b = &mut cx.imp.b;
        let (s, e, st, axes) = (b.ints(starts), b.ints(ends), b.ints(vec![1; q.len()]), b.ints(vec![last as i64]));
        let column = cx.add(L::Slice([indices, s, e, st]))?;
        let column = cx.add(L::Squeeze([column, axes]))?;
        let size = cx.constant_part(Tensor::I64(ndarray::arr0(n as i64).into_dyn()), &format!("dim{j}"));
        let negative = cx.add(L::Less([column, zero]))?;
        let wrapped = cx.add(L::Add([column, size]))?;
        let column = cx.add(L::Where([negative, wrapped, column]))?;
        let term = if stride == 1 {
            column
        } else {
            let s = cx.constant_part(Tensor::I64(ndarray::arr0(stride).into_dyn()), &format!("stride{j}"));
            cx.add(L::Mul([column, s]))?
        };
        sum = Some(match sum {
            Some(acc) => cx.add(L::Add([acc, term]))?,
            None => term,
        });
    }
    Ok(sum.expect("dims is not empty"))
}

fn as_i64(cx: &mut Cx, x: Id) -> Result<Id> {
    if cx.ty(x).dtype == DType::I64 {
        return Ok(x);
    }
    let d = cx.imp.b.dtype(DType::I64);
    cx.add(L::Cast([x, d]))
}

/// The `reduction` attribute's code in [`SCATTER_REDUCTIONS`].
fn reduction(cx: &Cx) -> Result<i64> {
    let r = cx.string_attr("reduction", "none")?;
    SCATTER_REDUCTIONS
        .iter()
        .position(|&name| name == r)
        .map(|p| p as i64)
        .ok_or_else(|| cx.attr_error(format!("reduction `{r}` is not one of {}", SCATTER_REDUCTIONS.join(", "))))
}
