//! Tensor values: weights, constants, model inputs and outputs.
//!
//! A [`Tensor`] is an n-dimensional ndarray of one of the supported [`DType`]s. The
//! interpreter computes on these; import produces them from ONNX initializers and
//! `TensorProto` files.

use crate::dtype::{f16, Element};
use crate::{DType, TensorType};
use ndarray::{ArrayD, IxDyn};

/// An n-dimensional array of one of the [`DType`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    Bool(ArrayD<bool>),
    F16(ArrayD<f16>),
    F64(ArrayD<f64>),
    I8(ArrayD<i8>),
    U8(ArrayD<u8>),
    I16(ArrayD<i16>),
    U16(ArrayD<u16>),
    I32(ArrayD<i32>),
    U32(ArrayD<u32>),
}

/// Evaluates `$body` with `$a` bound to the array inside `$t`, whatever its element type
/// (`$body` is generic code over [`Element`]).
#[macro_export]
macro_rules! with_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $body,
            $crate::Tensor::I64($a) => $body,
            $crate::Tensor::Bool($a) => $body,
            $crate::Tensor::F16($a) => $body,
            $crate::Tensor::F64($a) => $body,
            $crate::Tensor::I8($a) => $body,
            $crate::Tensor::U8($a) => $body,
            $crate::Tensor::I16($a) => $body,
            $crate::Tensor::U16($a) => $body,
            $crate::Tensor::I32($a) => $body,
            $crate::Tensor::U32($a) => $body,
        }
    };
}

/// Maps the array inside `$t` to another array of the same element type with `$body`
/// (generic over [`Element`]), giving a tensor of `$t`'s dtype.
#[macro_export]
macro_rules! map_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $crate::Tensor::F32($body),
            $crate::Tensor::I64($a) => $crate::Tensor::I64($body),
            $crate::Tensor::Bool($a) => $crate::Tensor::Bool($body),
            $crate::Tensor::F16($a) => $crate::Tensor::F16($body),
            $crate::Tensor::F64($a) => $crate::Tensor::F64($body),
            $crate::Tensor::I8($a) => $crate::Tensor::I8($body),
            $crate::Tensor::U8($a) => $crate::Tensor::U8($body),
            $crate::Tensor::I16($a) => $crate::Tensor::I16($body),
            $crate::Tensor::U16($a) => $crate::Tensor::U16($body),
            $crate::Tensor::I32($a) => $crate::Tensor::I32($body),
            $crate::Tensor::U32($a) => $crate::Tensor::U32($body),
        }
    };
}

/// Builds an array of the element type of `$d` (a [`DType`]) with `$body`, generic over
/// [`Element`] with the type named `$t`, giving a tensor of that dtype.
#[macro_export]
macro_rules! tensor_of_dtype {
    ($d:expr, $t:ident => $body:expr) => {
        match $d {
            $crate::DType::F32 => {
                type $t = f32;
                $crate::Tensor::F32($body)
            }
            $crate::DType::I64 => {
                type $t = i64;
                $crate::Tensor::I64($body)
            }
            $crate::DType::Bool => {
                type $t = bool;
                $crate::Tensor::Bool($body)
            }
            $crate::DType::F16 => {
                type $t = $crate::f16;
                $crate::Tensor::F16($body)
            }
            $crate::DType::F64 => {
                type $t = f64;
                $crate::Tensor::F64($body)
            }
            $crate::DType::I8 => {
                type $t = i8;
                $crate::Tensor::I8($body)
            }
            $crate::DType::U8 => {
                type $t = u8;
                $crate::Tensor::U8($body)
            }
            $crate::DType::I16 => {
                type $t = i16;
                $crate::Tensor::I16($body)
            }
            $crate::DType::U16 => {
                type $t = u16;
                $crate::Tensor::U16($body)
            }
            $crate::DType::I32 => {
                type $t = i32;
                $crate::Tensor::I32($body)
            }
            $crate::DType::U32 => {
                type $t = u32;
                $crate::Tensor::U32($body)
            }
        }
    };
}

impl Tensor {
    pub fn dtype(&self) -> DType {
        fn of<T: Element>(_: &ArrayD<T>) -> DType {
            T::DTYPE
        }
        with_tensor!(self, a => of(a))
    }

    pub fn shape(&self) -> &[usize] {
        with_tensor!(self, a => a.shape())
    }

    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape().to_vec())
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A scalar (rank-0) f32 tensor.
    pub fn scalar_f32(value: f32) -> Tensor {
        Tensor::F32(ArrayD::from_elem(IxDyn(&[]), value))
    }

    /// An f32 tensor of the given shape with every element equal to `value`.
    pub fn filled(shape: &[usize], value: f32) -> Tensor {
        Tensor::F32(ArrayD::from_elem(IxDyn(shape), value))
    }

    /// A 1-D i64 tensor.
    pub fn i64_vec(values: Vec<i64>) -> Tensor {
        let n = values.len();
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[n]), values).expect("1-D shape matches"))
    }

    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<&ArrayD<i64>> {
        match self {
            Tensor::I64(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<&ArrayD<bool>> {
        match self {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }

    /// The elements as i64 values in row-major order, for shape and index
    /// tensors. Floats are truncated, booleans become 0/1.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        with_tensor!(self, a => a.iter().map(|&v| v.to_i64()).collect())
    }

    /// The elements as f32 values in row-major order (as `cast` converts them).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        with_tensor!(self, a => a.iter().map(|&v| v.cast::<f32>()).collect())
    }

    /// The elements as f64 values in row-major order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_tensor!(self, a => a.iter().map(|&v| v.to_f64()).collect())
    }

    /// This tensor converted to `to`, element by element as [`Element::cast`] defines.
    pub fn cast(&self, to: DType) -> Tensor {
        with_tensor!(self, a => tensor_of_dtype!(to, T => a.mapv(|v| v.cast::<T>())))
    }

    /// A tensor of `dtype` and `shape` whose every element is `value` converted (as by
    /// `cast` from f64).
    pub fn full(dtype: DType, shape: &[usize], value: f64) -> Tensor {
        tensor_of_dtype!(dtype, T => ArrayD::from_elem(IxDyn(shape), value.cast::<T>()))
    }

    /// The elements' little-endian bytes, in row-major order.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.dtype().byte_size());
        with_tensor!(self, a => a.iter().for_each(|&v| v.put_le(&mut out)));
        out
    }

    /// A tensor of type `ty` from its elements' little-endian bytes (exactly
    /// `numel × byte_size` of them).
    pub fn from_le_bytes(ty: &TensorType, bytes: &[u8]) -> Result<Tensor, String> {
        let size = ty.dtype.byte_size();
        let expected = ty.numel() * size;
        if bytes.len() != expected {
            return Err(format!("{} bytes of data, but {ty} needs {expected}", bytes.len()));
        }
        Ok(tensor_of_dtype!(ty.dtype, T => {
            let v: Vec<T> = bytes.chunks_exact(size).map(T::get_le).collect();
            ArrayD::from_shape_vec(IxDyn(&ty.shape), v).expect("length checked")
        }))
    }

    /// If this is an f32 tensor whose elements are all the same (bitwise), that value.
    /// Such constants become `fill` nodes instead of weights.
    pub fn splat_value(&self) -> Option<f32> {
        let a = self.as_f32()?;
        let first = *a.iter().next()?;
        a.iter().all(|v| v.to_bits() == first.to_bits()).then_some(first)
    }
}
