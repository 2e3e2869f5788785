//! Row kernels on wide vectors: softmax, log-softmax, layer and RMS normalization, and
//! the f32 reductions (sum, mean, max, min) along contiguous rows, with the semantics of
//! the CLIF row kernels (`jit/rows.rs`): max and min propagate NaN, softmax writes 0
//! where x − max < −70 (no subnormal floats), and a sum or a normalization whose f32
//! statistics are not finite is computed again in f64.

#![allow(unsafe_op_in_unsafe_fn)]

use super::math;
use super::vector::Vector;
use super::{Isa, MAX_RANK};

use crate::jit::math::coefficients as k;
use crate::jit::rows::SOFTMAX_FLOOR;
use crate::rows::{RowOp, RowSpec};
use saturate_egraph::DType;

/// A [`RowSpec`] ready to run on wide vectors.
#[derive(Debug, Clone)]
pub struct RowProgram {
    pub(super) isa: Isa,
    rows: Vec<usize>,
    len: usize,
    x: Vec<isize>,
    out: Vec<isize>,
    /// The step of each parameter along the row (a normalization's scale and bias): 1,
    /// or 0 for one value.
    params: Vec<isize>,
    op: RowOp,
}

impl RowProgram {
    /// The program for `spec`, if it is one of the ops here on f32 rows read (and, for
    /// softmax, written) contiguously, long enough for wide vectors to pay.
    pub fn new(spec: &RowSpec, isa: Isa) -> Option<RowProgram> {
        let supported = matches!(
            spec.op,
            RowOp::Softmax
                | RowOp::LogSoftmax
                | RowOp::LayerNorm { .. }
                | RowOp::RmsNorm { .. }
                | RowOp::Sum
                | RowOp::Mean
                | RowOp::Max
                | RowOp::Min
        );
        let contiguous = spec.x.step == 1 && (spec.op.reduces() || spec.out.step == 1);
        let params_fit = spec.params.len() <= 2
            && spec.params.iter().all(|p| matches!(p.step, 0 | 1) && p.strides.iter().all(|&s| s == 0));
        let short = spec.len < 64;
        if !supported || !contiguous || !params_fit || short || spec.dtype != DType::F32 || spec.rows.len() > MAX_RANK {
            return None;
        }
        Some(RowProgram {
            isa,
            rows: spec.rows.clone(),
            len: spec.len,
            x: spec.x.strides.clone(),
            out: spec.out.strides.clone(),
            params: spec.params.iter().map(|p| p.step).collect(),
            op: spec.op,
        })
    }

    /// Rows `[begin, end)` of the outermost row dimension (all of the others).
    ///
    /// # Safety
    /// `args` holds the input's, the parameters' and the output's addresses, valid for
    /// every element the strides reach.
    #[inline(always)]
    pub(super) unsafe fn run_with<V: Vector>(&self, args: *const *mut u8, begin: usize, end: usize) {
        let np = self.params.len();
        let (x0, out0) = (unsafe { (*args).cast::<f32>() }, unsafe { (*args.add(1 + np)).cast::<f32>() });
        let mut params = [Param { at: std::ptr::null(), step: 0 }; 2];
        for (k, p) in params.iter_mut().enumerate().take(np) {
            *p = Param { at: unsafe { (*args.add(1 + k)).cast::<f32>() }, step: self.params[k] };
        }
        let mut index = [0usize; MAX_RANK];
        let rank = self.rows.len();
        for outer in begin..end {
            index[0] = outer;
            index[1..rank].iter_mut().for_each(|i| *i = 0);
            loop {
                let at = |strides: &[isize]| -> isize {
                    index[..rank].iter().zip(strides).map(|(&i, &s)| i as isize * s).sum()
                };
                let (x, out) = unsafe { (x0.offset(at(&self.x)), out0.offset(at(&self.out))) };
                unsafe { self.row::<V>(x, out, &params) };
                if !super::next_middle(&mut index[..rank], &self.rows) {
                    break;
                }
            }
        }
    }

    // no closures: one would not inherit the caller's `#[target_feature]`
    #[inline(always)]
    unsafe fn row<V: Vector>(&self, x: *const f32, out: *mut f32, params: &[Param; 2]) {
        let n = self.len;
        let tail = n - n % V::LANES;
        match self.op {
            RowOp::Sum | RowOp::Mean => {
                let mut s = unsafe { sum::<V>(x, n, false) } as f64;
                if !s.is_finite() {
                    // as the interpreter: in f64, rounded once
                    s = unsafe { (0..n).map(|j| *x.add(j) as f64).sum::<f64>() };
                }
                if self.op == RowOp::Mean {
                    s /= n as f64;
                }
                unsafe { *out = s as f32 };
            }
            RowOp::Max | RowOp::Min => unsafe { *out = extreme::<V>(self.op == RowOp::Max, x, n) },
            RowOp::Softmax => unsafe {
                let m = V::splat(shift_max::<V>(x, n));
                let mut acc = V::splat(0.0);
                for j in (0..tail).step_by(V::LANES) {
                    let e = softmax_exp(V::load(x.add(j)), m);
                    e.store(out.add(j));
                    acc = acc.add(e);
                }
                if tail < n {
                    // padded with −inf, whose exponential is 0, and masked in case of NaN
                    let e = softmax_exp(V::load_first(x.add(tail), n - tail, f32::NEG_INFINITY), m);
                    e.store_first(out.add(tail), n - tail);
                    acc = acc.add(e.keep_first(n - tail));
                }
                let inv = V::splat(1.0).div(V::splat(horizontal_sum(acc)));
                for j in (0..tail).step_by(V::LANES) {
                    V::load(out.add(j)).mul(inv).store(out.add(j));
                }
                for j in tail..n {
                    *out.add(j) *= first(inv);
                }
            },
            RowOp::LogSoftmax => unsafe {
                let mv = V::splat(shift_max::<V>(x, n));
                let mut acc = V::splat(0.0);
                for j in (0..tail).step_by(V::LANES) {
                    acc = acc.add(math::exp_nonpositive(V::load(x.add(j)).sub(mv), k::EXP_LO));
                }
                if tail < n {
                    let e = math::exp_nonpositive(
                        V::load_first(x.add(tail), n - tail, f32::NEG_INFINITY).sub(mv),
                        k::EXP_LO,
                    );
                    acc = acc.add(e.keep_first(n - tail));
                }
                let shift = mv.add(math::log(V::splat(horizontal_sum(acc))));
                for j in (0..tail).step_by(V::LANES) {
                    V::load(x.add(j)).sub(shift).store(out.add(j));
                }
                for j in tail..n {
                    *out.add(j) = *x.add(j) - first(shift);
                }
            },
            RowOp::LayerNorm { eps } => unsafe { layer_norm::<V>(x, out, n, eps, params[0], params[1]) },
            RowOp::RmsNorm { eps } => unsafe { rms_norm::<V>(x, out, n, eps, params[0]) },
            other => unreachable!("{other:?} has no wide row kernel (RowProgram::new checks)"),
        }
    }
}

/// A parameter along the row: its address and step (1, or 0 for one value).
#[derive(Clone, Copy)]
struct Param {
    at: *const f32,
    step: isize,
}

impl Param {
    #[inline(always)]
    unsafe fn load<V: Vector>(self, j: usize) -> V {
        unsafe {
            if self.step == 0 {
                V::splat(*self.at)
            } else {
                V::load(self.at.add(j))
            }
        }
    }

    #[inline(always)]
    unsafe fn load_first<V: Vector>(self, j: usize, n: usize) -> V {
        unsafe {
            if self.step == 0 {
                V::splat(*self.at)
            } else {
                V::load_first(self.at.add(j), n, 0.0)
            }
        }
    }

    #[inline(always)]
    unsafe fn get(self, j: usize) -> f32 {
        unsafe { *self.at.offset(j as isize * self.step) }
    }
}

/// `(x − mean)/√(var + eps) · scale + bias` over one row, as the CLIF kernel computes
/// it: the mean m₀ in f32 is off by up to an ulp of the row's magnitude, so a second
/// pass sums d = x − m₀ as well as d² and corrects both (x − mean = d − c with c = Σd/n,
/// var = Σd²/n − c²). Rows whose squares overflow f32, or whose variance vanishes
/// below the smallest normal f32 without an epsilon, are computed in f64.
#[inline(always)]
unsafe fn layer_norm<V: Vector>(x: *const f32, out: *mut f32, n: usize, eps: f32, scale: Param, bias: Param) {
    unsafe {
        let nf = n as f32;
        let m0 = sum::<V>(x, n, false) / nf;
        let (sd, sdd) = centred_sums::<V>(x, n, m0);
        let c = sd / nf;
        let var = (sdd / nf - c * c).max(0.0);
        if !statistics_usable(sdd, var, eps) {
            return layer_norm_f64(x, out, n, eps, scale, bias);
        }
        let inv = V::splat(1.0 / (var + eps).sqrt());
        let (m0, c) = (V::splat(m0), V::splat(c));
        let tail = n - n % V::LANES;
        // (x − m₀) − c, not x − (m₀ + c): the sum would round c away
        for j in (0..tail).step_by(V::LANES) {
            let d = V::load(x.add(j)).sub(m0).sub(c).mul(inv);
            d.fma(scale.load(j), bias.load(j)).store(out.add(j));
        }
        if tail < n {
            let d = V::load_first(x.add(tail), n - tail, 0.0).sub(m0).sub(c).mul(inv);
            let y = d.fma(scale.load_first(tail, n - tail), bias.load_first(tail, n - tail));
            y.store_first(out.add(tail), n - tail);
        }
    }
}

/// `x/√(mean(x²) + eps) · scale` over one row; rows whose squares overflow f32 (or, without an
/// epsilon, whose mean square vanishes) in f64.
#[inline(always)]
unsafe fn rms_norm<V: Vector>(x: *const f32, out: *mut f32, n: usize, eps: f32, scale: Param) {
    unsafe {
        let sq = sum::<V>(x, n, true);
        let mean_square = sq / n as f32;
        if !statistics_usable(sq, mean_square, eps) {
            let sq = (0..n).map(|j| (*x.add(j) as f64).powi(2)).sum::<f64>();
            let inv = 1.0 / (sq / n as f64 + f64::from(eps)).sqrt();
            for j in 0..n {
                *out.add(j) = (*x.add(j) as f64 * inv * scale.get(j) as f64) as f32;
            }
            return;
        }
        let inv = V::splat(1.0 / (mean_square + eps).sqrt());
        let tail = n - n % V::LANES;
        for j in (0..tail).step_by(V::LANES) {
            V::load(x.add(j)).mul(inv).mul(scale.load(j)).store(out.add(j));
        }
        if tail < n {
            let v = V::load_first(x.add(tail), n - tail, 0.0);
            v.mul(inv).mul(scale.load_first(tail, n - tail)).store_first(out.add(tail), n - tail);
        }
    }
}

/// Whether f32 row statistics can be used: the accumulated squares are finite, and,
/// without an epsilon to keep the root away from zero, the variance is not lost below
/// the smallest normal f32 (the CLIF kernels' test).
fn statistics_usable(squares: f32, var: f32, eps: f32) -> bool {
    squares.is_finite() && (eps > 0.0 || var >= f32::MIN_POSITIVE)
}

/// The slow path of [`layer_norm`], as the interpreter computes it.
#[inline(always)]
unsafe fn layer_norm_f64(x: *const f32, out: *mut f32, n: usize, eps: f32, scale: Param, bias: Param) {
    unsafe {
        let mean = (0..n).map(|j| *x.add(j) as f64).sum::<f64>() / n as f64;
        let sq = (0..n).map(|j| (*x.add(j) as f64 - mean).powi(2)).sum::<f64>();
        let inv = 1.0 / (sq / n as f64 + f64::from(eps)).sqrt();
        for j in 0..n {
            let d = (*x.add(j) as f64 - mean) * inv;
            *out.add(j) = (d * scale.get(j) as f64 + bias.get(j) as f64) as f32;
        }
    }
}

/// (Σd, Σd²) with d = x − m, in f32 over four independent pairs of accumulators.
#[inline(always)]
unsafe fn centred_sums<V: Vector>(x: *const f32, n: usize, m: f32) -> (f32, f32) {
    unsafe {
        let mv = V::splat(m);
        let (mut d, mut dd) = ([V::splat(0.0); 4], [V::splat(0.0); 4]);
        let mut j = 0;
        while j + 4 * V::LANES <= n {
            for k in 0..4 {
                let v = V::load(x.add(j + k * V::LANES)).sub(mv);
                d[k] = d[k].add(v);
                dd[k] = v.fma(v, dd[k]);
            }
            j += 4 * V::LANES;
        }
        while j + V::LANES <= n {
            let v = V::load(x.add(j)).sub(mv);
            d[0] = d[0].add(v);
            dd[0] = v.fma(v, dd[0]);
            j += V::LANES;
        }
        if j < n {
            // padded with m: d = 0 there
            let v = V::load_first(x.add(j), n - j, m).sub(mv);
            d[1] = d[1].add(v);
            dd[1] = v.fma(v, dd[1]);
        }
        (horizontal_sum(d[0].add(d[1]).add(d[2].add(d[3]))), horizontal_sum(dd[0].add(dd[1]).add(dd[2].add(dd[3]))))
    }
}

/// `exp(x − m)`, written as 0 where `x − m` < −70 (no subnormal floats).
#[inline(always)]
unsafe fn softmax_exp<V: Vector>(x: V, m: V) -> V {
    unsafe { math::exp_nonpositive(x.sub(m), SOFTMAX_FLOOR) }
}

/// Lane 0.
#[inline(always)]
unsafe fn first<V: Vector>(v: V) -> f32 {
    let mut lanes = [0f32; 16];
    unsafe { v.store(lanes.as_mut_ptr()) };
    lanes[0]
}

#[inline(always)]
unsafe fn horizontal_sum<V: Vector>(v: V) -> f32 {
    let mut lanes = [0f32; 16];
    unsafe { v.store(lanes.as_mut_ptr()) };
    lanes[..V::LANES].iter().sum()
}

/// Σx, or Σx² (`squares`), in f32 over four independent vector accumulators.
#[inline(always)]
unsafe fn sum<V: Vector>(x: *const f32, n: usize, squares: bool) -> f32 {
    #[inline(always)]
    unsafe fn accumulate<V: Vector>(acc: V, v: V, squares: bool) -> V {
        unsafe {
            if squares {
                v.fma(v, acc)
            } else {
                acc.add(v)
            }
        }
    }
    unsafe {
        let mut acc = [V::splat(0.0); 4];
        let mut j = 0;
        while j + 4 * V::LANES <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = accumulate(*a, V::load(x.add(j + k * V::LANES)), squares);
            }
            j += 4 * V::LANES;
        }
        while j + V::LANES <= n {
            acc[0] = accumulate(acc[0], V::load(x.add(j)), squares);
            j += V::LANES;
        }
        if j < n {
            // one masked vector, not a chain of scalar additions (up to 15 on AVX-512)
            acc[1] = accumulate(acc[1], V::load_first(x.add(j), n - j, 0.0), squares);
        }
        horizontal_sum(acc[0].add(acc[1]).add(acc[2].add(acc[3])))
    }
}

/// The largest element but perhaps a NaN's, by `maxps` (a quarter of the cost of the
/// NaN-propagating maximum): the shift of softmax and log-softmax, whose NaN rows
/// become NaN through their sums whatever the shift.
#[inline(always)]
unsafe fn shift_max<V: Vector>(x: *const f32, n: usize) -> f32 {
    unsafe {
        let mut acc = [V::splat(f32::NEG_INFINITY); 4];
        let mut j = 0;
        while j + 4 * V::LANES <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = V::load(x.add(j + k * V::LANES)).max_or_second(*a);
            }
            j += 4 * V::LANES;
        }
        let v = acc[0].max_or_second(acc[1]).max_or_second(acc[2].max_or_second(acc[3]));
        let mut lanes = [0f32; 16];
        v.store(lanes.as_mut_ptr());
        lanes[1..V::LANES].iter().chain((j..n).map(|i| &*x.add(i))).fold(lanes[0], |m, &l| m.max(l))
    }
}

/// The largest (`max`) or smallest element, NaN if any is.
#[inline(always)]
unsafe fn extreme<V: Vector>(max: bool, x: *const f32, n: usize) -> f32 {
    unsafe {
        let start = if max { f32::NEG_INFINITY } else { f32::INFINITY };
        let mut acc = [V::splat(start); 4];
        let mut j = 0;
        while j + 4 * V::LANES <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = math::extreme(max, *a, V::load(x.add(j + k * V::LANES)));
            }
            j += 4 * V::LANES;
        }
        let v = math::extreme(max, math::extreme(max, acc[0], acc[1]), math::extreme(max, acc[2], acc[3]));
        let mut lanes = [0f32; 16];
        v.store(lanes.as_mut_ptr());
        let mut m = lanes[0];
        for &l in lanes[1..V::LANES].iter().chain((j..n).map(|i| &*x.add(i))) {
            m = if l.is_nan() || m.is_nan() {
                f32::NAN
            } else if max {
                m.max(l)
            } else {
                m.min(l)
            };
        }
        m
    }
}
