//! Element-type conversions in CLIF: the `cast` of the fused loops, for every pair of
//! [`DType`]s, with the meaning [`saturate_egraph::Element::cast`] gives it (the
//! interpreter's), so the two agree bit for bit.
//!
//! Cranelift has no half-precision arithmetic on x86, so `f16` travels as its 16 bits
//! and is converted here with integer operations: to `f32` exactly (every f16 is an
//! f32), from `f32` and from `f64` rounding to nearest, ties to even — from `f64`
//! directly, since going through f32 would round twice.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use saturate_egraph::DType;

use super::scalar_type;

/// `x`, of type `from`, converted to `to`.
pub fn cast(b: &mut FunctionBuilder, x: Value, from: DType, to: DType) -> Value {
    if from == to {
        return x;
    }
    if to == DType::Bool {
        return nonzero(b, x, from);
    }
    match (from.is_float(), to.is_float()) {
        (true, true) => float_to_float(b, x, from, to),
        (true, false) => {
            let wide = if from == DType::F16 { f16_to_f32(b, x) } else { x };
            // truncates toward zero, saturates, NaN → 0; then to the target's range
            let v = b.ins().fcvt_to_sint_sat(types::I64, wide);
            let v = clamp_to(b, v, to);
            narrow(b, v, to)
        }
        (false, true) => {
            let v = widen(b, x, from);
            match to {
                DType::F64 => b.ins().fcvt_from_sint(types::F64, v),
                DType::F32 => b.ins().fcvt_from_sint(types::F32, v),
                // exact below 2²⁴, and every i64 beyond is beyond f16's range too
                _ => {
                    let f = b.ins().fcvt_from_sint(types::F32, v);
                    f32_to_f16(b, f)
                }
            }
        }
        (false, false) => {
            let v = widen(b, x, from);
            narrow(b, v, to) // wraps
        }
    }
}

/// "Not zero" as a bool byte; a NaN is not zero.
fn nonzero(b: &mut FunctionBuilder, x: Value, from: DType) -> Value {
    match from {
        DType::F32 | DType::F64 => {
            let zero = if from == DType::F32 { b.ins().f32const(0.0) } else { b.ins().f64const(0.0) };
            b.ins().fcmp(FloatCC::NotEqual, x, zero)
        }
        DType::F16 => {
            // any bit but the sign's
            let magnitude = b.ins().band_imm_s(x, 0x7fff);
            b.ins().icmp_imm_s(IntCC::NotEqual, magnitude, 0)
        }
        _ => b.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
    }
}

/// An integer or bool as i64: sign-extended if its type is signed.
fn widen(b: &mut FunctionBuilder, x: Value, from: DType) -> Value {
    match from {
        DType::I64 => x,
        DType::I8 | DType::I16 | DType::I32 => b.ins().sextend(types::I64, x),
        _ => b.ins().uextend(types::I64, x),
    }
}

/// The low bits of an i64 as an integer of type `to`.
fn narrow(b: &mut FunctionBuilder, v: Value, to: DType) -> Value {
    if to == DType::I64 {
        v
    } else {
        b.ins().ireduce(scalar_type(to), v)
    }
}

/// An i64 clamped to the range of integer type `to`.
fn clamp_to(b: &mut FunctionBuilder, v: Value, to: DType) -> Value {
    let (lo, hi): (i64, i64) = match to {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        _ => return v,
    };
    let (lo, hi) = (b.ins().iconst(types::I64, lo), b.ins().iconst(types::I64, hi));
    let v = b.ins().smax(v, lo);
    b.ins().smin(v, hi)
}

fn float_to_float(b: &mut FunctionBuilder, x: Value, from: DType, to: DType) -> Value {
    match (from, to) {
        (DType::F32, DType::F64) => b.ins().fpromote(types::F64, x),
        (DType::F64, DType::F32) => b.ins().fdemote(types::F32, x),
        (DType::F16, DType::F32) => f16_to_f32(b, x),
        (DType::F16, DType::F64) => {
            let f = f16_to_f32(b, x);
            b.ins().fpromote(types::F64, f)
        }
        (DType::F32, DType::F16) => f32_to_f16(b, x),
        (DType::F64, DType::F16) => f64_to_f16(b, x),
        _ => unreachable!("{from} → {to} is not a float conversion"),
    }
}

/// The f32 equal to the f16 with bits `h` (an i16).
fn f16_to_f32(b: &mut FunctionBuilder, h: Value) -> Value {
    let h = b.ins().uextend(types::I32, h);
    let sign = b.ins().band_imm_s(h, 0x8000);
    let sign = b.ins().ishl_imm_s(sign, 16);
    let magnitude = b.ins().band_imm_s(h, 0x7fff);
    // exponent and fraction moved to f32's places: the value × 2⁻¹¹², normal or not,
    // so one exact multiplication by 2¹¹² rebiases it
    let moved = b.ins().ishl_imm_s(magnitude, 13);
    let f = b.ins().bitcast(types::F32, MemFlagsData::new(), moved);
    let scale = b.ins().f32const(2f32.powi(112));
    let f = b.ins().fmul(f, scale);
    let scaled = b.ins().bitcast(types::I32, MemFlagsData::new(), f);
    // infinities and NaNs keep their fraction under an all-ones exponent
    let special = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, magnitude, 0x7c00);
    let top = b.ins().bor_imm_s(moved, 0x7f80_0000);
    let bits = b.ins().select(special, top, scaled);
    let bits = b.ins().bor(bits, sign);
    b.ins().bitcast(types::F32, MemFlagsData::new(), bits)
}

/// The bits of the f16 nearest the f32 `f` (ties to even), as an i16.
fn f32_to_f16(b: &mut FunctionBuilder, f: Value) -> Value {
    let x = b.ins().bitcast(types::I32, MemFlagsData::new(), f);
    let sign = b.ins().ushr_imm_s(x, 16);
    let sign = b.ins().band_imm_s(sign, 0x8000);
    let a = b.ins().band_imm_s(x, 0x7fff_ffff);
    // normal results: round at bit 13 to even, then rebias the exponent (127 → 15)
    let odd = b.ins().ushr_imm_s(a, 13);
    let odd = b.ins().band_imm_s(odd, 1);
    let r = b.ins().iadd_imm_s(a, 0xfff);
    let r = b.ins().iadd(r, odd);
    let r = b.ins().iadd_imm_s(r, -0x3800_0000);
    let normal = b.ins().ushr_imm_s(r, 13);
    // subnormal results: adding 0.5 puts f16's last place (2⁻²⁴) at f32's, and the
    // addition rounds to even
    let magnitude = b.ins().bitcast(types::F32, MemFlagsData::new(), a);
    let half = b.ins().f32const(0.5);
    let shifted = b.ins().fadd(magnitude, half);
    let shifted = b.ins().bitcast(types::I32, MemFlagsData::new(), shifted);
    let subnormal = b.ins().iadd_imm_s(shifted, -0x3f00_0000);
    let tiny = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, a, 0x3880_0000); // below 2⁻¹⁴
    let h = b.ins().select(tiny, subnormal, normal);
    // 65520 and above round to infinity; NaN stays NaN
    let inf = b.ins().iconst(types::I32, 0x7c00);
    let big = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, a, 0x477f_f000);
    let h = b.ins().select(big, inf, h);
    let nan = b.ins().iconst(types::I32, 0x7e00);
    let is_nan = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, a, 0x7f80_0000);
    let h = b.ins().select(is_nan, nan, h);
    let h = b.ins().bor(h, sign);
    b.ins().ireduce(types::I16, h)
}

/// The bits of the f16 nearest the f64 `d` (ties to even), as an i16.
fn f64_to_f16(b: &mut FunctionBuilder, d: Value) -> Value {
    let x = b.ins().bitcast(types::I64, MemFlagsData::new(), d);
    let sign = b.ins().ushr_imm_s(x, 48);
    let sign = b.ins().band_imm_s(sign, 0x8000);
    let a = b.ins().band_imm_s(x, 0x7fff_ffff_ffff_ffff);
    // normal results: round at bit 42 to even, then rebias the exponent (1023 → 15)
    let odd = b.ins().ushr_imm_s(a, 42);
    let odd = b.ins().band_imm_s(odd, 1);
    let r = b.ins().iadd_imm_s(a, (1 << 41) - 1);
    let r = b.ins().iadd(r, odd);
    let r = b.ins().iadd_imm_s(r, -(1008i64 << 52));
    let normal = b.ins().ushr_imm_s(r, 42);
    // subnormal results: adding 2²⁸ puts f16's last place (2⁻²⁴) at f64's
    let magnitude = b.ins().bitcast(types::F64, MemFlagsData::new(), a);
    let magic = b.ins().f64const(2f64.powi(28));
    let shifted = b.ins().fadd(magnitude, magic);
    let shifted = b.ins().bitcast(types::I64, MemFlagsData::new(), shifted);
    let subnormal = b.ins().iadd_imm_s(shifted, -(2f64.powi(28).to_bits() as i64));
    let tiny = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, a, 2f64.powi(-14).to_bits() as i64);
    let h = b.ins().select(tiny, subnormal, normal);
    let inf = b.ins().iconst(types::I64, 0x7c00);
    let big = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, a, 65520f64.to_bits() as i64);
    let h = b.ins().select(big, inf, h);
    let nan = b.ins().iconst(types::I64, 0x7e00);
    let is_nan = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, a, f64::INFINITY.to_bits() as i64);
    let h = b.ins().select(is_nan, nan, h);
    let h = b.ins().bor(h, sign);
    b.ins().ireduce(types::I16, h)
}
