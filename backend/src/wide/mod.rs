//! Fused elementwise loops on the host's widest vectors: AVX-512 (16 lanes) or AVX2 with
//! FMA (8), chosen when the program is compiled from what the CPU reports.
//!
//! Cranelift emits 128-bit vectors only, which caps a compute-bound loop (tanh, GELU,
//! SiLU: a polynomial and a division per element) at a quarter of an AVX-512 core. So a
//! [`LoopSpec`] whose expressions are all f32 functions this module implements runs here
//! instead: its inner dimension in *tiles* of [`TILE`] elements, each expression
//! evaluated over the whole tile by one tight vector loop (generic over
//! [`vector::Vector`], compiled once per instruction set) into a tile-sized slot that
//! stays in L1, and the last expression written straight into the output. Operands are
//! read in place; broadcast ones are one splatted value. The CLIF loop of the same spec
//! remains the fallback (any other host, any other spec) and the differential
//! reference: `tests/jit.rs` runs both against the interpreter. The same holds for row
//! kernels ([`RowProgram`]: softmax, log-softmax, layer and RMS norm, f32 reductions)
//! and 2-D window kernels ([`WindowProgram`]: max and average pooling, depthwise
//! convolution).
//!
//! The decision and its figures (the kernel benchmark, `benches/kernels`) are in the
//! README's "Wide kernels" section.

mod left_product;
mod lrn;
mod math;
mod product;
mod rows;
mod vector;
mod window;
mod winograd;

pub use left_product::LeftPackedProduct;
pub use lrn::LrnProgram;
pub use product::PackedProduct;
pub use rows::RowProgram;
pub use window::{WindowProgram, SCRATCH_SLACK};
pub use winograd::{Transform as WinogradTransform, WinogradKernel, WinogradSpec};

use crate::loops::{Binary, Expr, LoopSpec, Unary};
use saturate_egraph::{DType, UnaryOp};

/// Elements of the inner dimension one tile holds (1 KiB of f32).
pub const TILE: usize = 256;

/// Slots for intermediate tiles; a spec that needs more runs in CLIF.
const SLOTS: usize = 12;

/// The largest spec the wide kernels take (expressions, buffers, dimensions): their
/// state lives on the stack, so a run allocates nothing.
const MAX_OPS: usize = 64;
const MAX_BUFFERS: usize = 24;
pub(crate) const MAX_RANK: usize = 8;

/// The wide instruction sets this host can run, for tests to run each kernel on all.
#[cfg(test)]
pub(crate) fn isas_here() -> Vec<Isa> {
    let mut isas = Vec::new();
    if Isa::detect() == Some(Isa::Avx512) {
        isas.push(Isa::Avx512);
    }
    if Isa::avx2() {
        isas.push(Isa::Avx2);
    }
    isas
}

/// The instruction set a program runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// The widest this host has, if any.
    pub fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(Isa::Avx512);
        }
        Isa::avx2().then_some(Isa::Avx2)
    }

    /// Whether the host has AVX2 and FMA.
    pub fn avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        #[allow(unreachable_code)]
        false
    }
}

/// One expression of a program.
#[derive(Debug, Clone, Copy)]
enum Op {
    Load(usize),
    Const(f32),
    Unary(Unary, usize),
    Binary(Binary, usize, usize),
}

/// A kernel on wide vectors: a fused loop or a row kernel.
#[derive(Debug, Clone)]
pub enum Program {
    Loop(LoopProgram),
    Rows(RowProgram),
    Window(WindowProgram),
    Lrn(LrnProgram),
}

impl Program {
    /// The instruction set it runs with.
    pub fn isa(&self) -> Isa {
        match self {
            Program::Loop(p) => p.isa,
            Program::Rows(p) => p.isa,
            Program::Window(p) => p.isa,
            Program::Lrn(p) => p.isa,
        }
    }

    /// Computes iterations `[begin, end)` of the outermost dimension.
    ///
    /// # Safety
    /// `args` holds the addresses of the kernel's operands then outputs, each valid for
    /// every element the strides reach; the host has the program's instruction set.
    pub unsafe fn run(&self, args: *const *mut u8, begin: usize, end: usize) {
        match self.isa() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { run_avx512(self, args, begin, end) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { run_avx2(self, args, begin, end) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("wide programs are only built on x86-64"),
        }
    }
}

/// A [`LoopSpec`] ready to run on wide vectors.
#[derive(Debug, Clone)]
pub struct LoopProgram {
    isa: Isa,
    dims: Vec<usize>,
    /// Per operand, element strides per dimension (the inner one 0 or 1).
    operands: Vec<Vec<isize>>,
    ops: Vec<Op>,
    /// Per op, the slot its tile lives in (`None` for loads and constants, and for ops
    /// written into an output).
    slot: Vec<Option<usize>>,
    /// Per op, the output it is written into directly, if any.
    direct: Vec<Option<usize>>,
    /// (op, strides) of each output; the inner stride is 1.
    outputs: Vec<(usize, Vec<isize>)>,
    /// Outputs are written past the caches (see [`streams`]): every op computes into a
    /// slot, and the outputs are copied out of the slots by non-temporal stores.
    stream: bool,
}

/// Whether a loop writing `bytes` should store them past the caches. An ordinary store
/// first reads the line it writes (to own it), so a loop over memory moves three bytes
/// for every two it means to; a non-temporal store does not, but leaves nothing in the
/// cache for the next kernel, which pays off only where the output would not have stayed
/// there anyway: beyond three quarters of the last-level cache. On Zen 5 relu over 34 MB
/// ran at 37 GB/s (66 % of a plain copy) with ordinary stores.
fn streams(bytes: usize) -> bool {
    static THRESHOLD: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    bytes >= *THRESHOLD.get_or_init(|| last_level_cache().unwrap_or(32 << 20) / 4 * 3)
}

/// An op a loop over memory does not notice: where every op is one, the loop runs at
/// the memory's pace and streaming its stores pays. Where one is a transcendental
/// function, a core with one thread is not bandwidth-bound and non-temporal stores
/// measured slower (Zen 5, 34 MB, one thread: exp 1.66 → 1.77 ms, tanh 1.59 → 1.85,
/// SiLU 1.63 → 2.04, against relu 1.95 → 1.41 and a bias add 2.20 → 2.05).
fn is_light(op: &Op) -> bool {
    use UnaryOp as U;
    match op {
        Op::Load(_) | Op::Const(_) => true,
        Op::Unary(u, _) => matches!(
            u.op,
            U::Neg | U::Abs | U::Relu | U::LeakyRelu | U::Clip | U::HardSigmoid | U::Floor | U::Ceil | U::Round
        ),
        Op::Binary(b, ..) => matches!(b, Binary::Add | Binary::Sub | Binary::Mul | Binary::Max | Binary::Min),
    }
}

/// The size of the last-level cache, from Linux's sysfs.
fn last_level_cache() -> Option<usize> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let sizes = std::fs::read_dir(dir).ok()?.flatten().filter_map(|entry| {
        let text = std::fs::read_to_string(entry.path().join("size")).ok()?;
        let text = text.trim();
        let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        let scale = match unit {
            "K" => 1 << 10,
            "M" => 1 << 20,
            "" => 1,
            _ => return None,
        };
        Some(digits.parse::<usize>().ok()? * scale)
    });
    sizes.max()
}

/// Whether the wide kernels implement this unary function.
fn supported_unary(op: UnaryOp) -> bool {
    use UnaryOp as U;
    matches!(
        op,
        U::Neg
            | U::Abs
            | U::Sqrt
            | U::Reciprocal
            | U::Exp
            | U::Log
            | U::Tanh
            | U::Sigmoid
            | U::Erf
            | U::Gelu
            | U::GeluTanh
            | U::Silu
            | U::Relu
            | U::LeakyRelu
            | U::Clip
            | U::HardSigmoid
            | U::HardSwish
            | U::Softplus
            | U::Floor
            | U::Ceil
            | U::Round
    )
}

fn supported_binary(op: Binary) -> bool {
    matches!(op, Binary::Add | Binary::Sub | Binary::Mul | Binary::Div | Binary::Max | Binary::Min)
}

impl LoopProgram {
    /// The program for `spec` on `isa`, if every expression is an f32 function the wide
    /// kernels implement and the inner dimension reads contiguously or broadcast and
    /// writes contiguously.
    pub fn new(spec: &LoopSpec, isa: Isa) -> Option<LoopProgram> {
        let inner = spec.dims.len().checked_sub(1)?;
        let f32_only = spec.dtypes().iter().all(|&d| d == DType::F32);
        let contiguous = spec.operands.iter().all(|o| matches!(o.strides[inner], 0 | 1))
            && spec.outputs.iter().all(|o| o.strides[inner] == 1);
        let fits = spec.exprs.len() <= MAX_OPS
            && spec.operands.len() + spec.outputs.len() <= MAX_BUFFERS
            && spec.dims.len() <= MAX_RANK;
        // a pure copy gains nothing from wide vectors unless its stores stream past the
        // caches (a transpose of attention heads, 25 MB, Zen 5: the same at one thread,
        // 0.81 → 0.79 ms at two, 0.84 → 0.74 in the kernel benchmark), and rows shorter
        // than a few vectors would pay the tile setup on every row
        let computes = spec.exprs.iter().any(|e| matches!(e, Expr::Unary(..) | Expr::Binary(..)));
        let written = spec.dims.iter().product::<usize>() * 4 * spec.outputs.len();
        let streamed_copy = !computes && streams(written);
        if !f32_only || !contiguous || !fits || !(computes || streamed_copy) || spec.dims[inner] < TILE / 4 {
            return None;
        }
        let ops = spec
            .exprs
            .iter()
            .map(|e| match *e {
                Expr::Load(k) => Some(Op::Load(k)),
                Expr::F32(c) => Some(Op::Const(c)),
                Expr::Unary(u, x) if supported_unary(u.op) => Some(Op::Unary(u, x)),
                Expr::Binary(b, x, y) if supported_binary(b) => Some(Op::Binary(b, x, y)),
                _ => None,
            })
            .collect::<Option<Vec<Op>>>()?;
        if ops.iter().all(is_light) && streams(written) {
            if let Some(program) = Self::build(spec, isa, ops.clone(), true) {
                return Some(program);
            }
        }
        Self::build(spec, isa, ops, false)
    }

    fn build(spec: &LoopSpec, isa: Isa, ops: Vec<Op>, stream: bool) -> Option<LoopProgram> {
        // each computed op written into its first output directly (later ops read it
        // there), unless the outputs stream; any other output copies it at the end of
        // the tile
        let mut direct = vec![None; ops.len()];
        for (k, o) in spec.outputs.iter().enumerate() {
            if !stream && matches!(ops[o.expr], Op::Unary(..) | Op::Binary(..)) && direct[o.expr].is_none() {
                direct[o.expr] = Some(k);
            }
        }
        // a slot for every computed op not written directly, reused after its last read
        let mut last_read = vec![0usize; ops.len()];
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Unary(_, x) => last_read[x] = i,
                Op::Binary(_, x, y) => {
                    last_read[x] = i;
                    last_read[y] = i;
                }
                _ => {}
            }
        }
        for o in &spec.outputs {
            last_read[o.expr] = usize::MAX;
        }
        let mut slot = vec![None; ops.len()];
        let mut free: Vec<usize> = (0..SLOTS).rev().collect();
        for i in 0..ops.len() {
            // slots of operands read for the last time here are free for this result
            let operands = match ops[i] {
                Op::Unary(_, x) => [Some(x), None],
                Op::Binary(_, x, y) => [Some(x), Some(y)],
                _ => [None, None],
            };
            for x in operands.into_iter().flatten() {
                if let (true, Some(s)) = (last_read[x] == i, slot[x]) {
                    if !free.contains(&s) {
                        free.push(s);
                    }
                }
            }
            if matches!(ops[i], Op::Unary(..) | Op::Binary(..)) && direct[i].is_none() {
                slot[i] = Some(free.pop()?);
            }
        }
        Some(LoopProgram {
            isa,
            dims: spec.dims.clone(),
            operands: spec.operands.iter().map(|o| o.strides.clone()).collect(),
            ops,
            slot,
            direct,
            outputs: spec.outputs.iter().map(|o| (o.expr, o.strides.clone())).collect(),
            stream,
        })
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(p: &Program, args: *const *mut u8, begin: usize, end: usize) {
    match p {
        Program::Loop(l) => unsafe { run_with::<vector::Avx512>(l, args, begin, end) },
        Program::Rows(r) => unsafe { r.run_with::<vector::Avx512>(args, begin, end) },
        Program::Window(w) => unsafe { w.run_with::<vector::Avx512>(args, begin, end) },
        Program::Lrn(l) => unsafe { l.run_with::<vector::Avx512>(args, begin, end) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(p: &Program, args: *const *mut u8, begin: usize, end: usize) {
    match p {
        Program::Loop(l) => unsafe { run_with::<vector::Avx2>(l, args, begin, end) },
        Program::Rows(r) => unsafe { r.run_with::<vector::Avx2>(args, begin, end) },
        Program::Window(w) => unsafe { w.run_with::<vector::Avx2>(args, begin, end) },
        Program::Lrn(l) => unsafe { l.run_with::<vector::Avx2>(args, begin, end) },
    }
}

/// A value over the current tile: a pointer to `len` elements, or one value broadcast.
#[derive(Clone, Copy)]
enum Val {
    Tile(*const f32),
    Scalar(f32),
}

#[inline(always)]
unsafe fn run_with<V: vector::Vector>(p: &LoopProgram, args: *const *mut u8, begin: usize, end: usize) {
    let rank = p.dims.len();
    let buffers = p.operands.len() + p.outputs.len();
    let mut scratch = [[0f32; TILE]; SLOTS];
    let mut vals = [Val::Scalar(0.0); MAX_OPS];
    let mut bases = [std::ptr::null_mut::<f32>(); MAX_BUFFERS];
    // the addresses of element `index` (all dims but the inner one) of every buffer
    let bind = |index: &[usize], bases: &mut [*mut f32; MAX_BUFFERS]| {
        for (k, base) in bases.iter_mut().enumerate().take(buffers) {
            let strides = if k < p.operands.len() { &p.operands[k] } else { &p.outputs[k - p.operands.len()].1 };
            let offset: isize = index.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum();
            *base = unsafe { (*args.add(k)).cast::<f32>().offset(offset) };
        }
    };
    if rank == 1 {
        // the one dimension is split across threads itself
        bind(&[], &mut bases);
        unsafe { tiles::<V>(p, &bases, begin, end, &mut scratch, &mut vals) };
        return fence(p);
    }
    let mut index = [0usize; MAX_RANK];
    for outer in begin..end {
        index[0] = outer;
        index[1..rank - 1].iter_mut().for_each(|i| *i = 0);
        loop {
            bind(&index[..rank - 1], &mut bases);
            unsafe { tiles::<V>(p, &bases, 0, p.dims[rank - 1], &mut scratch, &mut vals) };
            if !next_middle(&mut index[..rank - 1], &p.dims) {
                break;
            }
        }
    }
    fence(p)
}

/// After streaming stores, which are weakly ordered: before whoever reads them is told
/// they are done.
#[inline(always)]
fn fence(p: &LoopProgram) {
    #[cfg(target_arch = "x86_64")]
    if p.stream {
        // SAFETY: every x86-64 has SSE
        unsafe { std::arch::x86_64::_mm_sfence() };
    }
}

/// Elements `[lo, hi)` of the inner dimension, a tile at a time.
#[inline(always)]
unsafe fn tiles<V: vector::Vector>(
    p: &LoopProgram,
    bases: &[*mut f32; MAX_BUFFERS],
    lo: usize,
    hi: usize,
    scratch: &mut [[f32; TILE]; SLOTS],
    vals: &mut [Val; MAX_OPS],
) {
    let mut start = lo;
    while start < hi {
        let len = TILE.min(hi - start);
        unsafe { tile::<V>(p, bases, start, len, scratch, vals) };
        start += len;
    }
}

/// Advances a multi-index over every dimension of `dims` after the outermost (the index
/// may stop short of the inner one); false after the last.
pub(super) fn next_middle(index: &mut [usize], dims: &[usize]) -> bool {
    for d in (1..index.len()).rev() {
        index[d] += 1;
        if index[d] < dims[d] {
            return true;
        }
        index[d] = 0;
    }
    false
}

/// Asks for the cache lines two tiles past `tile`: with the hardware's prefetcher alone
/// a compute-heavy loop over a DRAM-sized input waits on memory (SiLU over 34 MB: 3.2–3.8
/// ms without, 2.8–2.9 with; exp 2.8 → 2.5, tanh 2.8 → 2.35). Prefetches never fault, so
/// past the end of a row they only cost the instruction.
#[inline(always)]
unsafe fn prefetch_ahead(tile: *const f32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ahead = tile.wrapping_add(2 * TILE).cast::<i8>();
        for line in 0..TILE * std::mem::size_of::<f32>() / 64 {
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 64)) };
        }
    }
}

/// Evaluates every op over elements `[start, start + len)` of the inner dimension.
#[inline(always)]
unsafe fn tile<V: vector::Vector>(
    p: &LoopProgram,
    bases: &[*mut f32; MAX_BUFFERS],
    start: usize,
    len: usize,
    scratch: &mut [[f32; TILE]; SLOTS],
    vals: &mut [Val; MAX_OPS],
) {
    let n_ops = p.operands.len();
    let inner = p.dims.len() - 1;
    for (i, op) in p.ops.iter().enumerate() {
        let dst: *mut f32 = match (p.direct[i], p.slot[i]) {
            (Some(o), _) => unsafe { bases[n_ops + o].add(start) },
            (None, Some(s)) => scratch[s].as_mut_ptr(),
            (None, None) => std::ptr::null_mut(),
        };
        vals[i] = match *op {
            Op::Load(k) => {
                if p.operands[k][inner] == 0 {
                    Val::Scalar(unsafe { *bases[k] })
                } else {
                    unsafe { prefetch_ahead(bases[k].add(start)) };
                    Val::Tile(unsafe { bases[k].add(start) })
                }
            }
            Op::Const(c) => Val::Scalar(c),
            Op::Unary(u, x) => unsafe { unary::<V>(u, vals[x], dst, len) },
            Op::Binary(b, x, y) => unsafe { binary::<V>(b, vals[x], vals[y], dst, len) },
        };
    }
    for (k, (op, _)) in p.outputs.iter().enumerate() {
        // a direct output is written by its op, unless every operand was one value
        if p.direct[*op] == Some(k) && matches!(vals[*op], Val::Tile(_)) {
            continue;
        }
        let dst = unsafe { bases[n_ops + k].add(start) };
        match vals[*op] {
            Val::Tile(src) if p.stream => unsafe { stream_copy::<V>(src, dst, len) },
            Val::Tile(src) => unsafe { std::ptr::copy(src, dst, len) },
            Val::Scalar(v) => (0..len).for_each(|j| unsafe { *dst.add(j) = v }),
        }
    }
}

/// Copies `len` elements by non-temporal stores, those before the first address
/// aligned to a vector and after the last whole vector by ordinary ones.
#[inline(always)]
unsafe fn stream_copy<V: vector::Vector>(src: *const f32, dst: *mut f32, len: usize) {
    let align = V::LANES * std::mem::size_of::<f32>();
    let misaligned = dst as usize % align;
    if misaligned % std::mem::size_of::<f32>() != 0 {
        return unsafe { std::ptr::copy(src, dst, len) };
    }
    let head = if misaligned == 0 { 0 } else { ((align - misaligned) / 4).min(len) };
    unsafe { std::ptr::copy(src, dst, head) };
    let mut j = head;
    while j + V::LANES <= len {
        unsafe { V::load(src.add(j)).stream(dst.add(j)) };
        j += V::LANES;
    }
    unsafe { std::ptr::copy(src.add(j), dst.add(j), len - j) };
}

// No closures below: a closure does not inherit its caller's `#[target_feature]`, so the
// intrinsics inside one would stay calls. Each function is a zero-sized type with an
// `inline(always)` method instead, and the loops are generic over it: one tight loop per
// op, the op chosen once per tile.

/// A function of one vector (and the op's two params).
trait Fun1 {
    /// Whether loops run it on two vectors an iteration (see [`map1`]). Measured on AMD's
    /// Zen 2 (AVX2), one thread, 65 K elements: exp 0.039 → 0.035 ms, sigmoid 0.052 →
    /// 0.048, SiLU 0.063 → 0.058, erf-GELU 0.097 → 0.078, tanh-GELU 0.042 → 0.038; tanh
    /// alone, whose two polynomials already give the core two chains, 5 % slower in pairs.
    const PAIRS: bool = true;
    unsafe fn apply<V: vector::Vector>(x: V, p: [f32; 2]) -> V;
}

/// A function of two vectors.
trait Fun2 {
    unsafe fn apply<V: vector::Vector>(x: V, y: V) -> V;
}

macro_rules! functions {
    ($trait:ident: $($name:ident $([$single:ident])? |$($arg:ident),*| $body:expr;)*) => {
        $(
            struct $name;
            impl $trait for $name {
                $(const PAIRS: bool = { let _ = stringify!($single); false };)?
                #[inline(always)]
                #[allow(unused_variables)]
                unsafe fn apply<V: vector::Vector>($($arg: functions!(@ty $arg)),*) -> V {
                    unsafe { $body }
                }
            }
        )*
    };
    (@ty p) => { [f32; 2] };
    (@ty $other:ident) => { V };
}

functions! { Fun1:
    Neg |x, p| x.neg();
    Abs |x, p| x.abs();
    Sqrt |x, p| x.sqrt();
    Reciprocal |x, p| V::splat(1.0).div(x);
    Exp |x, p| math::exp(x);
    Log |x, p| math::log(x);
    Tanh [single] |x, p| math::tanh(x);
    Sigmoid |x, p| math::sigmoid(x);
    Erf |x, p| math::erf(x);
    Gelu |x, p| math::gelu(x);
    GeluTanh |x, p| math::gelu_tanh(x);
    Silu |x, p| x.mul(math::sigmoid(x));
    Relu |x, p| math::relu(x);
    LeakyRelu |x, p| V::select(x.lt(V::splat(0.0)), x.mul(V::splat(p[0])), x);
    Clip |x, p| {
        let (l, h) = (V::splat(p[0]), V::splat(p[1]));
        let y = V::select(x.lt(l), l, x);
        V::select(h.lt(y), h, y)
    };
    HardSigmoid |x, p| math::clamp_unit(x.fma(V::splat(p[0]), V::splat(p[1])));
    HardSwish |x, p| x.mul(math::clamp_unit(x.fma(V::splat(1.0 / 6.0), V::splat(0.5))));
    Softplus |x, p| math::softplus(x);
    Floor |x, p| x.floor();
    Ceil |x, p| x.ceil();
    Round |x, p| x.round();
}

functions! { Fun2:
    Add |x, y| x.add(y);
    Sub |x, y| x.sub(y);
    Mul |x, y| x.mul(y);
    Div |x, y| x.div(y);
    Max |x, y| math::extreme(true, x, y);
    Min |x, y| math::extreme(false, x, y);
}

/// `F` over `len` elements from `src` into `dst`, a vector at a time; the tail by
/// masked loads and stores, so every element takes the same code.
#[inline(always)]
unsafe fn map1<V: vector::Vector, F: Fun1>(p: [f32; 2], src: *const f32, dst: *mut f32, len: usize) {
    let mut j = 0;
    // two vectors an iteration: a transcendental's chain is deep, and a core with a
    // small floating-point scheduler (AMD's Zen 2: 36 entries) reaches the next
    // vector's independent work only if it comes in the same stretch of code
    while F::PAIRS && j + 2 * V::LANES <= len {
        unsafe {
            let a = F::apply(V::load(src.add(j)), p);
            let b = F::apply(V::load(src.add(j + V::LANES)), p);
            a.store(dst.add(j));
            b.store(dst.add(j + V::LANES));
        }
        j += 2 * V::LANES;
    }
    while j + V::LANES <= len {
        unsafe { F::apply(V::load(src.add(j)), p).store(dst.add(j)) };
        j += V::LANES;
    }
    if j < len {
        let rest = len - j;
        unsafe { F::apply(V::load_first(src.add(j), rest, 0.0), p).store_first(dst.add(j), rest) };
    }
}

/// A vector of `v`, or of the elements of tile `v` from `j` (the first `rest` of them
/// in the tail, where `rest` < `LANES`).
#[inline(always)]
unsafe fn operand<V: vector::Vector>(v: Val, j: usize, rest: Option<usize>) -> V {
    match (v, rest) {
        (Val::Scalar(s), _) => unsafe { V::splat(s) },
        (Val::Tile(p), Some(n)) => unsafe { V::load_first(p.add(j), n, 0.0) },
        (Val::Tile(p), None) => unsafe { V::load(p.add(j)) },
    }
}

/// `F` of two operands, each a tile or a scalar (at least one a tile).
#[inline(always)]
unsafe fn map2<V: vector::Vector, F: Fun2>(a: Val, b: Val, dst: *mut f32, len: usize) {
    let mut j = 0;
    // in pairs, as `map1`: here for the loop's own overhead, next to one instruction
    while j + 2 * V::LANES <= len {
        unsafe {
            let (k, l) = (j + V::LANES, V::LANES);
            let x = F::apply(operand::<V>(a, j, None), operand::<V>(b, j, None));
            let y = F::apply(operand::<V>(a, k, None), operand::<V>(b, k, None));
            x.store(dst.add(j));
            y.store(dst.add(j + l));
        }
        j += 2 * V::LANES;
    }
    if j + V::LANES <= len {
        unsafe { F::apply(operand::<V>(a, j, None), operand::<V>(b, j, None)).store(dst.add(j)) };
        j += V::LANES;
    }
    if j < len {
        let rest = Some(len - j);
        unsafe { F::apply(operand::<V>(a, j, rest), operand::<V>(b, j, rest)).store_first(dst.add(j), len - j) };
    }
}

/// `F` of one value, through the same code on a splatted vector (lane 0).
#[inline(always)]
unsafe fn scalar1<V: vector::Vector, F: Fun1>(p: [f32; 2], v: f32) -> f32 {
    let mut out = [0f32; 16];
    unsafe { F::apply(V::splat(v), p).store(out.as_mut_ptr()) };
    out[0]
}

#[inline(always)]
unsafe fn scalar2<V: vector::Vector, F: Fun2>(x: f32, y: f32) -> f32 {
    let mut out = [0f32; 16];
    unsafe { F::apply(V::splat(x), V::splat(y)).store(out.as_mut_ptr()) };
    out[0]
}

/// One unary op over a tile (or a scalar).
#[inline(always)]
unsafe fn unary<V: vector::Vector>(u: Unary, x: Val, dst: *mut f32, len: usize) -> Val {
    #[inline(always)]
    unsafe fn go<V: vector::Vector, F: Fun1>(p: [f32; 2], x: Val, dst: *mut f32, len: usize) -> Val {
        match x {
            Val::Scalar(v) => Val::Scalar(unsafe { scalar1::<V, F>(p, v) }),
            Val::Tile(src) => {
                unsafe { map1::<V, F>(p, src, dst, len) };
                Val::Tile(dst)
            }
        }
    }
    use UnaryOp as U;
    let p = u.params;
    unsafe {
        match u.op {
            U::Neg => go::<V, Neg>(p, x, dst, len),
            U::Abs => go::<V, Abs>(p, x, dst, len),
            U::Sqrt => go::<V, Sqrt>(p, x, dst, len),
            U::Reciprocal => go::<V, Reciprocal>(p, x, dst, len),
            U::Exp => go::<V, Exp>(p, x, dst, len),
            U::Log => go::<V, Log>(p, x, dst, len),
            U::Tanh => go::<V, Tanh>(p, x, dst, len),
            U::Sigmoid => go::<V, Sigmoid>(p, x, dst, len),
            U::Erf => go::<V, Erf>(p, x, dst, len),
            U::Gelu => go::<V, Gelu>(p, x, dst, len),
            U::GeluTanh => go::<V, GeluTanh>(p, x, dst, len),
            U::Silu => go::<V, Silu>(p, x, dst, len),
            U::Relu => go::<V, Relu>(p, x, dst, len),
            U::LeakyRelu => go::<V, LeakyRelu>(p, x, dst, len),
            U::Clip => go::<V, Clip>(p, x, dst, len),
            U::HardSigmoid => go::<V, HardSigmoid>(p, x, dst, len),
            U::HardSwish => go::<V, HardSwish>(p, x, dst, len),
            U::Softplus => go::<V, Softplus>(p, x, dst, len),
            U::Floor => go::<V, Floor>(p, x, dst, len),
            U::Ceil => go::<V, Ceil>(p, x, dst, len),
            U::Round => go::<V, Round>(p, x, dst, len),
            other => unreachable!("{other:?} is not a wide function (Program::new checks)"),
        }
    }
}

/// One binary op over a tile (or scalars).
#[inline(always)]
unsafe fn binary<V: vector::Vector>(op: Binary, a: Val, b: Val, dst: *mut f32, len: usize) -> Val {
    #[inline(always)]
    unsafe fn go<V: vector::Vector, F: Fun2>(a: Val, b: Val, dst: *mut f32, len: usize) -> Val {
        match (a, b) {
            (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(unsafe { scalar2::<V, F>(x, y) }),
            _ => {
                unsafe { map2::<V, F>(a, b, dst, len) };
                Val::Tile(dst)
            }
        }
    }
    unsafe {
        match op {
            Binary::Add => go::<V, Add>(a, b, dst, len),
            Binary::Sub => go::<V, Sub>(a, b, dst, len),
            Binary::Mul => go::<V, Mul>(a, b, dst, len),
            Binary::Div => go::<V, Div>(a, b, dst, len),
            Binary::Max => go::<V, Max>(a, b, dst, len),
            Binary::Min => go::<V, Min>(a, b, dst, len),
            other => unreachable!("{other:?} is not a wide function (Program::new checks)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loops::{Operand, Output};

    /// `relu(x) + y` over `dims`, contiguous, and `relu(x)` as a second output.
    fn spec(dims: &[usize]) -> LoopSpec {
        let strides: Vec<isize> = (0..dims.len()).map(|d| dims[d + 1..].iter().product::<usize>() as isize).collect();
        let operand = Operand { dtype: DType::F32, strides: strides.clone() };
        LoopSpec {
            dims: dims.to_vec(),
            operands: vec![operand.clone(), operand],
            exprs: vec![
                Expr::Load(0),
                Expr::Load(1),
                Expr::Unary(crate::loops::Unary::of(UnaryOp::Relu), 0),
                Expr::Binary(Binary::Add, 2, 1),
            ],
            outputs: vec![Output { expr: 3, strides: strides.clone() }, Output { expr: 2, strides }],
        }
    }

    #[test]
    fn streamed_stores_write_what_ordinary_ones_do() {
        let Some(isa) = Isa::detect() else { return };
        for dims in [vec![1000], vec![7, 333], vec![3, 2, 1029]] {
            let spec = spec(&dims);
            let ops = |spec: &LoopSpec| LoopProgram::new(spec, isa).expect("a wide program").ops;
            let streamed = LoopProgram::build(&spec, isa, ops(&spec), true).unwrap();
            let ordinary = LoopProgram::build(&spec, isa, ops(&spec), false).unwrap();
            assert!(streamed.stream && !ordinary.stream);
            let n: usize = dims.iter().product();
            // outputs one element past an aligned address: the head and tail take
            // ordinary stores, the middle streams
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let y: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let run = |p: &LoopProgram| {
                let mut out = vec![vec![0f32; n + 17]; 2];
                let mut args: Vec<*mut u8> = vec![x.as_ptr() as *mut u8, y.as_ptr() as *mut u8];
                args.extend(out.iter_mut().map(|o| o[1..].as_mut_ptr().cast::<u8>()));
                unsafe { Program::Loop(p.clone()).run(args.as_ptr(), 0, dims[0]) };
                out
            };
            let (a, b) = (run(&streamed), run(&ordinary));
            assert_eq!(a, b, "dims {dims:?}");
            assert!((a[0][1] - (x[0].max(0.0) + y[0])).abs() < 1e-6 && a[1][n] == x[n - 1].max(0.0));
            assert!(a[0][0] == 0.0 && a[0][n + 1] == 0.0, "wrote outside its output");
        }
    }

    /// A transpose of attention heads, [s, h, d] read in order into [h, s, d]: only a
    /// copy whose stores stream is taken, and it puts every row where the permutation says.
    #[test]
    fn copies_run_wide_only_when_their_stores_stream() {
        let Some(isa) = Isa::detect() else { return };
        let (s, h, d) = (5, 3, 70);
        let spec = LoopSpec {
            dims: vec![s, h, d],
            operands: vec![Operand { dtype: DType::F32, strides: vec![(h * d) as isize, d as isize, 1] }],
            exprs: vec![Expr::Load(0)],
            outputs: vec![Output { expr: 0, strides: vec![d as isize, (s * d) as isize, 1] }],
        };
        assert!(LoopProgram::new(&spec, isa).is_none(), "a small copy stays in CLIF");
        let program = LoopProgram::build(&spec, isa, vec![Op::Load(0)], true).unwrap();
        let x: Vec<f32> = (0..s * h * d).map(|i| i as f32).collect();
        let mut y = vec![0f32; s * h * d + 1];
        let args = [x.as_ptr() as *mut u8, y[1..].as_mut_ptr().cast::<u8>()];
        unsafe { Program::Loop(program).run(args.as_ptr(), 0, s) };
        for (i, j, k) in (0..s).flat_map(|i| (0..h).flat_map(move |j| (0..d).map(move |k| (i, j, k)))) {
            assert_eq!(y[1 + (j * s + i) * d + k], x[(i * h + j) * d + k], "[{i},{j},{k}]");
        }
        assert_eq!(y[0], 0.0, "wrote outside its output");
    }
}
