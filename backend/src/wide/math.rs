//! The elementwise functions of the wide kernels, generic over the [`Vector`] width.
//!
//! They are the algorithms of the CLIF versions (`jit/math.rs`) — the same range
//! reductions, polynomials, clamps and special cases — with Horner steps as fused
//! multiply-adds, so the two agree to an ulp or two and the CLIF loop is their
//! differential reference. NaN and ±inf behave as there (and as in the interpreter).

#![allow(unsafe_op_in_unsafe_fn)]

use super::vector::Vector;
use crate::jit::math::coefficients as k;

/// `c[0] + x·(c[1] + x·(c[2] + …))`.
#[inline(always)]
unsafe fn poly<V: Vector>(x: V, coefficients: &[f32]) -> V {
    let (&last, rest) = coefficients.split_last().expect("a polynomial has coefficients");
    let mut acc = V::splat(last);
    for &k in rest.iter().rev() {
        acc = acc.fma(x, V::splat(k));
    }
    acc
}

/// eˣ, as `Math::exp`.
#[inline(always)]
pub(crate) unsafe fn exp<V: Vector>(x: V) -> V {
    // above EXP_HI the scaling by 2ⁿ overflows to inf by itself (from 89, n is 128 and
    // eʳ > 1.3); the clamp at 89 keeps inf and huge x out of the reduction and n within
    // `scale_pow2_to128`'s range; a NaN x stays NaN through it
    let result = exp_reduced(clamp(x, k::EXP_LO, 89.0), |p, n| p.scale_pow2_to128(n));
    V::select(x.lt(V::splat(k::EXP_LO)), V::splat(0.0), result)
}

/// eˣ for x ≤ 0 (or NaN), written as 0 below `floor` (at least `EXP_LO`, so that no
/// result is subnormal): [`exp`] without the overflow's clamp and select, for softmax
/// and the sigmoids, whose arguments are never positive.
#[inline(always)]
pub(crate) unsafe fn exp_nonpositive<V: Vector>(x: V, floor: f32) -> V {
    debug_assert!(floor >= k::EXP_LO);
    let lo = V::splat(floor);
    // from `EXP_LO` = −125·ln 2 up to 0, 2ⁿ is a normal f32: one scaling step
    let result = exp_reduced(lo.max_or_second(x), |p, n| p.scale_pow2_normal(n));
    V::select(x.lt(lo), V::splat(0.0), result)
}

/// eˣ for x ≥ `EXP_LO`: x = n·ln 2 + r, eʳ by Horner's rule, then `scale(eʳ, n)`,
/// which multiplies by 2ⁿ (each caller with the cheapest way for its range of n).
#[inline(always)]
unsafe fn exp_reduced<V: Vector>(x: V, scale: impl Fn(V, V) -> V) -> V {
    let n = x.mul(V::splat(std::f32::consts::LOG2_E)).round();
    let r = n.fnma(V::splat(k::LN2_HI), x);
    let r = n.fnma(V::splat(k::LN2_LO), r);
    scale(poly(r, &k::EXP), n)
}

/// ln x, as `Math::log`.
#[inline(always)]
pub(crate) unsafe fn log<V: Vector>(x: V) -> V {
    let (m, e) = x.frexp();
    let one = V::splat(1.0);
    let small = m.lt(V::splat(std::f32::consts::FRAC_1_SQRT_2));
    let f = V::select(small, m.add(m).sub(one), m.sub(one));
    let e = V::select(small, e.sub(one), e);
    let z = f.mul(f);
    let p = poly(f, &k::LOG);
    let y = p.mul(f).mul(z);
    let y = e.fma(V::splat(k::LN2_LO), y);
    let y = z.fma(V::splat(-0.5), y);
    let r = f.add(y);
    let r = e.fma(V::splat(k::LN2_HI), r);
    let zero = V::splat(0.0);
    let r = V::select(x.eq(zero), V::splat(f32::NEG_INFINITY), r);
    let r = V::select(x.lt(zero), V::splat(f32::NAN), r);
    let r = V::select(x.eq(V::splat(f32::INFINITY)), V::splat(f32::INFINITY), r);
    V::select(x.unordered(x), x, r)
}

/// tanh, as `Math::tanh`: x·P(x²)/Q(x²) on x clamped to ±10, clamped to [−1, 1].
#[inline(always)]
pub(crate) unsafe fn tanh<V: Vector>(x: V) -> V {
    let x = clamp(x, -k::TANH_CLAMP, k::TANH_CLAMP);
    let z = x.mul(x);
    let p = poly(z, &k::TANH_P).mul(x);
    let q = poly(z, &k::TANH_Q);
    clamp(p.div_by_positive(q), -1.0, 1.0)
}

/// `x` in [lo, hi]; minps/maxps return their second operand for a NaN, so a NaN stays
/// NaN.
#[inline(always)]
unsafe fn clamp<V: Vector>(x: V, lo: f32, hi: f32) -> V {
    V::splat(hi).min_or_second(V::splat(lo).max_or_second(x))
}

/// 1 / (1 + e⁻ˣ), as `1 / (1 + e)` for x ≥ 0 and `e / (1 + e)` below, with
/// `e = e^−|x|`: the divisor stays in [1, 2] (see [`Vector::div_by_positive`]). A NaN
/// passes through `e` and the division.
#[inline(always)]
pub(crate) unsafe fn sigmoid<V: Vector>(x: V) -> V {
    let one = V::splat(1.0);
    let e = exp_nonpositive(x.neg_abs(), k::EXP_LO);
    let numerator = V::select(x.lt(V::splat(0.0)), e, one);
    numerator.div_by_positive(one.add(e))
}

/// erf, Abramowitz & Stegun 7.1.26, as `Math::erf`.
#[inline(always)]
pub(crate) unsafe fn erf<V: Vector>(x: V) -> V {
    let ax = x.abs();
    let one = V::splat(1.0);
    let t = one.div(ax.fma(V::splat(k::ERF_P), one));
    let q = poly(t, &k::ERF).mul(t);
    let q = q.mul(exp(ax.mul(ax).neg()));
    let y = one.sub(q).copysign(x);
    V::select(x.unordered(x), x, y)
}

/// ½x(1 + erf(x/√2)).
#[inline(always)]
pub(crate) unsafe fn gelu<V: Vector>(x: V) -> V {
    let e = erf(x.mul(V::splat(std::f32::consts::FRAC_1_SQRT_2)));
    x.mul(V::splat(0.5)).mul(V::splat(1.0).add(e))
}

/// ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
#[inline(always)]
pub(crate) unsafe fn gelu_tanh<V: Vector>(x: V) -> V {
    let x3 = x.mul(x).mul(x);
    let inner = x3.fma(V::splat(0.044_715), x).mul(V::splat((2.0 / std::f32::consts::PI).sqrt()));
    x.mul(V::splat(0.5)).mul(V::splat(1.0).add(tanh(inner)))
}

/// `x < 0 ? 0 : x` (NaN stays NaN).
#[inline(always)]
pub(crate) unsafe fn relu<V: Vector>(x: V) -> V {
    let zero = V::splat(0.0);
    V::select(x.lt(zero), zero, x)
}

/// `y` clamped to [0, 1], a NaN kept.
#[inline(always)]
pub(crate) unsafe fn clamp_unit<V: Vector>(y: V) -> V {
    let (zero, one) = (V::splat(0.0), V::splat(1.0));
    let y = V::select(y.lt(zero), zero, y);
    V::select(one.lt(y), one, y)
}

/// ln(1 + eˣ) as max(x, 0) + ln(1 + e^−|x|).
#[inline(always)]
pub(crate) unsafe fn softplus<V: Vector>(x: V) -> V {
    let zero = V::splat(0.0);
    let l = log(V::splat(1.0).add(exp(x.abs().neg())));
    V::select(x.lt(zero), zero, x).add(l)
}

/// `max(x, y)` (or min), NaN if either is, as the CLIF loops compute it.
#[inline(always)]
pub(crate) unsafe fn extreme<V: Vector>(max: bool, x: V, y: V) -> V {
    let take_y = if max { x.lt(y) } else { y.lt(x) };
    let picked = V::select(take_y, y, x);
    V::select(y.unordered(y), y, picked)
}
