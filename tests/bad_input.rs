//! Bad input gets a clear error and a non-zero exit, never a panic: one test a case.

mod support;

use support::*;
use tempfile::TempDir;

fn dir() -> TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `model` to `dir/model.onnx` and a valid [2,3] input, then runs it.
fn run_model(dir: &TempDir, model: &[u8]) -> std::process::Output {
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, model).unwrap();
    let input = dir.path().join("x.pb");
    write_tensor(&input, &f32_tensor("x", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let out = dir.path().join("out");
    saturate(&[
        "run",
        path.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ])
}

#[test]
fn empty_file() {
    let d = dir();
    let out = run_model(&d, &[]);
    assert_clean_failure(&out, &["model.onnx", "the file is empty"]);
}

#[test]
fn truncated_file() {
    let d = dir();
    let bytes = small_model().bytes();
    let out = run_model(&d, &bytes[..bytes.len() / 2]);
    assert_clean_failure(&out, &["model.onnx is not a valid ONNX file", "truncated"]);
}

#[test]
fn garbage_file() {
    let d = dir();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let out = run_model(&d, &garbage);
    assert_clean_failure(&out, &["is not a valid ONNX file"]);
}

#[test]
fn text_file_instead_of_a_model() {
    let d = dir();
    let out = run_model(&d, b"this is not a model\n");
    assert_clean_failure(&out, &["is not a valid ONNX file"]);
}

#[test]
fn unsupported_op_names_the_op_the_node_and_the_supported_list() {
    let d = dir();
    let model = Model::new(13).input("x", FLOAT, &[2, 3]).node("GridSample", &["x", "x"], &["y"], vec![]).output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["op `GridSample`", "node `gridsample_0`", "Supported ONNX ops:", "Conv", "MatMul"]);
}

#[test]
fn op_from_another_domain() {
    let d = dir();
    let mut model = Model::new(13).input("x", FLOAT, &[2, 3]).node("Relu", &["x"], &["y"], vec![]).output("y");
    model.graph.node[0].domain = Some("com.microsoft".into());
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["op `Relu` from domain `com.microsoft`"]);
}

#[test]
fn tensor_nobody_produces() {
    let d = dir();
    let model = Model::new(13).input("x", FLOAT, &[2, 3]).node("Add", &["x", "ghost"], &["y"], vec![]).output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["node `add_0` reads tensor `ghost`", "no node, graph input or initializer produces"]);
}

#[test]
fn cycle() {
    let d = dir();
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 3])
        .node("Add", &["x", "b"], &["a"], vec![])
        .node("Relu", &["a"], &["b"], vec![])
        .output("b");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["cycle", "`add_0`", "`relu_1`"]);
}

#[test]
fn raw_data_of_the_wrong_length_names_the_initializer() {
    let d = dir();
    let mut w = f32_tensor("weights", &[3, 4], &[0.0; 12]);
    w.raw_data.as_mut().unwrap().truncate(40);
    let model =
        Model::new(13).input("x", FLOAT, &[2, 3]).init(w).node("MatMul", &["x", "weights"], &["y"], vec![]).output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["initializer `weights`", "40 bytes", "needs 48"]);
}

#[test]
fn incompatible_shapes_name_the_node_and_the_shapes() {
    let d = dir();
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 3])
        .init(f32_tensor("v", &[4], &[1.0, 2.0, 3.0, 4.0]))
        .node("Add", &["x", "v"], &["y"], vec![])
        .output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["node `add_0` (Add)", "[2,3]", "[4]", "do not broadcast"]);
}

#[test]
fn matmul_shape_mismatch() {
    let d = dir();
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 3])
        .init(f32_tensor("w", &[4, 2], &[0.0; 8]))
        .node("MatMul", &["x", "w"], &["y"], vec![])
        .output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["node `matmul_0` (MatMul)", "inner dimensions differ", "[2,3] × [4,2]"]);
}

#[test]
fn input_file_of_the_wrong_shape() {
    let d = dir();
    let model = d.path().join("model.onnx");
    small_model().write(&model);
    let input = d.path().join("x.pb");
    write_tensor(&input, &f32_tensor("x", &[3, 2], &[0.0; 6]));
    let out = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        d.path().join("o").to_str().unwrap(),
    ]);
    assert_clean_failure(&out, &["input 0 (`x`) must be f32[2,3]", "f32[3,2]"]);
}

#[test]
fn input_file_of_the_wrong_dtype() {
    let d = dir();
    let model = d.path().join("model.onnx");
    small_model().write(&model);
    let input = d.path().join("x.pb");
    write_tensor(&input, &i64_tensor("x", &[2, 3], &[1, 2, 3, 4, 5, 6]));
    let out = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        d.path().join("o").to_str().unwrap(),
    ]);
    assert_clean_failure(&out, &["input 0 (`x`) must be f32[2,3]", "i64[2,3]"]);
}

#[test]
fn wrong_number_of_inputs() {
    let d = dir();
    let model = d.path().join("model.onnx");
    small_model().write(&model);
    let out = saturate(&["run", model.to_str().unwrap(), "--output-dir", d.path().join("o").to_str().unwrap()]);
    assert_clean_failure(&out, &["takes 1 input(s) (`x`: f32[2,3]), but 0 were given"]);
}

#[test]
fn input_file_that_is_not_a_tensor() {
    let d = dir();
    let model = d.path().join("model.onnx");
    small_model().write(&model);
    let input = d.path().join("x.pb");
    std::fs::write(&input, b"\xff\xff\xff not protobuf").unwrap();
    let out = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        d.path().join("o").to_str().unwrap(),
    ]);
    assert_clean_failure(&out, &["x.pb is not a valid ONNX file", "TensorProto"]);
}

#[test]
fn missing_model_file() {
    let d = dir();
    let missing = d.path().join("nowhere.onnx");
    let out = saturate(&["info", missing.to_str().unwrap()]);
    assert_clean_failure(&out, &["nowhere.onnx", "no such file"]);
}

#[test]
fn missing_input_file() {
    let d = dir();
    let model = d.path().join("model.onnx");
    small_model().write(&model);
    let out = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        "/nonexistent/x.pb",
        "--output-dir",
        d.path().join("o").to_str().unwrap(),
    ]);
    assert_clean_failure(&out, &["cannot read /nonexistent/x.pb"]);
}

#[test]
fn unsupported_element_type() {
    let d = dir();
    let model = Model::new(13).input("x", 16, &[2, 3]).node("Relu", &["x"], &["y"], vec![]).output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["tensor `x` has element type BFLOAT16", "supports FLOAT, DOUBLE, FLOAT16"]);
}

/// A symbolic dimension nothing binds: the error names it and the flag that binds it.
#[test]
fn unbound_symbolic_dimension() {
    let d = dir();
    let path = d.path().join("model.onnx");
    std::fs::write(&path, with_symbolic_dim(small_model(), 0, 0, Some("batch")).bytes()).unwrap();
    let out = saturate(&["info", path.to_str().unwrap()]);
    assert_clean_failure(&out, &["input `x`", "dimension `batch` is symbolic", "--dim batch=N"]);
    let out = saturate(&["info", path.to_str().unwrap(), "--dim", "bach=2"]);
    assert_clean_failure(&out, &["--dim bach", "no symbolic dimension `bach`", "`batch`"]);
    let out = saturate(&["info", path.to_str().unwrap(), "--dim", "batch"]);
    assert_clean_failure(&out, &["NAME=N"]);
}

#[test]
fn computed_shape_that_is_not_constant() {
    let d = dir();
    // the target shape of Reshape comes from data, which no static compiler can know
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 3])
        .node("Cast", &["x"], &["shape"], vec![attr_int("to", 7)])
        .node("Reshape", &["x", "shape"], &["y"], vec![])
        .output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["needs input `shape` to be a constant"]);
}

#[test]
fn sexp_syntax_error_names_file_and_line() {
    let d = dir();
    let path = d.path().join("g.sexp");
    std::fs::write(&path, "(saturate-graph 1)\n(input %x f32 [2])\n(let $1 (frobnicate %x))\n(output \"y\" $1)\n")
        .unwrap();
    let out = saturate(&["info", path.to_str().unwrap()]);
    assert_clean_failure(&out, &["g.sexp:3:", "unknown op `frobnicate`"]);
}

#[test]
fn unknown_model_extension() {
    let d = dir();
    let path = d.path().join("model.txt");
    std::fs::write(&path, "hello").unwrap();
    let out = saturate(&["info", path.to_str().unwrap()]);
    assert_clean_failure(&out, &["unknown model format", ".onnx", ".sexp"]);
}

#[test]
fn legacy_broadcast_attribute() {
    let d = dir();
    let model = Model::new(6)
        .input("x", FLOAT, &[2, 3])
        .init(f32_tensor("v", &[3], &[1.0, 2.0, 3.0]))
        .node("Add", &["x", "v"], &["y"], vec![attr_int("broadcast", 1), attr_int("axis", 1)])
        .output("y");
    let out = run_model(&d, &model.bytes());
    assert_clean_failure(&out, &["node `add_0` (Add)", "legacy `broadcast` attribute"]);
}
