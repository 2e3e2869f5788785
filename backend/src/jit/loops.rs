//! Code generation for a [`LoopSpec`]: a loop nest over its dimensions whose innermost
//! loop runs four elements at a time in `f32x4` registers, then a scalar tail.
//!
//! The outermost dimension runs over `[begin, end)` (the kernel's parameters), so the
//! runtime can give each thread a slice. The inner loop is vectorized when every
//! expression is f32, the inner dimension has at least four elements, every output is
//! contiguous in it and every operand is contiguous or broadcast (stride 0) in it;
//! otherwise it is a scalar loop that handles any dtype and any stride. Broadcast
//! operands of the inner loop are loaded once, before it. A vectorized inner loop of a
//! known, short length (a row of attention heads, of a concat, of a pad) is written out
//! whole, every load and store at a constant offset: without the counter and address
//! arithmetic of each iteration, a head transpose's 64-element rows copy 2.7× faster.

use crate::jit::math::Math;
use crate::jit::{counted_loop, flags, scalar_type};
use crate::loops::{Binary, Expr, LoopSpec, Unary};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use saturate_egraph::DType;
use saturate_egraph::UnaryOp;

const LANES: i64 = 4;

/// An inner loop of a known length is written out whole, without its counter and
/// address arithmetic, when it takes at most this many vector iterations…
const UNROLL_VECTORS: i64 = 16;
/// …and its body times the iterations stays under this many expressions.
const UNROLL_EXPRESSIONS: i64 = 128;

/// Each broadcast operand splat to an `f32x4`.
fn splat_all(b: &mut FunctionBuilder, hoisted: &[Option<Value>]) -> Vec<Option<Value>> {
    hoisted.iter().map(|h| h.map(|v| b.ins().splat(types::F32X4, v))).collect()
}

/// Whether the inner loop of `spec` can run in `f32x4` registers.
pub fn vectorizable(spec: &LoopSpec) -> bool {
    let inner = spec.dims.len() - 1;
    spec.dims[inner] >= LANES as usize
        && spec.dtypes().iter().all(|&d| d == DType::F32)
        && !spec.exprs.iter().any(|e| matches!(e, Expr::Binary(Binary::Fmod, ..)))
        && spec.operands.iter().all(|o| matches!(o.strides[inner], 0 | 1))
        && spec.outputs.iter().all(|o| o.strides[inner] == 1)
}

/// Writes the body of a kernel computing `spec`; `params` are (args, begin, end).
pub fn generate(b: &mut FunctionBuilder, params: [Value; 3], spec: &LoopSpec) {
    let [args, begin, end] = params;
    let buffers = spec.operands.len() + spec.outputs.len();
    let bases: Vec<Value> = (0..buffers).map(|k| b.ins().load(types::I64, flags(), args, (8 * k) as i32)).collect();
    let gen = Gen { spec, dtypes: spec.dtypes(), vector: vectorizable(spec) };
    gen.level(b, 0, bases, begin, end);
    b.ins().return_(&[]);
}

struct Gen<'s> {
    spec: &'s LoopSpec,
    dtypes: Vec<DType>,
    vector: bool,
}

impl Gen<'_> {
    fn element_size(&self, buffer: usize) -> i64 {
        let n = self.spec.operands.len();
        let dtype =
            if buffer < n { self.spec.operands[buffer].dtype } else { self.dtypes[self.spec.outputs[buffer - n].expr] };
        dtype.byte_size() as i64
    }

    fn stride(&self, buffer: usize, dim: usize) -> i64 {
        let n = self.spec.operands.len();
        let s = if buffer < n {
            self.spec.operands[buffer].strides[dim]
        } else {
            self.spec.outputs[buffer - n].strides[dim]
        };
        s as i64
    }

    /// Addresses of every buffer at index `i` of dimension `dim`, from those at 0.
    fn advance(&self, b: &mut FunctionBuilder, addrs: &[Value], dim: usize, i: Value) -> Vec<Value> {
        addrs
            .iter()
            .enumerate()
            .map(|(k, &a)| {
                let bytes = self.stride(k, dim) * self.element_size(k);
                if bytes == 0 {
                    a
                } else {
                    let off = b.ins().imul_imm_s(i, bytes);
                    b.ins().iadd(a, off)
                }
            })
            .collect()
    }

    fn level(&self, b: &mut FunctionBuilder, dim: usize, addrs: Vec<Value>, lo: Value, hi: Value) {
        if dim + 1 == self.spec.dims.len() {
            // below the outermost dimension (the threads' split) the bounds are 0..n
            let n = self.spec.dims[dim] as i64;
            if dim > 0 && self.vector && self.unrolls(n) {
                self.inner_unrolled(b, &addrs, n);
            } else {
                self.inner(b, &addrs, lo, hi);
            }
            return;
        }
        counted_loop(b, lo, hi, 1, |b, i| {
            let next = self.advance(b, &addrs, dim, i);
            let zero = b.ins().iconst(types::I64, 0);
            let n = b.ins().iconst(types::I64, self.spec.dims[dim + 1] as i64);
            self.level(b, dim + 1, next, zero, n);
        });
    }

    fn unrolls(&self, n: i64) -> bool {
        let vectors = n / LANES;
        vectors <= UNROLL_VECTORS && (vectors + n % LANES) * self.spec.exprs.len() as i64 <= UNROLL_EXPRESSIONS
    }

    /// The vectorized inner loop over `0..n`, written out: each load and store at a
    /// constant offset from the row's addresses.
    fn inner_unrolled(&self, b: &mut FunctionBuilder, addrs: &[Value], n: i64) {
        let hoisted = self.broadcast_operands(b, addrs);
        let splats = splat_all(b, &hoisted);
        let vectors = n / LANES;
        let element = |j: i64| (j * 4) as i32; // f32, stride 1 (`vectorizable`)
        for v in 0..vectors {
            self.f32_step(b, addrs, element(v * LANES), types::F32X4, &splats);
        }
        for j in vectors * LANES..n {
            self.f32_step(b, addrs, element(j), types::F32, &hoisted);
        }
    }

    /// The operands broadcast along the inner dimension, loaded once for the row (`None`
    /// for the others).
    fn broadcast_operands(&self, b: &mut FunctionBuilder, addrs: &[Value]) -> Vec<Option<Value>> {
        let dim = self.spec.dims.len() - 1;
        (0..self.spec.operands.len()).map(|k| (self.stride(k, dim) == 0).then(|| self.load(b, k, addrs[k]))).collect()
    }

    /// One step of an f32 inner loop (`ty` is F32 or F32X4): each operand loaded at
    /// `offset` bytes from its address unless it is in `broadcast`, every output stored.
    fn f32_step(&self, b: &mut FunctionBuilder, addrs: &[Value], offset: i32, ty: Type, broadcast: &[Option<Value>]) {
        let n_ops = self.spec.operands.len();
        let loads: Vec<Value> =
            (0..n_ops).map(|k| broadcast[k].unwrap_or_else(|| b.ins().load(ty, flags(), addrs[k], offset))).collect();
        let values = self.exprs(b, &loads, ty);
        for (j, out) in self.spec.outputs.iter().enumerate() {
            b.ins().store(flags(), values[out.expr], addrs[n_ops + j], offset);
        }
    }

    fn inner(&self, b: &mut FunctionBuilder, addrs: &[Value], lo: Value, hi: Value) {
        let dim = self.spec.dims.len() - 1;
        let n_ops = self.spec.operands.len();
        // operands broadcast along the inner dimension are loaded once
        let hoisted = self.broadcast_operands(b, addrs);
        let mut start = lo;
        if self.vector {
            let splats = splat_all(b, &hoisted);
            start = counted_loop(b, lo, hi, LANES, |b, i| {
                let at = self.advance(b, addrs, dim, i);
                self.f32_step(b, &at, 0, types::F32X4, &splats);
            });
        }
        counted_loop(b, start, hi, 1, |b, i| {
            let at = self.advance(b, addrs, dim, i);
            let loads: Vec<Value> = (0..n_ops).map(|k| hoisted[k].unwrap_or_else(|| self.load(b, k, at[k]))).collect();
            let values = self.exprs(b, &loads, types::F32);
            for (j, out) in self.spec.outputs.iter().enumerate() {
                b.ins().store(flags(), values[out.expr], at[n_ops + j], 0);
            }
        });
    }

    fn load(&self, b: &mut FunctionBuilder, operand: usize, addr: Value) -> Value {
        let ty = scalar_type(self.spec.operands[operand].dtype);
        b.ins().load(ty, flags(), addr, 0)
    }

    /// Every expression's value; `float` is `F32` or `F32X4` (then all are f32).
    fn exprs(&self, b: &mut FunctionBuilder, loads: &[Value], float: Type) -> Vec<Value> {
        let mut v: Vec<Value> = Vec::with_capacity(self.spec.exprs.len());
        for (idx, e) in self.spec.exprs.iter().enumerate() {
            let value = match *e {
                Expr::Load(k) => loads[k],
                Expr::F32(c) => Math { b, ty: float }.c(c),
                Expr::I64(c) => b.ins().iconst(types::I64, c),
                Expr::Bool(c) => b.ins().iconst(types::I8, i64::from(c)),
                Expr::Unary(op, x) => self.unary(b, op, v[x], self.dtypes[x], float),
                Expr::Binary(op, x, y) => self.binary(b, op, v[x], v[y], self.dtypes[x], float),
                Expr::Where(c, x, y) => b.ins().select(v[c], v[x], v[y]),
                Expr::Cast(x, to) => crate::jit::convert::cast(b, v[x], self.dtypes[x], to),
            };
            debug_assert!(idx == v.len());
            v.push(value);
        }
        v
    }

    /// A unary function of the op table in CLIF. The `match` over [`UnaryOp`] is
    /// exhaustive: a function added to the table does not compile until it has code here.
    fn unary(&self, b: &mut FunctionBuilder, u: Unary, x: Value, dtype: DType, float: Type) -> Value {
        use UnaryOp as U;
        let [p0, p1] = u.params;
        if dtype == DType::I64 {
            return match u.op {
                U::Neg => b.ins().ineg(x),
                U::Abs => b.ins().iabs(x),
                U::Sign => {
                    // (x > 0) − (x < 0)
                    let zero = b.ins().iconst(types::I64, 0);
                    let pos = b.ins().icmp(IntCC::SignedGreaterThan, x, zero);
                    let neg = b.ins().icmp(IntCC::SignedLessThan, x, zero);
                    let (pos, neg) = (b.ins().uextend(types::I64, pos), b.ins().uextend(types::I64, neg));
                    b.ins().isub(pos, neg)
                }
                other => unreachable!("{other:?} on i64 is rejected by type checking"),
            };
        }
        if dtype == DType::Bool {
            return b.ins().bxor_imm_s(x, 1); // not
        }
        if dtype == DType::F64 {
            return crate::jit::calls::unary(b, u.op, u.params, x);
        }
        let mut m = Math { b, ty: float };
        match u.op {
            U::Neg => m.b.ins().fneg(x),
            U::Abs => m.b.ins().fabs(x),
            U::Sqrt => m.b.ins().sqrt(x),
            U::Reciprocal => {
                let one = m.c(1.0);
                m.b.ins().fdiv(one, x)
            }
            U::Exp => m.exp(x),
            U::Log => m.log(x),
            U::Erf => m.erf(x),
            U::Tanh => m.tanh(x),
            U::Sigmoid => m.sigmoid(x),
            U::Relu => {
                // `x < 0 ? 0 : x`, so NaN stays NaN as in the interpreter
                let zero = m.c(0.0);
                let negative = m.cmp(FloatCC::LessThan, x, zero);
                m.select(negative, zero, x)
            }
            U::Softplus => m.softplus(x),
            U::Mish => {
                let sp = m.softplus(x);
                let t = m.tanh(sp);
                m.b.ins().fmul(x, t)
            }
            U::Elu | U::Selu => {
                // below zero α·(eˣ − 1) (selu: ≤ 0), above x; selu scales both by γ
                let zero = m.c(0.0);
                let e = m.exp_minus_one(x);
                let alpha = m.c(p0);
                let e = m.b.ins().fmul(e, alpha);
                let cc = if u.op == U::Elu { FloatCC::LessThan } else { FloatCC::LessThanOrEqual };
                let low = m.cmp(cc, x, zero);
                let y = m.select(low, e, x);
                if u.op == U::Selu {
                    let gamma = m.c(p1);
                    m.b.ins().fmul(y, gamma)
                } else {
                    y
                }
            }
            U::Celu => {
                // max(0, x) + min(0, α·(e^(x/α) − 1)); NaN stays NaN
                let zero = m.c(0.0);
                let inv = m.c(1.0 / p0);
                let xa = m.b.ins().fmul(x, inv);
                let e = m.exp_minus_one(xa);
                let alpha = m.c(p0);
                let e = m.b.ins().fmul(e, alpha);
                let negative = m.cmp(FloatCC::LessThan, x, zero);
                m.select(negative, e, x)
            }
            U::HardSigmoid => {
                let (alpha, beta) = (m.c(p0), m.c(p1));
                let y = m.b.ins().fmul(x, alpha);
                let y = m.b.ins().fadd(y, beta);
                clamp_unit(&mut m, y)
            }
            U::HardSwish => {
                let (sixth, half) = (m.c(1.0 / 6.0), m.c(0.5));
                let y = m.b.ins().fmul(x, sixth);
                let y = m.b.ins().fadd(y, half);
                let y = clamp_unit(&mut m, y);
                m.b.ins().fmul(x, y)
            }
            U::Sign => {
                let (zero, one, minus_one) = (m.c(0.0), m.c(1.0), m.c(-1.0));
                let pos = m.cmp(FloatCC::GreaterThan, x, zero);
                let neg = m.cmp(FloatCC::LessThan, x, zero);
                let y = m.select(neg, minus_one, x);
                m.select(pos, one, y)
            }
            U::Round => m.b.ins().nearest(x),
            U::Sin => m.sin(x),
            U::Cos => m.cos(x),
            U::IsNaN => m.b.ins().fcmp(FloatCC::Unordered, x, x),
            U::IsInf => {
                let (neg_inf, pos_inf) = (m.c(f32::NEG_INFINITY), m.c(f32::INFINITY));
                let neg = m.b.ins().fcmp(FloatCC::Equal, x, neg_inf);
                let pos = m.b.ins().fcmp(FloatCC::Equal, x, pos_inf);
                match (p0 != 0.0, p1 != 0.0) {
                    (true, true) => m.b.ins().bor(neg, pos),
                    (true, false) => neg,
                    (false, true) => pos,
                    (false, false) => m.b.ins().iconst(types::I8, 0),
                }
            }
            U::Softsign => {
                let one = m.c(1.0);
                let a = m.b.ins().fabs(x);
                let d = m.b.ins().fadd(one, a);
                m.b.ins().fdiv(x, d)
            }
            U::Floor => m.b.ins().floor(x),
            U::Ceil => m.b.ins().ceil(x),
            U::Not => unreachable!("not is on bool"),
            U::Gelu => m.gelu(x),
            U::GeluTanh => m.gelu_tanh(x),
            U::Silu => m.silu(x),
            U::LeakyRelu => {
                let zero = m.c(0.0);
                let a = m.c(p0);
                let scaled = m.b.ins().fmul(x, a);
                let negative = m.cmp(FloatCC::LessThan, x, zero);
                m.select(negative, scaled, x)
            }
            U::Clip => {
                let (l, h) = (m.c(p0), m.c(p1));
                let below = m.cmp(FloatCC::LessThan, x, l);
                let y = m.select(below, l, x);
                let above = m.cmp(FloatCC::GreaterThan, y, h);
                m.select(above, h, y)
            }
        }
    }

    fn binary(&self, b: &mut FunctionBuilder, op: Binary, x: Value, y: Value, dtype: DType, float: Type) -> Value {
        match dtype {
            DType::F32 => {
                let mut m = Math { b, ty: float };
                match op {
                    Binary::Add => m.b.ins().fadd(x, y),
                    Binary::Sub => m.b.ins().fsub(x, y),
                    Binary::Mul => m.b.ins().fmul(x, y),
                    Binary::Div => m.b.ins().fdiv(x, y),
                    Binary::Pow => m.pow(x, y),
                    Binary::Max => nan_aware_extreme(&mut m, true, x, y),
                    Binary::Min => nan_aware_extreme(&mut m, false, x, y),
                    Binary::Equal => m.b.ins().fcmp(FloatCC::Equal, x, y),
                    Binary::Less => m.b.ins().fcmp(FloatCC::LessThan, x, y),
                    Binary::Greater => m.b.ins().fcmp(FloatCC::GreaterThan, x, y),
                    Binary::Fmod => fmod_f32(m.b, x, y),
                    Binary::And | Binary::Or | Binary::Mod => {
                        unreachable!("{op:?} on f32 is rejected by type checking")
                    }
                }
            }
            DType::I64 => match op {
                Binary::Add => b.ins().iadd(x, y),
                Binary::Sub => b.ins().isub(x, y),
                Binary::Mul => b.ins().imul(x, y),
                Binary::Div => {
                    // division by zero gives 0 rather than a trap (ONNX leaves it undefined)
                    let zero = b.ins().iconst(types::I64, 0);
                    let one = b.ins().iconst(types::I64, 1);
                    let is_zero = b.ins().icmp(IntCC::Equal, y, zero);
                    let safe = b.ins().select(is_zero, one, y);
                    let q = b.ins().sdiv(x, safe);
                    b.ins().select(is_zero, zero, q)
                }
                Binary::Fmod | Binary::Mod => {
                    // the sign of the dividend (fmod), or of the divisor (mod); 0 for a
                    // division by zero, as for div
                    let zero = b.ins().iconst(types::I64, 0);
                    let one = b.ins().iconst(types::I64, 1);
                    let is_zero = b.ins().icmp(IntCC::Equal, y, zero);
                    let safe = b.ins().select(is_zero, one, y);
                    let r = b.ins().srem(x, safe);
                    let r = if op == Binary::Mod {
                        let signs = b.ins().bxor(r, safe);
                        let differ = b.ins().icmp(IntCC::SignedLessThan, signs, zero);
                        let nonzero = b.ins().icmp(IntCC::NotEqual, r, zero);
                        let fix = b.ins().band(differ, nonzero);
                        let shifted = b.ins().iadd(r, safe);
                        b.ins().select(fix, shifted, r)
                    } else {
                        r
                    };
                    b.ins().select(is_zero, zero, r)
                }
                Binary::Max => b.ins().smax(x, y),
                Binary::Min => b.ins().smin(x, y),
                Binary::Equal => b.ins().icmp(IntCC::Equal, x, y),
                Binary::Less => b.ins().icmp(IntCC::SignedLessThan, x, y),
                Binary::Greater => b.ins().icmp(IntCC::SignedGreaterThan, x, y),
                Binary::Pow | Binary::And | Binary::Or => unreachable!("{op:?} on i64 is rejected by type checking"),
            },
            DType::Bool => match op {
                Binary::And => b.ins().band(x, y),
                Binary::Or => b.ins().bor(x, y),
                Binary::Equal => b.ins().icmp(IntCC::Equal, x, y),
                Binary::Less => b.ins().icmp(IntCC::UnsignedLessThan, x, y),
                Binary::Greater => b.ins().icmp(IntCC::UnsignedGreaterThan, x, y),
                Binary::Max => b.ins().umax(x, y),
                Binary::Min => b.ins().umin(x, y),
                other => unreachable!("{other:?} on bool is rejected by type checking"),
            },
            DType::F64 => match op {
                Binary::Equal => b.ins().fcmp(FloatCC::Equal, x, y),
                Binary::Less => b.ins().fcmp(FloatCC::LessThan, x, y),
                Binary::Greater => b.ins().fcmp(FloatCC::GreaterThan, x, y),
                _ => crate::jit::calls::binary(b, op, x, y),
            },
            stored => unreachable!("{op:?} on {stored} is rejected by type checking"),
        }
    }
}

/// C's fmod of two f32 scalars, exact while |x/y| < 2²⁹: in f64, q = trunc(x/y) and
/// r = x − q·y (exact: q·y fits 53 bits), then one step back where the rounded quotient
/// overshot. Loops holding it run in scalar (see [`vectorizable`]).
fn fmod_f32(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let (xd, yd) = (b.ins().fpromote(types::F64, x), b.ins().fpromote(types::F64, y));
    let q = b.ins().fdiv(xd, yd);
    let q = b.ins().trunc(q);
    let qy = b.ins().fmul(q, yd);
    let r = b.ins().fsub(xd, qy);
    let zero = b.ins().f64const(0.0);
    let ay = b.ins().fabs(yd);
    // r must lie in (−|y|, |y|), with the sign of x
    let x_neg = b.ins().fcmp(FloatCC::LessThan, xd, zero);
    let r_neg = b.ins().fcmp(FloatCC::LessThan, r, zero);
    let r_pos = b.ins().fcmp(FloatCC::GreaterThan, r, zero);
    let wrong_sign = b.ins().select(x_neg, r_pos, r_neg);
    let ar = b.ins().fabs(r);
    let too_big = b.ins().fcmp(FloatCC::GreaterThanOrEqual, ar, ay);
    // |y| toward zero from x's side: −|y| for a positive x, +|y| for a negative one
    let minus = b.ins().fneg(ay);
    let toward_zero = b.ins().select(x_neg, ay, minus);
    let shrunk = b.ins().fadd(r, toward_zero);
    let restored = b.ins().fsub(r, toward_zero);
    let r = b.ins().select(too_big, shrunk, r);
    let r = b.ins().select(wrong_sign, restored, r);
    b.ins().fdemote(types::F32, r)
}

/// `y` clamped to [0, 1], a NaN kept.
fn clamp_unit(m: &mut Math, y: Value) -> Value {
    let (zero, one) = (m.c(0.0), m.c(1.0));
    let below = m.cmp(FloatCC::LessThan, y, zero);
    let y = m.select(below, zero, y);
    let above = m.cmp(FloatCC::GreaterThan, y, one);
    m.select(above, one, y)
}

/// `max(x, y)` or `min`, NaN if either is: `x < y ? y : x` (`y < x ? y : x`) is one
/// native maxps (minps) on x86 and keeps a NaN `x`; a NaN `y` is put back by one
/// unordered compare. CLIF's `fmax`/`fmin` take nine instructions.
fn nan_aware_extreme(m: &mut Math, max: bool, x: Value, y: Value) -> Value {
    let take_y = if max { m.cmp(FloatCC::LessThan, x, y) } else { m.cmp(FloatCC::LessThan, y, x) };
    let picked = m.select(take_y, y, x);
    let y_nan = m.cmp(FloatCC::Unordered, y, y);
    m.select(y_nan, y, picked)
}
