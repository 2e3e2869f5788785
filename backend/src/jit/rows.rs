//! Code generation for a [`RowSpec`]: a loop nest over the rows, and per row a few
//! passes — folds (sum, max, sum of squares …) and maps (normalize, exponentiate) — each
//! in `f32x4` when the row is contiguous, with a scalar tail.
//!
//! Arguments: the input, then the parameters, then the output.

use crate::jit::math::Math;
use crate::jit::{counted_loop, flags, native_max_min, scalar_type, unordered, with_nans};
use crate::rows::{RowOp, RowSpec};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use saturate_egraph::DType;

const LANES: i64 = 4;
/// Below this, `x − max` gives a softmax output written as 0 (see [`row`]).
const SOFTMAX_FLOOR: f32 = -70.0;

/// How a fold combines two values.
#[derive(Clone, Copy)]
enum Combine {
    Add,
    Max,
    Min,
}

/// Writes the body of a kernel computing `spec`; `params` are (args, begin, end).
pub fn generate(b: &mut FunctionBuilder, params: [Value; 3], spec: &RowSpec) {
    let [args, begin, end] = params;
    let n_params = spec.params.len();
    let base = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let x = base(b, 0);
    let ps: Vec<Value> = (0..n_params).map(|k| base(b, 1 + k)).collect();
    let out = base(b, 1 + n_params);
    let rows = if spec.rows.is_empty() { vec![1] } else { spec.rows.clone() };
    nest(b, spec, &rows, 0, x, out, begin, end, &ps);
    b.ins().return_(&[]);
}

#[allow(clippy::too_many_arguments)] // the loop state of one level of the nest
fn nest(
    b: &mut FunctionBuilder,
    spec: &RowSpec,
    rows: &[usize],
    dim: usize,
    x: Value,
    out: Value,
    lo: Value,
    hi: Value,
    ps: &[Value],
) {
    let esize = spec.dtype.byte_size() as i64;
    let stride = |s: &[isize]| s.get(dim).copied().unwrap_or(0) as i64 * esize;
    let (xs, os) = (stride(&spec.x.strides), stride(&spec.out.strides));
    counted_loop(b, lo, hi, 1, |b, i| {
        let xo = b.ins().imul_imm_s(i, xs);
        let xa = b.ins().iadd(x, xo);
        let oo = b.ins().imul_imm_s(i, os);
        let oa = b.ins().iadd(out, oo);
        if dim + 1 == rows.len() {
            row(b, spec, xa, oa, ps);
        } else {
            let zero = b.ins().iconst(types::I64, 0);
            let n = b.ins().iconst(types::I64, rows[dim + 1] as i64);
            nest(b, spec, rows, dim + 1, xa, oa, zero, n, ps);
        }
    });
}

/// One row: `x` and `out` are its start addresses.
fn row(b: &mut FunctionBuilder, spec: &RowSpec, x: Value, out: Value, ps: &[Value]) {
    let (len, xstep, ostep) = (spec.len, spec.x.step, spec.out.step);
    let n = b.ins().f32const(len as f32);
    match spec.op {
        RowOp::Sum | RowOp::Mean => {
            let mut s = fold(b, spec.dtype, x, xstep, len, Combine::Add, &|_, v| v);
            if spec.op == RowOp::Mean {
                s = match spec.dtype {
                    DType::F32 => b.ins().fdiv(s, n),
                    _ => b.ins().sdiv_imm_s(s, len as i64),
                };
            }
            b.ins().store(flags(), s, out, 0);
        }
        RowOp::Max | RowOp::Min => {
            let combine = if spec.op == RowOp::Max { Combine::Max } else { Combine::Min };
            let m = fold(b, spec.dtype, x, xstep, len, combine, &|_, v| v);
            b.ins().store(flags(), m, out, 0);
        }
        RowOp::Softmax => {
            // one exponential per element: write e = exp(x − max), sum it, scale it.
            // Where x − max < −70 the result is below e⁻⁷⁰ ≈ 4e−31 and written as 0:
            // scaling such e by 1/sum would make subnormal floats, which cost x86 cores
            // a hundred cycles each (BERT's attention scores are mostly there)
            let m = fold(b, DType::F32, x, xstep, len, Combine::Max, &|_, v| v);
            map(b, len, &[(x, xstep)], (out, ostep), &|math, v| {
                let mm = math.splat_value(m);
                let d = math.b.ins().fsub(v[0], mm);
                let e = math.exp(d);
                let floor = math.c(SOFTMAX_FLOOR);
                let negligible = math.cmp(FloatCC::LessThan, d, floor);
                let zero = math.c(0.0);
                math.select(negligible, zero, e)
            });
            let sum = fold(b, DType::F32, out, ostep, len, Combine::Add, &|_, v| v);
            let one = b.ins().f32const(1.0);
            let inv = b.ins().fdiv(one, sum);
            map(b, len, &[(out, ostep)], (out, ostep), &|math, v| {
                let ii = math.splat_value(inv);
                math.b.ins().fmul(v[0], ii)
            });
        }
        RowOp::LogSoftmax => {
            let m = fold(b, DType::F32, x, xstep, len, Combine::Max, &|_, v| v);
            let sum = fold(b, DType::F32, x, xstep, len, Combine::Add, &|math, v| {
                let mm = math.splat_value(m);
                let d = math.b.ins().fsub(v, mm);
                math.exp(d)
            });
            let log_sum = Math { b, ty: types::F32 }.log(sum);
            let shift = b.ins().fadd(m, log_sum);
            map(b, len, &[(x, xstep)], (out, ostep), &|math, v| {
                let s = math.splat_value(shift);
                math.b.ins().fsub(v[0], s)
            });
        }
        RowOp::LayerNorm { eps } => {
            let sum = fold(b, DType::F32, x, xstep, len, Combine::Add, &|_, v| v);
            let mean = b.ins().fdiv(sum, n);
            let sq = fold(b, DType::F32, x, xstep, len, Combine::Add, &|math, v| {
                let mm = math.splat_value(mean);
                let d = math.b.ins().fsub(v, mm);
                math.b.ins().fmul(d, d)
            });
            let inv = inverse_root(b, sq, n, eps);
            let (scale, bias) = ((ps[0], spec.params[0].step), (ps[1], spec.params[1].step));
            map(b, len, &[(x, xstep), scale, bias], (out, ostep), &|math, v| {
                let (mm, ii) = (math.splat_value(mean), math.splat_value(inv));
                let d = math.b.ins().fsub(v[0], mm);
                let d = math.b.ins().fmul(d, ii);
                let d = math.b.ins().fmul(d, v[1]);
                math.b.ins().fadd(d, v[2])
            });
        }
        RowOp::RmsNorm { eps } => {
            let sq = fold(b, DType::F32, x, xstep, len, Combine::Add, &|math, v| math.b.ins().fmul(v, v));
            let inv = inverse_root(b, sq, n, eps);
            let scale = (ps[0], spec.params[0].step);
            map(b, len, &[(x, xstep), scale], (out, ostep), &|math, v| {
                let ii = math.splat_value(inv);
                let d = math.b.ins().fmul(v[0], ii);
                math.b.ins().fmul(d, v[1])
            });
        }
    }
}

/// 1/√(sum/n + eps).
fn inverse_root(b: &mut FunctionBuilder, sum: Value, n: Value, eps: f32) -> Value {
    let mean = b.ins().fdiv(sum, n);
    let e = b.ins().f32const(eps);
    let v = b.ins().fadd(mean, e);
    let r = b.ins().sqrt(v);
    let one = b.ins().f32const(1.0);
    b.ins().fdiv(one, r)
}

fn combine(b: &mut FunctionBuilder, how: Combine, dtype: DType, a: Value, v: Value) -> Value {
    match (how, dtype) {
        (Combine::Add, DType::F32) => b.ins().fadd(a, v),
        (Combine::Max, DType::F32) => b.ins().fmax(a, v),
        (Combine::Min, DType::F32) => b.ins().fmin(a, v),
        (Combine::Add, _) => b.ins().iadd(a, v),
        (Combine::Max, DType::I64) => b.ins().smax(a, v),
        (Combine::Min, DType::I64) => b.ins().smin(a, v),
        (Combine::Max, _) => b.ins().umax(a, v),
        (Combine::Min, _) => b.ins().umin(a, v),
    }
}

/// Folds `mapped(x[i])` over a row with `how`; returns the scalar result.
fn fold(
    b: &mut FunctionBuilder,
    dtype: DType,
    x: Value,
    step: isize,
    len: usize,
    how: Combine,
    mapped: &dyn Fn(&mut Math, Value) -> Value,
) -> Value {
    let ty = scalar_type(dtype);
    let esize = dtype.byte_size() as i64;
    // the first element starts the fold: no identity needed for max and min
    let first = b.ins().load(ty, flags(), x, 0);
    let first = if dtype == DType::F32 { mapped(&mut Math { b, ty: types::F32 }, first) } else { first };
    let acc = b.declare_var(ty);
    b.def_var(acc, first);
    let mut start = b.ins().iconst(types::I64, 1);
    let hi = b.ins().iconst(types::I64, len as i64);
    if dtype == DType::F32 && step == 1 && len >= 2 * LANES as usize {
        // vector partial results over [1, 1 + 4k), lanes combined after
        // max and min: native instructions, NaNs remembered apart (see native_max_min)
        let extreme = match how {
            Combine::Max => Some(true),
            Combine::Min => Some(false),
            Combine::Add => None,
        };
        let vacc = b.declare_var(types::F32X4);
        let vnan = b.declare_var(types::I32X4);
        let v0 = b.ins().load(types::F32X4, flags(), x, 4);
        let v0 = mapped(&mut Math { b, ty: types::F32X4 }, v0);
        b.def_var(vacc, v0);
        if extreme.is_some() {
            let n0 = unordered(b, v0);
            b.def_var(vnan, n0);
        }
        let one = b.ins().iconst(types::I64, 1 + LANES);
        let after = counted_loop(b, one, hi, LANES, |b, i| {
            let off = b.ins().imul_imm_s(i, 4);
            let addr = b.ins().iadd(x, off);
            let v = b.ins().load(types::F32X4, flags(), addr, 0);
            let v = mapped(&mut Math { b, ty: types::F32X4 }, v);
            let a = b.use_var(vacc);
            let c = match extreme {
                Some(max) => {
                    let n = b.use_var(vnan);
                    let here = unordered(b, v);
                    let n = b.ins().bor(n, here);
                    b.def_var(vnan, n);
                    native_max_min(b, max, a, v)
                }
                None => combine(b, how, dtype, a, v),
            };
            b.def_var(vacc, c);
        });
        let mut v = b.use_var(vacc);
        if extreme.is_some() {
            let n = b.use_var(vnan);
            v = with_nans(b, n, v);
        }
        let mut total = b.use_var(acc);
        for lane in 0..LANES as u8 {
            let l = b.ins().extractlane(v, lane);
            total = combine(b, how, dtype, total, l);
        }
        b.def_var(acc, total);
        start = after;
    }
    counted_loop(b, start, hi, 1, |b, i| {
        let off = b.ins().imul_imm_s(i, step as i64 * esize);
        let addr = b.ins().iadd(x, off);
        let v = b.ins().load(ty, flags(), addr, 0);
        let v = if dtype == DType::F32 { mapped(&mut Math { b, ty: types::F32 }, v) } else { v };
        let a = b.use_var(acc);
        let c = combine(b, how, dtype, a, v);
        b.def_var(acc, c);
    });
    b.use_var(acc)
}

/// `out[i] = f(inputs[0][i], inputs[1][i], …)` along a row of f32; each input and the
/// output is (address, step).
fn map(
    b: &mut FunctionBuilder,
    len: usize,
    inputs: &[(Value, isize)],
    out: (Value, isize),
    f: &dyn Fn(&mut Math, &[Value]) -> Value,
) {
    let zero = b.ins().iconst(types::I64, 0);
    let hi = b.ins().iconst(types::I64, len as i64);
    let vector = len >= LANES as usize && out.1 == 1 && inputs[0].1 == 1 && inputs.iter().all(|i| matches!(i.1, 0 | 1));
    let mut start = zero;
    if vector {
        let broadcast: Vec<Option<Value>> = inputs
            .iter()
            .map(|&(a, s)| {
                (s == 0).then(|| {
                    let v = b.ins().load(types::F32, flags(), a, 0);
                    b.ins().splat(types::F32X4, v)
                })
            })
            .collect();
        start = counted_loop(b, zero, hi, LANES, |b, i| {
            let off = b.ins().imul_imm_s(i, 4);
            let values: Vec<Value> = inputs
                .iter()
                .zip(&broadcast)
                .map(|(&(a, _), bc)| {
                    bc.unwrap_or_else(|| {
                        let addr = b.ins().iadd(a, off);
                        b.ins().load(types::F32X4, flags(), addr, 0)
                    })
                })
                .collect();
            let r = f(&mut Math { b, ty: types::F32X4 }, &values);
            let addr = b.ins().iadd(out.0, off);
            b.ins().store(flags(), r, addr, 0);
        });
    }
    counted_loop(b, start, hi, 1, |b, i| {
        let values: Vec<Value> = inputs
            .iter()
            .map(|&(a, s)| {
                let off = b.ins().imul_imm_s(i, s as i64 * 4);
                let addr = b.ins().iadd(a, off);
                b.ins().load(types::F32, flags(), addr, 0)
            })
            .collect();
        let r = f(&mut Math { b, ty: types::F32 }, &values);
        let off = b.ins().imul_imm_s(i, out.1 as i64 * 4);
        let addr = b.ins().iadd(out.0, off);
        b.ins().store(flags(), r, addr, 0);
    });
}
