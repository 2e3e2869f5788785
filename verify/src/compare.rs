//! How outputs are compared: elementwise `|a - b| <= atol + rtol·|b|`, with `b` the
//! expected value; NaN matches NaN and infinities must match exactly.

use saturate_egraph::{DType, Tensor};

/// Default tolerances used across saturate (DESIGN.md).
pub const RTOL: f64 = 1e-3;
pub const ATOL: f64 = 1e-4;

/// The first disagreement between two tensors, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub reason: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Compares `actual` with `expected`: same dtype and shape, values within tolerance
/// (integers and booleans exactly).
pub fn compare(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> Result<(), Mismatch> {
    if actual.ty() != expected.ty() {
        return Err(Mismatch { reason: format!("got {}, expected {}", actual.ty(), expected.ty()) });
    }
    let shape = actual.shape().to_vec();
    let at = |flat: usize| -> Vec<usize> {
        let mut rest = flat;
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = rest % shape[d].max(1);
            rest /= shape[d].max(1);
        }
        idx
    };
    if actual.dtype().is_float() {
        let (a, b) = (actual.to_f64_vec(), expected.to_f64_vec());
        let mut worst: Option<(usize, f64, f64, f64)> = None;
        let mut bad = 0usize;
        for (i, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
            let ok = if x.is_nan() || y.is_nan() {
                x.is_nan() && y.is_nan()
            } else if x.is_infinite() || y.is_infinite() {
                x == y
            } else {
                (x - y).abs() <= atol + rtol * y.abs()
            };
            if !ok {
                bad += 1;
                let err = (x - y).abs();
                if worst.is_none_or(|w| err > w.3 || err.is_nan()) {
                    worst = Some((i, x, y, err));
                }
            }
        }
        return match worst {
            None => Ok(()),
            Some((i, x, y, _)) => {
                // the shortest text that is the value in its own type
                let show = |v: f64| if actual.dtype() == DType::F64 { v.to_string() } else { (v as f32).to_string() };
                Err(Mismatch {
                    reason: format!(
                        "{bad} of {} values differ; worst at {:?}: got {}, expected {} (rtol {rtol}, atol {atol})",
                        a.len(),
                        at(i),
                        show(x),
                        show(y)
                    ),
                })
            }
        };
    }
    // integers and booleans, exactly
    let (a, b) = (actual.to_i64_vec(), expected.to_i64_vec());
    exact(a.iter().zip(&b).position(|(x, y)| x != y), a.len(), |i| {
        format!("at {:?}: got {}, expected {}", at(i), a[i], b[i])
    })
}

fn exact(first_bad: Option<usize>, len: usize, describe: impl Fn(usize) -> String) -> Result<(), Mismatch> {
    match first_bad {
        None => Ok(()),
        Some(i) => Err(Mismatch { reason: format!("{} (of {len} values)", describe(i)) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn tolerance_is_relative_to_the_expected_value() {
        let a = Tensor::F32(arr1(&[1000.5f32, 0.0]).into_dyn());
        let b = Tensor::F32(arr1(&[1000.0f32, 0.00005]).into_dyn());
        assert!(compare(&a, &b, RTOL, ATOL).is_ok());
        let c = Tensor::F32(arr1(&[1002.0f32, 0.0]).into_dyn());
        let err = compare(&c, &b, RTOL, ATOL).unwrap_err();
        assert!(err.reason.contains("1 of 2"), "{err}");
    }

    #[test]
    fn nan_matches_only_nan() {
        let nan = Tensor::F32(arr1(&[f32::NAN]).into_dyn());
        let one = Tensor::F32(arr1(&[1.0f32]).into_dyn());
        assert!(compare(&nan, &nan, RTOL, ATOL).is_ok());
        assert!(compare(&nan, &one, RTOL, ATOL).is_err());
        assert!(compare(&one, &nan, RTOL, ATOL).is_err());
    }
}
