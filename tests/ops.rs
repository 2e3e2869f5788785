//! Semantics of supported ops beyond what their ONNX node tests exercise (Cast,
//! CastLike, Equal, Einsum and CumSum on f32, i64 and bool), and the runtime errors of
//! the interpreter.

mod support;

use saturate_egraph::onnx;
use saturate_egraph::Tensor;
use saturate_verify::{run, Interpreter};
use std::collections::HashMap;
use support::*;

fn run_model(model: &Model, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let graph = onnx::import_model(&model.proto(), None, &Interpreter, &HashMap::new()).map_err(|e| e.to_string())?;
    run(&graph, inputs).map_err(|e| e.to_string())
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.to_vec()).unwrap())
}

fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.to_vec()).unwrap())
}

#[test]
fn cast_truncates_toward_zero_and_maps_nonzero_to_true() {
    let to_i64 =
        Model::new(13).input("x", FLOAT, &[5]).node("Cast", &["x"], &["y"], vec![attr_int("to", 7)]).output("y");
    let y = run_model(&to_i64, &[f32s(&[5], &[1.9, -1.9, 0.0, 2.5, -0.5])]).unwrap();
    assert_eq!(y[0], i64s(&[5], &[1, -1, 0, 2, 0]));

    let to_bool_and_back = Model::new(13)
        .input("x", FLOAT, &[3])
        .node("Cast", &["x"], &["b"], vec![attr_int("to", 9)])
        .node("Cast", &["b"], &["y"], vec![attr_int("to", 1)])
        .output("y");
    let y = run_model(&to_bool_and_back, &[f32s(&[3], &[0.0, -3.0, 0.5])]).unwrap();
    assert_eq!(y[0], f32s(&[3], &[0.0, 1.0, 1.0]));
}

#[test]
fn castlike_takes_the_type_of_its_second_input() {
    let model = Model::new(15)
        .input("x", INT64, &[3])
        .input("like", FLOAT, &[1])
        .node("CastLike", &["x", "like"], &["y"], vec![])
        .output("y");
    let y = run_model(&model, &[i64s(&[3], &[-2, 0, 7]), f32s(&[1], &[0.0])]).unwrap();
    assert_eq!(y[0], f32s(&[3], &[-2.0, 0.0, 7.0]));
}

#[test]
fn equal_broadcasts_and_compares_exactly() {
    let model = Model::new(13)
        .input("a", INT64, &[2, 3])
        .input("b", INT64, &[3])
        .node("Equal", &["a", "b"], &["e"], vec![])
        .node("Cast", &["e"], &["y"], vec![attr_int("to", 7)])
        .output("y");
    let y = run_model(&model, &[i64s(&[2, 3], &[1, 2, 3, 3, 2, 1]), i64s(&[3], &[1, 2, 1])]).unwrap();
    assert_eq!(y[0], i64s(&[2, 3], &[1, 1, 0, 0, 1, 1]));

    let floats = Model::new(13)
        .input("a", FLOAT, &[3])
        .input("b", FLOAT, &[3])
        .node("Equal", &["a", "b"], &["y"], vec![])
        .output("y");
    let y = run_model(&floats, &[f32s(&[3], &[0.0, f32::NAN, 1.0]), f32s(&[3], &[-0.0, f32::NAN, 1.0000001])]).unwrap();
    assert_eq!(y[0].as_bool().unwrap().iter().copied().collect::<Vec<_>>(), vec![true, false, false]);
}

#[test]
fn integer_division_by_zero_is_an_error_not_a_crash() {
    let model = Model::new(13)
        .input("a", INT64, &[2])
        .input("b", INT64, &[2])
        .node("Div", &["a", "b"], &["y"], vec![])
        .output("y");
    let err = run_model(&model, &[i64s(&[2], &[4, 5]), i64s(&[2], &[2, 0])]).unwrap_err();
    assert!(err.contains("integer division by zero"), "{err}");
    let ok = run_model(&model, &[i64s(&[2], &[7, -7]), i64s(&[2], &[2, 2])]).unwrap();
    assert_eq!(ok[0], i64s(&[2], &[3, -3]), "integer division truncates toward zero");
}

#[test]
fn gather_index_out_of_range_is_an_error() {
    let model = Model::new(13)
        .input("x", FLOAT, &[3])
        .input("i", INT64, &[2])
        .node("Gather", &["x", "i"], &["y"], vec![])
        .output("y");
    let err = run_model(&model, &[f32s(&[3], &[1.0, 2.0, 3.0]), i64s(&[2], &[0, 3])]).unwrap_err();
    assert!(err.contains("gather index 3 is out of range for axis 0 of size 3"), "{err}");
    let ok = run_model(&model, &[f32s(&[3], &[1.0, 2.0, 3.0]), i64s(&[2], &[-1, 0])]).unwrap();
    assert_eq!(ok[0], f32s(&[2], &[3.0, 1.0]), "negative indices count from the end");
}

/// ReduceLogSumExp is composed as m + log Σ exp(x − m): logits in the thousands (whose
/// exponentials overflow f32) give the exact answer, and its node tests are all float64.
#[test]
fn log_sum_exp_of_large_values_does_not_overflow() {
    let model = Model::new(18)
        .input("x", FLOAT, &[2, 3])
        .init(i64_tensor("axes", &[1], &[1]))
        .node("ReduceLogSumExp", &["x", "axes"], &["y"], vec![attr_int("keepdims", 0)])
        .output("y");
    let y = run_model(&model, &[f32s(&[2, 3], &[1000.0, 1000.0, -1e30, 1.0, 2.0, 3.0])]).unwrap();
    let got = y[0].to_f32_vec();
    let second = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln() as f32;
    assert_eq!(y[0].shape(), &[2]);
    assert!((got[0] - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3, "{got:?}");
    assert!((got[1] - second).abs() < 1e-5, "{got:?}");
}

/// Einsum against a brute-force reference (every assignment of the labels, summed), on
/// the equations exporters emit and on the awkward ones: implicit output, ellipsis,
/// broadcast batch, outer product, a label summed out of one operand, three operands.
#[test]
fn einsum_matches_a_brute_force_reference() {
    let cases: &[(&str, &[&[usize]])] = &[
        ("bij,bjk->bik", &[&[2, 3, 4], &[2, 4, 5]]),
        ("bhqd,bhkd->bhqk", &[&[2, 3, 4, 5], &[2, 3, 6, 5]]),
        ("ij->ji", &[&[3, 4]]),
        ("i,i->", &[&[5], &[5]]),
        ("ij->", &[&[3, 4]]),
        ("ijk->kj", &[&[2, 3, 4]]),
        ("ij,jk", &[&[3, 4], &[4, 2]]),
        ("i,j->ij", &[&[3], &[4]]),
        ("...ij,...jk->...ik", &[&[2, 3, 4], &[2, 4, 5]]),
        ("bij,jk->bki", &[&[2, 3, 4], &[4, 5]]),
        ("ij,jk,kl->il", &[&[2, 3], &[3, 4], &[4, 5]]),
        ("bi,bi->b", &[&[1, 4], &[3, 4]]),
    ];
    let mut rng = saturate_verify::rng::Rng::new(3);
    for &(equation, shapes) in cases {
        let names: Vec<String> = (0..shapes.len()).map(|i| format!("x{i}")).collect();
        let mut model = Model::new(13);
        for (n, s) in names.iter().zip(shapes) {
            model = model.input(n, FLOAT, &s.iter().map(|&d| d as i64).collect::<Vec<_>>());
        }
        let inputs_ref: Vec<&str> = names.iter().map(String::as_str).collect();
        let model = model.node("Einsum", &inputs_ref, &["y"], vec![attr_string("equation", equation)]).output("y");
        let inputs: Vec<Tensor> = shapes
            .iter()
            .map(|s| {
                let n: usize = s.iter().product();
                f32s(s, &(0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>())
            })
            .collect();
        let got = run_model(&model, &inputs).unwrap_or_else(|e| panic!("{equation}: {e}"));
        let (want, want_shape) = brute_force_einsum(equation, &inputs);
        assert_eq!(got[0].shape(), &want_shape[..], "{equation}");
        for (g, w) in got[0].to_f32_vec().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 + 1e-3 * w.abs(), "{equation}: {g} vs {w}");
        }
    }
}

/// Σ over every assignment of the labels of Π operands, for the output's labels; the
/// implicit output and `...` (as leading axes) as ONNX defines them.
fn brute_force_einsum(equation: &str, inputs: &[Tensor]) -> (Vec<f32>, Vec<usize>) {
    let (lhs, rhs) = equation.split_once("->").map_or((equation, None), |(l, r)| (l, Some(r)));
    let ellipsis = |s: &str, rank: usize| -> Vec<char> {
        match s.split_once("...") {
            Some((a, b)) => {
                let spare = rank - a.len() - b.len();
                a.chars().chain((0..spare).map(|i| char::from(b'A' + i as u8))).chain(b.chars()).collect()
            }
            None => s.chars().collect(),
        }
    };
    let terms: Vec<Vec<char>> = lhs.split(',').zip(inputs).map(|(s, t)| ellipsis(s, t.shape().len())).collect();
    let output: Vec<char> = match rhs {
        Some(r) => ellipsis(r, if r.contains("...") { r.len() - 3 + 1 } else { r.len() }),
        None => {
            let all: Vec<char> = terms.concat();
            let mut once: Vec<char> =
                all.iter().copied().filter(|c| all.iter().filter(|d| *d == c).count() == 1).collect();
            once.sort_unstable();
            once
        }
    };
    let mut labels: Vec<char> = terms.concat();
    labels.sort_unstable();
    labels.dedup();
    let size = |c: char| {
        terms
            .iter()
            .zip(inputs)
            .filter_map(|(t, x)| t.iter().position(|&d| d == c).map(|i| x.shape()[i]))
            .max()
            .unwrap()
    };
    let sizes: Vec<usize> = labels.iter().map(|&c| size(c)).collect();
    let out_shape: Vec<usize> = output.iter().map(|&c| size(c)).collect();
    let mut out = vec![0f64; out_shape.iter().product::<usize>().max(1)];
    let total: usize = sizes.iter().product();
    for flat in 0..total {
        let mut rest = flat;
        let mut value: Vec<usize> = vec![0; labels.len()];
        for k in (0..labels.len()).rev() {
            value[k] = rest % sizes[k];
            rest /= sizes[k];
        }
        let at = |c: char| value[labels.iter().position(|&d| d == c).unwrap()];
        let mut p = 1f64;
        for (t, x) in terms.iter().zip(inputs) {
            let shape = x.shape();
            let idx: Vec<usize> = t.iter().zip(shape).map(|(&c, &n)| if n == 1 { 0 } else { at(c) }).collect();
            p *= x.as_f32().unwrap()[ndarray::IxDyn(&idx)] as f64;
        }
        let mut o = 0;
        for &c in &output {
            o = o * size(c) + at(c);
        }
        out[o] += p;
    }
    (out.into_iter().map(|v| v as f32).collect(), out_shape)
}

/// CumSum (its node tests are float64): running sums along an axis, inclusive or
/// exclusive, forward or reversed, on f32 and i64, on the interpreter and the JIT.
#[test]
fn cum_sum_runs_forward_backward_inclusive_exclusive() {
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let cases: [(i64, i64, i64, [f32; 6]); 4] = [
        (1, 0, 0, [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]),
        (1, 1, 0, [0.0, 1.0, 3.0, 0.0, 4.0, 9.0]),
        (1, 0, 1, [6.0, 5.0, 3.0, 15.0, 11.0, 6.0]),
        (0, 1, 1, [4.0, 5.0, 6.0, 0.0, 0.0, 0.0]),
    ];
    for (axis, exclusive, reverse, want) in cases {
        for dtype in [FLOAT, INT64] {
            let model = Model::new(14)
                .input("x", dtype, &[2, 3])
                .init(i64_tensor("axis", &[], &[axis]))
                .node(
                    "CumSum",
                    &["x", "axis"],
                    &["y"],
                    vec![attr_int("exclusive", exclusive), attr_int("reverse", reverse)],
                )
                .output("y");
            let input = if dtype == FLOAT { f32s(&[2, 3], &x) } else { i64s(&[2, 3], &x.map(|v| v as i64)) };
            let graph = onnx::import_model(&model.proto(), None, &Interpreter, &HashMap::new()).unwrap();
            let interp = run(&graph, std::slice::from_ref(&input)).unwrap();
            let mut exe = saturate_backend::compile(&graph, &saturate_backend::Options::threads(1)).unwrap();
            let jit = exe.run(&[input]).unwrap();
            for got in [&interp[0], &jit[0]] {
                assert_eq!(got.to_f32_vec(), want, "axis {axis} exclusive {exclusive} reverse {reverse} ({dtype})");
            }
        }
    }
}

/// A GatherND case: batch dims, index shape, indices, expected output.
type GatherNdCase<'a> = (i64, &'a [i64], &'a [i64], &'a [f32]);

/// GatherND with batch dims (its node test of them is int32), negative indices counting
/// from the end, on the interpreter and the JIT.
#[test]
fn gather_nd_with_batch_dims_and_negative_indices() {
    let data: Vec<f32> = (0..8).map(|v| v as f32).collect();
    let cases: [GatherNdCase; 3] = [
        (1, &[2, 1], &[1, 0], &[2.0, 3.0, 4.0, 5.0]),
        (1, &[2, 1], &[-1, -2], &[2.0, 3.0, 4.0, 5.0]),
        (0, &[2, 2], &[1, -1, 0, 0], &[6.0, 7.0, 0.0, 1.0]),
    ];
    for (batch_dims, ishape, indices, want) in cases {
        let model = Model::new(13)
            .input("x", FLOAT, &[2, 2, 2])
            .init(i64_tensor("i", ishape, indices))
            .node("GatherND", &["x", "i"], &["y"], vec![attr_int("batch_dims", batch_dims)])
            .output("y");
        let input = f32s(&[2, 2, 2], &data);
        let graph = onnx::import_model(&model.proto(), None, &Interpreter, &HashMap::new()).unwrap();
        let interp = run(&graph, std::slice::from_ref(&input)).unwrap();
        let mut exe = saturate_backend::compile(&graph, &saturate_backend::Options::threads(1)).unwrap();
        let jit = exe.run(&[input]).unwrap();
        for got in [&interp[0], &jit[0]] {
            assert_eq!(got.shape(), &[2, 2]);
            assert_eq!(got.to_f32_vec(), want, "batch_dims {batch_dims}, indices {indices:?}");
        }
    }
}
