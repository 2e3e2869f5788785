//! Window kernels on wide vectors: 2-D max pooling, average pooling and depthwise
//! convolution, any kernel size, stride, dilation and padding (the shapes of ResNet's
//! and Inception's pools and of MobileNet's, EfficientNet's and ConvNeXt's depthwise
//! convolutions).
//!
//! The scratch layout is [`WindowSpec::scratch`]'s: a plane (one channel of one image)
//! padded on every side, its columns split by the horizontal stride into interleaved
//! *phases*, so that the columns one tap reads for consecutive outputs are consecutive.
//! Each call fills its part of the scratch with the padding value once, then copies
//! plane after plane into its interior (in L1 or L2 for these models) and computes each
//! output row from it: for every tap, the shifted row of the copy is loaded one vector
//! at a time and combined into up to four vectors of outputs held in registers
//! (independent chains, so the loads and FMAs overlap).
//!
//! Max pooling uses the one-instruction `maxps`, which does not propagate NaN: the copy
//! checks each plane for NaN (and infinities, which take the same path) on the way, and
//! a plane that has any is pooled with the NaN-propagating maximum instead. Im2col
//! copies each tap's shifted rows out of the same padded copy into the column matrix.
//! Other ranks run in CLIF's window kernel.

#![allow(unsafe_op_in_unsafe_fn)]

use super::math;
use super::vector::Vector;
use super::Isa;
use crate::window::{WindowOp, WindowSpec};

/// A 2-D [`WindowSpec`] ready to run on wide vectors.
#[derive(Debug, Clone)]
pub struct WindowProgram {
    pub(super) isa: Isa,
    op: WindowOp,
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: [usize; 2],
    /// Elements from one padded row of the copy to the next, and of one phase.
    row_pitch: usize,
    phase_len: usize,
    plane_len: usize,
    /// Per tap (row-major), where it reads for output column 0 of a row, from the
    /// row's first padded row: no division in the inner loops.
    taps: Vec<usize>,
}

/// Outputs narrower than this stay in CLIF's kernel, whose 4-lane vectors waste less.
const MIN_OUTPUT_WIDTH: usize = 8;

/// Output vectors computed together in registers.
const BLOCK: usize = 4;

/// Elements the scratch buffer holds past each plane's copy, for the reads of a last
/// block that run past its row (checked for every spec in [`WindowProgram::new`]).
pub const SCRATCH_SLACK: usize = BLOCK * 16 + 64;

impl WindowProgram {
    pub fn new(spec: &WindowSpec, isa: Isa) -> Option<WindowProgram> {
        if spec.input.len() != 2 || spec.output[1] < MIN_OUTPUT_WIDTH {
            return None;
        }
        let two = |v: &[usize]| [v[0], v[1]];
        let scratch = spec.scratch();
        let program = WindowProgram {
            isa,
            op: spec.op,
            input: two(&spec.input),
            output: two(&spec.output),
            kernel: two(&spec.kernel),
            strides: two(&spec.strides),
            dilations: two(&spec.dilations),
            pads: two(&spec.pads_begin),
            row_pitch: scratch.phases * scratch.phase_len,
            phase_len: scratch.phase_len,
            plane_len: scratch.plane_len(),
            taps: Vec::new(),
        };
        let taps = (0..spec.kernel[0])
            .flat_map(|ky| (0..spec.kernel[1]).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| ky * program.dilations[0] * program.row_pitch + program.column_offset(kx))
            .collect();
        let program = WindowProgram { taps, ..program };
        (program.furthest_read() <= program.plane_len + SCRATCH_SLACK).then_some(program)
    }

    /// One past the furthest element of a plane's copy that any vector load reaches,
    /// with 16 lanes and whole blocks.
    fn furthest_read(&self) -> usize {
        let [oh, ow] = self.output;
        let last_row = (oh - 1) * self.strides[0] + (self.kernel[0] - 1) * self.dilations[0];
        let widest_tap = (0..self.kernel[1]).map(|kx| self.column_offset(kx)).max().unwrap_or(0);
        last_row * self.row_pitch + widest_tap + ow.div_ceil(16) * 16
    }

    /// Where the column a tap `kx` reads for output column 0 lies in a padded row.
    fn column_offset(&self, kx: usize) -> usize {
        let c = kx * self.dilations[1];
        (c % self.strides[1]) * self.phase_len + c / self.strides[1]
    }

    /// Planes `[begin, end)`.
    ///
    /// # Safety
    /// `args` holds the addresses of the spec's operands (see [`WindowOp`]), the scratch
    /// (a plane's copy and [`SCRATCH_SLACK`] per plane) and the output, each as big as
    /// the spec says.
    #[inline(always)]
    pub(super) unsafe fn run_with<V: Vector>(&self, args: *const *mut u8, begin: usize, end: usize) {
        let arg = |k: usize| unsafe { (*args.add(k)).cast::<f32>() };
        let (x, operand, scratch, out) = match self.op {
            WindowOp::Max | WindowOp::Im2col => (arg(0), Operand::None, arg(1), arg(2)),
            WindowOp::Average { .. } => (arg(0), Operand::Divisors(arg(1)), arg(2), arg(3)),
            WindowOp::Depthwise { channels } => {
                (arg(0), Operand::Filter { w: arg(1), b: arg(2), channels }, arg(3), arg(4))
            }
        };
        let [h, w] = self.input;
        let [oh, ow] = self.output;
        let pad = if self.op == WindowOp::Max { f32::NEG_INFINITY } else { 0.0 };
        // this call's part of the scratch, one plane's copy reused plane after plane:
        // the padding is never overwritten, so it is filled once
        let copy = scratch.add(begin * (self.plane_len + SCRATCH_SLACK));
        std::slice::from_raw_parts_mut(copy, self.plane_len).fill(pad);
        for p in begin..end {
            let poisoned = self.copy_plane::<V>(x.add(p * h * w), copy);
            if self.op == WindowOp::Im2col {
                self.im2col_plane::<V>(copy, out.add(p * self.taps.len() * oh * ow));
                continue;
            }
            let out = out.add(p * oh * ow);
            let operand = operand.of_plane(p, self.taps.len());
            // the combining step chosen once a plane, so the inner loops do not branch
            match (operand, self.op == WindowOp::Max && !poisoned) {
                (Operand::Filter { .. }, _) => self.plane::<V, Fma, true>(copy, out, operand),
                (_, true) => self.plane::<V, MaxOrSecond, false>(copy, out, operand),
                (_, false) if self.op == WindowOp::Max => self.plane::<V, Max, false>(copy, out, operand),
                _ => self.plane::<V, Sum, false>(copy, out, operand),
            }
        }
    }

    /// The outputs of one plane from its copy; with `PAIRS`, rows that one block covers
    /// two or three at a time (filters only: pools measured no faster). A 5×5 filter's
    /// 25 dependent multiply-adds per output vector leave the core idle between them
    /// unless enough independent accumulators are in flight, and a short row has few
    /// (57 outputs: 4 vectors). Zen 5, one thread, 32 planes of 57²: pairs took depthwise
    /// 5×5 from 0.067 to 0.059 ms and 3×3 from 0.031 to 0.028; threes, against pairs in
    /// interleaved runs, 5×5 0.063 → 0.060 and 3×3 0.0305 → 0.029. Rows of one or two
    /// vectors stay in pairs, and on rows of 113 even pairs measured slower, so those go
    /// one by one. (On AVX2 a row of 57 is eight vectors, past one block: rows one by one.)
    #[inline(always)]
    unsafe fn plane<V: Vector, C: Combine, const PAIRS: bool>(
        &self,
        copy: *const f32,
        out: *mut f32,
        operand: Operand,
    ) {
        let [oh, ow] = self.output;
        let short = PAIRS && ow <= BLOCK * V::LANES;
        // rows of three vectors or more go three at a time, shorter ones in pairs
        let most_rows = if ow.div_ceil(V::LANES) >= 3 { 3 } else { 2 };
        let mut oy = 0;
        while oy < oh {
            let rows = if short { most_rows.min(oh - oy) } else { 1 };
            let top = copy.add(oy * self.strides[0] * self.row_pitch);
            let mut x0 = 0;
            while x0 < ow {
                let vectors = (ow - x0).div_ceil(V::LANES).min(BLOCK);
                let at = Block { top, x0, out: out.add(oy * ow), ow, position: oy * ow + x0 };
                match (vectors, rows) {
                    (4, 3) if PAIRS => self.block::<V, C, 4, 3>(at, operand),
                    (3, 3) if PAIRS => self.block::<V, C, 3, 3>(at, operand),
                    (4, 2) if PAIRS => self.block::<V, C, 4, 2>(at, operand),
                    (3, 2) if PAIRS => self.block::<V, C, 3, 2>(at, operand),
                    (2, 2) if PAIRS => self.block::<V, C, 2, 2>(at, operand),
                    (_, 2) if PAIRS => self.block::<V, C, 1, 2>(at, operand),
                    (4, _) => self.block::<V, C, 4, 1>(at, operand),
                    (3, _) => self.block::<V, C, 3, 1>(at, operand),
                    (2, _) => self.block::<V, C, 2, 1>(at, operand),
                    _ => self.block::<V, C, 1, 1>(at, operand),
                }
                x0 += vectors * V::LANES;
            }
            oy += rows;
        }
    }

    /// The plane's rows of the column matrix, `[taps, oh·ow]`: tap after tap, each
    /// output row's shifted row of the copy, a vector at a time (the last overlapping
    /// the one before). The stem of a ResNet (3 planes of 224², 7×7 taps, stride 2)
    /// took 0.35 ms in CLIF's 4-lane kernel on Zen 5, one thread, and takes 0.19 here.
    #[inline(always)]
    unsafe fn im2col_plane<V: Vector>(&self, copy: *const f32, cols: *mut f32) {
        let [oh, ow] = self.output;
        let l = V::LANES;
        let row_step = self.strides[0] * self.row_pitch;
        for (t, &offset) in self.taps.iter().enumerate() {
            let tap_cols = cols.add(t * oh * ow);
            for oy in 0..oh {
                let (src, dst) = (copy.add(oy * row_step + offset), tap_cols.add(oy * ow));
                if ow < l {
                    V::load_first(src, ow, 0.0).store_first(dst, ow);
                    continue;
                }
                let mut j = 0;
                loop {
                    let at = j.min(ow - l);
                    V::load(src.add(at)).store(dst.add(at));
                    j = at + l;
                    if j == ow {
                        break;
                    }
                }
            }
        }
    }

    /// Copies plane `x` into the interior of its padded, phase-split copy; returns
    /// whether it may hold a NaN (any NaN or infinity: `v · 0` is NaN for both).
    #[inline(always)]
    unsafe fn copy_plane<V: Vector>(&self, x: *const f32, copy: *mut f32) -> bool {
        let [h, w] = self.input;
        let [top, left] = self.pads;
        let l = V::LANES;
        let mut poison = V::splat(0.0);
        let mut scalar_poison = 0.0f32;
        let zero = V::splat(0.0);
        for y in 0..h {
            let src = x.add(y * w);
            let row = copy.add((y + top) * self.row_pitch);
            // whole vectors, the last one overlapping the one before where the row is
            // not a multiple of them (it stores the same values again)
            let mut j = 0;
            match self.strides[1] {
                1 if w >= l => {
                    let dst = row.add(left);
                    loop {
                        let at = j.min(w - l);
                        let v = V::load(src.add(at));
                        poison = v.fma(zero, poison);
                        v.store(dst.add(at));
                        j = at + l;
                        if j == w {
                            break;
                        }
                    }
                }
                2 if w >= 2 * l => loop {
                    // columns at..at+2l: those of the parity of `at` go to one phase, the
                    // others to the other
                    let at = j.min(w - 2 * l);
                    let (a, b) = (V::load(src.add(at)), V::load(src.add(at + l)));
                    poison = b.fma(zero, a.fma(zero, poison));
                    let (first, second) = a.deinterleave(b);
                    first.store(self.phase_start(row, left + at));
                    second.store(self.phase_start(row, left + at + 1));
                    j = at + 2 * l;
                    if j == w {
                        break;
                    }
                },
                _ => {}
            }
            // the rest one at a time, stepping through the phases without dividing
            let s = self.strides[1];
            let (mut phase, mut at) = ((left + j) % s, (left + j) / s);
            for j in j..w {
                let v = *src.add(j);
                scalar_poison += v * 0.0;
                *row.add(phase * self.phase_len + at) = v;
                phase += 1;
                if phase == s {
                    phase = 0;
                    at += 1;
                }
            }
        }
        let mut lanes = [0f32; 16];
        poison.store(lanes.as_mut_ptr());
        scalar_poison.is_nan() || lanes[..l].iter().any(|v| v.is_nan())
    }

    /// The address of padded column `c` of a copy's row, for stride 2.
    #[inline(always)]
    unsafe fn phase_start(&self, row: *mut f32, c: usize) -> *mut f32 {
        row.add((c & 1) * self.phase_len + (c >> 1))
    }

    /// `N` vectors of outputs of each of `R` rows, from column `at.x0` of the row
    /// `at` names: every tap's shifted rows loaded and combined into registers, then the
    /// outputs (only the lanes that are outputs, for the last vector of a row) stored.
    #[inline(always)]
    unsafe fn block<V: Vector, C: Combine, const N: usize, const R: usize>(&self, at: Block, operand: Operand) {
        let l = V::LANES;
        let (start, weights) = match operand {
            Operand::Filter { w, b, .. } => (*b, w),
            _ if self.op == WindowOp::Max => (f32::NEG_INFINITY, std::ptr::null()),
            _ => (0.0, std::ptr::null()),
        };
        let row_step = self.strides[0] * self.row_pitch;
        let mut acc = [[V::splat(start); N]; R];
        let base = at.top.add(at.x0);
        for (t, &offset) in self.taps.iter().enumerate() {
            for (r, row) in acc.iter_mut().enumerate() {
                let tap = base.add(r * row_step + offset);
                for (a, v) in row.iter_mut().enumerate() {
                    *v = C::step(*v, V::load(tap.add(a * l)), weights, t);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let (out, position) = (at.out.add(r * at.ow), at.position + r * at.ow);
            for (a, v) in row.iter().enumerate() {
                let column = at.x0 + a * l;
                let lanes = (at.ow - column).min(l);
                let mut v = *v;
                if let Operand::Divisors(d) = operand {
                    v = v.mul(load_partial::<V>(d.add(position + a * l), lanes));
                }
                if lanes == l {
                    v.store(out.add(column));
                } else {
                    v.store_first(out.add(column), lanes);
                }
            }
        }
    }
}

/// How a tap's value joins the accumulator (a zero-sized type a step, so that the
/// loops are generic over it: closures would not inherit `#[target_feature]`).
trait Combine {
    /// `acc` with `x`, the value under tap `t` (whose weight, for a filter, is `w[t]`).
    unsafe fn step<V: Vector>(acc: V, x: V, w: *const f32, t: usize) -> V;
}

struct Fma;
impl Combine for Fma {
    #[inline(always)]
    unsafe fn step<V: Vector>(acc: V, x: V, w: *const f32, t: usize) -> V {
        x.fma(V::splat(*w.add(t)), acc)
    }
}

struct Sum;
impl Combine for Sum {
    #[inline(always)]
    unsafe fn step<V: Vector>(acc: V, x: V, _: *const f32, _: usize) -> V {
        x.add(acc)
    }
}

/// `maxps`, for planes without NaN.
struct MaxOrSecond;
impl Combine for MaxOrSecond {
    #[inline(always)]
    unsafe fn step<V: Vector>(acc: V, x: V, _: *const f32, _: usize) -> V {
        x.max_or_second(acc)
    }
}

/// The NaN-propagating maximum.
struct Max;
impl Combine for Max {
    #[inline(always)]
    unsafe fn step<V: Vector>(acc: V, x: V, _: *const f32, _: usize) -> V {
        math::extreme(true, acc, x)
    }
}

/// Where a block of outputs reads and writes: the first padded row its taps read, its
/// first column, the output row and its width, and the block's first output position
/// in the plane.
#[derive(Clone, Copy)]
struct Block {
    top: *const f32,
    x0: usize,
    out: *mut f32,
    ow: usize,
    position: usize,
}

/// The op's operands besides the input.
#[derive(Clone, Copy)]
enum Operand {
    None,
    /// Average pooling: `1 / count` per output position.
    Divisors(*const f32),
    /// Depthwise convolution: weights `[C, taps]` and bias `[C]`, or (after
    /// [`Operand::of_plane`]) one channel's taps and bias.
    Filter {
        w: *const f32,
        b: *const f32,
        channels: usize,
    },
}

impl Operand {
    /// The operand as plane `p` reads it: a filter narrowed to the plane's channel.
    #[inline(always)]
    unsafe fn of_plane(self, p: usize, taps: usize) -> Operand {
        match self {
            Operand::Filter { w, b, channels } => {
                let c = p % channels;
                Operand::Filter { w: w.add(c * taps), b: b.add(c), channels: 1 }
            }
            other => other,
        }
    }
}

/// `lanes` elements from `p`, the rest of the vector zero (never reading past them).
#[inline(always)]
unsafe fn load_partial<V: Vector>(p: *const f32, lanes: usize) -> V {
    if lanes == V::LANES {
        return V::load(p);
    }
    V::load_first(p, lanes, 0.0)
}
