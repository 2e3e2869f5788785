//! Helpers for the integration tests: building ONNX models in code, writing tensor
//! files, and running the `saturate` binary.

#![allow(dead_code)]

use prost::Message;
use saturate_egraph::onnx::proto::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::path::Path;
use std::process::{Command, Output};

pub const FLOAT: i32 = 1;
pub const INT64: i32 = 7;

/// An ONNX model under construction.
pub struct Model {
    pub graph: GraphProto,
    pub opset: i64,
}

impl Model {
    pub fn new(opset: i64) -> Self {
        Model { graph: GraphProto { name: Some("test".into()), ..Default::default() }, opset }
    }

    pub fn input(mut self, name: &str, elem: i32, dims: &[i64]) -> Self {
        self.graph.input.push(value_info(name, elem, Some(dims)));
        self
    }

    pub fn output(mut self, name: &str) -> Self {
        self.graph.output.push(value_info(name, 0, None)); // type left undeclared
        self
    }

    pub fn init(mut self, tensor: TensorProto) -> Self {
        self.graph.initializer.push(tensor);
        self
    }

    pub fn node(mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> Self {
        self.graph.node.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("{}_{}", op.to_lowercase(), self.graph.node.len())),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    pub fn proto(&self) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(self.opset) }],
            graph: Some(self.graph.clone()),
            ..Default::default()
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.bytes()).unwrap();
    }
}

fn value_info(name: &str, elem: i32, dims: Option<&[i64]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem), shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An f32 tensor with its data in `raw_data`.
pub fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(FLOAT),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// An i64 tensor with its data in the typed `int64_data` field.
pub fn i64_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(INT64),
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

pub fn write_tensor(path: &Path, tensor: &TensorProto) {
    std::fs::write(path, tensor.encode_to_vec()).unwrap();
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

/// Runs the `saturate` binary built for these tests.
pub fn saturate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saturate")).args(args).output().expect("saturate runs")
}

/// Asserts that a run failed cleanly: non-zero exit, every `needles` in stderr, no panic.
pub fn assert_clean_failure(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "saturate panicked: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small valid model: `y = relu(x · w + b)` with x [2,3], w [3,4], b [4].
pub fn small_model() -> Model {
    Model::new(13)
        .input("x", FLOAT, &[2, 3])
        .init(f32_tensor("w", &[3, 4], &[0.5, -1.0, 2.0, 0.0, 1.5, 0.25, -0.5, 1.0, -2.0, 0.75, 1.0, -1.0]))
        .init(f32_tensor("b", &[4], &[0.1, 0.2, -0.3, 0.4]))
        .node("MatMul", &["x", "w"], &["xw"], vec![])
        .node("Add", &["xw", "b"], &["z"], vec![])
        .node("Relu", &["z"], &["y"], vec![])
        .output("y")
}

/// Standard-normal f32 inputs (deterministic in `seed`) for every input of `graph`.
pub fn random_inputs(graph: &saturate_egraph::Graph, seed: u64) -> Vec<saturate_egraph::Tensor> {
    let metas = graph.check().unwrap();
    let mut rng = saturate_verify::rng::Rng::new(seed);
    graph
        .inputs
        .iter()
        .map(|p| {
            let ty = graph.tensor_type(&metas, p.id);
            let v: Vec<f32> = (0..ty.numel()).map(|_| rng.normal() as f32).collect();
            saturate_egraph::Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&ty.shape), v).unwrap())
        })
        .collect()
}

/// Compares outputs relative to their scale: deep networks amplify rounding, so the
/// absolute tolerance grows with the largest magnitude of the expected output.
pub fn assert_outputs_match(what: &str, got: &[saturate_egraph::Tensor], want: &[saturate_egraph::Tensor]) {
    assert_outputs_within(what, got, want, 1e-4);
}

/// [`assert_outputs_match`] with an absolute tolerance of `of_scale` times the largest
/// magnitude of the expected output.
pub fn assert_outputs_within(
    what: &str,
    got: &[saturate_egraph::Tensor],
    want: &[saturate_egraph::Tensor],
    of_scale: f64,
) {
    assert_eq!(got.len(), want.len(), "{what}: number of outputs");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let scale = w.to_f32_vec().iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        saturate_verify::compare::compare(g, w, 1e-3, of_scale * scale.max(1.0))
            .unwrap_or_else(|m| panic!("{what}: output {i} differs: {m}"));
    }
}

/// `model` with dimension `axis` of input `input` made symbolic: named `name`, or with
/// neither a size nor a name (as some exporters write dynamic axes).
pub fn with_symbolic_dim(mut model: Model, input: usize, axis: usize, name: Option<&str>) -> Model {
    use saturate_egraph::onnx::proto::{tensor_shape_proto::dimension::Value, type_proto};
    let ty = &mut model.graph.input[input].r#type.as_mut().unwrap().value;
    if let Some(type_proto::Value::TensorType(t)) = ty {
        t.shape.as_mut().unwrap().dim[axis].value = name.map(|n| Value::DimParam(n.into()));
    }
    model
}

pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3), // STRING
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}
