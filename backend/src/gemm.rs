//! Matrix products, through the `gemm` crate (x86-v4 kernels: AVX-512 where the host has
//! it). Cranelift emits 128-bit SIMD only, so a tuned GEMM beats anything generated
//! here several times over; lowering arranges bias and activation around it.

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

/// A call (all the products of its batch) below this many multiply-adds, or with
/// fewer rows than [`PARALLEL_ROWS`], runs on the calling thread: splitting it hands it
/// to the GEMM crate's rayon pool and sleeps until it is done, two wake-ups of about
/// 70 µs here, which 8 M multiply-adds (40–80 µs on one core) do not repay. Measured at
/// two threads: a small ResNet-18 export 0.219 → 0.106 ms (from 1 M per product), with
/// ResNet-50, BERT and Inception-v3 unchanged.
const PARALLEL_WORK: usize = 1 << 23;
const PARALLEL_ROWS: usize = 8;

impl MatMul {
    /// Whether the product splits across `threads` (on the current rayon pool, so the
    /// caller must run it inside one); otherwise it runs on the calling thread.
    pub fn splits(&self, threads: usize) -> bool {
        threads > 1 && self.m >= PARALLEL_ROWS && self.m * self.n * self.k * self.batch.len() >= PARALLEL_WORK
    }

    /// Runs the batch.
    ///
    /// # Safety
    /// `a`, `b` and `dst` must point to buffers that hold every element the strides and
    /// offsets reach, and `dst` must not overlap `a` or `b`.
    pub unsafe fn run(&self, a: *const f32, b: *const f32, dst: *mut f32, threads: usize) {
        let parallelism =
            if self.splits(threads) { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        for &[ao, bo, d] in &self.batch {
            let dst = dst.add(d);
            if self.k == 0 {
                if !self.accumulate {
                    std::ptr::write_bytes(dst, 0, self.m * self.n);
                }
                continue;
            }
            gemm::gemm(
                self.m,
                self.n,
                self.k,
                dst,
                1,
                self.n as isize,
                self.accumulate,
                a.add(ao),
                self.a_strides[1],
                self.a_strides[0],
                b.add(bo),
                self.b_strides[1],
                self.b_strides[0],
                1.0,
                self.alpha,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
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
        unsafe { product.run(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), 1) };
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}
