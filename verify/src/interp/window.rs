//! Sliding-window ops over the spatial axes of `[N, C, spatial…]` tensors: convolution
//! and pooling, for any number of spatial dimensions.
//!
//! Convolution is written as im2col followed by a matrix product in f64: for each
//! output position, the input values under the kernel become a column, and the weights
//! multiply the columns. Pooling walks each window directly.

use super::linalg::dot_f64;
use ndarray::{Array2, ArrayD, Axis, IxDyn};

/// Window geometry: pads are `[begin…, end…]`, one per spatial axis each.
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
}

impl Window {
    fn spatial(&self) -> usize {
        self.kernel.len()
    }

    /// Input coordinates of kernel tap `tap` for output position `out`, per axis; may
    /// fall in the padding (negative, or ≥ the input size).
    fn tap_coords(&self, out: &[usize], tap: &[usize], coords: &mut [i64]) {
        for d in 0..self.spatial() {
            coords[d] = (out[d] * self.strides[d] + tap[d] * self.dilations[d]) as i64 - self.pads[d] as i64;
        }
    }
}

/// Row-major multi-index of flat index `i` within `dims`.
fn unravel(mut i: usize, dims: &[usize], out: &mut [usize]) {
    for d in (0..dims.len()).rev() {
        out[d] = i % dims[d];
        i /= dims[d];
    }
}

/// Flat row-major index of `coords` within `dims`, if they are inside.
fn ravel(coords: &[i64], dims: &[usize]) -> Option<usize> {
    let mut flat = 0usize;
    for (&c, &d) in coords.iter().zip(dims) {
        if c < 0 || c as usize >= d {
            return None;
        }
        flat = flat * d + c as usize;
    }
    Some(flat)
}

/// Output positions handled per im2col block, bounding the column buffer's memory.
const BLOCK: usize = 2048;

/// Grouped N-d convolution: `x [N,C,S…]`, `w [M,C/group,K…]`, `b [M]` → `[N,M,O…]`.
pub fn conv(x: &ArrayD<f32>, w: &ArrayD<f32>, b: &ArrayD<f32>, win: &Window, group: usize) -> ArrayD<f32> {
    let (batch, channels) = (x.shape()[0], x.shape()[1]);
    let spatial_in = &x.shape()[2..];
    let m = w.shape()[0];
    let (cg, mg) = (channels / group, m / group);
    let out_dims: Vec<usize> = (0..win.spatial())
        .map(|d| {
            let extent = (win.kernel[d] - 1) * win.dilations[d] + 1;
            (spatial_in[d] + win.pads[d] + win.pads[d + win.spatial()] - extent) / win.strides[d] + 1
        })
        .collect();
    let positions: usize = out_dims.iter().product();
    let taps: usize = win.kernel.iter().product();
    let in_size: usize = spatial_in.iter().product();

    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    // weights as [M, C/group · taps] matrices
    let w2 = w.as_standard_layout().into_owned().into_shape_with_order((m, cg * taps)).expect("weight size");

    let mut out = vec![0f32; batch * m * positions];
    let (mut o, mut t, mut coords) = (vec![0; win.spatial()], vec![0; win.spatial()], vec![0i64; win.spatial()]);
    for n in 0..batch {
        for g in 0..group {
            let wg = w2.slice(ndarray::s![g * mg..(g + 1) * mg, ..]);
            for start in (0..positions).step_by(BLOCK) {
                let len = BLOCK.min(positions - start);
                let mut cols = Array2::<f32>::zeros((cg * taps, len));
                for j in 0..len {
                    unravel(start + j, &out_dims, &mut o);
                    for tap in 0..taps {
                        unravel(tap, &win.kernel, &mut t);
                        win.tap_coords(&o, &t, &mut coords);
                        if let Some(at) = ravel(&coords, spatial_in) {
                            for c in 0..cg {
                                let channel = g * cg + c;
                                cols[[c * taps + tap, j]] = xs[(n * channels + channel) * in_size + at];
                            }
                        }
                    }
                }
                let prod = dot_f64(wg, cols.view());
                for mi in 0..mg {
                    let oc = g * mg + mi;
                    let bias = b[[oc]] as f64;
                    let row = &mut out[(n * m + oc) * positions + start..][..len];
                    for (dst, &v) in row.iter_mut().zip(prod.row(mi)) {
                        *dst = (v + bias) as f32;
                    }
                }
            }
        }
    }
    let mut shape = vec![batch, m];
    shape.extend(&out_dims);
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("conv output size")
}

#[derive(Debug, Clone, Copy)]
pub enum PoolKind {
    Max,
    /// With `count_include_pad`, the divisor counts window taps inside the padded
    /// input; without, only taps inside the input.
    Average {
        count_include_pad: bool,
    },
}

/// Max or average pooling producing `out_shape` (`[N,C,O…]`, from type inference, so
/// ceil_mode is already accounted for). Taps in the padding are ignored by max.
pub fn pool(x: &ArrayD<f32>, win: &Window, out_shape: &[usize], kind: PoolKind) -> ArrayD<f32> {
    let spatial_in = &x.shape()[2..];
    let out_dims = &out_shape[2..];
    let positions: usize = out_dims.iter().product();
    let taps: usize = win.kernel.iter().product();
    let in_size: usize = spatial_in.iter().product();
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let planes = out_shape[0] * out_shape[1];
    let mut out = Vec::with_capacity(planes * positions);
    let (mut o, mut t, mut coords) = (vec![0; win.spatial()], vec![0; win.spatial()], vec![0i64; win.spatial()]);
    for plane in 0..planes {
        let input = &xs[plane * in_size..(plane + 1) * in_size];
        for p in 0..positions {
            unravel(p, out_dims, &mut o);
            let (mut max, mut sum, mut inside, mut in_padded) = (f64::NEG_INFINITY, 0f64, 0usize, 0usize);
            for tap in 0..taps {
                unravel(tap, &win.kernel, &mut t);
                win.tap_coords(&o, &t, &mut coords);
                let within_padding =
                    (0..win.spatial()).all(|d| coords[d] < (spatial_in[d] + win.pads[d + win.spatial()]) as i64);
                if within_padding {
                    in_padded += 1;
                }
                if let Some(at) = ravel(&coords, spatial_in) {
                    let v = input[at] as f64;
                    max = if v.is_nan() || max.is_nan() { f64::NAN } else { max.max(v) };
                    sum += v;
                    inside += 1;
                }
            }
            out.push(match kind {
                PoolKind::Max => max as f32,
                PoolKind::Average { count_include_pad: true } => (sum / in_padded as f64) as f32,
                PoolKind::Average { count_include_pad: false } => (sum / inside as f64) as f32,
            });
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out).expect("pool output size")
}

/// Average or max over all spatial positions of each `[n, c]` plane.
pub fn global_pool(x: &ArrayD<f32>, max: bool) -> ArrayD<f32> {
    let mut shape = x.shape().to_vec();
    let planes = shape[0] * shape[1];
    shape[2..].iter_mut().for_each(|d| *d = 1);
    let flat =
        x.as_standard_layout().into_owned().into_shape_with_order((planes, x.len() / planes.max(1))).expect("planes");
    let values: Vec<f32> =
        flat.axis_iter(Axis(0))
            .map(|row| {
                if max {
                    row.iter().fold(f64::NEG_INFINITY, |m, &v| {
                        if v.is_nan() || m.is_nan() {
                            f64::NAN
                        } else {
                            m.max(v as f64)
                        }
                    }) as f32
                } else {
                    (row.iter().map(|&v| v as f64).sum::<f64>() / row.len() as f64) as f32
                }
            })
            .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), values).expect("global pool size")
}
