//! Products whose *left* operand is the constant: a convolution's filters times its
//! input in NCHW (1×1 convolutions, im2col's columns, the (m+2)² products of a Winograd
//! convolution), `dst[M×N] = w[M×K] · x[K×N]` with `x` the run-time activations.
//!
//! These are short and many: ShuffleNet's grouped 1×1 convolution is three products of
//! 68×68 by 68×196, and a Winograd convolution of 128 channels into 32 over 28×28 is 36
//! of 32×128 by 128×49. The GEMM crate packs both operands on every call. With the
//! filters in cache that copy is cheap (a 1×1 convolution alone runs even with it), but
//! in a model the filters and the activations come from memory and the copy is one more
//! pass over each (the figures are at [`MAX_COLUMNS`]); ShuffleNet's 68×68 products took
//! 1.44 ms a run through the crate, 1.15 here (Zen 4, one thread).
//!
//! Here `w` is packed once, when the program is compiled, into tiles of
//! 8 rows (6 on AVX2) stored column after column, so a tile's 8 values of one column
//! are one cache line's broadcasts; `x` is read in place, a panel of two vectors'
//! width of its columns at a time (the last one lane-masked), and every tile of `w`
//! meets the panel while it is in L1. Same micro-kernel as [`super::PackedProduct`]'s,
//! with the roles of the operands' storage swapped.

#![allow(unsafe_op_in_unsafe_fn)]

use super::product::{panel_width, tile_rows, Epilogue, Tile};
use super::vector::Vector;
use super::Isa;
use crate::gemm::MatMul;
use crate::runtime::AlignedBuf;

/// The largest packed `w` (bytes of one matrix) this kernel takes: each panel of `x`
/// meets all of `w`, which must then come from L2. Bigger filters run through the GEMM
/// crate, whose blocking keeps both in cache: NasNet-A's 512×2560 filters by 196
/// columns took 75 ms here against its 57 (Zen 4, one thread, ten calls).
const MAX_LEFT_BYTES: usize = 256 << 10;

/// The most columns of `x` a product may have to run here (a 64×64 image). Measured on
/// Zen 4, one thread: a 1×1 convolution alone, its filters in cache, runs even with the
/// GEMM crate (within ±5 % from 7² to 56², 64 to 2048 channels), as the crate's packing
/// of the two operands is then cheap; in a model, where the filters and the
/// activations come from memory, it is what the crate loses (DenseNet-121 64 → 59 ms,
/// Inception-v2 45 → 38, ResNet-50 87 → 79; NasNet-A's 128×128 filters by 3136
/// columns 27.9 → 25.3 ms).
pub const MAX_COLUMNS: usize = 4096;

/// A product whose `a` is a constant, packed into row tiles.
#[derive(Clone)]
pub struct LeftPackedProduct {
    isa: Isa,
    product: MatMul,
    /// The packed copy of each distinct `a` of the batch, one after another.
    tiles: AlignedBuf,
    /// Per product of the batch, where its `a`'s packed copy starts (in floats).
    packed_of: Vec<usize>,
}

// SAFETY: the tiles are written once, when the program is compiled, and only read after
unsafe impl Send for LeftPackedProduct {}
unsafe impl Sync for LeftPackedProduct {}

impl std::fmt::Debug for LeftPackedProduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeftPackedProduct").field("isa", &self.isa).field("product", &self.product).finish()
    }
}

impl LeftPackedProduct {
    /// Packs `a` (the constant left operand of `product`, at its address) for `isa`, if
    /// the product is one this kernel runs: `b`'s rows contiguous, at least a panel's
    /// width of columns (a narrower product would leave most of its multiply-adds
    /// masked) and at most [`MAX_COLUMNS`], and each `a` at most [`MAX_LEFT_BYTES`].
    ///
    /// # Safety
    /// `a` must hold every element the product's offsets and strides reach.
    pub unsafe fn pack(product: &MatMul, a: *const f32, isa: Isa) -> Option<LeftPackedProduct> {
        let p = product;
        if p.m == 0 || p.n == 0 || p.k == 0 || p.batch.is_empty() || p.b_strides[1] != 1 {
            return None;
        }
        if p.n > MAX_COLUMNS || p.n < panel_width(isa) || p.m * p.k * 4 > MAX_LEFT_BYTES {
            return None;
        }
        let mut distinct: Vec<usize> = p.batch.iter().map(|o| o[0]).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let per_matrix = p.m * p.k;
        let mut tiles = AlignedBuf::zeroed(distinct.len() * per_matrix * 4);
        let out = tiles.ptr().cast::<f32>();
        let rows_per_tile = tile_rows(isa);
        let [rs, cs] = p.a_strides;
        for (d, &offset) in distinct.iter().enumerate() {
            let a = a.add(offset);
            let mut at = out.add(d * per_matrix);
            for first in (0..p.m).step_by(rows_per_tile) {
                let rows = (p.m - first).min(rows_per_tile);
                for t in 0..p.k {
                    for r in 0..rows {
                        *at = *a.offset((first + r) as isize * rs + t as isize * cs);
                        at = at.add(1);
                    }
                }
            }
        }
        let packed_of =
            p.batch.iter().map(|o| distinct.binary_search(&o[0]).expect("listed above") * per_matrix).collect();
        Some(LeftPackedProduct { isa, product: product.clone(), tiles, packed_of })
    }

    /// The product it computes (its `a` offsets and strides are no longer read).
    pub fn product(&self) -> &MatMul {
        &self.product
    }

    /// Units of work pieces are made of: a panel of one product, or, where products of
    /// the batch add into the same block of `dst`, a panel of all of them (in order).
    fn units(&self) -> usize {
        let panels = self.product.n.div_ceil(panel_width(self.isa));
        if self.product.outputs_disjoint() {
            panels * self.product.batch.len()
        } else {
            panels
        }
    }

    /// Into how many pieces the call splits across `threads`: as the GEMM crate's call
    /// would (`a` is a constant), at most one a unit.
    pub fn pieces(&self, threads: usize) -> usize {
        self.product.pieces(threads, [true, false]).count.min(self.units())
    }

    /// Runs piece `piece` of `pieces`: a run of consecutive units. The pieces write
    /// disjoint elements of `dst`.
    ///
    /// # Safety
    /// `b` and `dst` must hold every element the product's offsets and strides reach,
    /// and `dst` must not overlap `b`; the host has the instruction set it was packed for.
    pub unsafe fn run_piece(&self, b: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => run_avx512(self, b, dst, pieces, piece),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => run_avx2(self, b, dst, pieces, piece),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("wide programs are only built on x86-64"),
        }
    }

    #[inline(always)]
    unsafe fn run_with<V: Vector>(&self, b: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
        let p = &self.product;
        let width = 2 * V::LANES;
        let panels = p.n.div_ceil(width);
        let units = self.units();
        let (first, last) = (units * piece / pieces, units * (piece + 1) / pieces);
        let each_product = p.outputs_disjoint();
        for unit in first..last {
            let (products, panel) =
                if each_product { (unit / panels..unit / panels + 1, unit % panels) } else { (0..p.batch.len(), unit) };
            for q in products {
                self.run_panel::<V>(q, panel, b, dst);
            }
        }
    }

    /// Every row tile of product `q`'s `a` by panel `panel` of its `b`.
    #[inline(always)]
    unsafe fn run_panel<V: Vector>(&self, q: usize, panel: usize, b: *const f32, dst: *mut f32) {
        let p = &self.product;
        let width = 2 * V::LANES;
        let [_, bo, d] = p.batch[q];
        let epilogue = Epilogue { alpha: p.alpha, accumulate: p.accumulate, stride: p.n };
        let columns = (p.n - panel * width).min(width);
        let b = b.add(bo + panel * width);
        let b_step = p.b_strides[0] as usize;
        let rows_per_tile = tile_rows(self.isa);
        let mut a = self.tiles.ptr_const().cast::<f32>().add(self.packed_of[q]);
        let mut r = 0;
        while r < p.m {
            let rows = (p.m - r).min(rows_per_tile);
            let dst = dst.add(d + r * p.n + panel * width);
            let tile = Tile { a, rs: 1, cs: rows as isize, b, b_step, k: p.k, dst, columns };
            if columns == width {
                tile.run_rows::<V, false, false>(rows, epilogue);
            } else {
                tile.run_rows::<V, false, true>(rows, epilogue);
            }
            a = a.add(rows * p.k);
            r += rows;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(p: &LeftPackedProduct, b: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
    p.run_with::<super::vector::Avx512>(b, dst, pieces, piece)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(p: &LeftPackedProduct, b: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
    p.run_with::<super::vector::Avx2>(b, dst, pieces, piece)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, reference};

    /// Rows filling no tile, one, and some and a part; columns filling one panel, one
    /// and a part, and some and a part; a batch of distinct `a`s (Winograd's points), one shared
    /// (images of a batch), and products adding into one block; transposed `a`, a row
    /// stride of `b` past its width, accumulate and alpha; split in 1–4 pieces; against
    /// an f64 reference.
    #[test]
    fn left_packed_products_compute_the_product() {
        // m, n, k, products, how the batch reads a (0 one shared, 1 distinct, 2 one
        // block of dst for all), transposed a, b's row stride beyond n, accumulate
        let cases = [
            (8, 32, 16, 1, 0, false, 0, false),
            (32, 49, 128, 36, 1, false, 0, false),
            (13, 70, 9, 3, 1, true, 5, true),
            (5, 33, 33, 2, 0, false, 0, true),
            (17, 196, 68, 3, 1, false, 0, false),
            (6, 47, 7, 4, 2, false, 3, true),
            (1, 64, 1, 1, 0, true, 0, false),
        ];
        for isa in crate::wide::isas_here() {
            for (m, n, k, products, sharing, ta, extra, accumulate) in cases {
                let row = n + extra;
                let batch: Vec<[usize; 3]> = (0..products)
                    .map(|q| {
                        let a = if sharing == 0 { 0 } else { q * m * k };
                        let d = if sharing == 2 { 0 } else { q * m * n };
                        [a, 2 + q * k * row, d]
                    })
                    .collect();
                let p = MatMul {
                    m,
                    n,
                    k,
                    batch,
                    a_strides: if ta { [1, m as isize] } else { [k as isize, 1] },
                    b_strides: [row as isize, 1],
                    alpha: 0.75,
                    accumulate,
                };
                let value = |i: usize| ((i * 7919) % 17) as f32 / 4.0 - 2.0;
                let a: Vec<f32> = (0..products * m * k).map(value).collect();
                let b: Vec<f32> = (0..2 + products * k * row).map(|i| value(i + 5)).collect();
                let start: Vec<f32> = (0..products * m * n).map(|i| value(i + 11)).collect();
                let mut expected = start.clone();
                reference(&p, &a, &b, &mut expected);
                // SAFETY: a holds every element the product reaches
                let packed = unsafe { LeftPackedProduct::pack(&p, a.as_ptr(), isa) }.expect("packs");
                for pieces in 1..=4 {
                    let mut got = start.clone();
                    for piece in 0..pieces {
                        // SAFETY: the buffers hold the whole batch; the host has `isa`
                        unsafe { packed.run_piece(b.as_ptr(), got.as_mut_ptr(), pieces, piece) };
                    }
                    let what = format!("{isa:?} {m}×{n}×{k} ×{products} ({sharing}), {pieces} pieces");
                    assert_close(&got, &expected, &what);
                }
            }
        }
    }

    #[test]
    fn only_products_of_contiguous_rows_a_panel_wide_or_more_and_small_filters_are_packed() {
        let Some(isa) = Isa::detect() else { return };
        let a = vec![1.0f32; 512 * 512];
        let p = MatMul {
            m: 64,
            n: 196,
            k: 64,
            batch: vec![[0, 0, 0]],
            a_strides: [64, 1],
            b_strides: [196, 1],
            alpha: 1.0,
            accumulate: false,
        };
        // SAFETY: a holds a 512×512 matrix, more than any product here reads
        unsafe {
            assert!(LeftPackedProduct::pack(&p, a.as_ptr(), isa).is_some());
            let columns = MatMul { b_strides: [1, 64], ..p.clone() };
            assert!(LeftPackedProduct::pack(&columns, a.as_ptr(), isa).is_none());
            let narrow = MatMul { n: panel_width(isa) - 1, b_strides: [panel_width(isa) as isize - 1, 1], ..p.clone() };
            assert!(LeftPackedProduct::pack(&narrow, a.as_ptr(), isa).is_none());
            let wide = MatMul { n: MAX_COLUMNS + 1, b_strides: [MAX_COLUMNS as isize + 1, 1], ..p.clone() };
            assert!(LeftPackedProduct::pack(&wide, a.as_ptr(), isa).is_none());
            let big = MatMul { m: 512, k: 512, a_strides: [512, 1], ..p };
            assert!(LeftPackedProduct::pack(&big, a.as_ptr(), isa).is_none());
        }
    }
}
