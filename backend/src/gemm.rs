//! Matrix products, through the `gemm` crate (x86-v4 kernels: AVX-512 where the host has
//! it). Cranelift emits 128-bit SIMD only, so a tuned GEMM beats anything generated
//! here several times over; lowering arranges bias and activation around it.
//!
//! A big call splits into pieces (whole products of a batch, or bands of rows or
//! columns) that the runtime's team runs side by side, each on one thread: the GEMM
//! crate's own splitting runs on a rayon pool whose threads sleep between jobs, and
//! waking them cost about 70 µs a product on a virtual machine.

/// A batch of products `dst = alpha · a·b (+ dst if accumulate)` of an `m×k` by a `k×n`
/// matrix; `dst` is contiguous row-major, `a` and `b` have the given (row, column)
/// element strides, so transposed operands need no copy.
#[derive(Debug, Clone, PartialEq)]
pub struct MatMul {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Element offsets of `a`, `b` and `dst` for each product of the batch.
    pub batch: Vec<[usize; 3]>,
    pub a_strides: [isize; 2],
    pub b_strides: [isize; 2],
    pub alpha: f32,
    /// Add to what `dst` holds (a bias or `beta·c` written before) instead of overwriting.
    pub accumulate: bool,
}

/// A call (all the products of its batch) with fewer multiply-adds than this runs on
/// the calling thread. A split goes to the loops' team, whose workers spin, so the
/// hand-over costs about a microsecond; what limits splitting is that the other core
/// reads the operand the last step left in this core's caches. 1 M multiply-adds take
/// 8–15 µs on one core here.
const PARALLEL_WORK: usize = 1 << 20;

/// ... and with fewer multiply-adds per operand element read than this (about
/// `m·n / (m + n)`: small when either side is): such a product is bound by moving its
/// operands, and the other core would pull them from this one's caches. The stem of a
/// small ResNet-18 (8×1024 by 147, 1.2 M multiply-adds, intensity 8) took 0.033–0.054
/// ms on one thread and 0.15–0.27 ms split in two. Products of 16 rows and more (16
/// channels of a MobileNet) still split, as they did when every export of the
/// published sizes measured faster at two threads than at one.
const PARALLEL_INTENSITY: usize = 12;

/// A product that reads at least this many operand elements (512 KB), most of them a
/// constant, splits whatever its multiply-adds per element: one row, or a few tokens,
/// by a weight matrix (an RNN cell's, a decoder's) streams the matrix from memory at
/// one core's bandwidth, and two cores stream it faster, each its own half on every
/// run. NasRNN's 72 products of 1×512 by 512×512 each read 1 MB in 100 µs; GPT-2's at
/// 8 tokens ran 1.8× faster split.
const PARALLEL_READS: usize = 1 << 17;

/// A product whose larger operand was computed at run time splits by its reads only
/// from this many elements (2 MB), more than a core's L2 holds: the operand is then in
/// the shared cache or in memory, as near to one core as to the other.
const PARALLEL_FRESH_READS: usize = 1 << 19;

/// Pieces of a split call that share one product's rows or columns start at multiples
/// of these: 16 columns are a 64-byte line of `dst` (no line written by two cores) and
/// a whole number of the GEMM crate's register tiles.
const ROW_ALIGN: usize = 8;
const COLUMN_ALIGN: usize = 16;

/// How a call runs: in how many pieces, divided how (from [`MatMul::pieces`], once a
/// call, for every piece).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pieces {
    pub count: usize,
    split: Split,
}

/// How a split call divides among its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Each piece runs whole products of the batch.
    Batch,
    /// Each piece runs a band of rows of every product.
    Rows,
    /// Each piece runs a band of columns of every product.
    Columns,
}

impl MatMul {
    fn work(&self) -> usize {
        self.m * self.n * self.k * self.batch.len()
    }

    fn reads(&self) -> usize {
        (self.m + self.n) * self.k * self.batch.len()
    }

    /// Into how many pieces, run side by side by [`MatMul::run_piece`], the call
    /// splits across `threads`: 1 when it is too small to repay a second core.
    /// `constant` says which of `a` and `b` are constants (weights).
    pub fn pieces(&self, threads: usize, constant: [bool; 2]) -> Pieces {
        let compute_bound = self.work() >= PARALLEL_WORK && self.work() >= PARALLEL_INTENSITY * self.reads();
        let larger_is_constant = if self.m >= self.n { constant[0] } else { constant[1] };
        let streaming = self.reads() >= if larger_is_constant { PARALLEL_READS } else { PARALLEL_FRESH_READS };
        if threads <= 1 || !(compute_bound || streaming) {
            return Pieces { count: 1, split: Split::Batch };
        }
        let split = self.split(threads);
        let most = match split {
            Split::Batch => self.batch.len(),
            Split::Rows => self.m.div_ceil(ROW_ALIGN),
            Split::Columns => self.n.div_ceil(COLUMN_ALIGN),
        };
        Pieces { count: threads.min(most).max(1), split }
    }

    /// Whole products when they share out evenly (or are many), else bands of the
    /// longer side: a band of rows packs all of `b`, a band of columns all of `a`.
    fn split(&self, pieces: usize) -> Split {
        let products = self.batch.len();
        if (products.is_multiple_of(pieces) || products >= 4 * pieces) && self.outputs_disjoint() {
            Split::Batch
        } else if self.m >= self.n {
            Split::Rows
        } else {
            Split::Columns
        }
    }

    /// Whether the batch's products write disjoint blocks of `dst` (the products of a
    /// convolution by shifted taps all add into one block). Checked as offsets rising by
    /// at least a block, the order lowering writes them in, so that it needs no sort.
    pub(crate) fn outputs_disjoint(&self) -> bool {
        self.batch.windows(2).all(|w| w[1][2] >= w[0][2] + self.m * self.n)
    }

    /// The batch as one product with more rows, where that computes the same: every
    /// product of the batch reads the same `b`, and the rows of their `a`s follow one
    /// another at one stride, as the rows of the contiguous `dst` do. A Linear layer on
    /// `[1, 14, 14, 384]` activations is then one 196-row product, not 14 of 14 rows
    /// (a ConvNeXt-tiny export at one thread: 189 → 126 ms).
    pub fn batch_as_rows(self) -> MatMul {
        let [first, second] = match self.batch.as_slice() {
            [first, second, ..] => [*first, *second],
            _ => return self,
        };
        let step = second[0] as isize - first[0] as isize;
        let row_stride = if self.m == 1 { step } else { self.a_strides[0] };
        if row_stride == 0 && self.m == 1 {
            // one row read by every product: folding would make a zero row stride
            return self;
        }
        let follows = |p: usize, o: &[usize; 3]| {
            o[1] == first[1]
                && o[0] as isize == first[0] as isize + p as isize * self.m as isize * row_stride
                && o[2] == first[2] + p * self.m * self.n
        };
        if !self.batch.iter().enumerate().all(|(p, o)| follows(p, o)) {
            return self;
        }
        MatMul { m: self.m * self.batch.len(), batch: vec![first], a_strides: [row_stride, self.a_strides[1]], ..self }
    }

    /// Runs the whole batch on the calling thread.
    ///
    /// # Safety
    /// As for [`MatMul::run_piece`].
    pub unsafe fn run(&self, a: *const f32, b: *const f32, dst: *mut f32) {
        self.run_piece(a, b, dst, Pieces { count: 1, split: Split::Batch }, 0)
    }

    /// Runs piece `piece` of `pieces` (from [`MatMul::pieces`]); the pieces write
    /// disjoint elements of `dst`, so they may run at the same time.
    ///
    /// # Safety
    /// `a`, `b` and `dst` must point to buffers that hold every element the strides and
    /// offsets reach, and `dst` must not overlap `a` or `b`.
    pub unsafe fn run_piece(&self, a: *const f32, b: *const f32, dst: *mut f32, pieces: Pieces, piece: usize) {
        let Pieces { count: pieces, split } = pieces;
        let (products, rows, columns) = match split {
            Split::Batch => (band(self.batch.len(), piece, pieces, 1), 0..self.m, 0..self.n),
            Split::Rows => (0..self.batch.len(), band(self.m, piece, pieces, ROW_ALIGN), 0..self.n),
            Split::Columns => (0..self.batch.len(), 0..self.m, band(self.n, piece, pieces, COLUMN_ALIGN)),
        };
        if rows.is_empty() || columns.is_empty() {
            return;
        }
        for &[ao, bo, d] in &self.batch[products] {
            let a = a.add(ao).offset(rows.start as isize * self.a_strides[0]);
            let b = b.add(bo).offset(columns.start as isize * self.b_strides[1]);
            let dst = dst.add(d + rows.start * self.n + columns.start);
            self.block(a, b, dst, rows.len(), columns.len());
        }
    }

    /// One `m×n` block of a product, its operands already offset to the block.
    unsafe fn block(&self, a: *const f32, b: *const f32, dst: *mut f32, m: usize, n: usize) {
        if self.k == 0 {
            if !self.accumulate {
                for r in 0..m {
                    std::ptr::write_bytes(dst.add(r * self.n), 0, n);
                }
            }
            return;
        }
        gemm::gemm(
            m,
            n,
            self.k,
            dst,
            1,
            self.n as isize,
            self.accumulate,
            a,
            self.a_strides[1],
            self.a_strides[0],
            b,
            self.b_strides[1],
            self.b_strides[0],
            1.0,
            self.alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Piece `piece` of `0..len` cut into `pieces` bands of nearly equal length, every
/// band but the last starting and ending at a multiple of `align`.
fn band(len: usize, piece: usize, pieces: usize, align: usize) -> std::ops::Range<usize> {
    let units = len.div_ceil(align);
    let edge = |p: usize| (units * p / pieces * align).min(len);
    edge(piece)..edge(piece + 1)
}

/// The single-thread GFLOP/s of the GEMM crate on a 512³ product (best of 5): the peak
/// the model's products are measured against.
pub fn peak_gflops() -> f64 {
    let n = 512;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let product = MatMul {
        m: n,
        n,
        k: n,
        batch: vec![[0, 0, 0]],
        a_strides: [n as isize, 1],
        b_strides: [n as isize, 1],
        alpha: 1.0,
        accumulate: false,
    };
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        // SAFETY: the three buffers are n×n
        unsafe { product.run(a.as_ptr(), b.as_ptr(), c.as_mut_ptr()) };
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every element of `got` within 1e-4 of `expected`'s, relative to 1 + its size.
    pub(crate) fn assert_close(got: &[f32], expected: &[f32], what: &str) {
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{what}, [{i}]: {g} vs {e}");
        }
    }

    /// `dst = alpha · a·b (+ dst)` element by element, in f64.
    pub(crate) fn reference(p: &MatMul, a: &[f32], b: &[f32], dst: &mut [f32]) {
        for &[ao, bo, d] in &p.batch {
            for r in 0..p.m {
                for c in 0..p.n {
                    let mut sum = 0.0f64;
                    for t in 0..p.k {
                        let x = a[(ao as isize + r as isize * p.a_strides[0] + t as isize * p.a_strides[1]) as usize];
                        let y = b[(bo as isize + t as isize * p.b_strides[0] + c as isize * p.b_strides[1]) as usize];
                        sum += x as f64 * y as f64;
                    }
                    let out = &mut dst[d + r * p.n + c];
                    *out = (p.alpha as f64 * sum + if p.accumulate { *out as f64 } else { 0.0 }) as f32;
                }
            }
        }
    }

    /// A batch of `products` of `m×k` by `k×n`, `b` transposed when asked.
    fn product(m: usize, n: usize, k: usize, products: usize, transposed_b: bool, accumulate: bool) -> MatMul {
        MatMul {
            m,
            n,
            k,
            batch: (0..products).map(|p| [p * m * k, p * k * n, p * m * n]).collect(),
            a_strides: [k as isize, 1],
            b_strides: if transposed_b { [1, k as isize] } else { [n as isize, 1] },
            alpha: 0.5,
            accumulate,
        }
    }

    #[test]
    fn split_pieces_compute_the_whole_product() {
        let cases = [
            (300, 70, 64, 1, false, false, Split::Rows),
            (37, 333, 65, 1, true, true, Split::Columns),
            (1, 4099, 300, 1, false, false, Split::Columns),
            (61, 33, 40, 3, false, true, Split::Rows),
            (20, 30, 40, 6, true, false, Split::Batch),
            (9, 17, 0, 2, false, false, Split::Batch),
            (3, 5, 0, 3, false, true, Split::Columns),
        ];
        for (m, n, k, products, transposed_b, accumulate, split) in cases {
            let p = product(m, n, k, products, transposed_b, accumulate);
            let value = |i: usize| ((i * 7919) % 13) as f32 / 4.0 - 1.5;
            let a: Vec<f32> = (0..products * m * k).map(value).collect();
            let b: Vec<f32> = (0..products * k * n).map(|i| value(i + 5)).collect();
            let start: Vec<f32> = (0..products * m * n).map(|i| value(i + 11)).collect();
            assert_eq!(p.split(2), split, "{m}×{n}×{k} ×{products}");
            let mut expected = start.clone();
            reference(&p, &a, &b, &mut expected);
            for pieces in [1, 2, 3, 5] {
                let mut got = start.clone();
                for piece in (0..pieces).rev() {
                    // SAFETY: the buffers hold the whole batch
                    let pieces = Pieces { count: pieces, split: p.split(pieces) };
                    unsafe { p.run_piece(a.as_ptr(), b.as_ptr(), got.as_mut_ptr(), pieces, piece) };
                }
                assert_close(&got, &expected, &format!("{m}×{n}×{k} ×{products}, {pieces} pieces"));
            }
        }
    }

    #[test]
    fn products_adding_into_one_block_split_by_bands() {
        // a convolution by shifted taps: every product of the batch adds into one block
        let mut p = product(64, 640, 32, 4, false, true);
        p.batch.iter_mut().for_each(|o| o[2] = 0);
        assert_eq!(p.split(2), Split::Columns);
        let a: Vec<f32> = (0..4 * 64 * 32).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..4 * 32 * 640).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut expected = vec![1.0; 64 * 640];
        reference(&p, &a, &b, &mut expected);
        let mut got = vec![1.0; 64 * 640];
        for piece in 0..2 {
            // SAFETY: the buffers hold every product's operands and the one block
            unsafe {
                p.run_piece(a.as_ptr(), b.as_ptr(), got.as_mut_ptr(), Pieces { count: 2, split: p.split(2) }, piece)
            };
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn a_batch_sharing_b_becomes_one_product_of_its_rows() {
        // [2, 3, 4] (a transposed view: rows 1 apart, columns 24 apart) · [4, 5]
        let batched = MatMul {
            m: 4,
            n: 5,
            k: 6,
            batch: vec![[0, 0, 0], [4, 0, 20], [8, 0, 40]],
            a_strides: [1, 12],
            b_strides: [5, 1],
            alpha: 1.0,
            accumulate: false,
        };
        let a: Vec<f32> = (0..72).map(|i| (i % 9) as f32 - 4.0).collect();
        let b: Vec<f32> = (0..30).map(|i| (i % 4) as f32 - 1.5).collect();
        let mut expected = vec![0.0; 60];
        reference(&batched, &a, &b, &mut expected);
        let folded = batched.clone().batch_as_rows();
        assert_eq!((folded.m, folded.batch.len(), folded.a_strides), (12, 1, [1, 12]));
        let mut got = vec![0.0; 60];
        // SAFETY: the buffers hold every element the product reaches
        unsafe { folded.run(a.as_ptr(), b.as_ptr(), got.as_mut_ptr()) };
        assert_eq!(got, expected);
        // one row each, 7 elements apart: a product of rows 7 apart
        let rows =
            MatMul { m: 1, batch: vec![[0, 0, 0], [7, 0, 5], [14, 0, 10]], a_strides: [6, 1], ..batched.clone() };
        assert_eq!(rows.clone().batch_as_rows().a_strides, [7, 1]);
        // products that read different b's, or rows not one stride apart, stay a batch
        let different_b = MatMul { batch: vec![[0, 0, 0], [4, 30, 20]], ..batched.clone() };
        assert_eq!(different_b.clone().batch_as_rows(), different_b);
        let gapped = MatMul { batch: vec![[0, 0, 0], [5, 0, 20]], ..batched.clone() };
        assert_eq!(gapped.clone().batch_as_rows(), gapped);
        let one_row_for_all = MatMul { batch: vec![[0, 0, 0], [0, 0, 5]], ..rows.clone() };
        assert_eq!(one_row_for_all.clone().batch_as_rows(), one_row_for_all);
    }

    #[test]
    fn bands_cover_the_range_once_on_aligned_edges() {
        for len in [0, 1, 15, 16, 17, 100, 4099] {
            for pieces in 1..7 {
                let bands: Vec<_> = (0..pieces).map(|p| band(len, p, pieces, 16)).collect();
                assert_eq!(bands[0].start, 0);
                assert_eq!(bands[pieces - 1].end, len);
                for w in bands.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].end.is_multiple_of(16) || w[0].end == len);
                }
            }
        }
    }

    #[test]
    fn small_calls_stay_whole_and_big_ones_split_per_thread() {
        let (fresh, weights_b) = ([false, false], [false, true]);
        assert_eq!(product(64, 64, 64, 1, false, false).pieces(2, fresh).count, 1);
        assert_eq!(product(256, 256, 256, 1, false, false).pieces(1, fresh).count, 1);
        assert_eq!(product(256, 256, 256, 1, false, false).pieces(2, fresh).count, 2);
        assert_eq!(product(128, 128, 64, 12, false, false).pieces(2, fresh).count, 2);
        // one row, or a few tokens, by a weight matrix streams it: split
        assert_eq!(product(1, 512, 512, 1, false, false).pieces(2, weights_b).count, 2);
        assert_eq!(product(1, 4096, 1024, 1, false, false).pieces(4, weights_b).count, 4);
        assert_eq!(product(8, 3072, 768, 1, false, false).pieces(2, weights_b).count, 2);
        assert_eq!(product(1, 128, 128, 1, false, false).pieces(2, weights_b).count, 1);
        // a small ResNet-18's stem: few multiply-adds per element read, and the larger
        // operand (its im2col columns) fresh in this core's cache
        assert_eq!(product(8, 1024, 147, 1, false, false).pieces(2, [true, false]).count, 1);
    }
}
