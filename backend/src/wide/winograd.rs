//! The two transforms of a `winograd_conv` ([`saturate_egraph::winograd`]), either side of
//! its (m+2)² matrix products: the input's tiles carried into the transformed space
//! (`V = Bᵀ d B`, [α², C, tiles]) and the products' tiles brought back with the bias
//! and, where there is one, a ReLU (`y = Aᵀ M A + b`, into [N, K, OH, OW]).
//!
//! Both work a vector of consecutive tiles of a tile row at a time. Tile `t` of a row
//! starts at column `t·m`, so lane `l` reads (and writes) columns `l·m + j`: a stride of
//! `m`. The input transform therefore splits each padded input row into its `m`
//! phases first (`row[k·m + p]` to `phase[p][k]`, by [`Lanes::deinterleave`]), after
//! which the element `j` of every lane's tile is one contiguous load; the output
//! transform interleaves its `m` columns back ([`Lanes::interleave`]) before storing.
//! The transforms along one axis are written out as adds and multiply-adds with their
//! common terms shared ([`TileTransforms`]).
//!
//! The same code runs on AVX-512, AVX2 and, one lane at a time, on any host
//! ([`Scalar`]): that path serves hosts without AVX2 and `--kernels clif`.

#![allow(unsafe_op_in_unsafe_fn)]

use super::vector::Vector;
use super::Isa;

/// The geometry of one `winograd_conv`.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradSpec {
    /// Outputs per tile side, 2 or 4.
    pub m: usize,
    pub batch: usize,
    pub channels: usize,
    pub out_channels: usize,
    /// The input's [height, width].
    pub input: [usize; 2],
    /// The output's [height, width].
    pub output: [usize; 2],
    /// Padding above and to the left.
    pub pads_begin: [usize; 2],
}

/// Lanes the phase rows are rounded to: the widest vector's, so that one layout of the
/// scratch serves every instruction set.
const ROUND: usize = 16;

impl WinogradSpec {
    pub fn alpha(&self) -> usize {
        self.m + 2
    }

    /// Tile rows and tiles per tile row.
    pub fn tile_grid(&self) -> [usize; 2] {
        [self.output[0].div_ceil(self.m), self.output[1].div_ceil(self.m)]
    }

    /// Tiles over the whole batch: the products' width.
    pub fn tiles(&self) -> usize {
        let [th, tw] = self.tile_grid();
        self.batch * th * tw
    }

    /// Elements from one point's matrix of `rows × tiles` to the next (V's rows are the
    /// input channels, the products' the output channels): a cache line more than the
    /// matrix, so that the (m+2)² matrices a transform writes or reads together do not
    /// all fall in the same sets of the L1 cache (with 64 channels of 28×28, F(2×2)'s 16
    /// matrices are exactly 49 pages apart).
    pub fn point_stride(&self, rows: usize) -> usize {
        rows * self.tiles() + 16
    }

    /// Elements of one phase of a split row: a tile row's tiles rounded up to whole
    /// vectors, and a vector more (the last tile's patch reaches one into the next, and
    /// a last, partial vector of tiles reads its whole width).
    fn phase_len(&self) -> usize {
        self.tile_grid()[1].next_multiple_of(ROUND) + ROUND
    }

    /// Scratch floats per input plane: one padded row, then the `α` split rows of a
    /// tile row.
    pub fn scratch_per_plane(&self) -> usize {
        (1 + self.alpha()) * self.m * self.phase_len()
    }
}

/// One of the two transforms.
#[derive(Debug, Clone)]
pub enum Transform {
    /// Args: the input [N,C,H,W], the scratch, V: α² matrices [C, tiles],
    /// [`point_stride`](WinogradSpec::point_stride) apart. Outer: the N·C planes.
    Input(WinogradSpec),
    /// Args: the products (α² matrices [K, tiles], likewise apart), the bias [K], the
    /// output [N,K,OH,OW]. Outer: the N·K planes.
    Output { spec: WinogradSpec, relu: bool },
}

/// A transform ready to run on this host's vectors (or one lane at a time).
#[derive(Debug, Clone)]
pub struct WinogradKernel {
    pub transform: Transform,
    pub isa: Option<Isa>,
}

impl WinogradKernel {
    pub fn name(&self) -> &'static str {
        match self.transform {
            Transform::Input(_) => "winograd_input",
            Transform::Output { .. } => "winograd_output",
        }
    }

    /// Planes `[begin, end)`.
    ///
    /// # Safety
    /// `args` holds the transform's three buffers, each of its spec's size; the host
    /// has the kernel's instruction set.
    pub unsafe fn run(&self, args: *const *mut u8, begin: usize, end: usize) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx512) => run_avx512(self, args, begin, end),
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx2) => run_avx2(self, args, begin, end),
            _ => self.run_with::<Scalar>(args, begin, end),
        }
    }

    #[inline(always)]
    unsafe fn run_with<V: Lanes>(&self, args: *const *mut u8, begin: usize, end: usize) {
        let arg = |i: usize| (*args.add(i)).cast::<f32>();
        let [a0, a1, a2] = [arg(0), arg(1), arg(2)];
        match &self.transform {
            Transform::Input(s) if s.m == 2 => input::<V, F2, 2, 4>(s, a0, a1, a2, begin, end),
            Transform::Input(s) => input::<V, F4, 4, 6>(s, a0, a1, a2, begin, end),
            Transform::Output { spec: s, relu } if s.m == 2 => output::<V, F2, 2, 4>(s, *relu, a0, a1, a2, begin, end),
            Transform::Output { spec: s, relu } => output::<V, F4, 4, 6>(s, *relu, a0, a1, a2, begin, end),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(k: &WinogradKernel, args: *const *mut u8, begin: usize, end: usize) {
    k.run_with::<super::vector::Avx512>(args, begin, end)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(k: &WinogradKernel, args: *const *mut u8, begin: usize, end: usize) {
    k.run_with::<super::vector::Avx2>(args, begin, end)
}

// The transforms along one axis, written out from the matrices of
// `saturate_egraph::winograd` (F2 and F4) with their common terms shared; the tests hold
// the kernels to the interpreter, which multiplies by the matrices themselves.

/// A tile size's transforms along one axis: `Bᵀ d` and `Aᵀ m`.
trait TileTransforms<const M: usize, const A: usize> {
    fn input<V: Lanes>(d: [V; A]) -> [V; A];
    fn output<V: Lanes>(m: [V; A]) -> [V; M];
}

/// F(2×2, 3×3).
struct F2;
/// F(4×4, 3×3).
struct F4;

impl TileTransforms<2, 4> for F2 {
    #[inline(always)]
    fn input<V: Lanes>(d: [V; 4]) -> [V; 4] {
        // SAFETY: vector arithmetic only, inlined into kernels compiled for the lanes' instruction set
        unsafe { [d[0].sub(d[2]), d[1].add(d[2]), d[2].sub(d[1]), d[1].sub(d[3])] }
    }
    #[inline(always)]
    fn output<V: Lanes>(m: [V; 4]) -> [V; 2] {
        // SAFETY: vector arithmetic only, inlined into kernels compiled for the lanes' instruction set
        unsafe { [m[0].add(m[1]).add(m[2]), m[1].sub(m[2]).sub(m[3])] }
    }
}

impl TileTransforms<4, 6> for F4 {
    #[inline(always)]
    fn input<V: Lanes>(d: [V; 6]) -> [V; 6] {
        // SAFETY: vector arithmetic only, inlined into kernels compiled for the lanes' instruction set
        unsafe {
            let (four, five, two) = (V::splat(4.0), V::splat(5.0), V::splat(2.0));
            // rows 1 and 2: (d4 − 4·d2) ± (d3 − 4·d1)
            let a = d[2].fnma(four, d[4]);
            let b = d[1].fnma(four, d[3]);
            // rows 3 and 4: d4 − d2 ± 2·(d3 − d1)
            let c = d[4].sub(d[2]);
            let e = d[3].sub(d[1]).mul(two);
            [
                d[2].fnma(five, d[0].fma(four, d[4])),
                a.add(b),
                a.sub(b),
                c.add(e),
                c.sub(e),
                d[3].fnma(five, d[1].fma(four, d[5])),
            ]
        }
    }
    #[inline(always)]
    fn output<V: Lanes>(m: [V; 6]) -> [V; 4] {
        // SAFETY: vector arithmetic only, inlined into kernels compiled for the lanes' instruction set
        unsafe {
            let (sum12, diff12) = (m[1].add(m[2]), m[1].sub(m[2]));
            let (sum34, diff34) = (m[3].add(m[4]), m[3].sub(m[4]));
            [
                m[0].add(sum12).add(sum34),
                diff34.fma(V::splat(2.0), diff12),
                sum34.fma(V::splat(4.0), sum12),
                diff34.fma(V::splat(8.0), diff12).add(m[5]),
            ]
        }
    }
}

/// The input transform of planes `[begin, end)` (`n·C + c`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn input<V: Lanes, T: TileTransforms<M, A>, const M: usize, const A: usize>(
    s: &WinogradSpec,
    x: *mut f32,
    scratch: *mut f32,
    v: *mut f32,
    begin: usize,
    end: usize,
) {
    let ([h, w], [th, tw]) = (s.input, s.tile_grid());
    let (lp, tiles, stride) = (s.phase_len(), s.tiles(), s.point_stride(s.channels));
    let [pt, pl] = s.pads_begin;
    for p in begin..end {
        let (n, c) = (p / s.channels, p % s.channels);
        let plane = x.add(p * h * w).cast_const();
        let row = scratch.add(p * s.scratch_per_plane());
        let split = row.add(M * lp);
        for ty in 0..th {
            for i in 0..A {
                let r = (ty * M + i) as isize - pt as isize;
                let source = (0..h as isize).contains(&r).then(|| plane.add(r as usize * w));
                pad_row(source, w, pl, row, M * lp);
                split_phases::<V, M>(row, split.add(i * M * lp), lp);
            }
            let first = (n * th + ty) * tw;
            let mut tx = 0;
            while tx < tw {
                let lanes = V::LANES.min(tw - tx);
                // the rows of d·B (each row's Bᵀ·row), then Bᵀ of each column (plain
                // loops: a closure, as `array::from_fn` takes, is compiled without the
                // kernel's instruction set, and its vector operations become calls)
                let mut t = [[V::splat(0.0); A]; A];
                for (i, row) in t.iter_mut().enumerate() {
                    let mut d = [V::splat(0.0); A];
                    for (j, dj) in d.iter_mut().enumerate() {
                        *dj = V::load(split.add((i * M + j % M) * lp + tx + j / M));
                    }
                    *row = T::input(d);
                }
                for b in 0..A {
                    let mut column = [V::splat(0.0); A];
                    for (i, ci) in column.iter_mut().enumerate() {
                        *ci = t[i][b];
                    }
                    let column = T::input(column);
                    for (a, value) in column.into_iter().enumerate() {
                        let at = v.add((a * A + b) * stride + c * tiles + first + tx);
                        if lanes == V::LANES {
                            value.store(at);
                        } else {
                            value.store_first(at, lanes);
                        }
                    }
                }
                tx += V::LANES;
            }
        }
    }
}

/// `row[..len]`: `pad` zeros, the `w` elements of `source` (zeros where there is none),
/// zeros to the end.
#[inline(always)]
unsafe fn pad_row(source: Option<*const f32>, w: usize, pad: usize, row: *mut f32, len: usize) {
    let copied = if source.is_some() { w.min(len - pad) } else { 0 };
    std::ptr::write_bytes(row, 0, pad);
    if let Some(src) = source {
        std::ptr::copy_nonoverlapping(src, row.add(pad), copied);
    }
    std::ptr::write_bytes(row.add(pad + copied), 0, len - pad - copied);
}

/// `split[p·lp + k] = row[k·M + p]` for `k < lp` (`lp` a multiple of the lanes).
#[inline(always)]
unsafe fn split_phases<V: Lanes, const M: usize>(row: *const f32, split: *mut f32, lp: usize) {
    let l = V::LANES;
    let mut k = 0;
    while k < lp {
        let src = row.add(k * M);
        if M == 2 {
            let (even, odd) = V::load(src).deinterleave(V::load(src.add(l)));
            even.store(split.add(k));
            odd.store(split.add(lp + k));
        } else {
            let (e0, o0) = V::load(src).deinterleave(V::load(src.add(l)));
            let (e1, o1) = V::load(src.add(2 * l)).deinterleave(V::load(src.add(3 * l)));
            let (p0, p2) = e0.deinterleave(e1);
            let (p1, p3) = o0.deinterleave(o1);
            for (phase, value) in [p0, p1, p2, p3].into_iter().enumerate() {
                value.store(split.add(phase * lp + k));
            }
        }
        k += l;
    }
}

/// The output transform of planes `[begin, end)` (`n·K + k`), with the bias and the
/// ReLU if `relu`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output<V: Lanes, T: TileTransforms<M, A>, const M: usize, const A: usize>(
    s: &WinogradSpec,
    relu: bool,
    products: *mut f32,
    bias: *mut f32,
    y: *mut f32,
    begin: usize,
    end: usize,
) {
    let ([oh, ow], [th, tw]) = (s.output, s.tile_grid());
    let (tiles, k_all) = (s.tiles(), s.out_channels);
    let stride = s.point_stride(k_all);
    for p in begin..end {
        let (n, k) = (p / k_all, p % k_all);
        let b = V::splat(*bias.add(k));
        let plane = y.add(p * oh * ow);
        for ty in 0..th {
            let first = (n * th + ty) * tw;
            let mut tx = 0;
            while tx < tw {
                let lanes = V::LANES.min(tw - tx);
                // Aᵀ of each column of the products' tile (h[j][a] = (Aᵀ·M)[a][j]),
                // then of each row of that
                let mut h = [[V::splat(0.0); M]; A];
                for (j, hj) in h.iter_mut().enumerate() {
                    let mut column = [V::splat(0.0); A];
                    for (i, ci) in column.iter_mut().enumerate() {
                        let src = products.add((i * A + j) * stride + k * tiles + first + tx);
                        *ci = if lanes == V::LANES { V::load(src) } else { V::load_first(src, lanes, 0.0) };
                    }
                    *hj = T::output(column);
                }
                for a in 0..M.min(oh - ty * M) {
                    let mut row = [V::splat(0.0); A];
                    for (j, rj) in row.iter_mut().enumerate() {
                        *rj = h[j][a];
                    }
                    let mut cols = T::output(row);
                    for col in cols.iter_mut() {
                        *col = if relu { col.add(b).relu() } else { col.add(b) };
                    }
                    let x0 = tx * M;
                    let count = (M * lanes).min(ow - x0);
                    store_interleaved::<V, M>(cols, plane.add((ty * M + a) * ow + x0), count);
                }
                tx += V::LANES;
            }
        }
    }
}

/// Stores the first `count` of `cols[0]₀ cols[1]₀ … cols[M−1]₀ cols[0]₁ …`.
#[inline(always)]
unsafe fn store_interleaved<V: Lanes, const M: usize>(cols: [V; M], dst: *mut f32, count: usize) {
    let mut runs = cols;
    if M == 2 {
        (runs[0], runs[1]) = cols[0].interleave(cols[1]);
    } else {
        let (p_low, p_high) = cols[0].interleave(cols[2]);
        let (s_low, s_high) = cols[1].interleave(cols[3]);
        (runs[0], runs[1]) = p_low.interleave(s_low);
        (runs[2], runs[3]) = p_high.interleave(s_high);
    }
    let l = V::LANES;
    for (i, run) in runs.into_iter().enumerate() {
        let start = i * l;
        if start >= count {
            break;
        }
        if count - start >= l {
            run.store(dst.add(start));
        } else {
            run.store_first(dst.add(start), count - start);
        }
    }
}

/// What the transforms need of a vector: [`Vector`]'s, or one f32 ([`Scalar`]).
pub(crate) trait Lanes: Copy {
    const LANES: usize;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    unsafe fn store_first(self, p: *mut f32, n: usize);
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    /// `c − self · b`.
    unsafe fn fnma(self, b: Self, c: Self) -> Self;
    /// `x < 0 ? 0 : x`, NaN kept.
    unsafe fn relu(self) -> Self;
    unsafe fn deinterleave(self, o: Self) -> (Self, Self);
    unsafe fn interleave(self, o: Self) -> (Self, Self);
}

impl<V: Vector> Lanes for V {
    const LANES: usize = V::LANES;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        V::splat(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        V::load(p)
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self {
        V::load_first(p, n, fill)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        Vector::store(self, p)
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        Vector::store_first(self, p, n)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Vector::add(self, o)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Vector::sub(self, o)
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Vector::mul(self, o)
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        Vector::fma(self, b, c)
    }
    #[inline(always)]
    unsafe fn fnma(self, b: Self, c: Self) -> Self {
        Vector::fnma(self, b, c)
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        super::math::relu(self)
    }
    #[inline(always)]
    unsafe fn deinterleave(self, o: Self) -> (Self, Self) {
        Vector::deinterleave(self, o)
    }
    #[inline(always)]
    unsafe fn interleave(self, o: Self) -> (Self, Self) {
        Vector::interleave(self, o)
    }
}

/// One f32 as a vector of one lane: the transforms on any host.
#[derive(Clone, Copy)]
pub(crate) struct Scalar(f32);

impl Lanes for Scalar {
    const LANES: usize = 1;
    unsafe fn splat(v: f32) -> Self {
        Scalar(v)
    }
    unsafe fn load(p: *const f32) -> Self {
        Scalar(*p)
    }
    unsafe fn load_first(_: *const f32, _: usize, fill: f32) -> Self {
        Scalar(fill) // n < 1 lanes: none loaded
    }
    unsafe fn store(self, p: *mut f32) {
        *p = self.0;
    }
    unsafe fn store_first(self, _: *mut f32, _: usize) {}
    unsafe fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    unsafe fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    unsafe fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        Scalar(self.0.mul_add(b.0, c.0))
    }
    unsafe fn fnma(self, b: Self, c: Self) -> Self {
        Scalar((-self.0).mul_add(b.0, c.0))
    }
    unsafe fn relu(self) -> Self {
        Scalar(if self.0 < 0.0 { 0.0 } else { self.0 })
    }
    unsafe fn deinterleave(self, o: Self) -> (Self, Self) {
        (self, o)
    }
    unsafe fn interleave(self, o: Self) -> (Self, Self) {
        (self, o)
    }
}
