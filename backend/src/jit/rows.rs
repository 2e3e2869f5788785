//! Code generation for a [`RowSpec`]: a loop nest over the rows, and per row a few
//! passes — folds (sum, max, sum of squares …) and maps (normalize, exponentiate) — each
//! in `f32x4` when the row is contiguous, with a scalar tail.
//!
//! Arguments: the input, then the parameters, then the output.
//!
//! Sums and normalizations run in f32 on the fast path, and check their accumulators:
//! where one is not finite (the squares of 1e20 overflow f32, so do the partial sums of
//! a row of 3e38s) the row is computed again, in scalar f64, the way the interpreter
//! does. Only rows whose f32 statistics overflow pay for it; a row that holds an
//! infinity or a NaN takes that path too and gets the same NaN or infinity.

use crate::jit::math::Math;
use crate::jit::{counted_loop, flags, native_max_min, scalar_type, unordered, with_nans};
use crate::rows::{RowOp, RowSpec};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::FunctionBuilder;
use saturate_egraph::DType;

const LANES: i64 = 4;
/// Below this, `x − max` gives a softmax output written as 0 (see [`row`]).
pub(crate) const SOFTMAX_FLOOR: f32 = -70.0;

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
    let (xsize, osize) = (spec.dtype.byte_size() as i64, spec.out_dtype().byte_size() as i64);
    let stride = |s: &[isize], esize: i64| s.get(dim).copied().unwrap_or(0) as i64 * esize;
    let (xs, os) = (stride(&spec.x.strides, xsize), stride(&spec.out.strides, osize));
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
        RowOp::Prod => {
            let p = if spec.dtype == DType::F32 {
                let p = product_f64(b, x, xstep, len);
                b.ins().fdemote(types::F32, p)
            } else {
                product_i64(b, x, xstep, len)
            };
            b.ins().store(flags(), p, out, 0);
        }
        RowOp::Sum | RowOp::Mean if spec.dtype == DType::F32 => {
            let mean = spec.op == RowOp::Mean;
            let s = fold(b, DType::F32, x, xstep, len, Combine::Add, &|_, v| v);
            let ok = is_finite(b, s);
            branch(
                b,
                ok,
                |b| {
                    let s = if mean { b.ins().fdiv(s, n) } else { s };
                    b.ins().store(flags(), s, out, 0);
                },
                |b| {
                    let s = sum_f64(b, x, xstep, len, &|_, v| v);
                    let s = if mean { divide_f64(b, s, len) } else { s };
                    let s = b.ins().fdemote(types::F32, s);
                    b.ins().store(flags(), s, out, 0);
                },
            );
        }
        RowOp::Sum | RowOp::Mean => {
            let mut s = fold(b, spec.dtype, x, xstep, len, Combine::Add, &|_, v| v);
            if spec.op == RowOp::Mean {
                s = b.ins().sdiv_imm_s(s, len as i64);
            }
            b.ins().store(flags(), s, out, 0);
        }
        RowOp::Max | RowOp::Min => {
            let combine = if spec.op == RowOp::Max { Combine::Max } else { Combine::Min };
            let m = fold(b, spec.dtype, x, xstep, len, combine, &|_, v| v);
            b.ins().store(flags(), m, out, 0);
        }
        RowOp::CumSum { exclusive, reverse } => {
            cum_sum(b, spec.dtype, (x, xstep), (out, ostep), len, exclusive, reverse)
        }
        RowOp::ArgExtreme { max, last } => {
            let i = arg_extreme(b, spec.dtype, x, xstep, len, max, last);
            b.ins().store(flags(), i, out, 0);
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
            let inv = settle(b, inv);
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
            let shift = settle(b, shift);
            map(b, len, &[(x, xstep)], (out, ostep), &|math, v| {
                let s = math.splat_value(shift);
                math.b.ins().fsub(v[0], s)
            });
        }
        RowOp::LayerNorm { eps } => {
            // the mean m₀ in f32 is off by up to an ulp of the row's magnitude, which is
            // everything when the row sits far from zero; so the second pass sums
            // d = x − m₀ (exact where x is near m₀) as well as d², and corrects both:
            // x − mean = d − c with c = Σd/n, var = Σd²/n − c²
            let sum = fold(b, DType::F32, x, xstep, len, Combine::Add, &|_, v| v);
            let m0 = b.ins().fdiv(sum, n);
            let m0 = settle(b, m0);
            let sums = fold_many(b, x, xstep, len, 2, &|math, v| {
                let mm = math.splat_value(m0);
                let d = math.b.ins().fsub(v, mm);
                let dd = math.b.ins().fmul(d, d);
                vec![d, dd]
            });
            let c = b.ins().fdiv(sums[0], n);
            let c = settle(b, c);
            let var = b.ins().fdiv(sums[1], n);
            let cc = b.ins().fmul(c, c);
            let var = b.ins().fsub(var, cc);
            let zero = b.ins().f32const(0.0);
            let var = b.ins().fmax(var, zero);
            let ok = statistics_usable(b, sums[1], var, eps);
            let inv = inverse_root(b, var, eps);
            let inv = settle(b, inv);
            let (scale, bias) = ((ps[0], spec.params[0].step), (ps[1], spec.params[1].step));
            branch(
                b,
                ok,
                |b| {
                    map(b, len, &[(x, xstep), scale, bias], (out, ostep), &|math, v| {
                        // (x − m₀) − c, not x − (m₀ + c): the sum would round c away
                        let (mm, cc, ii) = (math.splat_value(m0), math.splat_value(c), math.splat_value(inv));
                        let d = math.b.ins().fsub(v[0], mm);
                        let d = math.b.ins().fsub(d, cc);
                        let d = math.b.ins().fmul(d, ii);
                        let d = math.b.ins().fmul(d, v[1]);
                        math.b.ins().fadd(d, v[2])
                    })
                },
                |b| {
                    let sum = sum_f64(b, x, xstep, len, &|_, v| v);
                    let mean = divide_f64(b, sum, len);
                    let sq = sum_f64(b, x, xstep, len, &|b, v| {
                        let d = b.ins().fsub(v, mean);
                        b.ins().fmul(d, d)
                    });
                    let inv = inverse_root_f64(b, sq, len, eps);
                    map_f64(b, len, &[(x, xstep), scale, bias], (out, ostep), &|b, v| {
                        let d = b.ins().fsub(v[0], mean);
                        let d = b.ins().fmul(d, inv);
                        let d = b.ins().fmul(d, v[1]);
                        b.ins().fadd(d, v[2])
                    });
                },
            );
        }
        RowOp::RmsNorm { eps } => {
            let sq = fold(b, DType::F32, x, xstep, len, Combine::Add, &|math, v| math.b.ins().fmul(v, v));
            let mean_square = b.ins().fdiv(sq, n);
            let ok = statistics_usable(b, sq, mean_square, eps);
            let inv = inverse_root(b, mean_square, eps);
            let inv = settle(b, inv);
            let scale = (ps[0], spec.params[0].step);
            branch(
                b,
                ok,
                |b| {
                    map(b, len, &[(x, xstep), scale], (out, ostep), &|math, v| {
                        let ii = math.splat_value(inv);
                        let d = math.b.ins().fmul(v[0], ii);
                        math.b.ins().fmul(d, v[1])
                    })
                },
                |b| {
                    let sq = sum_f64(b, x, xstep, len, &|b, v| b.ins().fmul(v, v));
                    let inv = inverse_root_f64(b, sq, len, eps);
                    map_f64(b, len, &[(x, xstep), scale], (out, ostep), &|b, v| {
                        let d = b.ins().fmul(v[0], inv);
                        b.ins().fmul(d, v[1])
                    });
                },
            );
        }
    }
}

/// `v`, pinned where it is computed. Cranelift rematerializes constants at each use, so
/// a scalar computed from one (`1/sum`, `sum/n`) counts as defined inside whatever loop
/// uses it, and is recomputed there every iteration — a division and a square root per
/// four elements. A value loaded from the stack is defined where the load is, and
/// loop-invariant code motion then hoists what depends on it.
fn settle(b: &mut FunctionBuilder, v: Value) -> Value {
    let ty = b.func.dfg.value_type(v);
    let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, ty.bytes(), 0));
    b.ins().stack_store(types::I64, v, slot, 0);
    b.ins().stack_load(types::I64, ty, slot, 0)
}

/// Running sums of a row, scalar: f32 accumulated in f64, i64 wrapping.
fn cum_sum(
    b: &mut FunctionBuilder,
    dtype: DType,
    (x, xstep): (Value, isize),
    (out, ostep): (Value, isize),
    len: usize,
    exclusive: bool,
    reverse: bool,
) {
    let float = dtype == DType::F32;
    let acc_ty = if float { types::F64 } else { types::I64 };
    let acc = b.declare_var(acc_ty);
    let zero = if float { b.ins().f64const(0.0) } else { b.ins().iconst(types::I64, 0) };
    b.def_var(acc, zero);
    let esize = dtype.byte_size() as i64;
    let (lo, hi) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, len as i64));
    counted_loop(b, lo, hi, 1, |b, k| {
        let i = if reverse {
            let last = b.ins().iconst(types::I64, len as i64 - 1);
            b.ins().isub(last, k)
        } else {
            k
        };
        let xo = b.ins().imul_imm_s(i, xstep as i64 * esize);
        let xa = b.ins().iadd(x, xo);
        let v = b.ins().load(scalar_type(dtype), flags(), xa, 0);
        let v = if float { b.ins().fpromote(types::F64, v) } else { v };
        let oo = b.ins().imul_imm_s(i, ostep as i64 * esize);
        let oa = b.ins().iadd(out, oo);
        let before = b.use_var(acc);
        let after = if float { b.ins().fadd(before, v) } else { b.ins().iadd(before, v) };
        b.def_var(acc, after);
        let written = if exclusive { before } else { after };
        let written = if float { b.ins().fdemote(types::F32, written) } else { written };
        b.ins().store(flags(), written, oa, 0);
    });
}

/// The index (i64) of the row's largest (`max`) or smallest element, scalar: the first
/// of ties, or the `last`; a NaN counts as both, as in the interpreter.
fn arg_extreme(
    b: &mut FunctionBuilder,
    dtype: DType,
    x: Value,
    step: isize,
    len: usize,
    max: bool,
    last: bool,
) -> Value {
    let ty = scalar_type(dtype);
    let esize = dtype.byte_size() as i64;
    let (best, index) = (b.declare_var(ty), b.declare_var(types::I64));
    let first = b.ins().load(ty, flags(), x, 0);
    b.def_var(best, first);
    let zero = b.ins().iconst(types::I64, 0);
    b.def_var(index, zero);
    let (lo, hi) = (b.ins().iconst(types::I64, 1), b.ins().iconst(types::I64, len as i64));
    counted_loop(b, lo, hi, 1, |b, i| {
        let off = b.ins().imul_imm_s(i, step as i64 * esize);
        let addr = b.ins().iadd(x, off);
        let v = b.ins().load(ty, flags(), addr, 0);
        let m = b.use_var(best);
        let take = if dtype == DType::F32 {
            let (beats, tie) = if max {
                (FloatCC::GreaterThan, FloatCC::GreaterThanOrEqual)
            } else {
                (FloatCC::LessThan, FloatCC::LessThanOrEqual)
            };
            let wins = b.ins().fcmp(if last { tie } else { beats }, v, m);
            let v_nan = b.ins().fcmp(FloatCC::Unordered, v, v);
            let m_nan = b.ins().fcmp(FloatCC::Unordered, m, m);
            let wins = b.ins().bor(wins, v_nan);
            // once a NaN is the best, only a later NaN (for `last`) replaces it
            let after_nan = if last { v_nan } else { b.ins().iconst(types::I8, 0) };
            b.ins().select(m_nan, after_nan, wins)
        } else {
            use cranelift_codegen::ir::condcodes::IntCC;
            let cc = match (max, last) {
                (true, false) => IntCC::SignedGreaterThan,
                (true, true) => IntCC::SignedGreaterThanOrEqual,
                (false, false) => IntCC::SignedLessThan,
                (false, true) => IntCC::SignedLessThanOrEqual,
            };
            b.ins().icmp(cc, v, m)
        };
        let nb = b.ins().select(take, v, m);
        b.def_var(best, nb);
        let k = b.use_var(index);
        let nk = b.ins().select(take, i, k);
        b.def_var(index, nk);
    });
    b.use_var(index)
}

/// Π x[i] over a row of f32, widened to f64.
fn product_f64(b: &mut FunctionBuilder, x: Value, step: isize, len: usize) -> Value {
    fold_f64(b, x, step, len, 1.0, &|_, v| v, &|b, a, v| b.ins().fmul(a, v))
}

/// Π x[i] over a row of i64, wrapping.
fn product_i64(b: &mut FunctionBuilder, x: Value, step: isize, len: usize) -> Value {
    let acc = b.declare_var(types::I64);
    let one = b.ins().iconst(types::I64, 1);
    b.def_var(acc, one);
    let (lo, hi) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, len as i64));
    counted_loop(b, lo, hi, 1, |b, i| {
        let off = b.ins().imul_imm_s(i, step as i64 * 8);
        let addr = b.ins().iadd(x, off);
        let v = b.ins().load(types::I64, flags(), addr, 0);
        let a = b.use_var(acc);
        let a = b.ins().imul(a, v);
        b.def_var(acc, a);
    });
    b.use_var(acc)
}

/// 1/√(var + eps).
fn inverse_root(b: &mut FunctionBuilder, var: Value, eps: f32) -> Value {
    let e = b.ins().f32const(eps);
    let v = b.ins().fadd(var, e);
    let r = b.ins().sqrt(v);
    let one = b.ins().f32const(1.0);
    b.ins().fdiv(one, r)
}

/// 1/√(sum/len + eps), in f64.
fn inverse_root_f64(b: &mut FunctionBuilder, sum: Value, len: usize, eps: f32) -> Value {
    let mean = divide_f64(b, sum, len);
    let e = b.ins().f64const(f64::from(eps));
    let v = b.ins().fadd(mean, e);
    let r = b.ins().sqrt(v);
    let one = b.ins().f64const(1.0);
    b.ins().fdiv(one, r)
}

fn divide_f64(b: &mut FunctionBuilder, v: Value, len: usize) -> Value {
    let n = b.ins().f64const(len as f64);
    b.ins().fdiv(v, n)
}

/// Whether f32 row statistics can be used: the accumulated squares are finite, and,
/// without an epsilon to keep the root away from zero, the variance is not lost below
/// the smallest normal f32.
fn statistics_usable(b: &mut FunctionBuilder, squares: Value, var: Value, eps: f32) -> Value {
    let ok = is_finite(b, squares);
    if eps > 0.0 {
        return ok;
    }
    let tiny = b.ins().f32const(f32::MIN_POSITIVE);
    let normal = b.ins().fcmp(FloatCC::GreaterThanOrEqual, var, tiny);
    b.ins().band(ok, normal)
}

/// 1 where the scalar f32 `v` is neither infinite nor NaN.
fn is_finite(b: &mut FunctionBuilder, v: Value) -> Value {
    let a = b.ins().fabs(v);
    let inf = b.ins().f32const(f32::INFINITY);
    b.ins().fcmp(FloatCC::LessThan, a, inf)
}

/// `if cond { then } else { otherwise }`; code after it continues in one block.
fn branch(
    b: &mut FunctionBuilder,
    cond: Value,
    then: impl FnOnce(&mut FunctionBuilder),
    otherwise: impl FnOnce(&mut FunctionBuilder),
) {
    let (yes, no, done) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().brif(cond, yes, &[], no, &[]);
    b.switch_to_block(yes);
    then(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(no);
    otherwise(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(done);
}

/// Σ mapped(x[i]) over a row of f32, each element widened to f64: the slow path of
/// rows whose f32 statistics overflowed.
fn sum_f64(
    b: &mut FunctionBuilder,
    x: Value,
    step: isize,
    len: usize,
    mapped: &dyn Fn(&mut FunctionBuilder, Value) -> Value,
) -> Value {
    fold_f64(b, x, step, len, 0.0, mapped, &|b, a, v| b.ins().fadd(a, v))
}

/// `start ⊕ mapped(x[0]) ⊕ mapped(x[1]) …` over a row of f32, each element widened to
/// f64, in order.
fn fold_f64(
    b: &mut FunctionBuilder,
    x: Value,
    step: isize,
    len: usize,
    start: f64,
    mapped: &dyn Fn(&mut FunctionBuilder, Value) -> Value,
    combine: &dyn Fn(&mut FunctionBuilder, Value, Value) -> Value,
) -> Value {
    let acc = b.declare_var(types::F64);
    let init = b.ins().f64const(start);
    b.def_var(acc, init);
    let (lo, hi) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, len as i64));
    counted_loop(b, lo, hi, 1, |b, i| {
        let off = b.ins().imul_imm_s(i, step as i64 * 4);
        let addr = b.ins().iadd(x, off);
        let v = b.ins().load(types::F32, flags(), addr, 0);
        let v = b.ins().fpromote(types::F64, v);
        let v = mapped(b, v);
        let a = b.use_var(acc);
        let a = combine(b, a, v);
        b.def_var(acc, a);
    });
    b.use_var(acc)
}

/// [`map`] in scalar f64: inputs widened, the result rounded to f32 once.
fn map_f64(
    b: &mut FunctionBuilder,
    len: usize,
    inputs: &[(Value, isize)],
    out: (Value, isize),
    f: &dyn Fn(&mut FunctionBuilder, &[Value]) -> Value,
) {
    let zero = b.ins().iconst(types::I64, 0);
    map_scalars(b, zero, len, inputs, out, true, f);
}

/// `out[i] = f(inputs…[i])` one f32 at a time for i in [start, len), in f64 if `widen`.
fn map_scalars(
    b: &mut FunctionBuilder,
    start: Value,
    len: usize,
    inputs: &[(Value, isize)],
    out: (Value, isize),
    widen: bool,
    f: &dyn Fn(&mut FunctionBuilder, &[Value]) -> Value,
) {
    let hi = b.ins().iconst(types::I64, len as i64);
    counted_loop(b, start, hi, 1, |b, i| {
        let values: Vec<Value> = inputs
            .iter()
            .map(|&(a, s)| {
                let off = b.ins().imul_imm_s(i, s as i64 * 4);
                let addr = b.ins().iadd(a, off);
                let v = b.ins().load(types::F32, flags(), addr, 0);
                if widen {
                    b.ins().fpromote(types::F64, v)
                } else {
                    v
                }
            })
            .collect();
        let r = f(b, &values);
        let r = if widen { b.ins().fdemote(types::F32, r) } else { r };
        let off = b.ins().imul_imm_s(i, out.1 as i64 * 4);
        let addr = b.ins().iadd(out.0, off);
        b.ins().store(flags(), r, addr, 0);
    });
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
    folds(b, dtype, x, step, len, how, 1, &|math, v| vec![mapped(math, v)])[0]
}

/// Sums `count` values that `mapped` makes of each f32 of a row, in one pass.
fn fold_many(
    b: &mut FunctionBuilder,
    x: Value,
    step: isize,
    len: usize,
    count: usize,
    mapped: &dyn Fn(&mut Math, Value) -> Vec<Value>,
) -> Vec<Value> {
    folds(b, DType::F32, x, step, len, Combine::Add, count, mapped)
}

/// Folds each of the `count` values `mapped(x[i])` over a row with `how`; returns the
/// scalar results.
#[allow(clippy::too_many_arguments)] // fold and fold_many name the common cases
fn folds(
    b: &mut FunctionBuilder,
    dtype: DType,
    x: Value,
    step: isize,
    len: usize,
    how: Combine,
    count: usize,
    mapped: &dyn Fn(&mut Math, Value) -> Vec<Value>,
) -> Vec<Value> {
    let ty = scalar_type(dtype);
    let esize = dtype.byte_size() as i64;
    let map_scalar = |b: &mut FunctionBuilder, v: Value| -> Vec<Value> {
        if dtype == DType::F32 {
            mapped(&mut Math { b, ty: types::F32 }, v)
        } else {
            vec![v]
        }
    };
    // the first element starts the fold: no identity needed for max and min
    let first = b.ins().load(ty, flags(), x, 0);
    let first = map_scalar(b, first);
    let accs: Vec<_> = first
        .iter()
        .map(|&v| {
            let acc = b.declare_var(ty);
            b.def_var(acc, v);
            acc
        })
        .collect();
    assert_eq!(accs.len(), count, "mapped makes one value per fold");
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
        let v0 = b.ins().load(types::F32X4, flags(), x, 4);
        let v0 = mapped(&mut Math { b, ty: types::F32X4 }, v0);
        let vaccs: Vec<_> = v0
            .iter()
            .map(|&v| {
                let vacc = b.declare_var(types::F32X4);
                b.def_var(vacc, v);
                let vnan = b.declare_var(types::I32X4);
                if extreme.is_some() {
                    let n0 = unordered(b, v);
                    b.def_var(vnan, n0);
                }
                (vacc, vnan)
            })
            .collect();
        let one = b.ins().iconst(types::I64, 1 + LANES);
        let after = counted_loop(b, one, hi, LANES, |b, i| {
            let off = b.ins().imul_imm_s(i, 4);
            let addr = b.ins().iadd(x, off);
            let v = b.ins().load(types::F32X4, flags(), addr, 0);
            let vs = mapped(&mut Math { b, ty: types::F32X4 }, v);
            for (&(vacc, vnan), v) in vaccs.iter().zip(vs) {
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
            }
        });
        for (&acc, &(vacc, vnan)) in accs.iter().zip(&vaccs) {
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
        }
        start = after;
    }
    counted_loop(b, start, hi, 1, |b, i| {
        let off = b.ins().imul_imm_s(i, step as i64 * esize);
        let addr = b.ins().iadd(x, off);
        let v = b.ins().load(ty, flags(), addr, 0);
        let vs = map_scalar(b, v);
        for (&acc, v) in accs.iter().zip(vs) {
            let a = b.use_var(acc);
            let c = combine(b, how, dtype, a, v);
            b.def_var(acc, c);
        }
    });
    accs.iter().map(|&acc| b.use_var(acc)).collect()
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
    map_scalars(b, start, len, inputs, out, false, &|b, values| f(&mut Math { b, ty: types::F32 }, values));
}
