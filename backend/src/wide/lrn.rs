//! Local response normalization across channels on wide vectors:
//! `x / (bias + alpha/size · Σ x²)^beta`, the sum over the `size` channels around each
//! one, with the semantics of the CLIF kernel (`jit/window.rs`, `generate_lrn`) and the
//! interpreter's. AlexNet, ZFNet and GoogLeNet normalize their first layers this way, and
//! the CLIF kernel runs one element at a time with a scalar `pow`: on ZFNet-512 its two
//! calls were half of the model's run (49 of 100 ms on a Zen 3 core).
//!
//! A plane (one channel of one sample) is computed a vector of positions at a time: the
//! squares of the `size` planes around it, loaded at the same positions (they are in the
//! cache: consecutive planes share all but one), summed, scaled and raised to `beta`. A
//! `beta` of 0.75, every such model's, is `s·√s` with `s = √base` (two rounded square
//! roots, no `exp` or `log`); another is `exp(beta · ln base)`. A plane whose sums are
//! not all finite (squares past f32's range) is computed again in f64, as the interpreter
//! does.

#![allow(unsafe_op_in_unsafe_fn)]

use super::math;
use super::vector::Vector;
use super::Isa;
use crate::window::LrnSpec;

/// An [`LrnSpec`] ready to run on wide vectors.
#[derive(Debug, Clone)]
pub struct LrnProgram {
    pub(super) isa: Isa,
    spec: LrnSpec,
}

impl LrnProgram {
    /// The program for `spec`, if its base `bias + alpha/size · Σ x²` is positive
    /// whatever `x` is (a positive `bias`, a non-negative `alpha`): then `ln base` is
    /// defined and no sign rule of `pow` applies.
    pub fn new(spec: &LrnSpec, isa: Isa) -> Option<LrnProgram> {
        let positive = spec.bias > 0.0 && spec.alpha >= 0.0 && spec.alpha.is_finite() && spec.bias.is_finite();
        (positive && spec.beta.is_finite() && spec.size >= 1).then(|| LrnProgram { isa, spec: spec.clone() })
    }

    /// Planes `[begin, end)` of the (batch, channel) planes.
    ///
    /// # Safety
    /// `args` holds the input's and the output's addresses, each of the spec's size.
    #[inline(always)]
    pub(super) unsafe fn run_with<V: Vector>(&self, args: *const *mut u8, begin: usize, end: usize) {
        let (x, out) = ((*args).cast::<f32>().cast_const(), (*args.add(1)).cast::<f32>());
        let LrnSpec { channels, spatial, size, .. } = self.spec;
        let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
        for p in begin..end {
            let (n, c) = (p / channels, p % channels);
            let (lo, hi) = (c.saturating_sub(before), (c + after).min(channels - 1));
            let window = Window { first: x.add((n * channels + lo) * spatial), planes: hi - lo + 1, spatial };
            let (x, out) = (x.add(p * spatial), out.add(p * spatial));
            if !self.plane::<V>(window, x, out) {
                self.plane_in_f64(window, x, out);
            }
        }
    }

    /// One plane in f32; false where a base was not finite (the plane is then to be
    /// computed again).
    #[inline(always)]
    unsafe fn plane<V: Vector>(&self, window: Window, x: *const f32, out: *mut f32) -> bool {
        let LrnSpec { spatial, size, alpha, beta, bias, .. } = self.spec;
        let (scale, bias) = (V::splat(alpha / size as f32), V::splat(bias));
        let three_quarters = beta == 0.75;
        // the sum of every base: not finite if one is not (or a NaN input: computed
        // again to no harm, it stays NaN)
        let mut total = V::splat(0.0);
        let mut j = 0;
        while j < spatial {
            let lanes = (spatial - j).min(V::LANES);
            let mut sum = V::splat(0.0);
            for q in 0..window.planes {
                let v = V::load_first(window.first.add(q * window.spatial + j), lanes, 0.0);
                sum = v.fma(v, sum);
            }
            let base = sum.fma(scale, bias);
            total = total.add(base);
            let xv = V::load_first(x.add(j), lanes, 0.0);
            let y = if three_quarters {
                let s = base.sqrt();
                xv.div(s.mul(s.sqrt()))
            } else {
                xv.mul(math::exp(math::log(base).mul(V::splat(-beta))))
            };
            if lanes == V::LANES {
                y.store(out.add(j));
            } else {
                y.store_first(out.add(j), lanes);
            }
            j += V::LANES;
        }
        let mut lanes = [0.0f32; 16];
        total.store(lanes.as_mut_ptr());
        lanes[..V::LANES].iter().all(|t| t.is_finite())
    }

    /// One plane as the interpreter computes it: squares summed in f64, `powf`.
    unsafe fn plane_in_f64(&self, window: Window, x: *const f32, out: *mut f32) {
        let LrnSpec { spatial, size, alpha, beta, bias, .. } = self.spec;
        for j in 0..spatial {
            let sum: f64 = (0..window.planes).map(|q| (*window.first.add(q * spatial + j) as f64).powi(2)).sum();
            let denom = (bias as f64 + alpha as f64 / size as f64 * sum).powf(beta as f64);
            *out.add(j) = (*x.add(j) as f64 / denom) as f32;
        }
    }
}

/// The planes whose squares a plane's sums take: `planes` of them from `first`.
#[derive(Clone, Copy)]
struct Window {
    first: *const f32,
    planes: usize,
    spatial: usize,
}
