//! Tensor values: weights, constants, model inputs and outputs.
//!
//! A [`Tensor`] is an n-dimensional ndarray of one of the supported [`DType`]s. The
//! interpreter computes on these; import produces them from ONNX initializers and
//! `TensorProto` files.

use crate::{DType, TensorType};
use ndarray::{ArrayD, IxDyn};

/// An n-dimensional array of `f32`, `i64` or `bool`.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    Bool(ArrayD<bool>),
}

impl Tensor {
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::I64(_) => DType::I64,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
        }
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
        match self {
            Tensor::F32(a) => a.iter().map(|&v| v as i64).collect(),
            Tensor::I64(a) => a.iter().copied().collect(),
            Tensor::Bool(a) => a.iter().map(|&v| v as i64).collect(),
        }
    }

    /// The elements as f32 values in row-major order.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self {
            Tensor::F32(a) => a.iter().copied().collect(),
            Tensor::I64(a) => a.iter().map(|&v| v as f32).collect(),
            Tensor::Bool(a) => a.iter().map(|&v| v as u8 as f32).collect(),
        }
    }

    /// If this is an f32 tensor whose elements are all the same (bitwise), that value.
    /// Such constants become `fill` nodes instead of weights.
    pub fn splat_value(&self) -> Option<f32> {
        let a = self.as_f32()?;
        let first = *a.iter().next()?;
        a.iter().all(|v| v.to_bits() == first.to_bits()).then_some(first)
    }
}
