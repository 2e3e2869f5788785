//! The vector operations the wide kernels are written in, for each instruction set:
//! [`Avx512`] (16 lanes) and [`Avx2`] (8 lanes, with FMA).
//!
//! Every method is `#[inline(always)]`, so the generic kernels, instantiated inside a
//! `#[target_feature]` function (see [`super::dispatch`]), compile to straight-line
//! vector code for that instruction set. Comparisons follow IEEE: false when either
//! operand is NaN (except [`Vector::unordered`]).

#![allow(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// A vector of `LANES` f32s.
///
/// # Safety
/// Every method needs the instruction set of its implementation; callers run inside a
/// function compiled for it, on a host that has it.
pub(crate) trait Vector: Copy {
    type Mask: Copy;
    const LANES: usize;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// Stores past the caches (a non-temporal store); `p` is aligned to the vector.
    unsafe fn stream(self, p: *mut f32);
    /// The first `n` elements from `p` (`n` < `LANES`), the other lanes `fill`; reads
    /// nothing past them (a masked load, which never faults on the masked lanes).
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self;
    /// Stores the first `n` lanes (`n` < `LANES`) and writes nothing past them.
    unsafe fn store_first(self, p: *mut f32, n: usize);
    /// The first `n` lanes, the others zero.
    unsafe fn keep_first(self, n: usize) -> Self;
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn div(self, o: Self) -> Self;
    /// `self / o` for a positive, normal, finite `o`, within an ulp: on AVX-512 an
    /// approximate reciprocal and one Newton step (a 16-lane `vdivps` occupies the
    /// divider for about ten cycles, longer than the rest of a tanh), elsewhere a
    /// division.
    unsafe fn div_by_positive(self, o: Self) -> Self;
    /// `self · b + c`, rounded once.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    /// `c − self · b`, rounded once.
    unsafe fn fnma(self, b: Self, c: Self) -> Self;
    /// The larger of the two, `o` where either is NaN (x86's `maxps`: one instruction,
    /// where a NaN-propagating maximum takes four).
    unsafe fn max_or_second(self, o: Self) -> Self;
    /// The smaller of the two, `o` where either is NaN (`minps`).
    unsafe fn min_or_second(self, o: Self) -> Self;
    /// The even-indexed and the odd-indexed elements of the `2·LANES` elements
    /// `self` then `o`, each in order.
    unsafe fn deinterleave(self, o: Self) -> (Self, Self);
    /// The `2·LANES` elements `self₀ o₀ self₁ o₁ …`: its first `LANES`, then the rest
    /// (the inverse of [`deinterleave`](Self::deinterleave)).
    unsafe fn interleave(self, o: Self) -> (Self, Self);
    unsafe fn sqrt(self) -> Self;
    /// Round to nearest, ties to even.
    unsafe fn round(self) -> Self;
    unsafe fn floor(self) -> Self;
    unsafe fn ceil(self) -> Self;
    unsafe fn lt(self, o: Self) -> Self::Mask;
    unsafe fn eq(self, o: Self) -> Self::Mask;
    unsafe fn unordered(self, o: Self) -> Self::Mask;
    /// `m ? a : b`, lane by lane.
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// `|self|` with the sign of `sign`.
    unsafe fn copysign(self, sign: Self) -> Self;
    unsafe fn abs(self) -> Self;
    unsafe fn neg(self) -> Self;
    /// −|self|, one `or` of the sign bit.
    unsafe fn neg_abs(self) -> Self;
    /// `self · 2ⁿ` for integral `n` in [-126, 127], where 2ⁿ is a normal f32
    /// (AVX-512's `vscalefps`; AVX2 a multiply by 2ⁿ built in the exponent bits).
    unsafe fn scale_pow2_normal(self, n: Self) -> Self;
    /// `self · 2ⁿ` for integral `n` in [-125, 128], the range of eˣ's reduction, 2¹²⁸
    /// included (AVX2: `2·self` times the normal 2ⁿ⁻¹, both steps exact).
    unsafe fn scale_pow2_to128(self, n: Self) -> Self;
    /// Exponent and mantissa: `self = m · 2ᵉ` with `m` in [0.5, 1), for positive normal
    /// `self`; returns (m, e as f32).
    unsafe fn frexp(self) -> (Self, Self);
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

/// The mask of lanes `0..n`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

#[cfg(target_arch = "x86_64")]
impl Vector for Avx512 {
    type Mask = __mmask16;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Avx512(_mm512_set1_ps(v))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Avx512(_mm512_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self {
        Avx512(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), first_lanes(n), p))
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        _mm512_mask_storeu_ps(p, first_lanes(n), self.0)
    }
    #[inline(always)]
    unsafe fn keep_first(self, n: usize) -> Self {
        Avx512(_mm512_maskz_mov_ps(first_lanes(n), self.0))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm512_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn stream(self, p: *mut f32) {
        _mm512_stream_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Avx512(_mm512_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Avx512(_mm512_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Avx512(_mm512_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Avx512(_mm512_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        Avx512(_mm512_fmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn fnma(self, b: Self, c: Self) -> Self {
        Avx512(_mm512_fnmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn div_by_positive(self, o: Self) -> Self {
        // r ≈ 1/o to 2⁻¹⁴; r + r(1 − o·r) to about 2⁻²⁸, before the product's rounding
        let r = _mm512_rcp14_ps(o.0);
        let r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(o.0, r, _mm512_set1_ps(1.0)), r);
        Avx512(_mm512_mul_ps(self.0, r))
    }
    #[inline(always)]
    unsafe fn max_or_second(self, o: Self) -> Self {
        Avx512(_mm512_max_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn min_or_second(self, o: Self) -> Self {
        Avx512(_mm512_min_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn deinterleave(self, o: Self) -> (Self, Self) {
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odds = _mm512_add_epi32(evens, _mm512_set1_epi32(1));
        (Avx512(_mm512_permutex2var_ps(self.0, evens, o.0)), Avx512(_mm512_permutex2var_ps(self.0, odds, o.0)))
    }
    #[inline(always)]
    unsafe fn interleave(self, o: Self) -> (Self, Self) {
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
        (Avx512(_mm512_permutex2var_ps(self.0, low, o.0)), Avx512(_mm512_permutex2var_ps(self.0, high, o.0)))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        Avx512(_mm512_sqrt_ps(self.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        Avx512(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn floor(self) -> Self {
        Avx512(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn ceil(self) -> Self {
        Avx512(_mm512_roundscale_ps::<{ _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> Self::Mask {
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self::Mask {
        _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn unordered(self, o: Self) -> Self::Mask {
        _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        Avx512(_mm512_mask_blend_ps(m, b.0, a.0))
    }
    #[inline(always)]
    unsafe fn copysign(self, sign: Self) -> Self {
        let m = _mm512_set1_epi32(0x7fff_ffff);
        let magnitude = _mm512_and_si512(_mm512_castps_si512(self.0), m);
        let s = _mm512_andnot_si512(m, _mm512_castps_si512(sign.0));
        Avx512(_mm512_castsi512_ps(_mm512_or_si512(magnitude, s)))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        Avx512(_mm512_abs_ps(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        let s = _mm512_set1_epi32(i32::MIN);
        Avx512(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(self.0), s)))
    }
    #[inline(always)]
    unsafe fn neg_abs(self) -> Self {
        let s = _mm512_set1_epi32(i32::MIN);
        Avx512(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(self.0), s)))
    }
    #[inline(always)]
    unsafe fn scale_pow2_normal(self, n: Self) -> Self {
        Avx512(_mm512_scalef_ps(self.0, n.0))
    }
    #[inline(always)]
    unsafe fn scale_pow2_to128(self, n: Self) -> Self {
        // one instruction, rounded once (as AVX2's two exact steps are for normal results)
        Avx512(_mm512_scalef_ps(self.0, n.0))
    }
    #[inline(always)]
    unsafe fn frexp(self) -> (Self, Self) {
        let bits = _mm512_castps_si512(self.0);
        let biased = _mm512_and_si512(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(0xff));
        let e = _mm512_sub_epi32(biased, _mm512_set1_epi32(126));
        let m = _mm512_or_si512(
            _mm512_and_si512(bits, _mm512_set1_epi32(0x807f_ffffu32 as i32)),
            _mm512_set1_epi32(0x3f00_0000),
        );
        (Avx512(_mm512_castsi512_ps(m)), Avx512(_mm512_cvtepi32_ps(e)))
    }
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256);

/// All ones in lanes `0..n`, for AVX2's masked loads and stores (by the sign bit).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn first_lanes8(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

#[cfg(target_arch = "x86_64")]
impl Vector for Avx2 {
    type Mask = __m256;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Avx2(_mm256_set1_ps(v))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Avx2(_mm256_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self {
        let mask = first_lanes8(n);
        Avx2(_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask)))
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        _mm256_maskstore_ps(p, first_lanes8(n), self.0)
    }
    #[inline(always)]
    unsafe fn keep_first(self, n: usize) -> Self {
        Avx2(_mm256_and_ps(self.0, _mm256_castsi256_ps(first_lanes8(n))))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn stream(self, p: *mut f32) {
        _mm256_stream_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Avx2(_mm256_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Avx2(_mm256_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Avx2(_mm256_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Avx2(_mm256_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        Avx2(_mm256_fmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn fnma(self, b: Self, c: Self) -> Self {
        Avx2(_mm256_fnmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn div_by_positive(self, o: Self) -> Self {
        self.div(o)
    }
    #[inline(always)]
    unsafe fn max_or_second(self, o: Self) -> Self {
        Avx2(_mm256_max_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn min_or_second(self, o: Self) -> Self {
        Avx2(_mm256_min_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn deinterleave(self, o: Self) -> (Self, Self) {
        // within each 128-bit half: [a0 a2 b0 b2 | a4 a6 b4 b6]; then the 64-bit
        // quarters reordered 0 2 1 3
        let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
        let evens = _mm256_shuffle_ps::<0b10_00_10_00>(self.0, o.0);
        let odds = _mm256_shuffle_ps::<0b11_01_11_01>(self.0, o.0);
        (Avx2(order(evens)), Avx2(order(odds)))
    }
    #[inline(always)]
    unsafe fn interleave(self, o: Self) -> (Self, Self) {
        // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7], then their halves
        let (low, high) = (_mm256_unpacklo_ps(self.0, o.0), _mm256_unpackhi_ps(self.0, o.0));
        (Avx2(_mm256_permute2f128_ps::<0x20>(low, high)), Avx2(_mm256_permute2f128_ps::<0x31>(low, high)))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        Avx2(_mm256_sqrt_ps(self.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        Avx2(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn floor(self) -> Self {
        Avx2(_mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn ceil(self) -> Self {
        Avx2(_mm256_round_ps::<{ _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC }>(self.0))
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> Self::Mask {
        _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self::Mask {
        _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn unordered(self, o: Self) -> Self::Mask {
        _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, o.0)
    }
    #[inline(always)]
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        Avx2(_mm256_blendv_ps(b.0, a.0, m))
    }
    #[inline(always)]
    unsafe fn copysign(self, sign: Self) -> Self {
        let s = _mm256_set1_ps(-0.0);
        Avx2(_mm256_or_ps(_mm256_andnot_ps(s, self.0), _mm256_and_ps(s, sign.0)))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        Avx2(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        Avx2(_mm256_xor_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn neg_abs(self) -> Self {
        Avx2(_mm256_or_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn scale_pow2_normal(self, n: Self) -> Self {
        let biased = _mm256_add_epi32(_mm256_cvtps_epi32(n.0), _mm256_set1_epi32(127));
        Avx2(_mm256_mul_ps(self.0, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))))
    }
    #[inline(always)]
    unsafe fn scale_pow2_to128(self, n: Self) -> Self {
        let biased = _mm256_add_epi32(_mm256_cvtps_epi32(n.0), _mm256_set1_epi32(126));
        let twice = _mm256_add_ps(self.0, self.0);
        Avx2(_mm256_mul_ps(twice, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))))
    }
    #[inline(always)]
    unsafe fn frexp(self) -> (Self, Self) {
        let bits = _mm256_castps_si256(self.0);
        let biased = _mm256_and_si256(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(0xff));
        let e = _mm256_sub_epi32(biased, _mm256_set1_epi32(126));
        let m = _mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x807f_ffffu32 as i32)),
            _mm256_set1_epi32(0x3f00_0000),
        );
        (Avx2(_mm256_castsi256_ps(m)), Avx2(_mm256_cvtepi32_ps(e)))
    }
}
