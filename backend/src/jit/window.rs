//! Code generation for a [`WindowSpec`], tap by tap: for each kernel tap and each row of
//! the output (all axes but the last), the range of output columns whose input column is
//! inside the input is computed once, `[lo, hi)`; columns outside it read as padding. The
//! work inside the range is a plain strided loop over input columns, in `f32x4` when the
//! stride is 1.
//!
//! - im2col writes each tap's row of the column matrix: padding as zeros around a copy;
//! - pooling and depthwise convolution accumulate into the output plane, which starts
//!   at the identity (−inf for max, 0, or the bias); average pooling then multiplies by
//!   a table of reciprocal tap counts that lowering computes (the counts depend only on
//!   the position).

use crate::jit::counted_loop;
use crate::window::{LrnSpec, WindowOp, WindowSpec};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

const LANES: i64 = 4;

fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

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

/// One output row under one tap: where its input row starts (in elements, valid only
/// when `inside`), where the output row starts, and the range `[lo, hi)` of output
/// columns that read inside the input (empty when the row is outside).
struct RowRange {
    input: Value,
    output: Value,
    lo: Value,
    hi: Value,
}

/// For tap `k` (one index per spatial axis) and output row `o` (all axes but the last).
fn row_range(b: &mut FunctionBuilder, spec: &WindowSpec, k: &[Value], o: &[Value]) -> RowRange {
    let r = spec.input.len();
    let (in_strides, out_strides) = (row_major(&spec.input), row_major(&spec.output));
    let mut input = b.ins().iconst(types::I64, 0);
    let mut output = b.ins().iconst(types::I64, 0);
    let mut inside = b.ins().iconst(types::I8, 1);
    for d in 0..r - 1 {
        let a = b.ins().imul_imm_s(o[d], spec.strides[d] as i64);
        let t = b.ins().imul_imm_s(k[d], spec.dilations[d] as i64);
        let c = b.ins().iadd(a, t);
        let c = b.ins().iadd_imm_s(c, -(spec.pads_begin[d] as i64));
        let ge0 = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, c, 0);
        let lt = b.ins().icmp_imm_s(IntCC::SignedLessThan, c, spec.input[d] as i64);
        let ok = b.ins().band(ge0, lt);
        inside = b.ins().band(inside, ok);
        let term = b.ins().imul_imm_s(c, in_strides[d]);
        input = b.ins().iadd(input, term);
        let term = b.ins().imul_imm_s(o[d], out_strides[d]);
        output = b.ins().iadd(output, term);
    }
    // last axis: input column = ow·s + c0
    let last = r - 1;
    let s = spec.strides[last] as i64;
    let t = b.ins().imul_imm_s(k[last], spec.dilations[last] as i64);
    let c0 = b.ins().iadd_imm_s(t, -(spec.pads_begin[last] as i64));
    input = b.ins().iadd(input, c0);
    let zero = b.ins().iconst(types::I64, 0);
    let width = b.ins().iconst(types::I64, spec.input[last] as i64);
    let columns = b.ins().iconst(types::I64, spec.output[last] as i64);
    // lo = ceil(max(−c0, 0) / s), hi = ceil(max(W − c0, 0) / s), both clamped to [0, OW]
    let neg = b.ins().ineg(c0);
    let neg = b.ins().smax(neg, zero);
    let lo = b.ins().iadd_imm_s(neg, s - 1);
    let lo = b.ins().udiv_imm_u(lo, s);
    let lo = b.ins().smin(lo, columns);
    let room = b.ins().isub(width, c0);
    let room = b.ins().smax(room, zero);
    let hi = b.ins().iadd_imm_s(room, s - 1);
    let hi = b.ins().udiv_imm_u(hi, s);
    let hi = b.ins().smin(hi, columns);
    let hi = b.ins().smax(hi, lo);
    // a row outside the input on another axis has an empty range
    let lo = b.ins().select(inside, lo, columns);
    let hi = b.ins().select(inside, hi, columns);
    RowRange { input, output, lo, hi }
}

/// `dst[j] = f(dst[j], src[j·step])` for j in `[lo, hi)` (addresses of element 0), in
/// `f32x4` when `step` is 1; `f` combines (old, loaded).
fn update(
    b: &mut FunctionBuilder,
    dst: Value,
    src: Value,
    step: i64,
    lo: Value,
    hi: Value,
    f: &dyn Fn(&mut FunctionBuilder, Value, Value) -> Value,
) {
    let mut start = lo;
    if step == 1 {
        start = counted_loop(b, lo, hi, LANES, |b, j| {
            let off = b.ins().imul_imm_s(j, 4);
            let (d, s) = (b.ins().iadd(dst, off), b.ins().iadd(src, off));
            let old = b.ins().load(types::F32X4, flags(), d, 0);
            let v = b.ins().load(types::F32X4, flags(), s, 0);
            let r = f(b, old, v);
            b.ins().store(flags(), r, d, 0);
        });
    }
    counted_loop(b, start, hi, 1, |b, j| {
        let doff = b.ins().imul_imm_s(j, 4);
        let soff = b.ins().imul_imm_s(j, 4 * step);
        let (d, s) = (b.ins().iadd(dst, doff), b.ins().iadd(src, soff));
        let old = b.ins().load(types::F32, flags(), d, 0);
        let v = b.ins().load(types::F32, flags(), s, 0);
        let r = f(b, old, v);
        b.ins().store(flags(), r, d, 0);
    });
}

/// `dst[j] = value` for j in `[lo, hi)`.
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

/// Writes the body of a kernel computing `spec`; `params` are (args, begin, end), and
/// the outer range runs over planes.
pub fn generate(b: &mut FunctionBuilder, params: [Value; 3], spec: &WindowSpec) {
    let [args, begin, end] = params;
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let x = arg(b, 0);
    let (in_size, positions, taps) = (spec.input_size() as i64, spec.positions() as i64, spec.taps() as i64);
    let rank = spec.input.len();
    let rows = &spec.output[..rank - 1];
    let columns = spec.output[rank - 1] as i64;
    let step = spec.strides[rank - 1] as i64;
    let tap_strides = row_major(&spec.kernel);
    let out = match spec.op {
        WindowOp::Im2col | WindowOp::Max => arg(b, 1),
        WindowOp::Average { .. } => arg(b, 2),
        WindowOp::Depthwise { .. } => arg(b, 3),
    };
    counted_loop(b, begin, end, 1, |b, p| {
        let off = b.ins().imul_imm_s(p, in_size * 4);
        let plane = b.ins().iadd(x, off);
        let zero = b.ins().iconst(types::I64, 0);
        let all = b.ins().iconst(types::I64, positions);
        let (out_plane, filter) = match spec.op {
            WindowOp::Im2col => {
                let off = b.ins().imul_imm_s(p, taps * positions * 4);
                (b.ins().iadd(out, off), None)
            }
            WindowOp::Max | WindowOp::Average { .. } => {
                let off = b.ins().imul_imm_s(p, positions * 4);
                let o = b.ins().iadd(out, off);
                let identity = if spec.op == WindowOp::Max { f32::NEG_INFINITY } else { 0.0 };
                fill(b, o, zero, all, identity);
                (o, None)
            }
            WindowOp::Depthwise { channels } => {
                let off = b.ins().imul_imm_s(p, positions * 4);
                let o = b.ins().iadd(out, off);
                let c = b.ins().urem_imm_u(p, channels as i64);
                let (w, bias) = (arg(b, 1), arg(b, 2));
                let off = b.ins().imul_imm_s(c, taps * 4);
                let wf = b.ins().iadd(w, off);
                let off = b.ins().imul_imm_s(c, 4);
                let ba = b.ins().iadd(bias, off);
                let bv = b.ins().load(types::F32, flags(), ba, 0);
                let bvv = b.ins().splat(types::F32X4, bv);
                // the output plane starts at the bias
                let start = counted_loop(b, zero, all, LANES, |b, j| {
                    let off = b.ins().imul_imm_s(j, 4);
                    let d = b.ins().iadd(o, off);
                    b.ins().store(flags(), bvv, d, 0);
                });
                counted_loop(b, start, all, 1, |b, j| {
                    let off = b.ins().imul_imm_s(j, 4);
                    let d = b.ins().iadd(o, off);
                    b.ins().store(flags(), bv, d, 0);
                });
                (o, Some(wf))
            }
        };
        nest(b, &spec.kernel, &mut Vec::new(), &mut |b, k| {
            let t = {
                let mut acc = b.ins().iconst(types::I64, 0);
                for (&i, &s) in k.iter().zip(&tap_strides) {
                    let term = b.ins().imul_imm_s(i, s);
                    acc = b.ins().iadd(acc, term);
                }
                acc
            };
            let weight = filter.map(|wf| {
                let off = b.ins().imul_imm_s(t, 4);
                let wa = b.ins().iadd(wf, off);
                b.ins().load(types::F32, flags(), wa, 0)
            });
            let tap_row = if spec.op == WindowOp::Im2col {
                let off = b.ins().imul_imm_s(t, positions * 4);
                b.ins().iadd(out_plane, off)
            } else {
                out_plane
            };
            nest(b, rows, &mut Vec::new(), &mut |b, o| {
                let range = row_range(b, spec, k, o);
                let off = b.ins().imul_imm_s(range.output, 4);
                let dst = b.ins().iadd(tap_row, off);
                let off = b.ins().imul_imm_s(range.input, 4);
                let src = b.ins().iadd(plane, off);
                let end_col = b.ins().iconst(types::I64, columns);
                match spec.op {
                    WindowOp::Im2col => {
                        let zero = b.ins().iconst(types::I64, 0);
                        fill(b, dst, zero, range.lo, 0.0);
                        update(b, dst, src, step, range.lo, range.hi, &|_, _, v| v);
                        fill(b, dst, range.hi, end_col, 0.0);
                    }
                    WindowOp::Max => update(b, dst, src, step, range.lo, range.hi, &|b, a, v| b.ins().fmax(a, v)),
                    WindowOp::Average { .. } => {
                        update(b, dst, src, step, range.lo, range.hi, &|b, a, v| b.ins().fadd(a, v))
                    }
                    WindowOp::Depthwise { .. } => {
                        let w = weight.expect("depthwise loads its weight");
                        update(b, dst, src, step, range.lo, range.hi, &|b, a, v| {
                            let ty = b.func.dfg.value_type(v);
                            let wv = if ty.is_vector() { b.ins().splat(ty, w) } else { w };
                            let prod = b.ins().fmul(wv, v);
                            b.ins().fadd(a, prod)
                        })
                    }
                }
            });
        });
        if let WindowOp::Average { .. } = spec.op {
            // divide by the tap counts: multiply by the table of their reciprocals
            let table = arg(b, 1);
            update(b, out_plane, table, 1, zero, all, &|b, a, r| b.ins().fmul(a, r));
        }
    });
    b.ins().return_(&[]);
}

/// Writes the body of a kernel computing `spec` (arguments: input, output); the outer
/// range runs over (batch, channel) planes.
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
