//! Element types a tensor can hold, and what converting between them means.
//!
//! saturate *computes* in three types: `f32` for real numbers, `i64` for integers
//! (shapes, indices, integer arithmetic) and `bool` for masks. It *stores* more: a
//! tensor may also be `f16`, `f64`, `i8`, `u8`, `i16`, `u16`, `i32` or `u32`, and it
//! stays that type through every op that only moves elements (reshape, transpose,
//! gather, concat, slice, pad, where, …). An op that computes on such a tensor works in
//! its [`compute`](DType::compute) type: ONNX import casts the operands there and the
//! result back, so `int8 + int8` wraps at 8 bits and `f16 · f16` rounds to f16 after
//! every op, as ONNX (and numpy) specify. `f64` is between the two: the elementwise
//! functions (every unary and binary function of the op table, comparisons, `where`)
//! compute on it in f64, exactly as the interpreter's f64 evaluation does, in the JIT
//! too; every other op (reductions, normalizations, products, convolutions) runs it in
//! f32, with 24 bits of precision, not 53.
//!
//! [`Element`] is the Rust side of each type: how an element converts (the meaning of
//! `cast`, shared by the interpreter and by constant folding) and how it is laid out in
//! bytes. Any other ONNX element type is rejected at import with an error naming the
//! tensor.

use crate::Tensor;
use ndarray::ArrayD;
use std::fmt;
use std::str::FromStr;

pub use half::f16;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DType {
    F32,
    I64,
    Bool,
    F16,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
}

impl DType {
    /// All element types, in the order they are listed in docs and errors.
    pub const ALL: [DType; 11] = [
        DType::F32,
        DType::I64,
        DType::Bool,
        DType::F16,
        DType::F64,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
    ];

    /// The types ops compute in.
    pub const COMPUTE: [DType; 3] = [DType::F32, DType::I64, DType::Bool];

    /// The spelling used in S-expressions and messages: `f32`, `i64`, `bool`, `u8`, …
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::F16 => "f16",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::I32 => "i32",
            DType::U32 => "u32",
        }
    }

    /// The `TensorProto.DataType` code of this type.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
        }
    }

    /// The type for an ONNX `TensorProto.DataType` code, if saturate supports it.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.onnx_code() == code)
    }

    /// Size of one element in bytes, as stored in ONNX `raw_data`.
    pub fn byte_size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::F16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// The type arithmetic on this type runs in: `f32` for floats, `i64` for integers.
    pub fn compute(self) -> DType {
        match self {
            DType::F32 | DType::F16 | DType::F64 => DType::F32,
            DType::Bool => DType::Bool,
            _ => DType::I64,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::F64)
    }

    /// Whether this is an integer type (not bool).
    pub fn is_integer(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    /// Whether tensors of this type are only stored and moved, never computed on by
    /// ops other than the elementwise functions (see [`computes_elementwise`](Self::computes_elementwise)).
    pub fn is_storage_only(self) -> bool {
        self.compute() != self
    }

    /// Whether the elementwise functions (unary, binary, comparisons) compute on this
    /// type as it is: the compute types, and f64.
    pub fn computes_elementwise(self) -> bool {
        !self.is_storage_only() || self == DType::F64
    }
}

/// The ONNX name of an element-type code, for error messages about types we do not support.
pub fn onnx_type_name(code: i32) -> &'static str {
    match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        17..=20 => "FLOAT8",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        _ => "unknown",
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| {
            let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
            format!("unknown dtype `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// One element of a tensor of [`Element::DTYPE`]: its conversions, which define `cast`
/// (as numpy's `astype` does, except where numpy is platform-dependent), and its bytes.
///
/// - float → float rounds to nearest, ties to even (f64 → f16 directly, not via f32);
/// - float → integer truncates toward zero and saturates at the type's range, NaN to 0;
/// - integer → integer wraps (keeps the low bits), integer → float rounds to nearest;
/// - anything → bool is "not zero" (NaN is true), bool → anything is 0 or 1.
pub trait Element: Copy + PartialEq + fmt::Debug + Default + Send + Sync + 'static {
    const DTYPE: DType;
    /// The value as f64 (exact, except i64 beyond 2⁵³).
    fn to_f64(self) -> f64;
    /// The value as i64: floats truncate toward zero, saturating; bools are 0 or 1.
    fn to_i64(self) -> i64;
    /// The element nearest `v` (floats), or `v` truncated and saturated (integers).
    fn from_f64(v: f64) -> Self;
    /// `v` wrapped to the type's width (integers), or rounded to nearest (floats).
    fn from_i64(v: i64) -> Self;
    /// Appends the element's little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
    /// Reads an element from exactly [`DType::byte_size`] little-endian bytes.
    fn get_le(bytes: &[u8]) -> Self;
    /// The array inside `t`, if `t` holds this type.
    fn array(t: &Tensor) -> Option<&ArrayD<Self>>;
    /// The tensor holding `a`.
    fn tensor(a: ArrayD<Self>) -> Tensor;

    /// This element converted to `T`, as `cast` defines it.
    fn cast<T: Element>(self) -> T {
        if T::DTYPE == DType::Bool {
            // "not zero": a NaN is true, as in numpy
            return T::from_i64(i64::from(self.to_f64() != 0.0));
        }
        if Self::DTYPE.is_float() {
            T::from_f64(self.to_f64())
        } else {
            T::from_i64(self.to_i64())
        }
    }
}

/// [`Element::array`] and [`Element::tensor`] for the variant `$d` of [`Tensor`].
macro_rules! tensor_variant {
    ($d:ident) => {
        fn array(t: &Tensor) -> Option<&ArrayD<Self>> {
            match t {
                Tensor::$d(a) => Some(a),
                _ => None,
            }
        }
        fn tensor(a: ArrayD<Self>) -> Tensor {
            Tensor::$d(a)
        }
    };
}

macro_rules! integer_element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_f64(v: f64) -> Self {
                v as $t // truncates, saturates, NaN → 0
            }
            fn from_i64(v: i64) -> Self {
                v as $t // wraps
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("one element's bytes"))
            }
            tensor_variant!($d);
        }
    };
}

integer_element!(i64, I64);
integer_element!(i8, I8);
integer_element!(u8, U8);
integer_element!(i16, I16);
integer_element!(u16, U16);
integer_element!(i32, I32);
integer_element!(u32, U32);

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    tensor_variant!(F32);
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn from_i64(v: i64) -> Self {
        v as f32
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("one element's bytes"))
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    tensor_variant!(F64);
    fn to_f64(self) -> f64 {
        self
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn from_i64(v: i64) -> Self {
        v as f64
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get_le(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("one element's bytes"))
    }
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    tensor_variant!(F16);
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_i64(self) -> i64 {
        f32::from(self) as i64
    }
    fn from_f64(v: f64) -> Self {
        f16_nearest(v)
    }
    fn from_i64(v: i64) -> Self {
        // every i64 that f32 rounds to a different value lies beyond f16's range
        f16_nearest(v as f32 as f64)
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn get_le(bytes: &[u8]) -> Self {
        f16::from_bits(u16::from_le_bytes(bytes.try_into().expect("one element's bytes")))
    }
}

/// The f16 nearest `v`, ties to even. (`half`'s `f16::from_f64` goes through f32 where
/// the CPU converts f32 to f16 in hardware, and so rounds twice.)
fn f16_nearest(v: f64) -> f16 {
    if v.is_nan() {
        return f16::NAN;
    }
    let a = v.abs();
    if a >= 65520.0 {
        // beyond the largest f16 (65504) by half its last place or more
        return if v < 0.0 { f16::NEG_INFINITY } else { f16::INFINITY };
    }
    // f16 values near `a` are k·2^e for integers k < 2¹¹; e is fixed below 2⁻¹⁴
    let exponent = ((a.to_bits() >> 52) as i32 - 1023).max(-14);
    let place = 2f64.powi(exponent - 10);
    let k = (a / place).round_ties_even(); // a / place is exact: a power of two divides
                                           // k·place is an f16 value, so converting it from f32 is exact
    let magnitude = f16::from_f32((k * place) as f32);
    if v.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    }
}

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    tensor_variant!(Bool);
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn get_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_its_name_and_onnx_code() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>(), Ok(d));
            assert_eq!(DType::from_onnx_code(d.onnx_code()), Some(d));
            assert_eq!(d.compute().compute(), d.compute());
        }
    }

    #[test]
    fn casts_follow_numpy() {
        assert_eq!((-1.7f32).cast::<i8>(), -1);
        assert_eq!(300i64.cast::<u8>(), 44); // wraps
        assert_eq!((-1i64).cast::<u32>(), u32::MAX);
        assert_eq!(1e10f32.cast::<i32>(), i32::MAX); // saturates
        assert_eq!(f32::NAN.cast::<i32>(), 0);
        assert!(f32::NAN.cast::<bool>());
        assert_eq!(true.cast::<f16>(), f16::ONE);
        // 1 + 2⁻¹¹ + 2⁻³⁰ rounds up in f16 directly, but to even (down) through f32's 1 + 2⁻¹¹
        let v = 1.0 + 2f64.powi(-11) + 2f64.powi(-30);
        assert_eq!(v.cast::<f16>(), f16::from_f64(1.0 + 2f64.powi(-10)));
        assert_eq!(65520.0f32.cast::<f16>(), f16::INFINITY);
    }
}
