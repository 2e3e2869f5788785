//! Rust functions generated code calls: the f64 elementwise functions.
//!
//! f64 is rare in models and Cranelift has no f64 transcendental functions, so a loop
//! over f64 elements calls the op table's own f64 definition of each function (the one
//! the interpreter evaluates) through these `extern "C"` trampolines: the same value,
//! bit for bit. Comparisons and selects stay inline.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, Value};
use cranelift_frontend::FunctionBuilder;
use saturate_egraph::{BinaryOp, UnaryOp};

/// `UnaryOp::ALL[op]` of `x` with its params, as the op table defines it on f64.
extern "C" fn unary_f64(op: u32, x: f64, p0: f32, p1: f32) -> f64 {
    let d = UnaryOp::ALL[op as usize].desc();
    let params = [p0, p1];
    match (d.float, d.predicate) {
        (_, Some(test)) => f64::from(u8::from(test(x, &params[..d.params.len()]))),
        (Some(f), None) => f(x, &params[..d.params.len()]),
        (None, None) => f64::NAN, // type checking admits f64 only where one is defined
    }
}

/// `BinaryOp::ALL[op]` of `x` and `y`, as the op table defines it on f64.
extern "C" fn binary_f64(op: u32, x: f64, y: f64) -> f64 {
    match BinaryOp::ALL[op as usize].desc().float {
        Some(f) => f(x, y),
        None => f64::NAN,
    }
}

fn call(b: &mut FunctionBuilder, address: usize, params: &[types::Type], args: &[Value]) -> Value {
    let mut sig = Signature::new(b.func.signature.call_conv);
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns.push(AbiParam::new(types::F64));
    let sig = b.import_signature(sig);
    let callee = b.ins().iconst(types::I64, address as i64);
    let call = b.ins().call_indirect(sig, callee, args);
    b.inst_results(call)[0]
}

/// A call of unary function `op` on the f64 `x`; a predicate's result is a bool byte.
pub fn unary(b: &mut FunctionBuilder, op: UnaryOp, params: [f32; 2], x: Value) -> Value {
    let index = UnaryOp::ALL.iter().position(|&o| o == op).expect("an op of the table") as i64;
    let op_value = b.ins().iconst(types::I32, index);
    let (p0, p1) = (b.ins().f32const(params[0]), b.ins().f32const(params[1]));
    let f = unary_f64 as extern "C" fn(u32, f64, f32, f32) -> f64;
    let y = call(b, f as usize, &[types::I32, types::F64, types::F32, types::F32], &[op_value, x, p0, p1]);
    if op.desc().predicate.is_some() {
        let zero = b.ins().f64const(0.0);
        b.ins().fcmp(cranelift_codegen::ir::condcodes::FloatCC::NotEqual, y, zero)
    } else {
        y
    }
}

/// A call of binary function `op` on the f64s `x` and `y`.
pub fn binary(b: &mut FunctionBuilder, op: BinaryOp, x: Value, y: Value) -> Value {
    let index = BinaryOp::ALL.iter().position(|&o| o == op).expect("an op of the table") as i64;
    let op_value = b.ins().iconst(types::I32, index);
    let f = binary_f64 as extern "C" fn(u32, f64, f64) -> f64;
    call(b, f as usize, &[types::I32, types::F64, types::F64], &[op_value, x, y])
}
