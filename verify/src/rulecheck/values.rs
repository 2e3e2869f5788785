//! Random input values that exercise what rules get wrong: both signs, zeros, small and
//! large magnitudes, repeated values.

use super::instance::Values;
use crate::rng::Rng;
use ndarray::{ArrayD, IxDyn};
use saturate_egraph::{DType, Tensor, TensorType};

/// A tensor of type `ty` with values drawn as `values` says.
pub fn random_tensor(rng: &mut Rng, ty: &TensorType, values: Values) -> Tensor {
    let n = ty.numel();
    let shape = IxDyn(&ty.shape);
    match ty.dtype {
        DType::F32 => {
            // one flavour per tensor, so a whole operand is large, or sparse, or small
            let flavour = rng.below(6);
            let v: Vec<f32> = (0..n)
                .map(|_| match flavour {
                    0 | 1 => rng.normal() as f32,
                    2 => {
                        if rng.chance(0.4) {
                            0.0
                        } else {
                            rng.normal() as f32
                        }
                    }
                    3 => (rng.normal() * 20.0) as f32,
                    4 => rng.range(-3, 3) as f32,
                    _ => (rng.unit() * 4.0 - 2.0) as f32,
                })
                .collect();
            Tensor::F32(ArrayD::from_shape_vec(shape, v).expect("size matches"))
        }
        DType::I64 => {
            let v: Vec<i64> = (0..n)
                .map(|_| match values {
                    Values::Index(bound) if bound > 0 => rng.range(-(bound as i64), bound as i64 - 1),
                    Values::Index(_) => 0,
                    _ => rng.range(-5, 5),
                })
                .collect();
            Tensor::I64(ArrayD::from_shape_vec(shape, v).expect("size matches"))
        }
        DType::Bool => {
            let v: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
            Tensor::Bool(ArrayD::from_shape_vec(shape, v).expect("size matches"))
        }
        // a stored type: its compute type's draw, converted
        stored => random_tensor(rng, &TensorType::new(stored.compute(), ty.shape.clone()), values).cast(stored),
    }
}
