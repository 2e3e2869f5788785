//! Code generation for a [`WindowSpec`], in two passes per plane:
//!
//! 1. copy the plane into its scratch area ([`Scratch`]): padded with the op's padding
//!    value (0, or −inf for max pooling, which ignores padding), its last axis split
//!    into stride-many phases (stride 2 by vector shuffles), so no tap ever needs a
//!    bounds check and every tap reads consecutive memory for consecutive outputs. A
//!    call reuses one scratch area for all its planes, so the copy stays in cache and
//!    the padding is filled once per call;
//! 2. compute output-stationary: for each output row and each block of four columns,
//!    an `f32x4` accumulator runs over the taps, each a load at a constant offset from
//!    the row (taps are unrolled for kernels up to 64 taps, with a depthwise filter's
//!    weights splat once per plane), then one store. A row's last partial block is a
//!    full block overlapping the one before. Im2col instead copies, tap by tap, each
//!    tap's values into its row of the column matrix.
//!
//! Average pooling divides by a table of tap counts lowering computes (the counts depend
//! only on the position). Arguments: input, [weights, bias | divisors,] scratch, output.

use crate::jit::{counted_loop, flags, native_max_min, unordered, with_nans};
use crate::window::{LrnSpec, Scratch, WindowOp, WindowSpec};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;

const LANES: i64 = 4;
/// Kernels with more taps loop over them at run time instead of unrolling.
const UNROLL_TAPS: usize = 64;
/// Rows up to this wide are unrolled block by block.
const UNROLL_COLUMNS: i64 = 96;

fn row_major(dims: &[usize]) -> Vec<i64> {
    let mut strides = vec![1i64; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * dims[d + 1] as i64;
    }
    strides
}

/// Nested loops over `dims`; `body` gets the index of every level.
fn nest(
    b: &mut FunctionBuilder,
    dims: &[usize],
    indices: &mut Vec<Value>,
    body: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
) {
    if indices.len() == dims.len() {
        body(b, indices);
        return;
    }
    let zero = b.ins().iconst(types::I64, 0);
    let n = b.ins().iconst(types::I64, dims[indices.len()] as i64);
    counted_loop(b, zero, n, 1, |b, i| {
        indices.push(i);
        nest(b, dims, indices, body);
        indices.pop();
    });
}

/// Σ index·stride·4: a byte offset.
fn byte_offset(b: &mut FunctionBuilder, indices: &[Value], strides: &[i64]) -> Value {
    let mut acc = b.ins().iconst(types::I64, 0);
    for (&i, &s) in indices.iter().zip(strides) {
        let t = b.ins().imul_imm_s(i, s * 4);
        acc = b.ins().iadd(acc, t);
    }
    acc
}

/// `value` in every element of `[lo, hi)` from `dst`.
fn fill(b: &mut FunctionBuilder, dst: Value, lo: Value, hi: Value, value: f32) {
    let v = b.ins().f32const(value);
    let vv = b.ins().splat(types::F32X4, v);
    let start = counted_loop(b, lo, hi, LANES, |b, j| {
        let off = b.ins().imul_imm_s(j, 4);
        let d = b.ins().iadd(dst, off);
        b.ins().store(flags(), vv, d, 0);
    });
    counted_loop(b, start, hi, 1, |b, j| {
        let off = b.ins().imul_imm_s(j, 4);
        let d = b.ins().iadd(dst, off);
        b.ins().store(flags(), v, d, 0);
    });
}

/// Every tap of the kernel: its index (row-major) and its element offset in a plane's
/// copy, relative to the output position's own.
fn taps(spec: &WindowSpec, scratch: &Scratch) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(spec.taps());
    let mut k = vec![0usize; spec.kernel.len()];
    for t in 0..spec.taps() {
        let c: Vec<usize> = k.iter().zip(&spec.dilations).map(|(&k, &d)| k * d).collect();
        out.push((t, scratch.offset(&c)));
        crate::loops::increment(&mut k, &spec.kernel);
    }
    out
}

/// Pass 1: the plane at `plane` copied, padded and phase-split, to `copy`. Only the
/// positions holding input are written: the padding around them was filled once for
/// the whole call (every plane of a call reuses one copy, see [`generate`]).
fn copy_padded(b: &mut FunctionBuilder, spec: &WindowSpec, scratch: &Scratch, plane: Value, copy: Value) {
    let r = spec.input.len();
    let in_strides = row_major(&spec.input);
    let outer_strides: Vec<i64> = scratch.outer_strides().iter().map(|&s| s as i64).collect();
    let pads_before: i64 = (0..r - 1).map(|d| spec.pads_begin[d] as i64 * outer_strides[d]).sum();
    let (phases, phase_len, pad_last) =
        (scratch.phases as i64, scratch.phase_len as i64, spec.pads_begin[r - 1] as i64);
    let width = spec.input[r - 1] as i64;
    nest(b, &spec.input[..r - 1], &mut Vec::new(), &mut |b, i| {
        let off = byte_offset(b, i, &in_strides[..r - 1]);
        let src = b.ins().iadd(plane, off);
        let off = byte_offset(b, i, &outer_strides);
        let dst = b.ins().iadd(copy, off);
        let dst = b.ins().iadd_imm_s(dst, pads_before * 4);
        if phases == 1 {
            let dst = b.ins().iadd_imm_s(dst, pad_last * 4);
            copy_run(b, src, dst, width);
            return;
        }
        if phases == 2 {
            split_pairs(b, src, dst, width, pad_last, phase_len);
            return;
        }
        // phase by phase: input columns c ≡ first (mod phases) land, in order, from
        // `at` on in their phase (c + pad_last = at·phases + phase)
        for phase in 0..phases {
            let first = (phase - pad_last).rem_euclid(phases);
            if first >= width {
                continue;
            }
            let count = (width - first + phases - 1) / phases;
            let at = phase * phase_len + (first + pad_last) / phases;
            let src = b.ins().iadd_imm_s(src, first * 4);
            let dst = b.ins().iadd_imm_s(dst, at * 4);
            let zero = b.ins().iconst(types::I64, 0);
            let n = b.ins().iconst(types::I64, count);
            counted_loop(b, zero, n, 1, |b, j| {
                let s = b.ins().imul_imm_s(j, phases * 4);
                let s = b.ins().iadd(src, s);
                let v = b.ins().load(types::F32, flags(), s, 0);
                let d = b.ins().imul_imm_s(j, 4);
                let d = b.ins().iadd(dst, d);
                b.ins().store(flags(), v, d, 0);
            });
        }
    });
}

/// Stride 2: input column `c` goes to phase `(c + pad) mod 2` at `(c + pad) / 2`. Eight
/// columns at a time are split into their even and odd halves by two shuffles; the
/// last few (fewer than eight) are copied one by one.
fn split_pairs(b: &mut FunctionBuilder, src: Value, dst: Value, width: i64, pad: i64, phase_len: i64) {
    let place = |c: i64| ((c + pad) % 2 * phase_len + (c + pad) / 2) * 4;
    let (even_at, odd_at) = (place(0), place(1));
    let even_mask = lane_mask(b, [0, 2, 4, 6]);
    let odd_mask = lane_mask(b, [1, 3, 5, 7]);
    let bytes = cranelift_codegen::ir::MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
    let groups = width / 8;
    let zero = b.ins().iconst(types::I64, 0);
    let n = b.ins().iconst(types::I64, groups);
    counted_loop(b, zero, n, 1, |b, j| {
        let s = b.ins().imul_imm_s(j, 32);
        let s = b.ins().iadd(src, s);
        let lo = b.ins().load(types::F32X4, flags(), s, 0);
        let hi = b.ins().load(types::F32X4, flags(), s, 16);
        let lo = b.ins().bitcast(types::I8X16, bytes, lo);
        let hi = b.ins().bitcast(types::I8X16, bytes, hi);
        let d = b.ins().imul_imm_s(j, 16);
        let d = b.ins().iadd(dst, d);
        for (mask, at) in [(even_mask, even_at), (odd_mask, odd_at)] {
            let half = b.ins().shuffle(lo, hi, mask);
            let half = b.ins().bitcast(types::F32X4, bytes, half);
            b.ins().store(flags(), half, d, at as i32);
        }
    });
    for c in groups * 8..width {
        let v = b.ins().load(types::F32, flags(), src, (c * 4) as i32);
        b.ins().store(flags(), v, dst, place(c) as i32);
    }
}

/// The byte mask of a shuffle picking f32 lanes `lanes` (0–3 from the first operand,
/// 4–7 from the second).
fn lane_mask(b: &mut FunctionBuilder, lanes: [u8; 4]) -> cranelift_codegen::ir::Immediate {
    let bytes: Vec<u8> = lanes.iter().flat_map(|&l| (0..4).map(move |k| l * 4 + k)).collect();
    b.func.dfg.immediates.push(cranelift_codegen::ir::ConstantData::from(bytes))
}

/// Copies `len` consecutive elements from `src` to `dst`.
fn copy_run(b: &mut FunctionBuilder, src: Value, dst: Value, len: i64) {
    let zero = b.ins().iconst(types::I64, 0);
    let n = b.ins().iconst(types::I64, len);
    let start = counted_loop(b, zero, n, LANES, |b, c| {
        let off = b.ins().imul_imm_s(c, 4);
        let (s, d) = (b.ins().iadd(src, off), b.ins().iadd(dst, off));
        let v = b.ins().load(types::F32X4, flags(), s, 0);
        b.ins().store(flags(), v, d, 0);
    });
    counted_loop(b, start, n, 1, |b, c| {
        let off = b.ins().imul_imm_s(c, 4);
        let (s, d) = (b.ins().iadd(src, off), b.ins().iadd(dst, off));
        let v = b.ins().load(types::F32, flags(), s, 0);
        b.ins().store(flags(), v, d, 0);
    });
}

/// Runs `block(j, type)` over the columns `[0, columns)` of a row: four at a time, and
/// the last `columns mod 4` by one more block of four that overlaps the previous one
/// (every block writes values that depend only on their position, so writing some
/// twice is harmless); rows narrower than four go element by element.
fn row_blocks(b: &mut FunctionBuilder, columns: i64, block: &mut dyn FnMut(&mut FunctionBuilder, Value, Type)) {
    let zero = b.ins().iconst(types::I64, 0);
    let end = b.ins().iconst(types::I64, columns);
    if columns < LANES {
        counted_loop(b, zero, end, 1, |b, j| block(b, j, types::F32));
        return;
    }
    if columns <= UNROLL_COLUMNS {
        // straight-line: constant offsets fold into the loads' and stores' addresses
        for j in (0..columns - LANES + 1).step_by(LANES as usize) {
            let j = b.ins().iconst(types::I64, j);
            block(b, j, types::F32X4);
        }
    } else {
        counted_loop(b, zero, end, LANES, |b, j| block(b, j, types::F32X4));
    }
    if columns % LANES != 0 {
        let last = b.ins().iconst(types::I64, columns - LANES);
        block(b, last, types::F32X4);
    }
}

/// A depthwise filter's taps: none (pooling), in memory (kernels that loop over their
/// taps), or loaded and splat once per plane (unrolled kernels).
#[derive(Clone, Copy)]
enum Filter<'a> {
    None,
    Memory(Value),
    Hoisted { scalars: &'a [Value], vectors: &'a [Value] },
}

/// The accumulation of one block (`ty` F32 or F32X4) at `at` (the output position's
/// address in the copy) over every tap: max, sum, or weighted sum.
fn accumulate(
    b: &mut FunctionBuilder,
    spec: &WindowSpec,
    taps: &[(usize, usize)],
    ty: Type,
    at: Value,
    start: Value,
    filter: Filter,
) -> Value {
    let splat = |b: &mut FunctionBuilder, v: Value| if ty.is_vector() { b.ins().splat(ty, v) } else { v };
    let fma = crate::jit::has_fma();
    let step = |b: &mut FunctionBuilder, acc: Value, v: Value, w: Option<Value>| match (spec.op, w) {
        (WindowOp::Max, _) => b.ins().fmax(acc, v),
        (_, Some(w)) if fma => b.ins().fma(v, w, acc),
        (_, Some(w)) => {
            let p = b.ins().fmul(v, w);
            b.ins().fadd(acc, p)
        }
        _ => b.ins().fadd(acc, v),
    };
    if taps.len() <= UNROLL_TAPS && spec.op == WindowOp::Max && ty.is_vector() {
        return vector_max(b, taps, at, start);
    }
    if taps.len() <= UNROLL_TAPS {
        let mut acc = start;
        for &(t, offset) in taps {
            let v = b.ins().load(ty, flags(), at, (offset * 4) as i32);
            let w = match filter {
                Filter::None => None,
                Filter::Hoisted { scalars, vectors } => Some(if ty.is_vector() { vectors[t] } else { scalars[t] }),
                Filter::Memory(_) => unreachable!("unrolled kernels have their weights hoisted"),
            };
            acc = step(b, acc, v, w);
        }
        return acc;
    }
    // many taps: a loop over a table of their offsets would need memory; recompute them
    let var = b.declare_var(ty);
    b.def_var(var, start);
    let scratch = spec.scratch();
    let outer_strides: Vec<i64> = scratch.outer_strides().iter().map(|&s| s as i64).collect();
    let r = spec.kernel.len();
    let (phases, phase_len) = (scratch.phases as i64, scratch.phase_len as i64);
    let tap_strides = row_major(&spec.kernel);
    nest(b, &spec.kernel, &mut Vec::new(), &mut |b, k| {
        let mut off = b.ins().iconst(types::I64, 0);
        for d in 0..r - 1 {
            let t = b.ins().imul_imm_s(k[d], spec.dilations[d] as i64 * outer_strides[d]);
            off = b.ins().iadd(off, t);
        }
        let c = b.ins().imul_imm_s(k[r - 1], spec.dilations[r - 1] as i64);
        let phase = b.ins().urem_imm_u(c, phases);
        let phase = b.ins().imul_imm_s(phase, phase_len);
        let within = b.ins().udiv_imm_u(c, phases);
        off = b.ins().iadd(off, phase);
        off = b.ins().iadd(off, within);
        let bytes = b.ins().imul_imm_s(off, 4);
        let addr = b.ins().iadd(at, bytes);
        let v = b.ins().load(ty, flags(), addr, 0);
        let w = match filter {
            Filter::Memory(w) => {
                let t = byte_offset(b, k, &tap_strides);
                let wa = b.ins().iadd(w, t);
                let s = b.ins().load(types::F32, flags(), wa, 0);
                Some(splat(b, s))
            }
            _ => None,
        };
        let acc = b.use_var(var);
        let next = step(b, acc, v, w);
        b.def_var(var, next);
    });
    b.use_var(var)
}

/// The maximum over the taps of four outputs, NaN if any tap is NaN: one native
/// maximum a tap ([`native_max_min`]), NaNs remembered apart.
fn vector_max(b: &mut FunctionBuilder, taps: &[(usize, usize)], at: Value, start: Value) -> Value {
    let mut acc = start;
    let mut nan: Option<Value> = None;
    for &(_, offset) in taps {
        let v = b.ins().load(types::F32X4, flags(), at, (offset * 4) as i32);
        acc = native_max_min(b, true, acc, v);
        let here = unordered(b, v);
        nan = Some(match nan {
            Some(n) => b.ins().bor(n, here),
            None => here,
        });
    }
    match nan {
        Some(n) => with_nans(b, n, acc),
        None => acc,
    }
}

/// Writes the body of a kernel computing `spec`; `params` are (args, begin, end), and
/// the outer range runs over planes.
///
/// A call copies its planes one after another into the same scratch area, the one of
/// its first plane: it stays in cache, and its padding is filled once for the call.
pub fn generate(b: &mut FunctionBuilder, params: [Value; 3], spec: &WindowSpec) {
    let [args, begin, end] = params;
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let x = arg(b, 0);
    let (w, bias, table, scratch_buf, out) = match spec.op {
        WindowOp::Im2col | WindowOp::Max => (None, None, None, arg(b, 1), arg(b, 2)),
        WindowOp::Average { .. } => (None, None, Some(arg(b, 1)), arg(b, 2), arg(b, 3)),
        WindowOp::Depthwise { .. } => (Some(arg(b, 1)), Some(arg(b, 2)), None, arg(b, 3), arg(b, 4)),
    };
    let scratch = spec.scratch();
    let taps = taps(spec, &scratch);
    let (in_size, positions) = (spec.input_size() as i64, spec.positions() as i64);
    let r = spec.input.len();
    let rows = &spec.output[..r - 1];
    let columns = spec.output[r - 1] as i64;
    let out_strides = row_major(&spec.output);
    let outer_strides: Vec<i64> = scratch.outer_strides().iter().map(|&s| s as i64).collect();
    let step_strides: Vec<i64> = (0..r - 1).map(|d| outer_strides[d] * spec.strides[d] as i64).collect();
    let pad = if spec.op == WindowOp::Max { f32::NEG_INFINITY } else { 0.0 };
    let off = b.ins().imul_imm_s(begin, scratch.plane_len() as i64 * 4);
    let copy = b.ins().iadd(scratch_buf, off);
    let zero = b.ins().iconst(types::I64, 0);
    let len = b.ins().iconst(types::I64, scratch.plane_len() as i64);
    fill(b, copy, zero, len, pad);
    counted_loop(b, begin, end, 1, |b, p| {
        let off = b.ins().imul_imm_s(p, in_size * 4);
        let plane = b.ins().iadd(x, off);
        copy_padded(b, spec, &scratch, plane, copy);
        if spec.op == WindowOp::Im2col {
            let off = b.ins().imul_imm_s(p, taps.len() as i64 * positions * 4);
            let cols = b.ins().iadd(out, off);
            for &(t, offset) in &taps {
                let tap_row = b.ins().iadd_imm_s(cols, t as i64 * positions * 4);
                nest(b, rows, &mut Vec::new(), &mut |b, o| {
                    let src = byte_offset(b, o, &step_strides);
                    let src = b.ins().iadd(copy, src);
                    let dst = byte_offset(b, o, &out_strides[..r - 1]);
                    let dst = b.ins().iadd(tap_row, dst);
                    row_blocks(b, columns, &mut |b, j, ty| {
                        let off = b.ins().imul_imm_s(j, 4);
                        let (s, d) = (b.ins().iadd(src, off), b.ins().iadd(dst, off));
                        let v = b.ins().load(ty, flags(), s, (offset * 4) as i32);
                        b.ins().store(flags(), v, d, 0);
                    });
                });
            }
            return;
        }
        let off = b.ins().imul_imm_s(p, positions * 4);
        let out_plane = b.ins().iadd(out, off);
        // depthwise: this plane's filter and bias
        let (filter_at, start_value) = match (spec.op, w, bias) {
            (WindowOp::Depthwise { channels }, Some(w), Some(bias)) => {
                let c = b.ins().urem_imm_u(p, channels as i64);
                let off = b.ins().imul_imm_s(c, taps.len() as i64 * 4);
                let wf = b.ins().iadd(w, off);
                let off = b.ins().imul_imm_s(c, 4);
                let ba = b.ins().iadd(bias, off);
                (Some(wf), b.ins().load(types::F32, flags(), ba, 0))
            }
            _ => (None, b.ins().f32const(pad)),
        };
        let hoist = filter_at.is_some() && taps.len() <= UNROLL_TAPS;
        let scalars: Vec<Value> = match filter_at {
            Some(wf) if hoist => {
                (0..taps.len()).map(|t| b.ins().load(types::F32, flags(), wf, (t * 4) as i32)).collect()
            }
            _ => Vec::new(),
        };
        let vectors: Vec<Value> = scalars.iter().map(|&s| b.ins().splat(types::F32X4, s)).collect();
        let filter = match filter_at {
            Some(_) if hoist => Filter::Hoisted { scalars: &scalars, vectors: &vectors },
            Some(wf) => Filter::Memory(wf),
            None => Filter::None,
        };
        let start_vector = b.ins().splat(types::F32X4, start_value);
        nest(b, rows, &mut Vec::new(), &mut |b, o| {
            let src = byte_offset(b, o, &step_strides);
            let src = b.ins().iadd(copy, src);
            let dst = byte_offset(b, o, &out_strides[..r - 1]);
            let row_out = b.ins().iadd(out_plane, dst);
            let row_table = table.map(|t| b.ins().iadd(t, dst));
            row_blocks(b, columns, &mut |b, j, ty| {
                // consecutive outputs read consecutive phase elements: column j is at j
                let off = b.ins().imul_imm_s(j, 4);
                let at = b.ins().iadd(src, off);
                let start = if ty.is_vector() { start_vector } else { start_value };
                let mut acc = accumulate(b, spec, &taps, ty, at, start, filter);
                if let Some(t) = row_table {
                    let ta = b.ins().iadd(t, off);
                    let inv = b.ins().load(ty, flags(), ta, 0);
                    acc = b.ins().fmul(acc, inv);
                }
                let d = b.ins().iadd(row_out, off);
                b.ins().store(flags(), acc, d, 0);
            });
        });
    });
    b.ins().return_(&[]);
}

/// Writes the body of a kernel computing `spec` (arguments: input, output); the outer
/// range runs over (batch, channel) planes. It sums the squares in f32, so where they
/// pass f32's range (|x| beyond about 1e19) its base is infinite and its output 0, not
/// the interpreter's f64 value; the wide kernel (`wide/lrn.rs`), which every host with
/// AVX2 runs, computes such planes again in f64.
pub fn generate_lrn(b: &mut FunctionBuilder, params: [Value; 3], spec: &LrnSpec) {
    let [args, begin, end] = params;
    let x = b.ins().load(types::I64, flags(), args, 0);
    let out = b.ins().load(types::I64, flags(), args, 8);
    let (channels, spatial) = (spec.channels as i64, spec.spatial as i64);
    let (before, after) = (((spec.size - 1) / 2) as i64, (spec.size - 1).div_ceil(2) as i64);
    counted_loop(b, begin, end, 1, |b, p| {
        let n = b.ins().udiv_imm_u(p, channels);
        let c = b.ins().urem_imm_u(p, channels);
        let lo = b.ins().iadd_imm_s(c, -before);
        let zero = b.ins().iconst(types::I64, 0);
        let lo = b.ins().smax(lo, zero);
        let hi = b.ins().iadd_imm_s(c, after + 1);
        let top = b.ins().iconst(types::I64, channels);
        let hi = b.ins().smin(hi, top);
        let sample = b.ins().imul_imm_s(n, channels * spatial * 4);
        let sample = b.ins().iadd(x, sample);
        let plane_off = b.ins().imul_imm_s(p, spatial * 4);
        let (src, dst) = (b.ins().iadd(x, plane_off), b.ins().iadd(out, plane_off));
        let len = b.ins().iconst(types::I64, spatial);
        counted_loop(b, zero, len, 1, |b, s| {
            let acc = b.declare_var(types::F32);
            let z = b.ins().f32const(0.0);
            b.def_var(acc, z);
            let s_off = b.ins().imul_imm_s(s, 4);
            counted_loop(b, lo, hi, 1, |b, j| {
                let off = b.ins().imul_imm_s(j, spatial * 4);
                let a = b.ins().iadd(sample, off);
                let a = b.ins().iadd(a, s_off);
                let v = b.ins().load(types::F32, flags(), a, 0);
                let sq = b.ins().fmul(v, v);
                let t = b.use_var(acc);
                let t = b.ins().fadd(t, sq);
                b.def_var(acc, t);
            });
            let sum = b.use_var(acc);
            let k = b.ins().f32const(spec.alpha / spec.size as f32);
            let scaled = b.ins().fmul(sum, k);
            let bias = b.ins().f32const(spec.bias);
            let base = b.ins().fadd(scaled, bias);
            let beta = b.ins().f32const(spec.beta);
            let denom = crate::jit::math::Math { b, ty: types::F32 }.pow(base, beta);
            let a = b.ins().iadd(src, s_off);
            let v = b.ins().load(types::F32, flags(), a, 0);
            let r = b.ins().fdiv(v, denom);
            let d = b.ins().iadd(dst, s_off);
            b.ins().store(flags(), r, d, 0);
        });
    });
    b.ins().return_(&[]);
}
