//! Walks an ONNX graph in dependency order and builds a [`Graph`].
//!
//! Every ONNX value name maps to a node of the graph being built. Graph inputs become
//! `input` nodes, initializers become weights (or `fill`s when all their elements are
//! equal), and each ONNX node is lowered by [`super::ops::lower`], which checks its
//! shapes as it goes so an error can name the ONNX node.

use super::proto::{type_proto, ModelProto, NodeProto, ValueInfoProto};
use super::{tensor::tensor_from_proto, ConstantFolder};
use crate::dtype::onnx_type_name;
use crate::graph::{Graph, GraphBuilder, Port};
use crate::lang::sanitize_name;
use crate::shape::{unique_name, ShapeDisplay};
use crate::{DType, Error, Result, Tensor, TensorLang, TensorType};
use egg::{Id, Language};
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

/// Sizes of symbolic dimensions (`batch`, `sequence`, …) by name. saturate compiles for
/// static shapes, so a model with symbolic dimensions loads once they are bound, and the
/// program is for that binding. A dimension an exporter left without size or name is
/// named after its input and axis: `image[0]`.
pub type Dims = BTreeMap<String, usize>;

/// Reads and imports an ONNX model file. External data is resolved next to it.
pub fn load(path: &Path, folder: &dyn ConstantFolder) -> Result<Graph> {
    load_with_dims(path, folder, &Dims::new())
}

/// [`load`] with symbolic dimensions bound by `dims`.
pub fn load_with_dims(path: &Path, folder: &dyn ConstantFolder, dims: &Dims) -> Result<Graph> {
    let model = decode_model(path)?;
    check_dim_names(&model, dims)?;
    import_model_with_dims(&model, path.parent(), folder, &HashMap::new(), dims)
}

/// Reads and decodes an ONNX model file, without importing it.
pub fn decode_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { action: "read", path: path.into(), source })?;
    let decode_err = |reason: String| Error::Decode { path: path.into(), reason };
    if bytes.is_empty() {
        return Err(decode_err("the file is empty".into()));
    }
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| decode_err(format!("protobuf decoding failed ({e}); truncated or not an ONNX model?")))?;
    if model.graph.is_none() {
        return Err(decode_err("the model has no graph (is this an ONNX model?)".into()));
    }
    Ok(model)
}

/// The graph inputs a caller must feed (those without an initializer), in order, with
/// their declared types, symbolic dimensions bound by `dims`. Fails if one is not a
/// tensor of a supported type, or has a dimension `dims` does not bind.
pub fn runtime_inputs(model: &ModelProto, dims: &Dims) -> Result<Vec<(String, TensorType)>> {
    declared_inputs(model)?.into_iter().map(|d| Ok((d.name.clone(), d.resolve(dims)?))).collect()
}

/// One dimension of a graph input as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// A symbolic dimension, by name (`image[0]` for one the exporter left unnamed).
    Symbolic(String),
}

/// A graph input as the model declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredInput {
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

impl DeclaredInput {
    /// Its type, with its symbolic dimensions bound by `dims`.
    pub fn resolve(&self, dims: &Dims) -> Result<TensorType> {
        let shape = self
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Ok(*n),
                Dim::Symbolic(s) => {
                    dims.get(s).copied().ok_or_else(|| Error::UnboundDim { tensor: self.name.clone(), dim: s.clone() })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TensorType::new(self.dtype, shape))
    }

    /// Binds its symbolic dimensions to the shape of `given` (the tensor a caller passes
    /// for it) in `dims`; fails, saying why, where the rank or a fixed size differs, or
    /// where a dimension is already bound to another size.
    pub fn bind(&self, given: &TensorType, dims: &mut Dims) -> std::result::Result<(), String> {
        let mismatch = || format!("must be {}, but the given tensor is {given}", self.display());
        if given.dtype != self.dtype || given.shape.len() != self.dims.len() {
            return Err(mismatch());
        }
        for (d, &n) in self.dims.iter().zip(&given.shape) {
            match d {
                Dim::Fixed(m) if *m != n => return Err(mismatch()),
                Dim::Fixed(_) => {}
                Dim::Symbolic(s) => match dims.get(s) {
                    Some(&bound) if bound != n => {
                        return Err(format!("dimension `{s}` is {n} here but {bound} elsewhere (an input or --dim)"))
                    }
                    _ => {
                        dims.insert(s.clone(), n);
                    }
                },
            }
        }
        Ok(())
    }

    /// `f32[batch,3,224,224]`.
    pub fn display(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Symbolic(s) => s.clone(),
            })
            .collect();
        format!("{}[{}]", self.dtype, dims.join(","))
    }
}

/// The graph inputs a caller must feed, in order, as declared (symbolic dimensions
/// unbound). Fails if one is not a tensor of a supported type.
pub fn declared_inputs(model: &ModelProto) -> Result<Vec<DeclaredInput>> {
    let Some(graph) = model.graph.as_ref() else {
        return Ok(Vec::new());
    };
    let initializers: HashSet<&str> = graph.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    graph.input.iter().filter(|vi| !initializers.contains(vi.name.as_deref().unwrap_or(""))).map(declared).collect()
}

/// Every symbolic dimension the model's inputs declare, sorted.
pub fn symbolic_dims(model: &ModelProto) -> Result<Vec<String>> {
    let mut names: Vec<String> = declared_inputs(model)?
        .into_iter()
        .flat_map(|d| d.dims)
        .filter_map(|d| match d {
            Dim::Symbolic(s) => Some(s),
            Dim::Fixed(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Fails if `dims` names a dimension the model does not have (a typo in `--dim`).
pub fn check_dim_names(model: &ModelProto, dims: &Dims) -> Result<()> {
    let known = symbolic_dims(model)?;
    match dims.keys().find(|k| !known.contains(k)) {
        None => Ok(()),
        Some(k) if known.is_empty() => {
            Err(Error::Invalid(format!("--dim {k}: the model has no symbolic dimensions; its shapes are static")))
        }
        Some(k) => Err(Error::Invalid(format!(
            "--dim {k}: the model has no symbolic dimension `{k}`; it has {}",
            known.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Fails if a graph output is declared as something other than a tensor of a supported
/// element type (a sequence, an optional, a float16 tensor, …).
pub fn check_output_kinds(model: &ModelProto) -> Result<()> {
    let Some(graph) = model.graph.as_ref() else {
        return Ok(());
    };
    for vi in &graph.output {
        let tensor = tensor_kind(vi)?;
        if let Some(code) = tensor.and_then(|t| t.elem_type).filter(|&c| c != 0) {
            if DType::from_onnx_code(code).is_none() {
                let name = vi.name.clone().unwrap_or_default();
                return Err(Error::UnsupportedType { tensor: name, dtype: onnx_type_name(code).into() });
            }
        }
    }
    Ok(())
}

/// The tensor type of a value, `None` if undeclared; an error for non-tensor kinds.
fn tensor_kind(vi: &ValueInfoProto) -> Result<Option<&type_proto::Tensor>> {
    let name = vi.name.clone().unwrap_or_default();
    let kind = |k: &str| Err(Error::UnsupportedType { tensor: name.clone(), dtype: k.into() });
    match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => Ok(Some(t)),
        Some(type_proto::Value::SequenceType(_)) => kind("sequence"),
        Some(type_proto::Value::MapType(_)) => kind("map"),
        Some(type_proto::Value::OptionalType(_)) => kind("optional"),
        Some(type_proto::Value::SparseTensorType(_)) => kind("sparse tensor"),
        None => Ok(None),
    }
}

/// Imports a decoded model. `base_dir` resolves external data.
///
/// `bindings` fixes the values of some graph inputs: they become constants and leave
/// the graph's input list. This specializes models that take shapes or axes as inputs
/// (as the ONNX node tests do) to the static program saturate compiles.
pub fn import_model(
    model: &ModelProto,
    base_dir: Option<&Path>,
    folder: &dyn ConstantFolder,
    bindings: &HashMap<String, Tensor>,
) -> Result<Graph> {
    import_model_with_dims(model, base_dir, folder, bindings, &Dims::new())
}

/// [`import_model`] with the inputs' symbolic dimensions bound by `dims`.
pub fn import_model_with_dims(
    model: &ModelProto,
    base_dir: Option<&Path>,
    folder: &dyn ConstantFolder,
    bindings: &HashMap<String, Tensor>,
    dims: &Dims,
) -> Result<Graph> {
    let graph = model.graph.as_ref().ok_or_else(|| Error::Invalid("the model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .unwrap_or(1);
    let mut imp = Importer {
        b: GraphBuilder::default(),
        weights: BTreeMap::new(),
        values: HashMap::new(),
        names: HashSet::new(),
        folder,
        opset,
        base_dir,
    };

    let initializers: HashSet<&str> = graph.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let mut inputs = Vec::new();
    for vi in &graph.input {
        let name = vi.name.clone().unwrap_or_default();
        if initializers.contains(name.as_str()) {
            continue; // an initializer listed as an input (IR < 4) is a constant
        }
        let ty = declared(vi)?.resolve(dims)?;
        if let Some(value) = bindings.get(&name) {
            if value.ty() != ty {
                return Err(Error::BadTensor {
                    name,
                    reason: format!("declared {ty} but bound to a value of type {}", value.ty()),
                });
            }
            let id = imp.constant(value.clone(), &name);
            imp.values.insert(name, id);
            continue;
        }
        let symbol = imp.fresh_name(&name);
        let id = imp.b.input(&symbol, &ty);
        imp.values.insert(name.clone(), id);
        inputs.push(Port { name, id });
    }
    for init in &graph.initializer {
        let name = init.name.clone().unwrap_or_default();
        let tensor = tensor_from_proto(init, imp.base_dir)?;
        let id = imp.constant(tensor, &name);
        imp.values.insert(name, id);
    }

    for node in topological_order(&graph.node, &imp.values)? {
        let outputs = super::ops::lower(&mut imp, node)?;
        for (name, id) in node.output.iter().zip(outputs) {
            if let (false, Some(id)) = (name.is_empty(), id) {
                imp.values.insert(name.clone(), id);
            }
        }
    }

    let mut outputs = Vec::new();
    for vi in &graph.output {
        let name = vi.name.clone().unwrap_or_default();
        let id = *imp
            .values
            .get(&name)
            .ok_or_else(|| Error::MissingTensor { node: "(graph output)".into(), tensor: name.clone() })?;
        check_declared_output(vi, imp.b.tensor_type(id).expect("values are tensors"))?;
        outputs.push(Port { name, id });
    }
    if outputs.is_empty() {
        return Err(Error::Invalid("the model's graph has no outputs".into()));
    }
    let graph = Graph { expr: imp.b.expr, inputs, outputs, weights: imp.weights };
    Ok(graph.canonicalize())
}

/// State of an import in progress; [`super::ops`] lowers nodes through it.
pub struct Importer<'a> {
    pub(crate) b: GraphBuilder,
    pub(crate) weights: BTreeMap<String, Tensor>,
    /// ONNX value name → node.
    values: HashMap<String, Id>,
    /// Weight and input names already taken (after sanitizing).
    names: HashSet<String>,
    folder: &'a dyn ConstantFolder,
    /// Version of the default ONNX domain the model was exported with.
    pub(crate) opset: i64,
    pub(crate) base_dir: Option<&'a Path>,
}

impl Importer<'_> {
    /// The node an ONNX value name refers to.
    pub(crate) fn value(&self, name: &str) -> Option<Id> {
        self.values.get(name).copied()
    }

    /// Makes ONNX value `name` refer to `id` (for the widening of stored types).
    pub(crate) fn rebind(&mut self, name: &str, id: Id) {
        self.values.insert(name.to_string(), id);
    }

    /// A name not used by any other input or weight, close to `hint`.
    fn fresh_name(&mut self, hint: &str) -> String {
        unique_name(&mut self.names, &sanitize_name(hint))
    }

    /// Adds a constant: a `fill` if every element is the same f32, else a weight.
    pub(crate) fn constant(&mut self, tensor: Tensor, name_hint: &str) -> Id {
        if let Some(v) = tensor.splat_value() {
            return self.b.fill(v, tensor.shape());
        }
        let name = self.fresh_name(name_hint);
        let id = self.b.weight(&name, &tensor.ty());
        self.weights.insert(name, tensor);
        id
    }

    /// Whether node `id` is a constant (a weight or a fill).
    pub(crate) fn is_const(&self, id: Id) -> bool {
        matches!(self.b.node(id), TensorLang::Weight(_) | TensorLang::Fill(_))
    }

    /// The value of a constant node.
    pub(crate) fn const_value(&self, id: Id) -> Option<Tensor> {
        match self.b.node(id) {
            TensorLang::Weight([name, ..]) => match self.b.node(*name) {
                TensorLang::Name(n) => self.weights.get(n.as_str()).cloned(),
                _ => None,
            },
            TensorLang::Fill([v, shape]) => match (self.b.node(*v), self.b.node(*shape)) {
                (TensorLang::Float(v), TensorLang::Ints(s)) => Some(Tensor::filled(&s.to_usizes()?, v.get())),
                _ => None,
            },
            _ => None,
        }
    }

    /// Adds an op node, checking its type; if all its tensor operands are constants,
    /// evaluates it and returns the constant instead. `at` names the ONNX node in errors.
    pub(crate) fn add(&mut self, node: TensorLang, at: &NodeProto) -> Result<Id> {
        let op = node.to_string();
        let id = self.b.add(node).map_err(|reason| Error::Shape {
            node: node_name(at),
            op: op_type(at).into(),
            reason: format!("{op}: {reason}"),
        })?;
        let node = self.b.node(id).clone();
        let tensor_children: Vec<Id> =
            node.children().iter().copied().filter(|&c| self.b.tensor_type(c).is_some()).collect();
        let foldable = !node.is_attribute()
            && !matches!(node, TensorLang::Input(_) | TensorLang::Weight(_) | TensorLang::Fill(_))
            && tensor_children.iter().all(|&c| self.is_const(c));
        if !foldable {
            return Ok(id);
        }
        let value = self.folder.fold(&self.b.expr, id, &self.weights).map_err(|reason| Error::Shape {
            node: node_name(at),
            op: op_type(at).into(),
            reason: format!("evaluating constant {op}: {reason}"),
        })?;
        let hint = at.output.first().cloned().unwrap_or_else(|| node_name(at));
        Ok(self.constant(value, &hint))
    }
}

/// How errors refer to a node: its name, or its first output when it has none.
pub(crate) fn node_name(node: &NodeProto) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match node.output.first() {
            Some(o) if !o.is_empty() => format!("{} → {o}", op_type(node)),
            _ => op_type(node).to_string(),
        },
    }
}

pub(crate) fn op_type(node: &NodeProto) -> &str {
    node.op_type.as_deref().unwrap_or("")
}

/// Orders nodes so each comes after the producers of its inputs. Fails on a read of a
/// value nobody produces, and on cycles.
fn topological_order<'n>(nodes: &'n [NodeProto], known: &HashMap<String, Id>) -> Result<Vec<&'n NodeProto>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(o, i);
        }
    }
    let mut waiting = vec![0usize; nodes.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for input in n.input.iter().filter(|s| !s.is_empty()) {
            if let Some(&p) = producer.get(input.as_str()) {
                waiting[i] += 1;
                consumers[p].push(i);
            } else if !known.contains_key(input) {
                return Err(Error::MissingTensor { node: node_name(n), tensor: input.clone() });
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_front() {
        order.push(&nodes[i]);
        for &c in &consumers[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    if order.len() < nodes.len() {
        let stuck: Vec<String> = (0..nodes.len())
            .filter(|&i| waiting[i] > 0)
            .take(8)
            .map(|i| format!("`{}`", node_name(&nodes[i])))
            .collect();
        return Err(Error::Cycle { nodes: stuck.join(", ") });
    }
    Ok(order)
}

/// A graph input as declared, symbolic dimensions by name.
fn declared(vi: &ValueInfoProto) -> Result<DeclaredInput> {
    use super::proto::tensor_shape_proto::dimension::Value;
    let name = vi.name.clone().unwrap_or_default();
    let bad = |reason: String| Error::BadTensor { name: name.clone(), reason };
    let tensor = tensor_kind(vi)?.ok_or_else(|| bad("the graph input has no type".into()))?;
    let code = tensor.elem_type.unwrap_or(0);
    let dtype = DType::from_onnx_code(code)
        .ok_or_else(|| Error::UnsupportedType { tensor: name.clone(), dtype: onnx_type_name(code).into() })?;
    let shape = tensor.shape.as_ref().ok_or_else(|| bad("the input has no shape (not even a rank)".into()))?;
    let dims = shape
        .dim
        .iter()
        .enumerate()
        .map(|(axis, d)| match &d.value {
            Some(Value::DimValue(v)) if *v >= 0 => Dim::Fixed(*v as usize),
            Some(Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
            _ => Dim::Symbolic(format!("{name}[{axis}]")),
        })
        .collect();
    Ok(DeclaredInput { name, dtype, dims })
}

/// Checks an output's inferred type against the one the model declares, where it
/// declares a complete one.
fn check_declared_output(vi: &ValueInfoProto, inferred: &TensorType) -> Result<()> {
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Ok(());
    };
    let name = vi.name.clone().unwrap_or_default();
    if let Some(code) = t.elem_type.filter(|&c| c != 0) {
        if DType::from_onnx_code(code) != Some(inferred.dtype) {
            return Err(Error::BadTensor {
                name,
                reason: format!(
                    "the model declares element type {} but the graph computes {}",
                    onnx_type_name(code),
                    inferred.dtype
                ),
            });
        }
    }
    let declared: Option<Vec<usize>> = t.shape.as_ref().and_then(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(super::proto::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => Some(*v as usize),
                _ => None,
            })
            .collect()
    });
    match declared {
        Some(shape) if shape != inferred.shape => Err(Error::BadTensor {
            name,
            reason: format!(
                "the model declares shape {} but the graph computes {}",
                ShapeDisplay(&shape),
                ShapeDisplay(&inferred.shape)
            ),
        }),
        _ => Ok(()),
    }
}
