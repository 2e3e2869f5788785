//! The inputs a case runs on, searched so that most cases stay inside what f32 computes.
//!
//! A random graph on random inputs easily leaves the range of f32: `exp(1/x)` overflows
//! where x is near zero, `log` of a negative input is NaN, a sum of such values cancels.
//! Like NNSmith, which searches for inputs that avoid NaN and infinity, each case tries a
//! fixed sequence of [`DRAWS`] — standard normal, magnitudes in [0.5, 1.5] of either
//! sign (no values near zero), positive magnitudes in [0.5, 1.5] — each with its own
//! seed, and takes the first on which every value is finite and no op is beyond f32
//! ([`super::range`]). Failing that, the first draw that is not beyond f32 (its
//! infinities and NaNs are then checked against the interpreter's), failing that, the
//! first draw: the case is beyond f32.
//!
//! Draw 0 is what every case ran on before the search existed (standard normal, seed 0),
//! so a saved regression that names no draw replays as it was found.

use super::range::{assess, Range};
use crate::rng::Rng;
use saturate_egraph::{DType, Graph, Tensor};

/// How one draw makes an f32 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Standard normal.
    Normal,
    /// Uniform magnitude in [0.5, 1.5], random sign.
    AwayFromZero,
    /// Uniform in [0.5, 1.5].
    Positive,
}

/// The draws a case tries, in order: (distribution, seed).
pub const DRAWS: [(Distribution, u64); 9] = [
    (Distribution::Normal, 0),
    (Distribution::AwayFromZero, 1),
    (Distribution::Positive, 2),
    (Distribution::Normal, 3),
    (Distribution::AwayFromZero, 4),
    (Distribution::Positive, 5),
    (Distribution::Normal, 6),
    (Distribution::AwayFromZero, 7),
    (Distribution::Positive, 8),
];

/// The inputs of draw `k` (see [`DRAWS`]); integer inputs are zeros, booleans false.
pub fn draw(graph: &Graph, k: usize) -> Result<Vec<Tensor>, String> {
    let (distribution, seed) =
        *DRAWS.get(k).ok_or_else(|| format!("draw {k} does not exist (0 to {})", DRAWS.len() - 1))?;
    let metas = graph.check().map_err(|e| e.to_string())?;
    let mut rng = Rng::new(seed);
    let mut value = || match distribution {
        Distribution::Normal => rng.normal() as f32,
        Distribution::AwayFromZero => {
            let m = 0.5 + rng.unit() as f32;
            if rng.chance(0.5) {
                -m
            } else {
                m
            }
        }
        Distribution::Positive => 0.5 + rng.unit() as f32,
    };
    Ok(graph
        .inputs
        .iter()
        .map(|p| {
            let ty = graph.tensor_type(&metas, p.id);
            let shape = ndarray::IxDyn(&ty.shape);
            match ty.dtype {
                DType::F32 => Tensor::F32(
                    ndarray::ArrayD::from_shape_vec(shape, (0..ty.numel()).map(|_| value()).collect())
                        .expect("sizes match"),
                ),
                DType::I64 => Tensor::I64(ndarray::ArrayD::zeros(shape)),
                DType::Bool => Tensor::Bool(ndarray::ArrayD::from_elem(shape, false)),
                stored => Tensor::F32(
                    ndarray::ArrayD::from_shape_vec(shape, (0..ty.numel()).map(|_| value()).collect())
                        .expect("sizes match"),
                )
                .cast(stored),
            }
        })
        .collect())
}

/// The inputs a case runs on: which draw, the tensors, and what they give.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub draw: usize,
    pub inputs: Vec<Tensor>,
    pub range: Range,
    /// What the first draw gave (the same as `range` when it was taken).
    pub first: Range,
}

/// Draw `k`'s inputs, assessed.
pub fn pinned(graph: &Graph, k: usize) -> Result<Chosen, String> {
    let inputs = draw(graph, k)?;
    let range = assess(graph, &inputs)?;
    Ok(Chosen { draw: k, inputs, first: range.clone(), range })
}

/// Searches the draws as the module docs say.
pub fn search(graph: &Graph) -> Result<Chosen, String> {
    let mut computable: Option<Chosen> = None;
    let mut first: Option<Chosen> = None;
    for k in 0..DRAWS.len() {
        let mut chosen = pinned(graph, k)?;
        if let Some(f) = &first {
            chosen.first = f.range.clone();
        }
        if chosen.range.beyond.is_none() {
            if chosen.range.finite {
                return Ok(chosen);
            }
            if computable.is_none() {
                computable = Some(chosen.clone());
            }
        }
        if first.is_none() {
            first = Some(chosen);
        }
    }
    Ok(computable.or(first).expect("there are draws"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(body: &str) -> Graph {
        saturate_egraph::sexp::parse(&format!("(saturate-graph 1)\n{body}\n"), "t", None).unwrap()
    }

    #[test]
    fn the_first_clean_draw_is_taken() {
        // ordinary: the first draw
        let g = graph("(input %x f32 [40])\n(output \"y\" (tanh %x))");
        assert_eq!(search(&g).unwrap().draw, 0);
        // exp(10/x) overflows for standard-normal x near zero; not for |x| >= 0.5
        let g = graph("(input %x f32 [40])\n(output \"y\" (exp (reciprocal (mul %x (fill 0.1 [])))))");
        assert!(!pinned(&g, 0).unwrap().range.finite);
        let chosen = search(&g).unwrap();
        assert_eq!((chosen.draw, chosen.range.finite), (1, true));
        // log needs positive values: the third draw
        let g = graph("(input %x f32 [40])\n(output \"y\" (log %x))");
        assert_eq!(search(&g).unwrap().draw, 2);
    }

    #[test]
    fn hopeless_cases_keep_a_computable_draw() {
        // NaN on every draw: the first draw, still computable
        let g = graph("(input %x f32 [8])\n(output \"y\" (log (neg (exp %x))))");
        let chosen = search(&g).unwrap();
        assert_eq!((chosen.draw, chosen.range.finite, chosen.range.beyond.is_none()), (0, false, true));
    }

    #[test]
    fn draws_are_deterministic_and_distinct() {
        let g = graph("(input %x f32 [16])\n(output \"y\" (neg %x))");
        assert_eq!(draw(&g, 4).unwrap(), draw(&g, 4).unwrap());
        assert_ne!(draw(&g, 1).unwrap(), draw(&g, 4).unwrap());
        let positive = draw(&g, 2).unwrap()[0].to_f32_vec();
        assert!(positive.iter().all(|&v| (0.5..1.5).contains(&v)));
        let away = draw(&g, 1).unwrap()[0].to_f32_vec();
        assert!(away.iter().all(|&v| (0.5..1.5).contains(&v.abs())) && away.iter().any(|&v| v < 0.0));
        assert!(draw(&g, DRAWS.len()).is_err());
    }
}
