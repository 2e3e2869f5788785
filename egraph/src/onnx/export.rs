//! ONNX export: [`Graph`] → `ModelProto` at opset [`EXPORT_OPSET`], so a program saturate
//! produced can run anywhere ONNX runs (and be checked against onnxruntime).
//!
//! Each TensorLang op becomes one ONNX node, with attributes as attributes or constant
//! inputs as the opset wants them; fused ops (gelu, rms_norm, attention, epilogues) are
//! written in their decomposed form, which standard ONNX runtimes execute. Weights become initializers of the same name; `fill`
//! constants become `ConstantOfShape`, so a splat weight costs a few bytes. An output
//! computed by an op is that op's output; other outputs (an input or weight passed
//! through, a value output twice) are `Identity` nodes. Importing an exported graph
//! without fused ops gives the same graph back.

use super::proto::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use super::tensor::tensor_to_proto;
use crate::infer::Meta;
use crate::shape::unique_name;
use crate::{Activation, Error, Graph, Result, Tensor, TensorLang, TensorType, UnaryOp, View};
use egg::{Id, Language};
use prost::Message;
use std::collections::HashSet;
use std::path::Path;

/// The opset exported models declare (axes are inputs of every reduce op; AveragePool
/// has dilations).
pub const EXPORT_OPSET: i64 = 19;

/// Writes `graph` as an ONNX model file.
pub fn save(graph: &Graph, path: &Path) -> Result<()> {
    let bytes = export_model(graph)?.encode_to_vec();
    std::fs::write(path, bytes).map_err(|source| Error::Io { action: "write", path: path.into(), source })
}

/// Converts `graph` to an ONNX model.
pub fn export_model(graph: &Graph) -> Result<ModelProto> {
    let graph = graph.canonicalize();
    let metas = graph.check()?;
    let mut ex = Exporter {
        g: &graph,
        metas: &metas,
        nodes: Vec::new(),
        inits: Vec::new(),
        names: vec![String::new(); graph.expr.len()],
        taken: HashSet::new(),
    };
    // names the model's users know are kept: inputs, weights, and outputs computed by
    // an op, which can carry the output's name directly
    for port in &graph.inputs {
        ex.names[usize::from(port.id)] = port.name.clone();
        ex.taken.insert(port.name.clone());
    }
    for port in &graph.outputs {
        ex.taken.insert(port.name.clone());
    }
    for port in &graph.outputs {
        let i = usize::from(port.id);
        let is_op = !matches!(graph.expr[port.id], TensorLang::Input(_) | TensorLang::Weight(_));
        if is_op && ex.names[i].is_empty() {
            ex.names[i] = port.name.clone();
        }
    }
    for (id, node) in graph.expr.items() {
        if !node.is_attribute() && !matches!(node, TensorLang::Input(_)) {
            ex.lower(id, node)?;
        }
    }
    let inputs = graph.inputs.iter().map(|p| value_info(&p.name, Some(&graph.tensor_type(&metas, p.id)))).collect();
    let mut outputs = Vec::new();
    for port in &graph.outputs {
        let value = ex.names[usize::from(port.id)].clone();
        if value != port.name {
            ex.nodes.push(node("Identity", vec![value], vec![port.name.clone()], vec![]));
        }
        outputs.push(value_info(&port.name, Some(&graph.tensor_type(&metas, port.id))));
    }
    Ok(ModelProto {
        ir_version: Some(9),
        producer_name: Some("saturate".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(EXPORT_OPSET) }],
        graph: Some(GraphProto {
            name: Some("saturate".into()),
            node: ex.nodes,
            initializer: ex.inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    })
}

struct Exporter<'g> {
    g: &'g Graph,
    metas: &'g [Meta],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// The ONNX value name of each tensor node.
    names: Vec<String>,
    taken: HashSet<String>,
}

impl Exporter<'_> {
    fn name(&self, id: Id) -> String {
        self.names[usize::from(id)].clone()
    }

    fn fresh(&mut self, hint: &str) -> String {
        unique_name(&mut self.taken, hint)
    }

    fn int(&self, id: Id) -> i64 {
        match &self.metas[usize::from(id)] {
            Meta::Int(v) => *v,
            other => unreachable!("checked graphs have integers here, found {other:?}"),
        }
    }

    fn float(&self, id: Id) -> f32 {
        match &self.metas[usize::from(id)] {
            Meta::Float(v) => *v,
            other => unreachable!("checked graphs have floats here, found {other:?}"),
        }
    }

    fn ints(&self, id: Id) -> Vec<i64> {
        match &self.metas[usize::from(id)] {
            Meta::Ints(v) => v.clone(),
            other => unreachable!("checked graphs have integer lists here, found {other:?}"),
        }
    }

    fn ty(&self, id: Id) -> &TensorType {
        self.metas[usize::from(id)].tensor().expect("operands are tensors")
    }

    /// An initializer holding `t`, for constant inputs such as shapes and axes.
    fn constant(&mut self, hint: &str, t: Tensor) -> String {
        let name = self.fresh(hint);
        self.inits.push(tensor_to_proto(&t, &name));
        name
    }

    fn ints_const(&mut self, hint: &str, v: Vec<i64>) -> String {
        self.constant(hint, Tensor::i64_vec(v))
    }

    fn emit(&mut self, id: Id, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) {
        let assigned = &self.names[usize::from(id)];
        let out = if assigned.is_empty() { self.fresh(&format!("v{id}")) } else { assigned.clone() };
        self.nodes.push(node(op, inputs, vec![out.clone()], attrs));
        self.names[usize::from(id)] = out;
    }

    fn lower(&mut self, id: Id, n: &TensorLang) -> Result<()> {
        use View as L;
        let operands: Vec<String> = n.children().iter().map(|&c| self.name(c)).collect();
        let x = |i: usize| operands[i].clone();
        match n.view() {
            L::Weight([name, ..]) => {
                let name = self.g.name_of(*name).to_string();
                // a weight that is itself an output keeps the name both share
                let is_own_output = self.g.outputs.iter().any(|p| p.id == id && p.name == name);
                let unique = if is_own_output { name.clone() } else { self.fresh(&name) };
                self.inits.push(tensor_to_proto(&self.g.weights[&name], &unique));
                self.names[usize::from(id)] = unique;
            }
            L::Fill([v, shape]) => {
                let shape = self.ints_const(&format!("v{id}_shape"), self.ints(*shape));
                let value = tensor_to_proto(&Tensor::F32(ndarray::arr1(&[self.float(*v)]).into_dyn()), "");
                self.emit(id, "ConstantOfShape", vec![shape], vec![attr_tensor("value", value)]);
            }
            L::Unary(UnaryOp::Clip, [_, lo, hi]) => {
                let mut inputs = vec![x(0)];
                for (bound, infinite) in [(*lo, f32::NEG_INFINITY), (*hi, f32::INFINITY)] {
                    let v = self.float(bound);
                    inputs.push(if v == infinite {
                        String::new()
                    } else {
                        self.constant(&format!("v{id}_bound"), Tensor::scalar_f32(v))
                    });
                }
                while inputs.last().is_some_and(String::is_empty) {
                    inputs.pop();
                }
                self.emit(id, "Clip", inputs, vec![])
            }
            L::Unary(op, c) => self.unary(id, op, c, x(0))?,
            L::Cast([_, _]) => {
                let to = self.ty(id).dtype.onnx_code() as i64;
                self.emit(id, "Cast", vec![x(0)], vec![attr_int("to", to)])
            }
            L::Binary(op, _) => {
                let attrs = op.desc().onnx_attrs.iter().map(|&(name, v)| attr_int(name, v)).collect();
                self.emit(id, op.desc().onnx[0], vec![x(0), x(1)], attrs)
            }
            L::Where(_) => self.emit(id, "Where", vec![x(0), x(1), x(2)], vec![]),
            L::MatMul(_) => self.emit(id, "MatMul", vec![x(0), x(1)], vec![]),
            L::Gemm([_, _, _, alpha, beta, ta, tb]) => {
                let attrs = vec![
                    attr_float("alpha", self.float(*alpha)),
                    attr_float("beta", self.float(*beta)),
                    attr_int("transA", self.int(*ta)),
                    attr_int("transB", self.int(*tb)),
                ];
                self.emit(id, "Gemm", vec![x(0), x(1), x(2)], attrs)
            }
            L::ReduceSum([_, axes, keep])
            | L::ReduceProd([_, axes, keep])
            | L::ReduceMean([_, axes, keep])
            | L::ReduceMax([_, axes, keep])
            | L::ReduceMin([_, axes, keep]) => {
                let op = n.desc().onnx()[0];
                let axes = self.ints(*axes);
                if axes.is_empty() {
                    // TensorLang's empty axis list reduces nothing
                    self.emit(id, "Identity", vec![x(0)], vec![]);
                    return Ok(());
                }
                let axes = self.ints_const(&format!("v{id}_axes"), axes);
                let keep = attr_int("keepdims", self.int(*keep));
                self.emit(id, op, vec![x(0), axes], vec![keep])
            }
            L::ArgMax([_, axis, keep, last]) | L::ArgMin([_, axis, keep, last]) => {
                let attrs = vec![
                    attr_int("axis", self.int(*axis)),
                    attr_int("keepdims", self.int(*keep)),
                    attr_int("select_last_index", self.int(*last)),
                ];
                self.emit(id, n.desc().onnx()[0], vec![x(0)], attrs)
            }
            L::CumSum([_, axis, exclusive, reverse]) => {
                let a = self.constant(&format!("v{id}_axis"), Tensor::I64(ndarray::arr0(self.int(*axis)).into_dyn()));
                let attrs = vec![attr_int("exclusive", self.int(*exclusive)), attr_int("reverse", self.int(*reverse))];
                self.emit(id, "CumSum", vec![x(0), a], attrs)
            }
            L::Softmax([_, axis]) => self.emit(id, "Softmax", vec![x(0)], vec![attr_int("axis", self.int(*axis))]),
            L::LogSoftmax([_, axis]) => {
                self.emit(id, "LogSoftmax", vec![x(0)], vec![attr_int("axis", self.int(*axis))])
            }
            L::LayerNorm([input, scale, bias, axis, eps]) => {
                let axis = self.int(*axis);
                let normalized = self.ty(*input).shape[axis as usize..].to_vec();
                // ONNX wants scale and bias of the normalized shape; an absent bias is 0
                let scale = self.full_shaped(*scale, &normalized, id);
                let mut inputs = vec![x(0), scale];
                let zero_bias = matches!(&self.g.expr[*bias], TensorLang::Fill([v, _]) if self.float(*v) == 0.0);
                if !zero_bias {
                    inputs.push(self.full_shaped(*bias, &normalized, id));
                }
                self.emit(
                    id,
                    "LayerNormalization",
                    inputs,
                    vec![attr_int("axis", axis), attr_float("epsilon", self.float(*eps))],
                )
            }
            L::BatchNorm([.., eps]) => {
                let inputs = (0..5).map(x).collect();
                self.emit(id, "BatchNormalization", inputs, vec![attr_float("epsilon", self.float(*eps))])
            }
            L::Lrn([_, size, alpha, beta, bias]) => {
                let attrs = vec![
                    attr_int("size", self.int(*size)),
                    attr_float("alpha", self.float(*alpha)),
                    attr_float("beta", self.float(*beta)),
                    attr_float("bias", self.float(*bias)),
                ];
                self.emit(id, "LRN", vec![x(0)], attrs)
            }
            L::Reshape([_, shape]) => {
                let shape = self.ints_const(&format!("v{id}_shape"), self.ints(*shape));
                self.emit(id, "Reshape", vec![x(0), shape], vec![attr_int("allowzero", 1)])
            }
            L::Flatten([_, axis]) => self.emit(id, "Flatten", vec![x(0)], vec![attr_int("axis", self.int(*axis))]),
            L::Squeeze([_, axes]) | L::Unsqueeze([_, axes]) => {
                let op = n.desc().onnx()[0];
                let axes = self.ints_const(&format!("v{id}_axes"), self.ints(*axes));
                self.emit(id, op, vec![x(0), axes], vec![])
            }
            L::Transpose([_, perm]) => {
                self.emit(id, "Transpose", vec![x(0)], vec![attr_ints("perm", self.ints(*perm))])
            }
            L::Expand([_, shape]) => {
                let shape = self.ints_const(&format!("v{id}_shape"), self.ints(*shape));
                self.emit(id, "Expand", vec![x(0), shape], vec![])
            }
            L::Concat(children) => {
                let inputs = children[1..].iter().map(|&c| self.name(c)).collect();
                self.emit(id, "Concat", inputs, vec![attr_int("axis", self.int(children[0]))])
            }
            L::Slice([input, starts, ends, steps]) => {
                let rank = self.ty(*input).rank();
                let steps = self.ints(*steps);
                // a normalized end of -1 (before index 0, with a negative step) means the
                // last index in ONNX; any end below -dim clamps to "before 0"
                let ends: Vec<i64> = self
                    .ints(*ends)
                    .iter()
                    .zip(&steps)
                    .map(|(&e, &s)| if s < 0 && e < 0 { i64::MIN } else { e })
                    .collect();
                let inputs = vec![
                    x(0),
                    self.ints_const(&format!("v{id}_starts"), self.ints(*starts)),
                    self.ints_const(&format!("v{id}_ends"), ends),
                    self.ints_const(&format!("v{id}_axes"), (0..rank as i64).collect()),
                    self.ints_const(&format!("v{id}_steps"), steps),
                ];
                self.emit(id, "Slice", inputs, vec![])
            }
            L::ScatterElements([_, _, _, axis, reduction]) => {
                let reduction = crate::ops::SCATTER_REDUCTIONS[self.int(*reduction) as usize];
                let attrs = vec![attr_int("axis", self.int(*axis)), attr_string("reduction", reduction)];
                self.emit(id, "ScatterElements", vec![x(0), x(1), x(2)], attrs)
            }
            L::GatherElements([_, _, axis]) => {
                self.emit(id, "GatherElements", vec![x(0), x(1)], vec![attr_int("axis", self.int(*axis))])
            }
            L::Gather([_, _, axis]) => {
                self.emit(id, "Gather", vec![x(0), x(1)], vec![attr_int("axis", self.int(*axis))])
            }
            L::Conv([_, w, _, strides, pads, dilations, group]) => {
                let kernel = self.ty(*w).shape[2..].iter().map(|&d| d as i64).collect::<Vec<_>>();
                let attrs = vec![
                    attr_ints("kernel_shape", kernel),
                    attr_ints("strides", self.ints(*strides)),
                    attr_ints("pads", self.ints(*pads)),
                    attr_ints("dilations", self.ints(*dilations)),
                    attr_int("group", self.int(*group)),
                ];
                self.emit(id, "Conv", vec![x(0), x(1), x(2)], attrs)
            }
            L::MaxPool([_, kernel, strides, pads, dilations, ceil]) => {
                let attrs = vec![
                    attr_ints("kernel_shape", self.ints(*kernel)),
                    attr_ints("strides", self.ints(*strides)),
                    attr_ints("pads", self.ints(*pads)),
                    attr_ints("dilations", self.ints(*dilations)),
                    attr_int("ceil_mode", self.int(*ceil)),
                ];
                self.emit(id, "MaxPool", vec![x(0)], attrs)
            }
            L::AvgPool([_, kernel, strides, pads, dilations, ceil, include]) => {
                let attrs = vec![
                    attr_ints("kernel_shape", self.ints(*kernel)),
                    attr_ints("strides", self.ints(*strides)),
                    attr_ints("pads", self.ints(*pads)),
                    attr_ints("dilations", self.ints(*dilations)),
                    attr_int("ceil_mode", self.int(*ceil)),
                    attr_int("count_include_pad", self.int(*include)),
                ];
                self.emit(id, "AveragePool", vec![x(0)], attrs)
            }
            L::Pad([input, pads, value]) => {
                let _ = input;
                let pads = self.ints_const(&format!("v{id}_pads"), self.ints(*pads));
                let value = self.constant(&format!("v{id}_value"), Tensor::scalar_f32(self.float(*value)));
                self.emit(id, "Pad", vec![x(0), pads, value], vec![])
            }
            L::RmsNorm([input, _, axis, eps]) => {
                let rank = self.ty(*input).rank() as i64;
                let squared = self.step(id, "Mul", vec![x(0), x(0)], vec![]);
                let axes = self.ints_const(&format!("v{id}_axes"), (self.int(*axis)..rank).collect());
                let mean = self.step(id, "ReduceMean", vec![squared, axes], vec![attr_int("keepdims", 1)]);
                let eps = self.constant(&format!("v{id}_eps"), Tensor::scalar_f32(self.float(*eps)));
                let shifted = self.step(id, "Add", vec![mean, eps], vec![]);
                let root = self.step(id, "Sqrt", vec![shifted], vec![]);
                let normalized = self.step(id, "Div", vec![x(0), root], vec![]);
                self.emit(id, "Mul", vec![normalized, x(1)], vec![])
            }
            L::MatMulBiasAct([.., act]) => {
                let product = self.step(id, "MatMul", vec![x(0), x(1)], vec![]);
                let biased = self.step(id, "Add", vec![product, x(2)], vec![]);
                let act = self.activation(*act);
                self.act(id, act, biased)
            }
            L::ConvBiasAct([_, w, _, strides, pads, dilations, group, act]) => {
                let kernel = self.ty(*w).shape[2..].iter().map(|&d| d as i64).collect::<Vec<_>>();
                let attrs = vec![
                    attr_ints("kernel_shape", kernel),
                    attr_ints("strides", self.ints(*strides)),
                    attr_ints("pads", self.ints(*pads)),
                    attr_ints("dilations", self.ints(*dilations)),
                    attr_int("group", self.int(*group)),
                ];
                let conv = self.step(id, "Conv", vec![x(0), x(1), x(2)], attrs);
                let act = self.activation(*act);
                self.act(id, act, conv)
            }
            // ONNX has no Winograd op: the weights go into the transformed space by a
            // product with G ⊗ G, and a winograd_conv is the Conv it computes, its 3×3
            // filters taken back out of that space by the transform's left inverse
            L::WinogradWeights([w, tile]) => {
                let shape = self.ty(*w).shape.clone();
                let t = winograd_tile(self.int(*tile));
                let area = (t.alpha() * t.alpha()) as i64;
                let (k, c) = (shape[0] as i64, shape[1] as i64);
                let flat = self.ints_const(&format!("v{id}_filters"), vec![k * c, 9]);
                let filters = self.step(id, "Reshape", vec![x(0), flat], vec![]);
                let transform = matrix_f32(&transpose(&t.weight_transform(), area as usize, 9), [9, area as usize]);
                let transform = self.constant(&format!("v{id}_transform"), transform);
                let product = self.step(id, "MatMul", vec![filters, transform], vec![]);
                let by_point = self.step(id, "Transpose", vec![product], vec![attr_ints("perm", vec![1, 0])]);
                let shape = self.ints_const(&format!("v{id}_shape"), vec![area, k, c]);
                self.emit(id, "Reshape", vec![by_point, shape], vec![]);
            }
            L::WinogradConv([_, u, _, pads, tile, act]) => {
                let shape = self.ty(*u).shape.clone();
                let t = winograd_tile(self.int(*tile));
                let (area, k, c) = (shape[0], shape[1] as i64, shape[2] as i64);
                let flat = self.ints_const(&format!("v{id}_points"), vec![area as i64, k * c]);
                let points = self.step(id, "Reshape", vec![x(1), flat], vec![]);
                let recovery = matrix_f32(&t.weight_recovery(), [9, area]);
                let recovery = self.constant(&format!("v{id}_recovery"), recovery);
                let filters = self.step(id, "MatMul", vec![recovery, points], vec![]);
                let filters = self.step(id, "Transpose", vec![filters], vec![attr_ints("perm", vec![1, 0])]);
                let shape = self.ints_const(&format!("v{id}_filter_shape"), vec![k, c, 3, 3]);
                let w = self.step(id, "Reshape", vec![filters, shape], vec![]);
                let attrs = vec![
                    attr_ints("kernel_shape", vec![3, 3]),
                    attr_ints("strides", vec![1, 1]),
                    attr_ints("pads", self.ints(*pads)),
                    attr_ints("dilations", vec![1, 1]),
                    attr_int("group", 1),
                ];
                let conv = self.step(id, "Conv", vec![x(0), w, x(2)], attrs);
                let act = self.activation(*act);
                self.act(id, act, conv)
            }
            L::Attention([_, k, _, scale]) => {
                let rank = self.ty(*k).rank() as i64;
                let mut perm: Vec<i64> = (0..rank).collect();
                perm.swap(rank as usize - 2, rank as usize - 1);
                let kt = self.step(id, "Transpose", vec![x(1)], vec![attr_ints("perm", perm)]);
                let scores = self.step(id, "MatMul", vec![x(0), kt], vec![]);
                let scale = self.constant(&format!("v{id}_scale"), Tensor::scalar_f32(self.float(*scale)));
                let scaled = self.step(id, "Mul", vec![scores, scale], vec![]);
                let probs = self.step(id, "Softmax", vec![scaled], vec![attr_int("axis", -1)]);
                self.emit(id, "MatMul", vec![probs, x(2)], vec![])
            }
            L::GlobalAvgPool(_) => self.emit(id, "GlobalAveragePool", vec![x(0)], vec![]),
            L::GlobalMaxPool(_) => self.emit(id, "GlobalMaxPool", vec![x(0)], vec![]),
            L::Input(_) | L::Leaf => unreachable!("handled by the caller"),
        }
        Ok(())
    }

    /// A unary function: its ONNX op where opset 19 has it (params as attributes, in
    /// their ONNX names), else the decomposition of its activation.
    fn unary(&mut self, id: Id, op: UnaryOp, children: &[Id], x: String) -> Result<()> {
        let d = op.desc();
        match d.onnx.first() {
            Some(onnx) if d.since <= super::EXPORT_OPSET => {
                let attrs = d
                    .params
                    .iter()
                    .zip(&children[1..])
                    .map(|(p, &v)| match p.role {
                        crate::ops::Attr::Flag01 => attr_int(p.onnx, self.float(v) as i64),
                        _ => attr_float(p.onnx, self.float(v)),
                    })
                    .collect();
                self.emit(id, onnx, vec![x], attrs);
            }
            _ => {
                let act = Activation::ALL.into_iter().find(|a| a.unary() == Some(op)).ok_or_else(|| {
                    Error::Invalid(format!("`{}` has no ONNX form at opset {}", d.name, super::EXPORT_OPSET))
                })?;
                self.act(id, act, x);
            }
        }
        Ok(())
    }

    fn activation(&self, id: Id) -> Activation {
        match &self.metas[usize::from(id)] {
            Meta::Act(a) => *a,
            other => unreachable!("checked graphs have activations here, found {other:?}"),
        }
    }

    /// Emits an intermediate node of the decomposition of node `id`; returns its output.
    fn step(&mut self, id: Id, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&format!("v{id}_{}", op.to_lowercase()));
        self.nodes.push(node(op, inputs, vec![out.clone()], attrs));
        out
    }

    /// Emits `act(input)` as the value of node `id`, decomposed into standard ONNX ops
    /// (Gelu only exists from opset 20).
    fn act(&mut self, id: Id, act: Activation, input: String) {
        let scalar = |ex: &mut Self, v: f32| ex.constant(&format!("v{id}_c"), Tensor::scalar_f32(v));
        match act {
            Activation::Id => self.emit(id, "Identity", vec![input], vec![]),
            Activation::Relu => self.emit(id, "Relu", vec![input], vec![]),
            Activation::Sigmoid => self.emit(id, "Sigmoid", vec![input], vec![]),
            Activation::Tanh => self.emit(id, "Tanh", vec![input], vec![]),
            Activation::Silu => {
                let gate = self.step(id, "Sigmoid", vec![input.clone()], vec![]);
                self.emit(id, "Mul", vec![input, gate], vec![])
            }
            Activation::Gelu => {
                let root2 = scalar(self, std::f32::consts::SQRT_2);
                let scaled = self.step(id, "Div", vec![input.clone(), root2], vec![]);
                let erf = self.step(id, "Erf", vec![scaled], vec![]);
                let one = scalar(self, 1.0);
                let shifted = self.step(id, "Add", vec![erf, one], vec![]);
                let product = self.step(id, "Mul", vec![input, shifted], vec![]);
                let half = scalar(self, 0.5);
                self.emit(id, "Mul", vec![product, half], vec![])
            }
            Activation::GeluTanh => {
                let square = self.step(id, "Mul", vec![input.clone(), input.clone()], vec![]);
                let cube = self.step(id, "Mul", vec![square, input.clone()], vec![]);
                let coefficient = scalar(self, 0.044715);
                let term = self.step(id, "Mul", vec![cube, coefficient], vec![]);
                let inner = self.step(id, "Add", vec![input.clone(), term], vec![]);
                let k = scalar(self, (2.0 / std::f32::consts::PI).sqrt());
                let scaled = self.step(id, "Mul", vec![inner, k], vec![]);
                let tanh = self.step(id, "Tanh", vec![scaled], vec![]);
                let one = scalar(self, 1.0);
                let shifted = self.step(id, "Add", vec![tanh, one], vec![]);
                let product = self.step(id, "Mul", vec![input, shifted], vec![]);
                let half = scalar(self, 0.5);
                self.emit(id, "Mul", vec![product, half], vec![])
            }
        }
    }

    /// The value of `id` expanded to `shape` if it has another (broadcastable) shape.
    fn full_shaped(&mut self, id: Id, shape: &[usize], at: Id) -> String {
        if self.ty(id).shape == shape {
            return self.name(id);
        }
        let target = self.ints_const(&format!("v{at}_param_shape"), shape.iter().map(|&d| d as i64).collect());
        let out = self.fresh(&format!("v{at}_param"));
        self.nodes.push(node("Expand", vec![self.name(id), target], vec![out.clone()], vec![]));
        out
    }
}

fn node(op: &str, inputs: Vec<String>, outputs: Vec<String>, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: outputs.first().map(|o| format!("{op}_{o}")),
        input: inputs,
        output: outputs,
        attribute: attrs,
        ..Default::default()
    }
}

fn value_info(name: &str, ty: Option<&TensorType>) -> ValueInfoProto {
    let tensor = ty.map(|t| type_proto::Tensor {
        elem_type: Some(t.dtype.onnx_code()),
        shape: Some(TensorShapeProto {
            dim: t
                .shape
                .iter()
                .map(|&d| tensor_shape_proto::Dimension {
                    value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
                    ..Default::default()
                })
                .collect(),
        }),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: tensor.map(|t| TypeProto { value: Some(type_proto::Value::TensorType(t)), ..Default::default() }),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v, ..Default::default() }
}

fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(t),
        ..Default::default()
    }
}

/// The tile of a checked graph's `winograd_*` node.
fn winograd_tile(m: i64) -> &'static crate::WinogradTile {
    crate::WinogradTile::of(m).expect("checked graphs have Winograd tiles of 2 or 4")
}

/// A row-major `rows × cols` f64 matrix, transposed.
fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols * rows).map(|i| m[(i % rows) * cols + i / rows]).collect()
}

/// An f32 tensor of `shape` from f64 values.
fn matrix_f32(values: &[f64], shape: [usize; 2]) -> Tensor {
    let v = values.iter().map(|&x| x as f32).collect();
    Tensor::F32(ndarray::Array::from_shape_vec(ndarray::IxDyn(&shape), v).expect("the matrix's size"))
}
