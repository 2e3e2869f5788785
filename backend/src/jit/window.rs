//! Code generation for a [`WindowSpec`]: per plane, a loop nest over output positions
//! and kernel taps (im2col: taps outside, positions inside, so its stores are
//! contiguous). Taps in the padding are handled without branches: the coordinate is
//! clamped into the input for the load, and the loaded value replaced by the padding
//! value when the tap is outside.

use crate::jit::counted_loop;
use crate::window::{LrnSpec, WindowOp, WindowSpec};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

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

/// Σ index·stride.
fn flat(b: &mut FunctionBuilder, indices: &[Value], strides: &[i64]) -> Value {
    let mut acc = b.ins().iconst(types::I64, 0);
    for (&i, &s) in indices.iter().zip(strides) {
        let t = b.ins().imul_imm_s(i, s);
        acc = b.ins().iadd(acc, t);
    }
    acc
}

/// A tap: the address to load (clamped into the plane), whether it is inside the input,
/// and whether it is inside the padded input.
struct Tap {
    addr: Value,
    inside: Value,
    in_padded: Value,
}

fn tap(b: &mut FunctionBuilder, spec: &WindowSpec, plane: Value, o: &[Value], k: &[Value]) -> Tap {
    let in_strides = row_major(&spec.input);
    let mut offset = b.ins().iconst(types::I64, 0);
    let mut inside = b.ins().iconst(types::I8, 1);
    let mut in_padded = b.ins().iconst(types::I8, 1);
    for d in 0..spec.input.len() {
        let a = b.ins().imul_imm_s(o[d], spec.strides[d] as i64);
        let t = b.ins().imul_imm_s(k[d], spec.dilations[d] as i64);
        let c = b.ins().iadd(a, t);
        let c = b.ins().iadd_imm_s(c, -(spec.pads_begin[d] as i64));
        let size = spec.input[d] as i64;
        let ge0 = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, c, 0);
        let lt = b.ins().icmp_imm_s(IntCC::SignedLessThan, c, size);
        let ok = b.ins().band(ge0, lt);
        inside = b.ins().band(inside, ok);
        let lt_padded = b.ins().icmp_imm_s(IntCC::SignedLessThan, c, size + spec.pads_end[d] as i64);
        in_padded = b.ins().band(in_padded, lt_padded);
        let zero = b.ins().iconst(types::I64, 0);
        let last = b.ins().iconst(types::I64, (size - 1).max(0));
        let clamped = b.ins().smax(c, zero);
        let clamped = b.ins().smin(clamped, last);
        let term = b.ins().imul_imm_s(clamped, in_strides[d]);
        offset = b.ins().iadd(offset, term);
    }
    let bytes = b.ins().imul_imm_s(offset, 4);
    let addr = b.ins().iadd(plane, bytes);
    Tap { addr, inside, in_padded }
}

/// Writes the body of a kernel computing `spec`; `params` are (args, begin, end).
pub fn generate(b: &mut FunctionBuilder, params: [Value; 3], spec: &WindowSpec) {
    let [args, begin, end] = params;
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let x = arg(b, 0);
    let (in_size, positions, taps) = (spec.input_size() as i64, spec.positions() as i64, spec.taps() as i64);
    let out_strides = row_major(&spec.output);
    let tap_strides = row_major(&spec.kernel);
    match spec.op {
        WindowOp::Im2col => {
            let cols = arg(b, 1);
            counted_loop(b, begin, end, 1, |b, p| {
                let off = b.ins().imul_imm_s(p, in_size * 4);
                let plane = b.ins().iadd(x, off);
                let off = b.ins().imul_imm_s(p, taps * positions * 4);
                let col_plane = b.ins().iadd(cols, off);
                nest(b, &spec.kernel, &mut Vec::new(), &mut |b, k| {
                    let t = flat(b, k, &tap_strides);
                    let off = b.ins().imul_imm_s(t, positions * 4);
                    let row = b.ins().iadd(col_plane, off);
                    nest(b, &spec.output, &mut Vec::new(), &mut |b, o| {
                        let at = tap(b, spec, plane, o, k);
                        let v = b.ins().load(types::F32, flags(), at.addr, 0);
                        let zero = b.ins().f32const(0.0);
                        let v = b.ins().select(at.inside, v, zero);
                        let pos = flat(b, o, &out_strides);
                        let off = b.ins().imul_imm_s(pos, 4);
                        let dst = b.ins().iadd(row, off);
                        b.ins().store(flags(), v, dst, 0);
                    });
                });
            });
        }
        WindowOp::Max | WindowOp::Average { .. } | WindowOp::Depthwise { .. } => {
            let (w, bias, out) = match spec.op {
                WindowOp::Depthwise { .. } => (Some(arg(b, 1)), Some(arg(b, 2)), arg(b, 3)),
                _ => (None, None, arg(b, 1)),
            };
            counted_loop(b, begin, end, 1, |b, p| {
                let off = b.ins().imul_imm_s(p, in_size * 4);
                let plane = b.ins().iadd(x, off);
                let off = b.ins().imul_imm_s(p, positions * 4);
                let out_plane = b.ins().iadd(out, off);
                // depthwise: this plane's channel, its filter and bias
                let filter = match (spec.op, w, bias) {
                    (WindowOp::Depthwise { channels }, Some(w), Some(bias)) => {
                        let c = b.ins().urem_imm_u(p, channels as i64);
                        let off = b.ins().imul_imm_s(c, taps * 4);
                        let wf = b.ins().iadd(w, off);
                        let off = b.ins().imul_imm_s(c, 4);
                        let ba = b.ins().iadd(bias, off);
                        let bv = b.ins().load(types::F32, flags(), ba, 0);
                        Some((wf, bv))
                    }
                    _ => None,
                };
                nest(b, &spec.output, &mut Vec::new(), &mut |b, o| {
                    let acc = b.declare_var(types::F32);
                    let count = b.declare_var(types::I64);
                    let init = match (spec.op, filter) {
                        (WindowOp::Max, _) => b.ins().f32const(f32::NEG_INFINITY),
                        (_, Some((_, bv))) => bv,
                        _ => b.ins().f32const(0.0),
                    };
                    b.def_var(acc, init);
                    let zero = b.ins().iconst(types::I64, 0);
                    b.def_var(count, zero);
                    nest(b, &spec.kernel, &mut Vec::new(), &mut |b, k| {
                        let at = tap(b, spec, plane, o, k);
                        let v = b.ins().load(types::F32, flags(), at.addr, 0);
                        let a = b.use_var(acc);
                        let next = match spec.op {
                            WindowOp::Max => {
                                let m = b.ins().fmax(a, v);
                                b.ins().select(at.inside, m, a)
                            }
                            WindowOp::Average { count_include_pad } => {
                                let s = b.ins().fadd(a, v);
                                let counted = if count_include_pad { at.in_padded } else { at.inside };
                                let c = b.use_var(count);
                                let wide = b.ins().uextend(types::I64, counted);
                                let c = b.ins().iadd(c, wide);
                                b.def_var(count, c);
                                b.ins().select(at.inside, s, a)
                            }
                            WindowOp::Depthwise { .. } => {
                                let (wf, _) = filter.expect("depthwise has a filter");
                                let t = flat(b, k, &tap_strides);
                                let off = b.ins().imul_imm_s(t, 4);
                                let wa = b.ins().iadd(wf, off);
                                let wv = b.ins().load(types::F32, flags(), wa, 0);
                                let zero = b.ins().f32const(0.0);
                                let v = b.ins().select(at.inside, v, zero);
                                let prod = b.ins().fmul(wv, v);
                                b.ins().fadd(a, prod)
                            }
                            WindowOp::Im2col => unreachable!("handled above"),
                        };
                        b.def_var(acc, next);
                    });
                    let mut result = b.use_var(acc);
                    if let WindowOp::Average { .. } = spec.op {
                        let c = b.use_var(count);
                        let c = b.ins().fcvt_from_sint(types::F32, c);
                        result = b.ins().fdiv(result, c);
                    }
                    let pos = flat(b, o, &out_strides);
                    let off = b.ins().imul_imm_s(pos, 4);
                    let dst = b.ins().iadd(out_plane, off);
                    b.ins().store(flags(), result, dst, 0);
                });
            });
        }
    }
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
