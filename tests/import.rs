//! ONNX import: constant folding of shape subgraphs, the ways tensors store their data,
//! opset differences, and the graph it produces (S-expression round trip, e-graph
//! analysis) on real models.

mod support;

use saturate_egraph::onnx::{self, proto::StringStringEntryProto};
use saturate_egraph::{sexp, Graph, Meta, Tensor, TensorEGraph, TensorLang};
use saturate_verify::{conformance, load_model, run, Interpreter};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use support::*;

fn import(model: &Model) -> Graph {
    onnx::import_model(&model.proto(), None, &Interpreter, &HashMap::new()).unwrap()
}

fn f32_input(shape: &[usize], values: Vec<f32>) -> Tensor {
    Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).unwrap())
}

#[test]
fn exporter_shape_subgraphs_fold_to_constants() {
    // Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])), as PyTorch writes x.view(x.size(0), -1)
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 3, 4])
        .init(i64_tensor("zero", &[], &[0]))
        .init(i64_tensor("axes", &[1], &[0]))
        .init(i64_tensor("minus_one", &[1], &[-1]))
        .node("Shape", &["x"], &["shape"], vec![])
        .node("Gather", &["shape", "zero"], &["batch"], vec![attr_int("axis", 0)])
        .node("Unsqueeze", &["batch", "axes"], &["batch1"], vec![])
        .node("Concat", &["batch1", "minus_one"], &["target"], vec![attr_int("axis", 0)])
        .node("Reshape", &["x", "target"], &["y"], vec![])
        .output("y");
    let graph = import(&model);
    let ops: Vec<String> = graph.op_histogram().into_keys().collect();
    assert_eq!(ops, vec!["reshape"], "only the reshape survives: {}", sexp::to_string_inline(&graph));
    let text = sexp::to_string_inline(&graph);
    assert!(text.contains("(reshape %x [2,12])"), "{text}");
    let x = f32_input(&[2, 3, 4], (0..24).map(|v| v as f32).collect());
    let y = run(&graph, &[x]).unwrap().remove(0);
    assert_eq!(y.shape(), &[2, 12]);
    assert_eq!(y.to_f32_vec(), (0..24).map(|v| v as f32).collect::<Vec<_>>());
}

#[test]
fn weight_only_subgraphs_fold_and_splat_constants_become_fills() {
    // Transpose(w) of an initializer is computed at import; ConstantOfShape is a fill
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 3])
        .init(f32_tensor("w", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
        .init(i64_tensor("bias_shape", &[1], &[2]))
        .node("Transpose", &["w"], &["wt"], vec![attr_ints("perm", &[1, 0])])
        .node("ConstantOfShape", &["bias_shape"], &["bias"], vec![])
        .node("MatMul", &["x", "wt"], &["xw"], vec![])
        .node("Add", &["xw", "bias"], &["y"], vec![])
        .output("y");
    let graph = import(&model);
    let text = sexp::to_string_inline(&graph);
    assert!(!text.contains("transpose"), "{text}");
    assert!(text.contains("(fill 0.0 [2])"), "{text}");
    assert!(text.contains("(weight %wt f32 [3,2] (values 1.0 4.0 2.0 5.0 3.0 6.0))"), "{text}");
}

#[test]
fn typed_fields_raw_data_and_external_data_agree() {
    let d = tempfile::tempdir().unwrap();
    let values = [1.5f32, -2.0, 0.25, 4.0, 8.0, -0.5];
    let raw = f32_tensor("w", &[2, 3], &values);
    let mut typed = raw.clone();
    typed.raw_data = None;
    typed.float_data = values.to_vec();
    let mut external = raw.clone();
    let bytes = external.raw_data.take().unwrap();
    let mut file = vec![0u8; 16]; // the data sits at an offset in the side file
    file.extend(&bytes);
    std::fs::write(d.path().join("weights.bin"), &file).unwrap();
    external.data_location = Some(1);
    external.external_data = [("location", "weights.bin"), ("offset", "16"), ("length", "24")]
        .into_iter()
        .map(|(k, v)| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) })
        .collect();

    let mut results = Vec::new();
    for (label, tensor) in [("raw", raw), ("typed", typed), ("external", external)] {
        let model =
            Model::new(13).input("x", FLOAT, &[2, 3]).init(tensor).node("Mul", &["x", "w"], &["y"], vec![]).output("y");
        let path = d.path().join(format!("{label}.onnx"));
        model.write(&path);
        let graph = load_model(&path).unwrap();
        let y = run(&graph, &[f32_input(&[2, 3], vec![1.0; 6])]).unwrap().remove(0);
        results.push(y.to_f32_vec());
    }
    assert_eq!(results[0], values.to_vec());
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn external_data_may_not_leave_the_model_folder() {
    let d = tempfile::tempdir().unwrap();
    let mut w = f32_tensor("w", &[1], &[1.0]);
    w.raw_data = None;
    w.data_location = Some(1);
    w.external_data =
        vec![StringStringEntryProto { key: Some("location".into()), value: Some("../../etc/passwd".into()) }];
    let model = Model::new(13).input("x", FLOAT, &[1]).init(w).node("Mul", &["x", "w"], &["y"], vec![]).output("y");
    let path = d.path().join("m.onnx");
    model.write(&path);
    let err = load_model(&path).unwrap_err().to_string();
    assert!(err.contains("must stay inside the model's folder"), "{err}");
}

#[test]
fn split_becomes_slices_with_the_right_values() {
    let model = Model::new(13)
        .input("x", FLOAT, &[2, 5])
        .init(i64_tensor("sizes", &[2], &[2, 3]))
        .node("Split", &["x", "sizes"], &["a", "b"], vec![attr_int("axis", 1)])
        .output("a")
        .output("b");
    let graph = import(&model);
    let x = f32_input(&[2, 5], (0..10).map(|v| v as f32).collect());
    let out = run(&graph, &[x]).unwrap();
    assert_eq!(out[0].to_f32_vec(), vec![0.0, 1.0, 5.0, 6.0]);
    assert_eq!(out[1].to_f32_vec(), vec![2.0, 3.0, 4.0, 7.0, 8.0, 9.0]);
}

#[test]
fn softmax_follows_its_opset() {
    // before opset 13, Softmax(axis=1) on [1,2,2] normalizes over the flattened 2×2
    let x = f32_input(&[1, 2, 2], vec![0.0, 1.0, 2.0, 3.0]);
    let old = Model::new(11)
        .input("x", FLOAT, &[1, 2, 2])
        .node("Softmax", &["x"], &["y"], vec![attr_int("axis", 1)])
        .output("y");
    let new = Model::new(13)
        .input("x", FLOAT, &[1, 2, 2])
        .node("Softmax", &["x"], &["y"], vec![attr_int("axis", 1)])
        .output("y");
    let y_old = run(&import(&old), std::slice::from_ref(&x)).unwrap().remove(0).to_f32_vec();
    let y_new = run(&import(&new), &[x]).unwrap().remove(0).to_f32_vec();
    let total: f32 = y_old.iter().sum();
    assert!((total - 1.0).abs() < 1e-6, "{y_old:?}");
    assert!((y_new[0] + y_new[2] - 1.0).abs() < 1e-6, "{y_new:?}");
}

fn real_models() -> Vec<PathBuf> {
    let dir = conformance::data_dir();
    conformance::require_data(&dir).expect("run scripts/fetch-onnx-data first");
    let mut models = conformance::light_model_paths(&dir.join("light")).unwrap();
    models.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx"));
    models
}

#[test]
fn sexp_round_trip_is_exact_on_real_models() {
    let d = tempfile::tempdir().unwrap();
    for path in real_models() {
        let graph = load_model(&path).unwrap();
        let out = d.path().join("g.sexp");
        sexp::write_file(&graph, &out).unwrap();
        let back = sexp::read_file(&out).unwrap();
        assert!(back == graph, "{} changed in the round trip", path.display());
        let first = std::fs::read_to_string(&out).unwrap();
        sexp::write_file(&back, &out).unwrap();
        assert_eq!(first, std::fs::read_to_string(&out).unwrap(), "{}: text differs on rewrite", path.display());
    }
}

#[test]
fn the_egraph_analysis_types_every_class_of_real_models() {
    for path in real_models() {
        let graph = load_model(&path).unwrap();
        let metas = graph.check().unwrap();
        let mut egraph = TensorEGraph::default();
        let ids: Vec<_> = graph.expr.as_ref().iter().fold(Vec::new(), |mut ids, node| {
            let node = egg_map(node, &ids);
            ids.push(egraph.add(node));
            ids
        });
        for port in &graph.outputs {
            let class = &egraph[ids[usize::from(port.id)]];
            match class.data.meta() {
                Some(Meta::Tensor(t)) => assert_eq!(Some(t), metas[usize::from(port.id)].tensor()),
                other => panic!("{}: output class has {other:?}", path.display()),
            }
        }
        let invalid = egraph.classes().filter(|c| c.data.meta.is_err()).count();
        assert_eq!(invalid, 0, "{}", path.display());
    }
}

fn egg_map(node: &TensorLang, ids: &[saturate_egraph::Id]) -> TensorLang {
    use saturate_egraph::Language;
    node.clone().map_children(|c| ids[usize::from(c)])
}

#[test]
fn onnx_export_round_trip_is_exact_on_real_models() {
    use prost::Message;
    for path in real_models() {
        let graph = load_model(&path).unwrap();
        let bytes = onnx::export_model(&graph).unwrap().encode_to_vec();
        let proto = onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
        let back = onnx::import_model(&proto, None, &Interpreter, &HashMap::new()).unwrap();
        assert!(back == graph, "{} changed in the ONNX round trip", path.display());
    }
}
