//! Winograd's F(m×m, 3×3) as the backend computes it, in f64: `winograd_weights`
//! carries each 3×3 filter into the (m+2)² space (`G g Gᵀ`), `winograd_conv` carries each
//! input tile there (`Bᵀ d B`), multiplies and sums over the channels, and brings the
//! result back (`Aᵀ M A`). In exact arithmetic this is the convolution; the rule checker
//! holds the rules that introduce it to that.

use ndarray::{ArrayD, IxDyn};
use saturate_egraph::WinogradTile;

/// `w` [K,C,3,3] → [(m+2)², K, C].
pub fn weights(w: &ArrayD<f32>, tile: &WinogradTile) -> ArrayD<f32> {
    let (k, c) = (w.shape()[0], w.shape()[1]);
    let w = w.as_standard_layout();
    let w = w.as_slice().expect("standard layout");
    let transform = tile.weight_transform();
    let area = tile.alpha() * tile.alpha();
    let mut out = vec![0f32; area * k * c];
    for f in 0..k * c {
        let g = &w[f * 9..f * 9 + 9];
        for p in 0..area {
            let v: f64 = (0..9).map(|t| transform[p * 9 + t] * f64::from(g[t])).sum();
            out[p * k * c + f] = v as f32;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[area, k, c]), out).expect("the transformed weights' size")
}

/// `x` [N,C,H,W] by `u` [(m+2)², K, C] plus `b` [K], `pads` [top, left, bottom, right],
/// stride 1: [N, K, OH, OW] (before the activation).
pub fn conv(x: &ArrayD<f32>, u: &ArrayD<f32>, b: &ArrayD<f32>, pads: &[usize], tile: &WinogradTile) -> ArrayD<f32> {
    let (batch, channels, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let k = u.shape()[1];
    let (oh, ow) = (h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2);
    let (m, a) = (tile.m, tile.alpha());
    let x = x.as_standard_layout();
    let x = x.as_slice().expect("standard layout");
    let u = u.as_standard_layout();
    let u = u.as_slice().expect("standard layout");
    let mut out = vec![0f32; batch * k * oh * ow];
    let (mut v, mut prod) = (vec![0f64; channels * a * a], vec![0f64; a * a]);
    for n in 0..batch {
        for ty in 0..oh.div_ceil(m) {
            for tx in 0..ow.div_ceil(m) {
                for c in 0..channels {
                    let plane = &x[(n * channels + c) * h * w..][..h * w];
                    let at = |i: usize, j: usize| {
                        let (r, q) = ((ty * m + i) as i64 - pads[0] as i64, (tx * m + j) as i64 - pads[1] as i64);
                        let inside = (0..h as i64).contains(&r) && (0..w as i64).contains(&q);
                        if inside {
                            f64::from(plane[r as usize * w + q as usize])
                        } else {
                            0.0
                        }
                    };
                    let d: Vec<f64> = (0..a * a).map(|p| at(p / a, p % a)).collect();
                    let t = sandwich(tile.bt, &d, a, a);
                    v[c * a * a..][..a * a].copy_from_slice(&t);
                }
                for f in 0..k {
                    for p in 0..a * a {
                        prod[p] =
                            (0..channels).map(|c| f64::from(u[(p * k + f) * channels + c]) * v[c * a * a + p]).sum();
                    }
                    let y = sandwich(tile.at, &prod, m, a);
                    for i in 0..m.min(oh - ty * m) {
                        for j in 0..m.min(ow - tx * m) {
                            let o = ((n * k + f) * oh + ty * m + i) * ow + tx * m + j;
                            out[o] = (y[i * m + j] + f64::from(b[[f]])) as f32;
                        }
                    }
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[batch, k, oh, ow]), out).expect("the output's size")
}

/// `L d Lᵀ` for `L` of `rows × cols` and `d` of `cols × cols`, row-major.
fn sandwich(l: &[f64], d: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut half = vec![0f64; rows * cols];
    for r in 0..rows {
        for j in 0..cols {
            half[r * cols + j] = (0..cols).map(|i| term(l[r * cols + i], d[i * cols + j])).sum();
        }
    }
    let mut out = vec![0f64; rows * rows];
    for r in 0..rows {
        for s in 0..rows {
            out[r * rows + s] = (0..cols).map(|j| term(l[s * cols + j], half[r * cols + j])).sum();
        }
    }
    out
}

/// `coefficient · value`, where a zero coefficient is a term the transform does not have
/// (not a product by zero): the backend's formulas leave it out, so a NaN or an infinity
/// in a tile reaches only the entries whose formula reads it. A product `0 · NaN` here
/// spread it over the whole tile, to outputs whose convolution window never held it.
fn term(coefficient: f64, value: f64) -> f64 {
    if coefficient == 0.0 {
        0.0
    } else {
        coefficient * value
    }
}
