//! Products by a constant matrix with few rows, on a copy of the matrix packed at
//! compile time: a token or a few by a weight matrix (GPT-2 decoding eight tokens, an
//! RNN cell's one row, a classifier's head).
//!
//! Such a product is bound by reading its weights, not by multiply-adds: 8×768 by
//! 768×3072 reads 9.4 MB of `b` for 19 M multiply-adds. The GEMM crate copies `b` into
//! its own layout on every call, so it reads `b` twice and writes it once; on GPT-2 at
//! eight tokens its products ran at 4 GB/s. Here `b` is packed once, when the program
//! is compiled, into *panels* of [`Vector::LANES`]·2 columns (the last one padded with
//! zeros), each stored row after row, and a run reads every panel once, in order: one
//! stream through memory that the hardware prefetcher follows.
//!
//! A panel meets the rows of `a` in tiles of up to 8 rows (6 on AVX2, whose 16
//! registers hold 12 accumulators, two rows of the panel and a broadcast): per row of
//! the panel, two loads and two multiply-adds for each row of the tile. The panel stays
//! in L2 while the tiles of all of `a`'s rows pass it. Pieces of a split product take
//! bands of whole panels.

#![allow(unsafe_op_in_unsafe_fn)]

use super::vector::Vector;
use super::Isa;
use crate::gemm::MatMul;
use crate::runtime::AlignedBuf;

/// Products of at most this many rows run here on AVX-512. Measured against the GEMM
/// crate on one thread (768×3072, 3072×768 and 1024×4096 weights): 0.3–0.6 of its time
/// from 4 to 48 rows, about the same at one row (both stream the weights at memory's
/// pace) and at 64, slower at 128 (1.0–1.7), where the products are bound by
/// multiply-adds and the GEMM crate's packed `a` and larger tiles win.
pub const MAX_ROWS: usize = 48;

/// ... and on AVX2, whose GEMM-crate kernel has less to win with: on a Zen 3 core, one
/// thread, 0.85–0.95 of its time at 64 rows (768×3072, 3072×768, 1024×1024 weights),
/// 0.88–0.98 at 96 and at 128, the same at 192; at two threads 0.89–1.0 at 64 to 128.
/// In a model, where the weights come from memory rather than the cache, the GEMM
/// crate's copy of them weighs more: Tensat's BERT (32 products of 64×1024 by
/// 1024×1024) 66.5 → 53.2 ms.
pub const MAX_ROWS_AVX2: usize = 128;

/// The most rows a product may have to run here with `isa`.
pub fn max_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => MAX_ROWS,
        Isa::Avx2 => MAX_ROWS_AVX2,
    }
}

/// How far ahead of the panel row being read (in elements: 8 KB) a tile asks for the
/// panel's cache lines. A panel comes from memory on the first tile's pass, and the
/// hardware prefetcher alone left one core waiting on it: 8 rows by 768×3072 weights
/// took 5.0 ms with it alone, 3.4–3.7 with prefetching 4 KB ahead, 3.4 at 8 KB.
const PREFETCH_AHEAD: usize = 2048;

/// A product whose `b` is a constant, packed into panels.
#[derive(Clone)]
pub struct PackedProduct {
    isa: Isa,
    product: MatMul,
    panels: AlignedBuf,
}

// SAFETY: the panels are written once, when the program is compiled, and only read after
unsafe impl Send for PackedProduct {}
unsafe impl Sync for PackedProduct {}

impl std::fmt::Debug for PackedProduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedProduct").field("isa", &self.isa).field("product", &self.product).finish()
    }
}

impl PackedProduct {
    /// Packs `b` (the constant right operand of `product`, at its address) for `isa`,
    /// if the product is one this kernel runs: at most [`max_rows`] rows, every product of
    /// the batch reading the same `b`.
    ///
    /// # Safety
    /// `b` must hold every element the product's offsets and strides reach.
    pub unsafe fn pack(product: &MatMul, b: *const f32, isa: Isa) -> Option<PackedProduct> {
        let b_offset = product.batch.first()?[1];
        let one_b = product.batch.iter().all(|o| o[1] == b_offset);
        if product.m > max_rows(isa) || product.k == 0 || product.n == 0 || !one_b {
            return None;
        }
        let width = panel_width(isa);
        let count = product.n.div_ceil(width);
        let mut panels = AlignedBuf::zeroed(count * product.k * width * 4);
        let out = panels.ptr().cast::<f32>();
        let [rs, cs] = product.b_strides;
        let b = b.add(b_offset);
        for p in 0..count {
            let columns = (product.n - p * width).min(width);
            for t in 0..product.k {
                let row = out.add((p * product.k + t) * width);
                for c in 0..columns {
                    *row.add(c) = *b.offset(t as isize * rs + (p * width + c) as isize * cs);
                }
            }
        }
        Some(PackedProduct { isa, product: product.clone(), panels })
    }

    /// The product it computes (its `b` offsets and strides are no longer read).
    pub fn product(&self) -> &MatMul {
        &self.product
    }

    /// Into how many pieces the call splits across `threads`: as the GEMM crate's call
    /// would (`b` is a constant), at most one a panel.
    pub fn pieces(&self, threads: usize) -> usize {
        let panels = self.product.n.div_ceil(panel_width(self.isa));
        self.product.pieces(threads, [false, true]).count.min(panels)
    }

    /// Runs piece `piece` of `pieces`: a band of whole panels, for every product of the
    /// batch. The pieces write disjoint columns of `dst`.
    ///
    /// # Safety
    /// `a` and `dst` must hold every element the product's offsets and strides reach,
    /// and `dst` must not overlap `a`; the host has the instruction set it was packed for.
    pub unsafe fn run_piece(&self, a: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => run_avx512(self, a, dst, pieces, piece),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => run_avx2(self, a, dst, pieces, piece),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("wide programs are only built on x86-64"),
        }
    }

    #[inline(always)]
    unsafe fn run_with<V: Vector>(&self, a: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
        let p = &self.product;
        let width = 2 * V::LANES;
        let count = p.n.div_ceil(width);
        let (first, last) = (count * piece / pieces, count * (piece + 1) / pieces);
        let rows_per_tile = tile_rows(self.isa);
        let panels = self.panels.ptr_const().cast::<f32>();
        let [rs, cs] = p.a_strides;
        let epilogue = Epilogue { alpha: p.alpha, accumulate: p.accumulate, stride: p.n };
        for &[ao, _, d] in &p.batch {
            for panel in first..last {
                let b = panels.add(panel * p.k * width);
                let columns = (p.n - panel * width).min(width);
                let mut r = 0;
                while r < p.m {
                    let rows = (p.m - r).min(rows_per_tile);
                    let a = a.add(ao).offset(r as isize * rs);
                    let dst = dst.add(d + r * p.n + panel * width);
                    let tile = Tile { a, rs, cs, b, b_step: width, k: p.k, dst, columns };
                    tile.run_rows::<V, true, false>(rows, epilogue);
                    r += rows;
                }
            }
        }
    }
}

/// Rows of a tile on `isa`: as many as the registers hold accumulators for, beside the
/// panel's two vectors and a broadcast (16 registers on AVX2 hold 12 accumulators).
pub(super) fn tile_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 8,
        Isa::Avx2 => 6,
    }
}

/// Columns of a panel on `isa`: two vectors.
pub(super) fn panel_width(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 32,
        Isa::Avx2 => 16,
    }
}

/// What happens to an accumulated tile: `dst = alpha · acc (+ dst)`.
#[derive(Clone, Copy)]
pub(super) struct Epilogue {
    pub alpha: f32,
    pub accumulate: bool,
    /// Elements from one row of `dst` to the next.
    pub stride: usize,
}

/// Up to 8 rows of `a` by two vectors' width of `b`'s columns (a panel), into
/// `columns` (≤ that width) of `dst`. `b`'s rows are `b_step` apart: a packed panel's
/// width, or the row stride of a matrix read in place ([`super::LeftPackedProduct`]),
/// whose last panel may be partial and is then read `EDGE`-wise, lane-masked.
pub(super) struct Tile {
    pub a: *const f32,
    pub rs: isize,
    pub cs: isize,
    pub b: *const f32,
    pub b_step: usize,
    pub k: usize,
    pub dst: *mut f32,
    pub columns: usize,
}

impl Tile {
    /// Runs the tile's first `rows` (1 to 8) rows; `PREFETCH`: `b` is a packed panel
    /// on its way from memory, whose lines are asked for [`PREFETCH_AHEAD`] elements ahead.
    #[inline(always)]
    pub unsafe fn run_rows<V: Vector, const PREFETCH: bool, const EDGE: bool>(&self, rows: usize, e: Epilogue) {
        match rows {
            1 => self.run::<V, 1, PREFETCH, EDGE>(e),
            2 => self.run::<V, 2, PREFETCH, EDGE>(e),
            3 => self.run::<V, 3, PREFETCH, EDGE>(e),
            4 => self.run::<V, 4, PREFETCH, EDGE>(e),
            5 => self.run::<V, 5, PREFETCH, EDGE>(e),
            6 => self.run::<V, 6, PREFETCH, EDGE>(e),
            7 => self.run::<V, 7, PREFETCH, EDGE>(e),
            _ => self.run::<V, 8, PREFETCH, EDGE>(e),
        }
    }

    #[inline(always)]
    unsafe fn run<V: Vector, const R: usize, const PREFETCH: bool, const EDGE: bool>(&self, e: Epilogue) {
        let mut acc = [[V::splat(0.0); 2]; R];
        let mut b = self.b;
        let mut a = self.a;
        // an edge panel's lanes past its columns are never loaded (nor stored)
        let widths = [self.columns.min(V::LANES), self.columns.saturating_sub(V::LANES).min(V::LANES)];
        for _ in 0..self.k {
            #[cfg(target_arch = "x86_64")]
            if PREFETCH {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let ahead = b.wrapping_add(PREFETCH_AHEAD).cast::<i8>();
                _mm_prefetch::<_MM_HINT_T0>(ahead);
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
            }
            let (b0, b1) = if EDGE {
                (V::load_first(b, widths[0], 0.0), V::load_first(b.add(V::LANES), widths[1], 0.0))
            } else {
                (V::load(b), V::load(b.add(V::LANES)))
            };
            for (r, row) in acc.iter_mut().enumerate() {
                let x = V::splat(*a.offset(r as isize * self.rs));
                row[0] = x.fma(b0, row[0]);
                row[1] = x.fma(b1, row[1]);
            }
            b = b.add(self.b_step);
            a = a.offset(self.cs);
        }
        let alpha = V::splat(e.alpha);
        for (r, row) in acc.iter().enumerate() {
            let out = self.dst.add(r * e.stride);
            for (h, v) in row.iter().enumerate() {
                let start = h * V::LANES;
                if start >= self.columns {
                    break;
                }
                let width = (self.columns - start).min(V::LANES);
                let y = v.mul(alpha);
                if width == V::LANES {
                    let y = if e.accumulate { y.add(V::load(out.add(start))) } else { y };
                    y.store(out.add(start));
                } else {
                    let y = if e.accumulate { y.add(V::load_first(out.add(start), width, 0.0)) } else { y };
                    y.store_first(out.add(start), width);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(p: &PackedProduct, a: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
    p.run_with::<super::vector::Avx512>(a, dst, pieces, piece)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(p: &PackedProduct, a: *const f32, dst: *mut f32, pieces: usize, piece: usize) {
    p.run_with::<super::vector::Avx2>(a, dst, pieces, piece)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::{assert_close, reference};

    /// Row counts of a tile and past it (1–17, and up to [`max_rows`]), columns filling no panel, one, and
    /// some and a part, transposed `a` and `b`, a batch (one `b` for all), accumulate,
    /// alpha; split in 1–4 pieces; against an f64 reference.
    #[test]
    fn packed_products_compute_the_product() {
        let cases = [
            // m, n, k, products, transposed a, transposed b, accumulate
            (1, 4099, 300, 1, false, false, false),
            (8, 96, 64, 1, false, true, true),
            (3, 7, 5, 1, true, false, false),
            (16, 33, 70, 2, false, false, true),
            (13, 130, 17, 3, true, true, false),
            (6, 32, 1, 1, false, false, false),
            // the most rows the instruction set takes
            (0, 40, 9, 1, false, false, true),
        ];
        for isa in crate::wide::isas_here() {
            let most = max_rows(isa);
            for (m, n, k, products, ta, tb, accumulate) in cases {
                let m = if m == 0 { most } else { m };
                for m in [m, (m + 1).min(most), m.saturating_sub(1).max(1)] {
                    let p = MatMul {
                        m,
                        n,
                        k,
                        // each product its own rows of a and block of dst, one b
                        batch: (0..products).map(|q| [q * m * k, 3, q * m * n]).collect(),
                        a_strides: if ta { [1, (products * m) as isize] } else { [k as isize, 1] },
                        b_strides: if tb { [1, k as isize] } else { [n as isize, 1] },
                        alpha: 0.75,
                        accumulate,
                    };
                    let p = if ta {
                        // a transposed: rows 1 apart, columns products·m apart
                        MatMul { batch: (0..products).map(|q| [q * m, 3, q * m * n]).collect(), ..p }
                    } else {
                        p
                    };
                    let value = |i: usize| ((i * 7919) % 17) as f32 / 4.0 - 2.0;
                    let a: Vec<f32> = (0..products * m * k).map(value).collect();
                    let b: Vec<f32> = (0..3 + k * n).map(|i| value(i + 5)).collect();
                    let start: Vec<f32> = (0..products * m * n).map(|i| value(i + 11)).collect();
                    let mut expected = start.clone();
                    reference(&p, &a, &b, &mut expected);
                    // SAFETY: b holds every element the product reaches
                    let packed = unsafe { PackedProduct::pack(&p, b.as_ptr(), isa) }.expect("packs");
                    for pieces in 1..=4 {
                        let mut got = start.clone();
                        for piece in 0..pieces {
                            // SAFETY: the buffers hold the whole batch; the host has `isa`
                            unsafe { packed.run_piece(a.as_ptr(), got.as_mut_ptr(), pieces, piece) };
                        }
                        assert_close(&got, &expected, &format!("{isa:?} {m}×{n}×{k} ×{products}, {pieces} pieces"));
                    }
                }
            }
        }
    }

    #[test]
    fn only_short_products_of_one_b_are_packed() {
        let Some(isa) = Isa::detect() else { return };
        let b = vec![1.0f32; 64 * 64 * 2];
        assert_eq!((max_rows(Isa::Avx512), max_rows(Isa::Avx2)), (MAX_ROWS, MAX_ROWS_AVX2));
        let p = MatMul {
            m: max_rows(isa) + 1,
            n: 64,
            k: 64,
            batch: vec![[0, 0, 0]],
            a_strides: [64, 1],
            b_strides: [64, 1],
            alpha: 1.0,
            accumulate: false,
        };
        // SAFETY: b holds 2 of the 64×64 matrices
        unsafe {
            assert!(PackedProduct::pack(&p, b.as_ptr(), isa).is_none());
            let two_bs = MatMul { m: 4, batch: vec![[0, 0, 0], [256, 4096, 256]], ..p.clone() };
            assert!(PackedProduct::pack(&two_bs, b.as_ptr(), isa).is_none());
            let one_b = MatMul { m: 4, batch: vec![[0, 0, 0], [256, 0, 256]], ..p };
            assert!(PackedProduct::pack(&one_b, b.as_ptr(), isa).is_some());
        }
    }
}
