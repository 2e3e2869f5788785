//! Symbolic dimensions: a model whose inputs have them loads once they are bound, by the
//! shapes of the inputs given (`run`, `bench`) or by `--dim NAME=N` (any command).

mod support;

use saturate_egraph::onnx::read_tensor_file;
use support::*;

/// The small model (relu(x·w + b), x: [2,3]) with x's first dimension named `batch`.
fn batched(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("batched.onnx");
    with_symbolic_dim(small_model(), 0, 0, Some("batch")).write(&path);
    path
}

fn input_of_batch(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = dir.join(format!("x{n}.pb"));
    let values: Vec<f32> = (0..n * 3).map(|i| i as f32 * 0.5 - 1.0).collect();
    write_tensor(&path, &f32_tensor("x", &[n as i64, 3], &values));
    path
}

#[test]
fn run_binds_dimensions_from_the_inputs_given() {
    let d = tempfile::tempdir().unwrap();
    let model = batched(d.path());
    for n in [1usize, 5] {
        let input = input_of_batch(d.path(), n);
        let out_dir = d.path().join(format!("out{n}"));
        let res = saturate(&[
            "run",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output-dir",
            out_dir.to_str().unwrap(),
        ]);
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
        let (_, y) = read_tensor_file(&out_dir.join("output_0.pb")).unwrap();
        assert_eq!(y.shape(), &[n, 4]);
    }
    // --dim and the input must agree
    let input = input_of_batch(d.path(), 2);
    let res = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--dim",
        "batch=4",
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        d.path().join("bad").to_str().unwrap(),
    ]);
    assert_clean_failure(&res, &["dimension `batch` is 2 here but 4 elsewhere"]);
}

#[test]
fn every_command_takes_dim() {
    let d = tempfile::tempdir().unwrap();
    let model = batched(d.path());
    let m = model.to_str().unwrap();
    let info = saturate(&["info", m, "--dim", "batch=7", "--json"]);
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    assert!(stdout(&info).contains("f32[7,3]"), "{}", stdout(&info));
    let out = d.path().join("b.sexp");
    let res = saturate(&["convert", m, "--dim", "batch=3", "-o", out.to_str().unwrap()]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(std::fs::read_to_string(&out).unwrap().contains("[3,3]"));
    let res = saturate(&["optimize", m, "--dim", "batch=3", "--json"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let res = saturate(&["bench", m, "--dim", "batch=3", "--min-time", "0.05", "--threads", "1"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    // without a binding, bench (no inputs) names the dimension and the flag
    let res = saturate(&["bench", m, "--min-time", "0.05"]);
    assert_clean_failure(&res, &["dimension `batch` is symbolic", "--dim batch=N"]);
    // a .sexp graph has static shapes
    let res = saturate(&["info", out.to_str().unwrap(), "--dim", "batch=3"]);
    assert_clean_failure(&res, &["--dim batch", "static shapes"]);
}

/// A dimension with neither a size nor a name is named after its input and axis.
#[test]
fn unnamed_dimensions_are_named_by_input_and_axis() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("anon.onnx");
    with_symbolic_dim(small_model(), 0, 0, None).write(&path);
    let res = saturate(&["info", path.to_str().unwrap()]);
    assert_clean_failure(&res, &["dimension `x[0]` is symbolic", "--dim x[0]=N"]);
    let res = saturate(&["info", path.to_str().unwrap(), "--dim", "x[0]=6"]);
    assert!(stdout(&res).contains("f32[6,3]"), "{}{}", stdout(&res), String::from_utf8_lossy(&res.stderr));
}

/// What exporters write for dynamic axes — the shape read at run time, a dimension
/// picked out of it, a new shape built from it — folds to constants once the dimension
/// is bound, and computes the right values.
#[test]
fn shape_arithmetic_of_dynamic_exports_folds_once_bound() {
    let d = tempfile::tempdir().unwrap();
    let model = Model::new(13)
        .input("x", 1, &[2, 3, 4])
        .init(i64_tensor("zero", &[], &[0]))
        .init(i64_tensor("minus_one", &[1], &[-1]))
        .init(i64_tensor("axes", &[1], &[0]))
        .node("Shape", &["x"], &["s"], vec![])
        .node("Gather", &["s", "zero"], &["n"], vec![attr_int("axis", 0)])
        .node("Unsqueeze", &["n", "axes"], &["n1"], vec![])
        .node("Concat", &["n1", "minus_one"], &["shape"], vec![attr_int("axis", 0)])
        .node("Reshape", &["x", "shape"], &["y"], vec![])
        .output("y");
    let path = d.path().join("dyn.onnx");
    with_symbolic_dim(with_symbolic_dim(model, 0, 0, Some("batch")), 0, 1, Some("seq")).write(&path);
    let input = d.path().join("x.pb");
    let values: Vec<f32> = (0..5 * 2 * 4).map(|i| i as f32).collect();
    write_tensor(&input, &f32_tensor("x", &[5, 2, 4], &values));
    let out_dir = d.path().join("out");
    let res = saturate(&[
        "run",
        path.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let (_, y) = read_tensor_file(&out_dir.join("output_0.pb")).unwrap();
    assert_eq!(y.shape(), &[5, 8]);
    assert_eq!(y.to_f32_vec(), values);
    let info = saturate(&["info", path.to_str().unwrap(), "--dim", "batch=5", "--dim", "seq=2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let ops: Vec<&String> = v["ops"].as_object().unwrap().keys().collect();
    assert_eq!(ops, ["reshape"], "the shape arithmetic folds to a constant: {v}");
}
