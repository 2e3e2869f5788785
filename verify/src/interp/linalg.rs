//! Matrix products, accumulated in f64 (ndarray's `dot` on f64 matrices).

use super::elementwise::view_as;
use ndarray::{s, Array2, ArrayD, ArrayView2, Axis, Ix2, IxDyn};
use saturate_egraph::shape::broadcast;

/// numpy `matmul`: the last two axes multiply, leading axes broadcast, and 1-D operands
/// are treated as a row (left) or column (right) vector whose axis is then dropped.
pub fn matmul(a: &ArrayD<f32>, b: &ArrayD<f32>) -> Result<ArrayD<f32>, String> {
    let a2 = if a.ndim() == 1 { a.view().insert_axis(Axis(0)) } else { a.view() };
    let b2 = if b.ndim() == 1 { b.view().insert_axis(Axis(1)) } else { b.view() };
    let (ra, rb) = (a2.ndim(), b2.ndim());
    let (m, k, n) = (a2.shape()[ra - 2], a2.shape()[ra - 1], b2.shape()[rb - 1]);
    if b2.shape()[rb - 2] != k {
        return Err(format!("matmul inner dimensions differ: {:?} × {:?}", a.shape(), b.shape()));
    }
    let batch = broadcast(&a2.shape()[..ra - 2], &b2.shape()[..rb - 2]).ok_or("matmul batch dims do not broadcast")?;
    let mut full_a = batch.clone();
    full_a.extend([m, k]);
    let mut full_b = batch.clone();
    full_b.extend([k, n]);
    let a_owned = a2.to_owned();
    let b_owned = b2.to_owned();
    let av = view_as(&a_owned, &full_a);
    let bv = view_as(&b_owned, &full_b);
    let count: usize = batch.iter().product();
    let a3 = av.to_shape((count, m, k)).map_err(|e| e.to_string())?;
    let b3 = bv.to_shape((count, k, n)).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(count * m * n);
    for i in 0..count {
        let prod = dot_f64(a3.slice(s![i, .., ..]), b3.slice(s![i, .., ..]));
        out.extend(prod.iter().map(|&v| v as f32));
    }
    let mut shape = batch;
    if a.ndim() > 1 {
        shape.push(m);
    }
    if b.ndim() > 1 {
        shape.push(n);
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("sizes match"))
}

/// `alpha · op(a) · op(b) + beta · c`, with `c` broadcast to the result.
pub fn gemm(
    a: &ArrayD<f32>,
    b: &ArrayD<f32>,
    c: &ArrayD<f32>,
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
) -> Result<ArrayD<f32>, String> {
    let a = a.view().into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
    let b = b.view().into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
    let a = if trans_a { a.reversed_axes() } else { a };
    let b = if trans_b { b.reversed_axes() } else { b };
    let prod = dot_f64(a, b);
    let shape = [prod.nrows(), prod.ncols()];
    let c = view_as(c, &shape);
    let out = ndarray::Zip::from(&prod)
        .and(&c.into_dimensionality::<Ix2>().expect("2-D"))
        .map_collect(|&p, &c| (alpha as f64 * p + beta as f64 * c as f64) as f32);
    Ok(out.into_dyn())
}

/// The product of two f32 matrices, computed in f64.
pub(crate) fn dot_f64(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f64> {
    let a = a.mapv(|v| v as f64);
    let b = b.mapv(|v| v as f64);
    a.dot(&b)
}

/// Scaled dot-product attention: `softmax(scale · q·kᵀ) · v`, softmax over the last axis.
pub fn attention(q: &ArrayD<f32>, k: &ArrayD<f32>, v: &ArrayD<f32>, scale: f32) -> Result<ArrayD<f32>, String> {
    let mut kt = k.view();
    let r = kt.ndim();
    kt.swap_axes(r - 2, r - 1);
    let scores = matmul(q, &kt.to_owned())?.mapv(|s| (s as f64 * scale as f64) as f32);
    let last = scores.ndim() - 1;
    let probs = super::reduce::softmax(&scores, last, false);
    matmul(&probs, v)
}
