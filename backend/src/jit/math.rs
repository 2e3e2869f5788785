//! Transcendental functions as CLIF: polynomial approximations that work the same on
//! one `f32` and on an `f32x4`, so the vector loop and its scalar tail share them and no
//! element ever calls back into Rust.
//!
//! Each function takes and returns a value of type `F32` or `F32X4`. Accuracy (against
//! the interpreter's f64 evaluation) is a few ulp for `exp`, `log` and `tanh`, and
//! 1.5e-7 absolute for `erf`, far inside the 1e-4 + 1e-3·|b| tolerance; special values
//! (±inf, NaN, zero, negative arguments to `log`) follow IEEE/libm.

// the coefficients are the published ones, digit for digit, though f32 keeps fewer
#![allow(clippy::excessive_precision)]

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// The constants of the approximations, shared with the wide kernels (`wide/math.rs`),
/// which compute the same functions the same way.
pub(crate) mod coefficients {
    /// eˣ is written as 0 below `EXP_LO` (−125·ln 2) and as inf above `EXP_HI`.
    pub const EXP_LO: f32 = -86.643_4;
    pub const EXP_HI: f32 = 88.722_84;
    /// ln 2 in two parts, the first exact in few bits.
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    /// eʳ ≈ 1 + r + c₂r² + … + c₆r⁶ for |r| ≤ ln2/2: our own fit, minimax in relative
    /// error (3.1e-9 in exact arithmetic; 0.71 ulp by Horner's rule with FMA in f32, 0.99
    /// without).
    pub const EXP: [f32; 7] =
        [1.0, 1.0, 4.999_999_4e-1, 1.666_652_1e-1, 4.166_839_3e-2, 8.368_743_6e-3, 1.381_452_7e-3];
    /// ln(1 + f) = f − f²/2 + f³·P(f), |f| ≤ 0.29.
    pub const LOG: [f32; 9] = [
        3.333_333_1e-1,
        -2.499_999_4e-1,
        2.000_071_4e-1,
        -1.666_805_8e-1,
        1.424_932_3e-1,
        -1.242_014_1e-1,
        1.167_699_9e-1,
        -1.151_461e-1,
        7.037_683_6e-2,
    ];
    /// tanh x = x·P(x²)/Q(x²) for |x| ≤ `TANH_CLAMP`: our own fit on [0, 9], minimax in
    /// relative error (2.1e-8 in exact arithmetic, 5.4 ulp evaluated in f32 with FMA);
    /// both polynomials positive, so no cancellation, and Q ≥ 1. Beyond 9, where f32's
    /// tanh is 1, the fit rises above 1 (by 1.9e-6 at 10, far more than its rounding
    /// error), so the result's clamp gives exactly ±1 from there: 1 + tanh(−big) is 0,
    /// as GELU's tail needs.
    pub const TANH_P: [f32; 5] = [1.0, 1.338_101_8e-1, 3.495_578e-3, 2.060_890_8e-5, 1.335_441_3e-8];
    pub const TANH_Q: [f32; 5] = [1.0, 4.671_433_3e-1, 2.587_694_3e-2, 3.285_617_9e-4, 7.776_457_7e-7];
    pub const TANH_CLAMP: f32 = 10.0;
    /// Abramowitz & Stegun 7.1.26: t = 1/(1 + p·|x|), erf = 1 − t·P(t)·e^(−x²).
    pub const ERF_P: f32 = 0.327_591_1;
    pub const ERF: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152_1, 1.061_405_4];
}

use coefficients as k;

/// Builds math on values of one float type (`F32` or `F32X4`).
pub struct Math<'a, 'b> {
    pub b: &'a mut FunctionBuilder<'b>,
    pub ty: Type,
}

impl Math<'_, '_> {
    fn int_ty(&self) -> Type {
        if self.ty.is_vector() {
            types::I32X4
        } else {
            types::I32
        }
    }

    /// The constant `v` as a value of this type (splatted for vectors).
    pub fn c(&mut self, v: f32) -> Value {
        let s = self.b.ins().f32const(v);
        if self.ty.is_vector() {
            self.b.ins().splat(self.ty, s)
        } else {
            s
        }
    }

    /// A scalar f32 value as a value of this type (splatted for vectors).
    pub fn splat_value(&mut self, v: Value) -> Value {
        if self.ty.is_vector() {
            self.b.ins().splat(self.ty, v)
        } else {
            v
        }
    }

    fn ci(&mut self, v: i32) -> Value {
        let s = self.b.ins().iconst(types::I32, i64::from(v));
        if self.ty.is_vector() {
            self.b.ins().splat(types::I32X4, s)
        } else {
            s
        }
    }

    fn as_int_bits(&mut self, x: Value) -> Value {
        let ty = self.int_ty();
        self.b.ins().bitcast(ty, MemFlagsData::new(), x)
    }

    fn float_of_bits(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.ty, MemFlagsData::new(), x)
    }

    /// `cond ? a : b` for a comparison result of this type's width.
    pub fn select(&mut self, cond: Value, a: Value, b: Value) -> Value {
        if self.ty.is_vector() {
            let mask = self.b.ins().bitcast(self.ty, MemFlagsData::new(), cond);
            self.b.ins().bitselect(mask, a, b)
        } else {
            self.b.ins().select(cond, a, b)
        }
    }

    pub fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    /// `|magnitude|` with the sign of `sign` (by bits: x64 has no vector copysign).
    fn copysign(&mut self, magnitude: Value, sign: Value) -> Value {
        let (m, s) = (self.as_int_bits(magnitude), self.as_int_bits(sign));
        let abs_mask = self.ci(0x7fff_ffff);
        let sign_mask = self.ci(i32::MIN);
        let m = self.b.ins().band(m, abs_mask);
        let s = self.b.ins().band(s, sign_mask);
        let bits = self.b.ins().bor(m, s);
        self.float_of_bits(bits)
    }

    fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }

    fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }

    /// `c[0] + x·(c[1] + x·(c[2] + …))`, Horner's rule.
    fn poly(&mut self, x: Value, coefficients: &[f32]) -> Value {
        let (&last, rest) = coefficients.split_last().expect("a polynomial has coefficients");
        let mut acc = self.c(last);
        for &k in rest.iter().rev() {
            let m = self.mul(acc, x);
            let kc = self.c(k);
            acc = self.add(m, kc);
        }
        acc
    }

    /// eˣ: x = n·ln 2 + r with |r| ≤ ln2/2, a degree-6 polynomial for eʳ, and 2ⁿ built
    /// in the exponent bits. Overflow gives +inf, underflow 0, NaN stays NaN.
    pub fn exp(&mut self, x: Value) -> Value {
        // below lo = −125·ln 2 the result is under 2⁻¹²⁴ and written as 0: computing it
        // would make subnormal floats, which cost x86 cores a hundred cycles each
        let clamped = self.clamp(x, k::EXP_LO, k::EXP_HI);
        let (lo, hi) = (self.c(k::EXP_LO), self.c(k::EXP_HI));
        let log2e = self.c(std::f32::consts::LOG2_E);
        let scaled = self.mul(clamped, log2e);
        let n = self.b.ins().nearest(scaled);
        let (ln2_hi, ln2_lo) = (self.c(k::LN2_HI), self.c(k::LN2_LO));
        let t = self.mul(n, ln2_hi);
        let r = self.b.ins().fsub(clamped, t);
        let t = self.mul(n, ln2_lo);
        let r = self.b.ins().fsub(r, t);
        let p = self.poly(r, &k::EXP);
        // 2ⁿ as two powers of two, each with a normal exponent, so n = 128 (near the top
        // of the range) and n = -126 (near the bottom) both work
        let ity = self.int_ty();
        let ni = self.b.ins().fcvt_to_sint_sat(ity, n);
        let half = self.b.ins().sshr_imm_s(ni, 1);
        let rest = self.b.ins().isub(ni, half);
        let bias = self.ci(127);
        let mut result = p;
        for e in [half, rest] {
            let e = self.b.ins().iadd(e, bias);
            let e = self.b.ins().ishl_imm_s(e, 23);
            let scale = self.float_of_bits(e);
            result = self.mul(result, scale);
        }
        // beyond the clamp the true value is inf or (below 2.4e−38) nearly 0
        let inf = self.c(f32::INFINITY);
        let over = self.cmp(FloatCC::GreaterThan, x, hi);
        let result = self.select(over, inf, result);
        let zero = self.c(0.0);
        let under = self.cmp(FloatCC::LessThan, x, lo);
        self.select(under, zero, result)
    }

    /// ln x: x = m·2ᵉ with m in [√½, √2), then ln m by a degree-9 polynomial in m − 1.
    pub fn log(&mut self, x: Value) -> Value {
        let bits = self.as_int_bits(x);
        let e = self.b.ins().ushr_imm_s(bits, 23);
        let mask = self.ci(0xff);
        let e = self.b.ins().band(e, mask);
        let bias = self.ci(126);
        let e = self.b.ins().isub(e, bias);
        let mant_mask = self.ci(0x807f_ffffu32 as i32);
        let m = self.b.ins().band(bits, mant_mask);
        let half = self.ci(0x3f00_0000);
        let m = self.b.ins().bor(m, half);
        let m = self.float_of_bits(m); // in [0.5, 1)
        let mut ef = self.b.ins().fcvt_from_sint(self.ty, e);
        // below √½, use 2m − 1 and e − 1, so the polynomial sees |m − 1| ≤ 0.29
        let sqrt_half = self.c(std::f32::consts::FRAC_1_SQRT_2);
        let small = self.cmp(FloatCC::LessThan, m, sqrt_half);
        let one = self.c(1.0);
        let m_minus = self.b.ins().fsub(m, one);
        let twice = self.add(m, m);
        let twice_minus = self.b.ins().fsub(twice, one);
        let f = self.select(small, twice_minus, m_minus);
        let e_minus = self.b.ins().fsub(ef, one);
        ef = self.select(small, e_minus, ef);
        let z = self.mul(f, f);
        let p = self.poly(f, &k::LOG);
        let p = self.mul(p, f);
        let mut y = self.mul(p, z);
        let ln2_lo = self.c(k::LN2_LO);
        let t = self.mul(ef, ln2_lo);
        y = self.add(y, t);
        let minus_half = self.c(-0.5);
        let t = self.mul(z, minus_half);
        y = self.add(y, t);
        let r = self.add(f, y);
        let ln2_hi = self.c(k::LN2_HI);
        let t = self.mul(ef, ln2_hi);
        let r = self.add(r, t);
        // special values: log(0) = -inf, log(<0) = NaN, log(inf) = inf, NaN stays
        let zero = self.c(0.0);
        let (neg_inf, inf, nan) = (self.c(f32::NEG_INFINITY), self.c(f32::INFINITY), self.c(f32::NAN));
        let is_zero = self.cmp(FloatCC::Equal, x, zero);
        let r = self.select(is_zero, neg_inf, r);
        let negative = self.cmp(FloatCC::LessThan, x, zero);
        let r = self.select(negative, nan, r);
        let is_inf = self.cmp(FloatCC::Equal, x, inf);
        let r = self.select(is_inf, inf, r);
        let is_nan = self.cmp(FloatCC::Unordered, x, x);
        self.select(is_nan, x, r)
    }

    /// tanh: x clamped to ±`TANH_CLAMP`, then one rational function (one division, no
    /// exponential), the result clamped to [−1, 1]. NaN passes through the clamps.
    pub fn tanh(&mut self, x: Value) -> Value {
        let x = self.clamp(x, -k::TANH_CLAMP, k::TANH_CLAMP);
        let z = self.mul(x, x);
        let p = self.poly(z, &k::TANH_P);
        let p = self.mul(p, x);
        let q = self.poly(z, &k::TANH_Q);
        let y = self.b.ins().fdiv(p, q);
        self.clamp(y, -1.0, 1.0)
    }

    /// `x` clamped to [lo, hi] by compare and select (one `maxps`/`minps` each on x86,
    /// where CLIF's fmax/fmin take nine); a NaN passes through.
    fn clamp(&mut self, x: Value, lo: f32, hi: f32) -> Value {
        let (lo, hi) = (self.c(lo), self.c(hi));
        let below = self.cmp(FloatCC::LessThan, x, lo);
        let x = self.select(below, lo, x);
        let above = self.cmp(FloatCC::LessThan, hi, x);
        self.select(above, hi, x)
    }

    /// 1 / (1 + e⁻ˣ).
    pub fn sigmoid(&mut self, x: Value) -> Value {
        let nx = self.b.ins().fneg(x);
        let e = self.exp(nx);
        let one = self.c(1.0);
        let d = self.add(one, e);
        self.b.ins().fdiv(one, d)
    }

    /// erf, Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7).
    pub fn erf(&mut self, x: Value) -> Value {
        let ax = self.b.ins().fabs(x);
        let p = self.c(k::ERF_P);
        let one = self.c(1.0);
        let t = self.mul(ax, p);
        let t = self.add(one, t);
        let t = self.b.ins().fdiv(one, t);
        let q = self.poly(t, &k::ERF);
        let q = self.mul(q, t);
        let x2 = self.mul(ax, ax);
        let nx2 = self.b.ins().fneg(x2);
        let e = self.exp(nx2);
        let q = self.mul(q, e);
        let y = self.b.ins().fsub(one, q);
        let y = self.copysign(y, x);
        let is_nan = self.cmp(FloatCC::Unordered, x, x);
        self.select(is_nan, x, y)
    }

    /// x·Φ(x) = ½x(1 + erf(x/√2)).
    pub fn gelu(&mut self, x: Value) -> Value {
        let k = self.c(std::f32::consts::FRAC_1_SQRT_2);
        let s = self.mul(x, k);
        let e = self.erf(s);
        let one = self.c(1.0);
        let e = self.add(one, e);
        let half = self.c(0.5);
        let hx = self.mul(x, half);
        self.mul(hx, e)
    }

    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    pub fn gelu_tanh(&mut self, x: Value) -> Value {
        let x2 = self.mul(x, x);
        let x3 = self.mul(x2, x);
        let k = self.c(0.044_715);
        let t = self.mul(x3, k);
        let inner = self.add(x, t);
        let s = self.c((2.0 / std::f32::consts::PI).sqrt());
        let inner = self.mul(inner, s);
        let th = self.tanh(inner);
        let one = self.c(1.0);
        let th = self.add(one, th);
        let half = self.c(0.5);
        let hx = self.mul(x, half);
        self.mul(hx, th)
    }

    /// x·sigmoid(x).
    pub fn silu(&mut self, x: Value) -> Value {
        let s = self.sigmoid(x);
        self.mul(x, s)
    }

    /// aᵇ as ONNX (and C's `powf`) defines it: negative bases with integer exponents,
    /// ±inf bases, 0⁰ = 1, 1ˣ = 1, (−1)^±inf = 1, and NaN for a finite negative base
    /// with a non-integer exponent.
    /// ln(1 + eˣ) as max(x, 0) + ln(1 + e^−|x|): no overflow for large x, and the
    /// logarithm's argument stays in [1, 2].
    pub fn softplus(&mut self, x: Value) -> Value {
        let zero = self.c(0.0);
        let ax = self.b.ins().fabs(x);
        let nax = self.b.ins().fneg(ax);
        let e = self.exp(nax);
        let one = self.c(1.0);
        let onep = self.add(one, e);
        let l = self.log(onep);
        // max(x, 0) that keeps a NaN (which the log term carries anyway)
        let negative = self.cmp(FloatCC::LessThan, x, zero);
        let pos = self.select(negative, zero, x);
        self.add(pos, l)
    }

    /// sin x and cos x: x = k·π/2 + r with |r| ≤ π/4 (π/2 in three parts, exact for
    /// |x| up to about 1e5), minimax polynomials for sin r and cos r, and the quadrant
    /// k mod 4 picking and signing them. Infinities and NaN give NaN.
    fn sin_cos(&mut self, x: Value, cosine: bool) -> Value {
        let two_over_pi = self.c(std::f32::consts::FRAC_2_PI);
        let t = self.mul(x, two_over_pi);
        let k = self.b.ins().nearest(t);
        let mut r = x;
        for part in [1.570_312_5f32, 4.837_513e-4, 7.549_79e-8] {
            let p = self.c(part);
            let kp = self.mul(k, p);
            r = self.b.ins().fsub(r, kp);
        }
        let r2 = self.mul(r, r);
        // sin r = r + r³·S(r²), cos r = 1 − r²/2 + r⁴·C(r²)
        let s = self.poly(r2, &[-1.666_665_5e-1, 8.332_161e-3, -1.951_529_6e-4]);
        let r3 = self.mul(r2, r);
        let s = self.mul(r3, s);
        let sin_r = self.add(r, s);
        let c = self.poly(r2, &[4.166_664_6e-2, -1.388_731_6e-3, 2.443_315_7e-5]);
        let r4 = self.mul(r2, r2);
        let c = self.mul(r4, c);
        let half = self.c(-0.5);
        let hr2 = self.mul(r2, half);
        let one = self.c(1.0);
        let cos_r = self.add(one, hr2);
        let cos_r = self.add(cos_r, c);
        // quadrant: sin x = [s, c, −s, −c][q], cos x = sin of the next quadrant
        let int_ty = self.int_ty();
        let q = self.b.ins().fcvt_to_sint_sat(int_ty, k);
        let q = if cosine {
            let one_i = self.ci(1);
            self.b.ins().iadd(q, one_i)
        } else {
            q
        };
        let (one_i, two_i, zero_i) = (self.ci(1), self.ci(2), self.ci(0));
        let odd = self.b.ins().band(q, one_i);
        let odd = self.b.ins().icmp(cranelift_codegen::ir::condcodes::IntCC::NotEqual, odd, zero_i);
        let value = self.select(odd, cos_r, sin_r);
        let neg = self.b.ins().band(q, two_i);
        let neg = self.b.ins().icmp(cranelift_codegen::ir::condcodes::IntCC::NotEqual, neg, zero_i);
        let negated = self.b.ins().fneg(value);
        self.select(neg, negated, value)
    }

    pub fn sin(&mut self, x: Value) -> Value {
        self.sin_cos(x, false)
    }

    pub fn cos(&mut self, x: Value) -> Value {
        self.sin_cos(x, true)
    }

    /// eˣ − 1.
    pub fn exp_minus_one(&mut self, x: Value) -> Value {
        let e = self.exp(x);
        let one = self.c(1.0);
        self.b.ins().fsub(e, one)
    }

    pub fn pow(&mut self, a: Value, b: Value) -> Value {
        let aa = self.b.ins().fabs(a);
        let l = self.log(aa);
        let t = self.mul(b, l);
        let r = self.exp(t);
        // the sign: negative for a negative base and an odd integer exponent
        let fb = self.b.ins().floor(b);
        let integral = self.cmp(FloatCC::Equal, fb, b);
        let fractional = self.cmp(FloatCC::NotEqual, fb, b);
        let half = self.c(0.5);
        let hb = self.mul(b, half);
        let fhb = self.b.ins().floor(hb);
        let odd = self.cmp(FloatCC::NotEqual, fhb, hb);
        let odd = self.b.ins().band(odd, integral);
        let neg_r = self.b.ins().fneg(r);
        let signed = self.select(odd, neg_r, r);
        let zero = self.c(0.0);
        let negative = self.cmp(FloatCC::LessThan, a, zero);
        let mut result = self.select(negative, signed, r);
        // a finite negative base to a fractional power has no real value
        let inf = self.c(f32::INFINITY);
        let finite = self.cmp(FloatCC::NotEqual, aa, inf);
        let nan_case = self.b.ins().band(negative, finite);
        let nan_case = self.b.ins().band(nan_case, fractional);
        let nan = self.c(f32::NAN);
        result = self.select(nan_case, nan, result);
        // exact cases: x⁰ = 1, 1ˣ = 1, (−1)^±inf = 1
        let one = self.c(1.0);
        let b_zero = self.cmp(FloatCC::Equal, b, zero);
        result = self.select(b_zero, one, result);
        let a_one = self.cmp(FloatCC::Equal, a, one);
        result = self.select(a_one, one, result);
        let minus_one = self.c(-1.0);
        let a_minus_one = self.cmp(FloatCC::Equal, a, minus_one);
        let ab = self.b.ins().fabs(b);
        let b_inf = self.cmp(FloatCC::Equal, ab, inf);
        let both = self.b.ins().band(a_minus_one, b_inf);
        self.select(both, one, result)
    }
}
