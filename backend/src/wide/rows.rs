//! Row kernels on wide vectors: softmax, log-softmax, and the f32 reductions (sum,
//! mean, max, min) along contiguous rows, with the semantics of the CLIF row kernels
//! (`jit/rows.rs`): max and min propagate NaN, softmax writes 0 where x − max < −70
//! (no subnormal floats), and a sum that is not finite in f32 is computed again in f64.

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
    op: RowOp,
}

impl RowProgram {
    /// The program for `spec`, if it is one of the ops here on f32 rows read (and, for
    /// softmax, written) contiguously, long enough for wide vectors to pay.
    pub fn new(spec: &RowSpec, isa: Isa) -> Option<RowProgram> {
        let supported =
            matches!(spec.op, RowOp::Softmax | RowOp::LogSoftmax | RowOp::Sum | RowOp::Mean | RowOp::Max | RowOp::Min);
        let contiguous = spec.x.step == 1 && (spec.op.reduces() || spec.out.step == 1);
        if !supported || !contiguous || spec.dtype != DType::F32 || spec.len < 64 || spec.rows.len() > MAX_RANK {
            return None;
        }
        Some(RowProgram {
            isa,
            rows: spec.rows.clone(),
            len: spec.len,
            x: spec.x.strides.clone(),
            out: spec.out.strides.clone(),
            op: spec.op,
        })
    }

    /// Rows `[begin, end)` of the outermost row dimension (all of the others).
    ///
    /// # Safety
    /// `args` holds the input's and the output's addresses, valid for every element the
    /// strides reach.
    #[inline(always)]
    pub(super) unsafe fn run_with<V: Vector>(&self, args: *const *mut u8, begin: usize, end: usize) {
        let (x0, out0) = (unsafe { (*args).cast::<f32>() }, unsafe { (*args.add(1)).cast::<f32>() });
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
                unsafe { self.row::<V>(x, out) };
                if !super::next_middle(&mut index[..rank], &self.rows) {
                    break;
                }
            }
        }
    }

    // no closures: one would not inherit the caller's `#[target_feature]`
    #[inline(always)]
    unsafe fn row<V: Vector>(&self, x: *const f32, out: *mut f32) {
        let n = self.len;
        let tail = n - n % V::LANES;
        match self.op {
            RowOp::Sum | RowOp::Mean => {
                let mut s = unsafe { sum::<V>(x, n) } as f64;
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
            other => unreachable!("{other:?} has no wide row kernel (RowProgram::new checks)"),
        }
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

/// Σx in f32 over four independent vector accumulators.
#[inline(always)]
unsafe fn sum<V: Vector>(x: *const f32, n: usize) -> f32 {
    unsafe {
        let mut acc = [V::splat(0.0); 4];
        let mut j = 0;
        while j + 4 * V::LANES <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = a.add(V::load(x.add(j + k * V::LANES)));
            }
            j += 4 * V::LANES;
        }
        let total = acc[0].add(acc[1]).add(acc[2].add(acc[3]));
        horizontal_sum(total) + (j..n).map(|i| *x.add(i)).sum::<f32>()
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
