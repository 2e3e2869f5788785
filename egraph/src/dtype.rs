//! Element types a tensor can hold.
//!
//! saturate computes in `f32`; `i64` carries shapes and indices (Gather, Cast), and
//! `bool` carries masks (Where, comparisons). Any other ONNX element type is
//! rejected at import with an error naming the tensor.

use std::fmt;
use std::str::FromStr;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DType {
    F32,
    I64,
    Bool,
}

impl DType {
    /// All element types, in the order they are listed in docs and errors.
    pub const ALL: [DType; 3] = [DType::F32, DType::I64, DType::Bool];

    /// The spelling used in S-expressions and messages: `f32`, `i64`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// The `TensorProto.DataType` code of this type.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::I64 => 7,
            DType::Bool => 9,
        }
    }

    /// The type for an ONNX `TensorProto.DataType` code, if saturate supports it.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        match code {
            1 => Some(DType::F32),
            7 => Some(DType::I64),
            9 => Some(DType::Bool),
            _ => None,
        }
    }

    /// Size of one element in bytes, as stored in ONNX `raw_data`.
    pub fn byte_size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I64 => 8,
            DType::Bool => 1,
        }
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
        DType::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown dtype `{s}` (expected f32, i64 or bool)"))
    }
}
