//! The `saturate` command line: run, info, convert, and their help.

mod support;

use saturate_egraph::onnx::read_tensor_file;
use saturate_egraph::Tensor;
use support::*;

/// relu(x · w + b) for the weights of [`small_model`], computed by hand.
fn small_model_expected(x: &[f32; 6]) -> Vec<f32> {
    let w = [[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 1.0], [-2.0, 0.75, 1.0, -1.0]];
    let b = [0.1, 0.2, -0.3, 0.4];
    let mut y = Vec::new();
    for row in 0..2 {
        for col in 0..4 {
            let z: f32 = (0..3).map(|k| x[row * 3 + k] * w[k][col]).sum::<f32>() + b[col];
            y.push(z.max(0.0));
        }
    }
    y
}

#[test]
fn run_writes_named_outputs_with_the_right_values() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.onnx");
    small_model().write(&model);
    let x = [1.0, -2.0, 0.5, 3.0, 0.25, -1.0];
    let input = d.path().join("x.pb");
    write_tensor(&input, &f32_tensor("x", &[2, 3], &x));
    let out_dir = d.path().join("out");
    let out = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (name, y) = read_tensor_file(&out_dir.join("output_0.pb")).unwrap();
    assert_eq!(name.as_deref(), Some("y"));
    assert_eq!(y.shape(), &[2, 4]);
    let got = y.to_f32_vec();
    for (g, w) in got.iter().zip(small_model_expected(&x)) {
        assert!((g - w).abs() < 1e-6, "{got:?}");
    }

    // a second run must not silently overwrite the first one's outputs
    let again = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert_clean_failure(&again, &["output_0.pb already exists", "--force"]);
    let forced = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--force",
    ]);
    assert!(forced.status.success());
}

#[test]
fn run_checks_expected_outputs() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.onnx");
    small_model().write(&model);
    let x = [1.0, -2.0, 0.5, 3.0, 0.25, -1.0];
    let input = d.path().join("x.pb");
    write_tensor(&input, &f32_tensor("x", &[2, 3], &x));
    let expected_dir = d.path().join("expected");
    std::fs::create_dir(&expected_dir).unwrap();
    let mut wrong = small_model_expected(&x);
    write_tensor(&expected_dir.join("output_0.pb"), &f32_tensor("y", &[2, 4], &wrong));
    let args = |out: &str| {
        vec![
            "run".to_string(),
            model.display().to_string(),
            "--input".into(),
            input.display().to_string(),
            "--output-dir".into(),
            d.path().join(out).display().to_string(),
            "--expected".into(),
            expected_dir.display().to_string(),
        ]
    };
    let ok = saturate(&args("a").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("matches"));

    wrong[3] += 1.0;
    write_tensor(&expected_dir.join("output_0.pb"), &f32_tensor("y", &[2, 4], &wrong));
    let bad = saturate(&args("b").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!bad.status.success());
    assert!(stdout(&bad).contains("DIFFERS") && stdout(&bad).contains("1 of 8 values differ"), "{}", stdout(&bad));
}

#[test]
fn info_reports_ports_ops_parameters_and_flops() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.onnx");
    small_model().write(&model);
    let out = saturate(&["info", model.to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    for needle in ["input   x: f32[2,3]", "output  y: f32[2,4]", "params  16 (16 in weights", "matmul", "relu"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json = saturate(&["info", model.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["weight_parameters"], 16);
    // matmul 2·2·4·3 = 48, add 8, relu 8
    assert_eq!(v["flops"], 64);
    assert_eq!(v["ops"]["matmul"], 1);
}

#[test]
fn convert_writes_a_graph_that_runs_the_same() {
    let d = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer");
    let sexp = d.path().join("layer.sexp");
    let out = saturate(&["convert", example.join("model.onnx").to_str().unwrap(), "-o", sexp.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.path().join("layer.weights").exists());
    let again = saturate(&["convert", example.join("model.onnx").to_str().unwrap(), "-o", sexp.to_str().unwrap()]);
    assert_clean_failure(&again, &["already exists", "--force"]);

    let mut outputs: Vec<Tensor> = Vec::new();
    for (model, dir) in [(example.join("model.onnx"), "from_onnx"), (sexp.clone(), "from_sexp")] {
        let out_dir = d.path().join(dir);
        let run = saturate(&[
            "run",
            model.to_str().unwrap(),
            "--input",
            example.join("input_0.pb").to_str().unwrap(),
            "--output-dir",
            out_dir.to_str().unwrap(),
            "--expected",
            example.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{}{}", stdout(&run), String::from_utf8_lossy(&run.stderr));
        outputs.push(read_tensor_file(&out_dir.join("output_0.pb")).unwrap().1);
    }
    assert_eq!(outputs[0], outputs[1], "the .sexp graph computes exactly what the .onnx model does");
}

/// The commands clap knows, from the top-level help it generates (its "Commands:" list).
fn commands() -> Vec<String> {
    let help = stdout(&saturate(&["--help"]));
    let list = help.split("Commands:").nth(1).expect("the help lists commands");
    list.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_has_help() {
    let commands = commands();
    assert!(commands.len() >= 10, "{commands:?}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for cmd in &commands {
        let out = saturate(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        let help = stdout(&out);
        assert!(help.contains(&format!("Usage: saturate {cmd}")), "{cmd}: {help}");
        // a description beyond the usage line and the options
        let about = help.split("Usage:").next().unwrap();
        assert!(about.trim().len() >= 30, "{cmd} --help says too little: {help}");
        assert!(readme.contains(&format!("saturate {cmd}")), "the README never shows `saturate {cmd}`");
    }
    let run_help = stdout(&saturate(&["run", "--help"]));
    assert!(run_help.contains("--input") && run_help.contains("--output-dir") && run_help.contains("--engine"));
}

#[test]
fn a_closed_pipe_stops_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_saturate"))
        .args(["rules", "--json"]) // 150 kB: more than a pipe holds
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then drops the pipe
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!first.is_empty());
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `optimize -o x.sexp` writes x.weights beside it (the transformer layer's weights are
/// too large to inline): an existing x.weights is kept unless --force is given, as
/// `convert` does.
#[test]
fn optimize_never_overwrites_a_weights_file_without_force() {
    let d = tempfile::tempdir().unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/transformer_layer/model.onnx");
    let out = d.path().join("x.sexp");
    let side = d.path().join("x.weights");
    std::fs::write(&side, b"someone's weights").unwrap();
    let res = saturate(&["optimize", model, "-o", out.to_str().unwrap()]);
    assert_clean_failure(&res, &["x.weights already exists", "--force"]);
    assert_eq!(std::fs::read(&side).unwrap(), b"someone's weights");
    assert!(!out.exists());
    let res = saturate(&["optimize", model, "-o", out.to_str().unwrap(), "--force"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert_ne!(std::fs::read(&side).unwrap(), b"someone's weights");
    saturate_egraph::sexp::read_file(&out).unwrap();
}

/// `bench` without --input runs an ONNX model on random inputs, as its help says.
#[test]
fn bench_without_inputs_runs_on_random_ones() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/transformer_layer/model.onnx");
    let res = saturate(&["bench", model, "--min-time", "0.05", "--threads", "1", "--json"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(v["random_inputs"], serde_json::json!(true), "{v}");
    assert!(v["median_ms"].as_f64().unwrap() > 0.0, "{v}");
}

/// The fuzz report: every case in one class, op and rule coverage, never-fired rules.
#[test]
fn fuzz_reports_classes_and_coverage() {
    let res = saturate(&["fuzz", "--cases", "40", "--seed", "3", "--json"]);
    assert!(res.status.success(), "{}{}", stdout(&res), String::from_utf8_lossy(&res.stderr));
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert_eq!(n("cases"), 40);
    assert_eq!(n("agreed") + n("not_finite") + n("beyond_f32"), 40, "{v}");
    assert!(v["mismatches"].as_array().unwrap().is_empty());
    assert!(v["ops"].as_object().unwrap().len() >= 20, "{v}");
    let fired = v["rules_fired"].as_object().unwrap().len();
    let never = v["rules_never_fired"].as_array().unwrap().len();
    assert_eq!(fired + never, n("rules") as usize, "every rule fired or is named as never fired");
    let text = stdout(&saturate(&["fuzz", "--cases", "20", "--seed", "3"]));
    for needle in ["agreed, all three ways", "not finite", "beyond f32", "ops generated", "never fired ("] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
}

/// `saturate ops` lists the op table: every op of the language, the ONNX ops that import.
#[test]
fn ops_lists_the_op_table() {
    let res = saturate(&["ops", "--json"]);
    assert!(res.status.success());
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let names: Vec<&str> = v["ops"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, saturate_egraph::OPS);
    let onnx: Vec<&str> = v["onnx_supported"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    assert_eq!(onnx, *saturate_egraph::onnx::SUPPORTED_OPS);
    for op in ["Softsign", "MatMul", "Shape", "LayerNormalization"] {
        assert!(onnx.contains(&op), "{op}");
    }
    let attention = v["ops"].as_array().unwrap().iter().find(|o| o["name"] == "attention").unwrap();
    assert_eq!(attention["fused"], true);
    assert_eq!(attention["kind"], "linear algebra");
}
