//! How each supported ONNX op lowers to [`TensorLang`].
//!
//! [`lower`] dispatches on the op type. Attribute defaults and the differences between
//! opset versions (axes as attribute or input, Softmax's 2-D coercion before opset 13,
//! Slice's attributes before opset 10, …) are resolved here, so TensorLang ops carry
//! explicit, normalized attributes. Ops that only compute on shapes (`Shape`, `Size`,
//! `ConstantOfShape`, `Range`) produce constants; ops that are the identity at
//! inference (`Identity`, `Dropout`) produce their input.
//!
//! To support a new op: add its TensorLang node (lang.rs), its type rule (infer.rs), its
//! interpreter kernel (saturate-verify), then its lowering here and its name in
//! [`SUPPORTED_OPS`].

mod attention;
mod composite;
mod conv_transpose;
mod einsum;
mod resize;
mod scatter;

use super::import::{node_name, op_type, Importer};
use super::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use super::tensor::tensor_from_proto;
use crate::shape::normalize_axis;
use crate::{BinaryOp, DType, Error, IntList, Result, Tensor, TensorLang, TensorType, UnaryOp};
use egg::Id;

/// ONNX ops that import without an op of their own: constants, shape arithmetic, and
/// ops that lower to several (`Sum` to a chain of adds, `Xor` to `not(equal)`, …).
#[rustfmt::skip]
pub const IMPORT_ONLY: &[&str] = &[
    "Attention", "CenterCropPad", "Constant", "ConstantOfShape", "ConvTranspose", "Einsum", "DepthToSpace", "Dropout", "GatherND", "GreaterOrEqual", "GroupNormalization", "Hardmax", "Identity",
    "InstanceNormalization", "LessOrEqual", "LpNormalization", "LpPool", "Mean", "NegativeLogLikelihoodLoss", "OneHot",
    "PRelu", "Range", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "Resize", "RMSNormalization", "Shape", "Size",
    "Scatter", "ScatterND", "SoftmaxCrossEntropyLoss", "SpaceToDepth", "Split", "Sum", "Tile", "TopK", "Trilu", "Xor",
];

/// The ONNX ops (default domain) that import supports, in alphabetical order: the ONNX
/// names of the op table's rows, and [`IMPORT_ONLY`].
pub static SUPPORTED_OPS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut ops: Vec<&'static str> = crate::OPS
        .iter()
        .filter_map(|op| crate::desc_of(op))
        .flat_map(|d| d.onnx().iter().copied())
        .chain(IMPORT_ONLY.iter().copied())
        .collect();
    ops.sort_unstable();
    ops.dedup();
    ops
});

/// ONNX ops that only move, select or convert elements, so they work on every dtype
/// as stored; every other op computes, and [`lower`] runs it in its operands' compute
/// types (see [`crate::dtype`]).
#[rustfmt::skip]
const MOVES_ELEMENTS: &[&str] = &[
    "Cast", "CastLike", "CenterCropPad", "Concat", "Constant", "ConstantOfShape", "DepthToSpace", "Dropout",
    "Expand", "Flatten", "Gather", "GatherElements", "GatherND", "Identity", "OneHot", "Pad", "Reshape", "Shape",
    "Size", "Slice", "SpaceToDepth", "Split", "Squeeze", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where",
];

/// Scatters move elements when they replace (`reduction="none"`), and compute otherwise.
const SCATTERS: &[&str] = &["Scatter", "ScatterElements", "ScatterND"];

/// Whether ONNX op `op` imports to elementwise functions of the op table only (on f64
/// they compute in f64).
fn is_elementwise(op: &str) -> bool {
    const COMPOSED: &[&str] = &["Clip", "GreaterOrEqual", "LessOrEqual", "Max", "Min", "Sum", "Xor", "Pow"];
    COMPOSED.contains(&op)
        || UnaryOp::ALL.iter().any(|u| u.desc().onnx.contains(&op))
        || BinaryOp::ALL.iter().any(|b| b.desc().onnx.contains(&op))
}

/// Results that are indices, not values of their operand's type: (op, output position).
const INDEX_RESULTS: &[(&str, usize)] = &[("ArgMax", 0), ("ArgMin", 0), ("TopK", 1)];

/// Lowers one ONNX node; returns the node of each of its outputs (`None` for outputs
/// the node does not produce).
///
/// An op that computes, given operands of a type saturate only stores (`i8`, `f16`, …),
/// computes on them cast to their compute type (`i64`, `f32`), and each result of that
/// compute type is cast back to the operand's type: the rounding and wrapping ONNX
/// specifies for the stored type. Index operands of a stored integer type (a gather's
/// `int32` indices) become `i64`.
pub fn lower(imp: &mut Importer, node: &NodeProto) -> Result<Vec<Option<Id>>> {
    let op = op_type(node);
    let replaces = || {
        node.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some("reduction"))
            .is_none_or(|a| a.s.as_deref() == Some(b"none".as_slice()))
    };
    let moves = MOVES_ELEMENTS.contains(&op) || (SCATTERS.contains(&op) && replaces());
    let widened = widened_operands(imp, node, moves);
    for w in &widened {
        let to = imp.b.dtype(w.compute);
        let wide = imp.add(TensorLang::Cast([w.id, to]), node)?;
        imp.rebind(&w.name, wide);
    }
    let outputs = lower_node(imp, node);
    for w in &widened {
        imp.rebind(&w.name, w.id);
    }
    let mut outputs = outputs?;
    if !moves {
        narrow_results(imp, node, &widened, &mut outputs)?;
    }
    Ok(outputs)
}

/// An operand of a stored type that an op computes on, cast to its compute type for it.
struct Widened {
    /// The ONNX value, and its node.
    name: String,
    id: Id,
    stored: DType,
    compute: DType,
}

/// The operands of `node` to widen: those of stored types it computes on (all but the
/// elementwise functions' f64), and stored integer indices.
fn widened_operands(imp: &Importer, node: &NodeProto, moves: bool) -> Vec<Widened> {
    let op = op_type(node);
    let mut widened = Vec::new();
    for (position, name) in node.input.iter().enumerate() {
        let Some(id) = imp.value(name) else { continue };
        let Some(dtype) = imp.b.tensor_type(id).map(|t| t.dtype) else { continue };
        let index = matches!((op, position), ("Gather" | "GatherElements" | "GatherND", 1))
            || (SCATTERS.contains(&op) && position == 1);
        let stays = moves || (is_elementwise(op) && dtype.computes_elementwise());
        if dtype.is_storage_only() && (!stays || (index && dtype.is_integer())) {
            // max pooling only orders, and f32 holds every integer of up to 16 bits
            let small_int = dtype.is_integer() && dtype.byte_size() <= 2;
            let compute = if op == "MaxPool" && small_int { DType::F32 } else { dtype.compute() };
            widened.push(Widened { name: name.clone(), id, stored: dtype, compute });
        }
    }
    widened
}

/// Casts each result of a widened operand's compute type back to its stored type
/// (indices excepted).
fn narrow_results(imp: &mut Importer, node: &NodeProto, widened: &[Widened], outputs: &mut [Option<Id>]) -> Result<()> {
    let op = op_type(node);
    for (position, out) in outputs.iter_mut().enumerate() {
        let Some(out) = out else { continue };
        if INDEX_RESULTS.contains(&(op, position)) {
            continue;
        }
        let computed = imp.b.tensor_type(*out).map(|t| t.dtype);
        if let Some(w) = widened.iter().find(|w| Some(w.compute) == computed) {
            let d = imp.b.dtype(w.stored);
            *out = imp.add(TensorLang::Cast([*out, d]), node)?;
        }
    }
    Ok(())
}

fn lower_node(imp: &mut Importer, node: &NodeProto) -> Result<Vec<Option<Id>>> {
    let mut cx = Cx { imp, node };
    let domain = node.domain.as_deref().unwrap_or("");
    if !matches!(domain, "" | "ai.onnx") {
        return Err(cx.unsupported_op());
    }
    // before opset 7, elementwise ops broadcast only when asked to, with their own rule
    // (`broadcast=1`, `axis`); without the attribute, shapes had to match, which
    // numpy-style broadcasting computes the same way
    if cx.imp.opset < 7 && cx.attr("broadcast").is_some_and(|a| a.i == Some(1)) {
        return Err(cx.unsupported("the legacy `broadcast` attribute (opsets before 7)"));
    }
    use TensorLang as L;
    let out = match op_type(node) {
        "Clip" => clip(&mut cx)?,
        "Cast" => {
            let x = cx.input(0)?;
            let code = cx.int_attr("to", None)?;
            let dtype = DType::from_onnx_code(code as i32)
                .ok_or_else(|| cx.unsupported(&format!("casting to {}", crate::dtype::onnx_type_name(code as i32))))?;
            let d = cx.imp.b.dtype(dtype);
            cx.add(L::Cast([x, d]))?
        }
        "CastLike" => {
            let (x, like) = (cx.input(0)?, cx.input(1)?);
            let d = cx.imp.b.dtype(cx.ty(like).dtype);
            cx.add(L::Cast([x, d]))?
        }

        "Pow" => pow(&mut cx)?,
        "LessOrEqual" | "GreaterOrEqual" => {
            let (a, b) = (cx.input(0)?, cx.input(1)?);
            let strict =
                if op_type(node) == "LessOrEqual" { cx.add(L::Less([a, b]))? } else { cx.add(L::Greater([a, b]))? };
            let eq = cx.add(L::Equal([a, b]))?;
            cx.add(L::Or([strict, eq]))?
        }
        "Xor" => {
            let eq = cx.binary(L::Equal)?;
            cx.add(L::Not(eq))?
        }
        "Where" => {
            let (c, a, b) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
            cx.add(L::Where([c, a, b]))?
        }
        "Max" => cx.variadic(L::Max)?,
        "Min" => cx.variadic(L::Min)?,
        "Sum" => cx.variadic(L::Add)?,
        "Mean" => {
            let sum = cx.variadic(L::Add)?;
            let n = cx.imp.b.fill(cx.present_inputs().len() as f32, &[]);
            cx.add(L::Div([sum, n]))?
        }

        "MatMul" => cx.binary(L::MatMul)?,
        "Gemm" => gemm(&mut cx)?,

        "ReduceSum" => reduce(&mut cx, L::ReduceSum, 13)?,
        "ReduceProd" => reduce(&mut cx, L::ReduceProd, 18)?,
        "ReduceMean" => reduce(&mut cx, L::ReduceMean, 18)?,
        "ReduceMax" => reduce(&mut cx, L::ReduceMax, 18)?,
        "ReduceMin" => reduce(&mut cx, L::ReduceMin, 18)?,
        "ArgMax" | "ArgMin" => {
            let x = cx.input(0)?;
            let axis = cx.axis_attr("axis", Some(0), cx.rank(x))?;
            let keep = cx.int_attr("keepdims", Some(1))?;
            let last = cx.int_attr("select_last_index", Some(0))?;
            let b = &mut cx.imp.b;
            let attrs = [b.int(axis as i64), b.int((keep != 0) as i64), b.int((last != 0) as i64)];
            let children = [x, attrs[0], attrs[1], attrs[2]];
            cx.add(if op_type(node) == "ArgMax" { L::ArgMax(children) } else { L::ArgMin(children) })?
        }
        "CumSum" => {
            let x = cx.input(0)?;
            let rank = cx.rank(x) as i64;
            let axis = *cx.const_ints(1)?.first().ok_or_else(|| cx.attr_error("CumSum needs an axis".into()))?;
            let axis = if axis < 0 { axis + rank } else { axis };
            if !(0..rank).contains(&axis) {
                return Err(cx.attr_error(format!("axis {axis} is outside the rank {rank}")));
            }
            let (exclusive, reverse) = (cx.int_attr("exclusive", Some(0))? != 0, cx.int_attr("reverse", Some(0))? != 0);
            let b = &mut cx.imp.b;
            let attrs = [b.int(axis), b.int(exclusive as i64), b.int(reverse as i64)];
            cx.add(L::CumSum([x, attrs[0], attrs[1], attrs[2]]))?
        }
        "Softmax" => softmax(&mut cx, L::Softmax)?,
        "LogSoftmax" => softmax(&mut cx, L::LogSoftmax)?,
        "LayerNormalization" => return layer_norm(&mut cx),
        "BatchNormalization" => batch_norm(&mut cx)?,
        "LRN" => {
            let x = cx.input(0)?;
            let size = cx.int_attr("size", None)?;
            let (alpha, beta, bias) =
                (cx.float_attr("alpha", 1e-4)?, cx.float_attr("beta", 0.75)?, cx.float_attr("bias", 1.0)?);
            let b = &mut cx.imp.b;
            let attrs = [b.int(size), b.float(alpha), b.float(beta), b.float(bias)];
            cx.add(L::Lrn([x, attrs[0], attrs[1], attrs[2], attrs[3]]))?
        }

        "Reshape" => reshape(&mut cx)?,
        "Flatten" => {
            let x = cx.input(0)?;
            let rank = cx.rank(x) as i64;
            let axis = cx.int_attr("axis", Some(1))?;
            let axis = if axis < 0 { axis + rank } else { axis };
            if !(0..=rank).contains(&axis) {
                return Err(cx.attr_error(format!("axis {axis} is outside [-{rank}, {rank}]")));
            }
            let a = cx.imp.b.int(axis);
            cx.add(L::Flatten([x, a]))?
        }
        "Squeeze" => squeeze(&mut cx)?,
        "Unsqueeze" => unsqueeze(&mut cx)?,
        "Transpose" => {
            let x = cx.input(0)?;
            let rank = cx.rank(x);
            let perm = cx.ints_attr("perm")?.unwrap_or_else(|| (0..rank as i64).rev().collect());
            let p = cx.imp.b.ints(perm);
            cx.add(L::Transpose([x, p]))?
        }
        "Expand" => {
            let x = cx.input(0)?;
            let shape = cx.const_ints(1)?;
            let shape = IntList(shape)
                .to_usizes()
                .ok_or_else(|| cx.attr_error("Expand shape has a negative dimension".into()))?;
            let s = cx.imp.b.dims(&shape);
            cx.add(L::Expand([x, s]))?
        }
        "Tile" => tile(&mut cx)?,
        "Concat" => {
            let inputs = cx.present_inputs();
            let first = *inputs.first().ok_or_else(|| cx.attr_error("Concat needs at least one input".into()))?;
            let axis = cx.axis_attr("axis", None, cx.rank(first))?;
            let mut children = vec![cx.imp.b.int(axis as i64)];
            children.extend(inputs);
            cx.add(L::Concat(children.into_boxed_slice()))?
        }
        "GatherElements" => {
            let (x, idx) = (cx.input(0)?, cx.input(1)?);
            let axis = cx.axis_attr("axis", Some(0), cx.rank(x))?;
            let a = cx.imp.b.int(axis as i64);
            cx.add(L::GatherElements([x, idx, a]))?
        }
        "Split" => return split(&mut cx),
        "Slice" => slice(&mut cx)?,
        "Gather" => {
            let (x, idx) = (cx.input(0)?, cx.input(1)?);
            let axis = cx.axis_attr("axis", Some(0), cx.rank(x))?;
            let a = cx.imp.b.int(axis as i64);
            cx.add(L::Gather([x, idx, a]))?
        }

        "Conv" => conv(&mut cx)?,
        "MaxPool" => pool(&mut cx, true)?,
        "AveragePool" => pool(&mut cx, false)?,
        "Pad" => pad(&mut cx)?,
        "Gelu" => match cx.string_attr("approximate", "none")?.as_str() {
            "none" => cx.unary(L::Gelu)?,
            "tanh" => cx.unary(L::GeluTanh)?,
            other => return Err(cx.attr_error(format!("approximate `{other}` is not none or tanh"))),
        },
        "GlobalAveragePool" => cx.unary(L::GlobalAvgPool)?,
        "GlobalMaxPool" => cx.unary(L::GlobalMaxPool)?,

        "Identity" => cx.input(0)?,
        "Dropout" => return dropout(&mut cx),
        "Constant" => constant(&mut cx)?,
        "ConstantOfShape" => {
            let shape = cx.const_ints(0)?;
            let shape = IntList(shape)
                .to_usizes()
                .ok_or_else(|| cx.attr_error("negative dimension in ConstantOfShape".into()))?;
            let value = match cx.attr("value") {
                Some(a) => cx.tensor_attr(a)?,
                None => Tensor::scalar_f32(0.0),
            };
            if value.len() != 1 {
                return Err(cx.attr_error("ConstantOfShape value must hold one element".into()));
            }
            let filled = broadcast_scalar(&value, &shape);
            cx.constant(filled)
        }
        "Shape" => {
            let x = cx.input(0)?;
            let dims: Vec<i64> = cx.shape(x).iter().map(|&d| d as i64).collect();
            let rank = dims.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
            let start = clamp(cx.int_attr("start", Some(0))?);
            let end = clamp(cx.int_attr("end", Some(rank))?);
            let dims = dims[start..end.max(start)].to_vec();
            cx.constant(Tensor::i64_vec(dims))
        }
        "Size" => {
            let x = cx.input(0)?;
            let n = cx.shape(x).iter().product::<usize>() as i64;
            cx.constant(Tensor::I64(ndarray::arr0(n).into_dyn()))
        }
        "Range" => range(&mut cx)?,
        "PRelu" => composite::prelu(&mut cx)?,
        "ReduceL1" => composite::norm(&mut cx, composite::Norm::L1)?,
        "ReduceL2" => composite::norm(&mut cx, composite::Norm::L2)?,
        "ReduceSumSquare" => composite::norm(&mut cx, composite::Norm::SumSquare)?,
        "ReduceLogSumExp" => composite::norm(&mut cx, composite::Norm::LogSumExp)?,
        "DepthToSpace" => composite::depth_to_space(&mut cx)?,
        "SpaceToDepth" => composite::space_to_depth(&mut cx)?,
        "InstanceNormalization" => composite::instance_norm(&mut cx)?,
        "GroupNormalization" => composite::group_norm(&mut cx)?,
        "Trilu" => composite::trilu(&mut cx)?,
        "OneHot" => composite::one_hot(&mut cx)?,
        "Hardmax" => composite::hardmax(&mut cx)?,
        "LpPool" => composite::lp_pool(&mut cx)?,
        "CenterCropPad" => composite::center_crop_pad(&mut cx)?,
        "TopK" => return composite::top_k(&mut cx),
        "ConvTranspose" => conv_transpose::conv_transpose(&mut cx)?,
        "Einsum" => einsum::einsum(&mut cx)?,
        "Resize" => resize::resize(&mut cx)?,
        "Attention" => return attention::attention(&mut cx),
        "NegativeLogLikelihoodLoss" => return composite::nll_loss(&mut cx),
        "SoftmaxCrossEntropyLoss" => return composite::softmax_cross_entropy(&mut cx),
        "ReduceLogSum" => composite::reduce_log_sum(&mut cx)?,
        "LpNormalization" => composite::lp_normalization(&mut cx)?,
        "RMSNormalization" => composite::rms_normalization(&mut cx)?,
        "ScatterElements" | "Scatter" => scatter::scatter_elements(&mut cx)?,
        "ScatterND" => scatter::scatter_nd(&mut cx)?,
        "GatherND" => scatter::gather_nd(&mut cx)?,
        other => elementwise(&mut cx, other)?,
    };
    Ok(vec![Some(out)])
}

/// A unary or binary function of the op table, found by its ONNX name: its operands,
/// and for a unary one its params from their attributes (or their defaults).
fn elementwise(cx: &mut Cx, onnx: &str) -> Result<Id> {
    if let Some(op) = UnaryOp::ALL.iter().find(|op| op.desc().onnx.contains(&onnx)) {
        let mut children = vec![cx.input(0)?];
        for p in op.desc().params {
            // a float attribute, or an integer one (is_inf's detect_* flags)
            let v = match cx.attr(p.onnx) {
                Some(a) if a.f.is_none() && a.i.is_some() => a.i.expect("checked") as f32,
                _ => cx.float_attr(p.onnx, p.default)?,
            };
            children.push(cx.imp.b.float(v));
        }
        let node = <TensorLang as egg::FromOp>::from_op(op.desc().name, children).expect("the row's arity");
        return cx.add(node);
    }
    let rows: Vec<BinaryOp> = BinaryOp::ALL.iter().copied().filter(|op| op.desc().onnx.contains(&onnx)).collect();
    if !rows.is_empty() {
        // the row whose attributes the node has (absent ones count as 0)
        let mut chosen = None;
        for op in rows {
            let mut fits = true;
            for &(name, v) in op.desc().onnx_attrs {
                fits &= cx.int_attr(name, Some(0))? == v;
            }
            if fits {
                chosen = Some(op);
                break;
            }
        }
        let op = chosen.ok_or_else(|| cx.unsupported("these attribute values"))?;
        let (a, b) = (cx.input(0)?, cx.input(1)?);
        return cx.add(op.node([a, b]));
    }
    Err(cx.unsupported_op())
}

/// One node being lowered: access to its inputs and attributes, with errors that name it.
struct Cx<'i, 'a, 'n> {
    imp: &'i mut Importer<'a>,
    node: &'n NodeProto,
}

impl Cx<'_, '_, '_> {
    fn name(&self) -> String {
        node_name(self.node)
    }

    fn op(&self) -> String {
        op_type(self.node).to_string()
    }

    fn unsupported_op(&self) -> Error {
        let domain = match self.node.domain.as_deref() {
            None | Some("") | Some("ai.onnx") => String::new(),
            Some(d) => format!(" from domain `{d}`"),
        };
        Error::UnsupportedOp { op: self.op(), domain, node: self.name(), supported: SUPPORTED_OPS.join(", ") }
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported { node: self.name(), op: self.op(), what: what.into() }
    }

    fn attr_error(&self, reason: String) -> Error {
        Error::Shape { node: self.name(), op: self.op(), reason }
    }

    /// Names of the inputs that are present (ONNX marks omitted optional inputs with "").
    fn input_name(&self, i: usize) -> Option<&str> {
        self.node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn opt_input(&self, i: usize) -> Option<Id> {
        self.input_name(i).and_then(|n| self.imp.value(n))
    }

    fn input(&self, i: usize) -> Result<Id> {
        match self.input_name(i) {
            None => Err(self.attr_error(format!("input {i} is required"))),
            Some(name) => self.imp.value(name).ok_or_else(|| {
                self.unsupported(&format!("reading `{name}`, an optional output its producer does not compute here"))
            }),
        }
    }

    fn present_inputs(&self) -> Vec<Id> {
        (0..self.node.input.len()).filter_map(|i| self.opt_input(i)).collect()
    }

    fn ty(&self, id: Id) -> &TensorType {
        self.imp.b.tensor_type(id).expect("ONNX values are tensors")
    }

    fn shape(&self, id: Id) -> Vec<usize> {
        self.ty(id).shape.clone()
    }

    fn rank(&self, id: Id) -> usize {
        self.ty(id).rank()
    }

    /// The value of input `i`, which must be a constant (shapes are static in saturate).
    fn const_input(&self, i: usize) -> Result<Tensor> {
        let id = self.input(i)?;
        self.imp.const_value(id).ok_or_else(|| Error::NeedsConstant {
            node: self.name(),
            op: self.op(),
            input: self.input_name(i).unwrap_or("").to_string(),
        })
    }

    /// The values of input `i`, a constant float tensor.
    fn const_floats(&self, i: usize) -> Result<Vec<f64>> {
        let t = self.const_input(i)?;
        if t.dtype() != DType::F32 {
            return Err(self.attr_error(format!("input {i} must be a float tensor, found {}", t.dtype())));
        }
        Ok(t.to_f32_vec().into_iter().map(f64::from).collect())
    }

    fn const_ints(&self, i: usize) -> Result<Vec<i64>> {
        let t = self.const_input(i)?;
        if t.dtype() == DType::F32 {
            return Err(self.attr_error(format!("input {i} must be an integer tensor, found f32")));
        }
        Ok(t.to_i64_vec())
    }

    fn add(&mut self, node: TensorLang) -> Result<Id> {
        self.imp.add(node, self.node)
    }

    fn constant(&mut self, t: Tensor) -> Id {
        let hint = self.node.output.first().cloned().unwrap_or_else(|| self.name());
        self.imp.constant(t, &hint)
    }

    /// A constant a composition uses (`what`: a mask, a range), named after the node's
    /// output and its purpose so it never takes the name of a graph output.
    fn constant_part(&mut self, t: Tensor, what: &str) -> Id {
        let output = self.node.output.first().cloned().unwrap_or_else(|| self.name());
        self.imp.constant(t, &format!("{output}_{what}"))
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name.as_deref() == Some(name))
    }

    fn attr_kind(a: &AttributeProto) -> Option<AttributeType> {
        a.r#type.and_then(|t| AttributeType::try_from(t).ok())
    }

    fn int_attr(&self, name: &str, default: Option<i64>) -> Result<i64> {
        match (self.attr(name), default) {
            (Some(a), _) => a.i.ok_or_else(|| self.attr_error(format!("attribute `{name}` must be an integer"))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.attr_error(format!("attribute `{name}` is required"))),
        }
    }

    fn float_attr(&self, name: &str, default: f32) -> Result<f32> {
        match self.attr(name) {
            Some(a) => a.f.ok_or_else(|| self.attr_error(format!("attribute `{name}` must be a float"))),
            None => Ok(default),
        }
    }

    fn ints_attr(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.attr(name) {
            Some(a) if Self::attr_kind(a) == Some(AttributeType::Ints) || !a.ints.is_empty() => {
                Ok(Some(a.ints.clone()))
            }
            Some(_) => Err(self.attr_error(format!("attribute `{name}` must be a list of integers"))),
            None => Ok(None),
        }
    }

    fn string_attr(&self, name: &str, default: &str) -> Result<String> {
        match self.attr(name) {
            Some(a) => {
                a.s.as_ref()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .ok_or_else(|| self.attr_error(format!("attribute `{name}` must be a string")))
            }
            None => Ok(default.to_string()),
        }
    }

    fn tensor_attr(&self, a: &AttributeProto) -> Result<Tensor> {
        let t = a.t.as_ref().ok_or_else(|| {
            self.attr_error(format!("attribute `{}` must be a tensor", a.name.as_deref().unwrap_or("")))
        })?;
        tensor_from_proto(t, self.imp.base_dir).map_err(|e| match e {
            Error::BadTensor { reason, .. } => self.unsupported(&format!("its tensor attribute: {reason}")),
            other => other,
        })
    }

    /// An axis attribute normalized against `rank`.
    fn axis_attr(&self, name: &str, default: Option<i64>, rank: usize) -> Result<usize> {
        let axis = self.int_attr(name, default)?;
        normalize_axis(axis, rank).ok_or_else(|| self.attr_error(format!("{name} {axis} is outside [-{rank}, {rank})")))
    }

    /// Axes normalized against `rank`, sorted; duplicates are an error.
    fn normalize_axes(&self, axes: &[i64], rank: usize) -> Result<Vec<i64>> {
        let mut out = axes
            .iter()
            .map(|&a| {
                normalize_axis(a, rank)
                    .map(|a| a as i64)
                    .ok_or_else(|| self.attr_error(format!("axis {a} is outside [-{rank}, {rank})")))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_unstable();
        if out.windows(2).any(|w| w[0] == w[1]) {
            return Err(self.attr_error(format!("axes {} repeat an axis", IntList(axes.to_vec()))));
        }
        Ok(out)
    }

    /// The axes a reduction of `x` reduces (an input from opset `axes_input_since` on, an
    /// attribute before), normalized, and keepdims; `None` when it reduces nothing
    /// (`noop_with_empty_axes` with no axes).
    fn reduce_axes(&self, x: Id, axes_input_since: i64) -> Result<Option<(Vec<i64>, bool)>> {
        let rank = self.rank(x);
        let axes = if self.imp.opset >= axes_input_since {
            match self.input_name(1) {
                Some(_) => Some(self.const_ints(1)?),
                None => None,
            }
        } else {
            self.ints_attr("axes")?
        };
        let keepdims = self.int_attr("keepdims", Some(1))? != 0;
        let noop_with_empty = self.int_attr("noop_with_empty_axes", Some(0))? != 0;
        let axes = match axes {
            Some(a) if !a.is_empty() => self.normalize_axes(&a, rank)?,
            _ if noop_with_empty => return Ok(None),
            _ => (0..rank as i64).collect(),
        };
        Ok(Some((axes, keepdims)))
    }

    /// A scalar zero of `x`'s element type, to select or compare against.
    fn zero_like(&mut self, x: Id) -> Id {
        let zero = Tensor::full(self.ty(x).dtype, &[], 0.0);
        self.constant_part(zero, "zero")
    }

    /// The four dims of an `[N, C, H, W]` input.
    fn nchw(&self, x: Id) -> Result<[usize; 4]> {
        match self.shape(x)[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            ref other => Err(self.attr_error(format!("needs an [N,C,H,W] input, got rank {}", other.len()))),
        }
    }

    fn reshape(&mut self, x: Id, shape: &[usize]) -> Result<Id> {
        let s = self.imp.b.dims(shape);
        self.add(TensorLang::Reshape([x, s]))
    }

    /// `x` reshaped to `shape`, transposed by `perm`, reshaped to `out`.
    fn regroup(&mut self, x: Id, shape: &[usize], perm: &[i64], out: &[usize]) -> Result<Id> {
        let r = self.reshape(x, shape)?;
        let p = self.imp.b.ints(perm.to_vec());
        let t = self.add(TensorLang::Transpose([r, p]))?;
        self.reshape(t, out)
    }

    /// `x` reshaped to `[N, G, inner]` and each `(n, g)` row normalized (mean 0,
    /// variance 1, with `eps`), in that grouped shape.
    fn normalize_grouped(&mut self, x: Id, grouped: &[usize], eps: f32) -> Result<Id> {
        let g = self.reshape(x, grouped)?;
        let (one, zero) = (self.imp.b.fill(1.0, &[]), self.imp.b.fill(0.0, &[]));
        let (axis, e) = (self.imp.b.int(2), self.imp.b.float(eps));
        self.add(TensorLang::LayerNorm([g, one, zero, axis, e]))
    }

    /// `y · scale + bias`, the parameters viewed as `param_shape` to broadcast over `y`.
    fn scale_shift(&mut self, y: Id, [scale, bias]: [Id; 2], param_shape: &[usize]) -> Result<Id> {
        let s = self.reshape(scale, param_shape)?;
        let b = self.reshape(bias, param_shape)?;
        let scaled = self.add(TensorLang::Mul([y, s]))?;
        self.add(TensorLang::Add([scaled, b]))
    }

    fn unary(&mut self, op: fn(Id) -> TensorLang) -> Result<Id> {
        let x = self.input(0)?;
        self.add(op(x))
    }

    fn binary(&mut self, op: fn([Id; 2]) -> TensorLang) -> Result<Id> {
        let (a, b) = (self.input(0)?, self.input(1)?);
        self.add(op([a, b]))
    }

    /// Folds a variadic op (Sum, Max, Min) into a left-to-right chain of binary ones.
    fn variadic(&mut self, op: fn([Id; 2]) -> TensorLang) -> Result<Id> {
        let inputs = self.present_inputs();
        let (&first, rest) = inputs.split_first().ok_or_else(|| self.attr_error("needs at least one input".into()))?;
        if rest.is_empty() {
            // a single operand is returned as is; Max(x) is x
            return Ok(first);
        }
        let mut acc = first;
        for &x in rest {
            acc = self.add(op([acc, x]))?;
        }
        Ok(acc)
    }

    /// Resolves `auto_pad` to explicit pads for a window of `kernel` over `spatial`.
    fn pads(&self, spatial: &[usize], kernel: &[usize], strides: &[usize], dilations: &[usize]) -> Result<Vec<usize>> {
        let n = spatial.len();
        let auto = self.string_attr("auto_pad", "NOTSET")?;
        match auto.as_str() {
            "NOTSET" => {
                let pads = self.ints_attr("pads")?.unwrap_or_else(|| vec![0; 2 * n]);
                let pads = IntList(pads)
                    .to_usizes()
                    .ok_or_else(|| self.attr_error("negative pads are not supported".into()))?;
                if pads.len() != 2 * n {
                    return Err(self.attr_error(format!("pads needs {} values for {n} spatial dims", 2 * n)));
                }
                Ok(pads)
            }
            "VALID" => Ok(vec![0; 2 * n]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut pads = vec![0; 2 * n];
                for i in 0..n {
                    let out = spatial[i].div_ceil(strides[i]);
                    let extent = (kernel[i] - 1) * dilations[i] + 1;
                    let total = ((out - 1) * strides[i] + extent).saturating_sub(spatial[i]);
                    let small = total / 2;
                    let (begin, end) =
                        if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                    pads[i] = begin;
                    pads[i + n] = end;
                }
                Ok(pads)
            }
            other => {
                Err(self.attr_error(format!("auto_pad `{other}` is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")))
            }
        }
    }

    /// A list attribute of positive sizes with one value per spatial dim.
    fn spatial_attr(&self, name: &str, n: usize) -> Result<Vec<usize>> {
        let v = self.ints_attr(name)?.unwrap_or_else(|| vec![1; n]);
        if v.len() != n || v.iter().any(|&x| x < 1) {
            return Err(self.attr_error(format!("{name} needs {n} positive values, got {}", IntList(v))));
        }
        Ok(v.iter().map(|&x| x as usize).collect())
    }

    /// Fails if the node asks for an output at index ≥ `supported`.
    fn only_outputs(&self, supported: usize, what: &str) -> Result<()> {
        if self.node.output.iter().skip(supported).any(|o| !o.is_empty()) {
            return Err(self.unsupported(what));
        }
        Ok(())
    }
}

fn broadcast_scalar(value: &Tensor, shape: &[usize]) -> Tensor {
    crate::map_tensor!(value, a => ndarray::ArrayD::from_elem(ndarray::IxDyn(shape), *a.iter().next().unwrap()))
}

fn clip(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    if cx.ty(x).dtype == DType::I64 && cx.imp.opset >= 11 {
        // integer bounds are operands of x's type: a max, then a min
        let mut y = x;
        if let Some(lo) = cx.opt_input(1) {
            y = cx.add(TensorLang::Max([y, lo]))?;
        }
        if let Some(hi) = cx.opt_input(2) {
            y = cx.add(TensorLang::Min([y, hi]))?;
        }
        return Ok(y);
    }
    let (lo, hi) = if cx.imp.opset < 11 {
        (cx.float_attr("min", f32::NEG_INFINITY)?, cx.float_attr("max", f32::INFINITY)?)
    } else {
        let bound = |cx: &Cx, i: usize, default: f32| -> Result<f32> {
            if cx.input_name(i).is_none() {
                return Ok(default);
            }
            let t = cx.const_input(i)?;
            if t.len() != 1 || t.dtype() != DType::F32 {
                return Err(cx.unsupported("a Clip bound that is not one f32 value"));
            }
            Ok(t.to_f32_vec()[0])
        };
        (bound(cx, 1, f32::NEG_INFINITY)?, bound(cx, 2, f32::INFINITY)?)
    };
    let (lo, hi) = (cx.imp.b.float(lo), cx.imp.b.float(hi));
    cx.add(TensorLang::Clip([x, lo, hi]))
}

fn pow(cx: &mut Cx) -> Result<Id> {
    let (mut a, mut b) = (cx.input(0)?, cx.input(1)?);
    // ONNX lets the exponent have its own type; saturate computes powers in the base's
    // float type (f32 for an integer base)
    let float = if cx.ty(a).dtype == DType::F64 { DType::F64 } else { DType::F32 };
    for id in [&mut a, &mut b] {
        if cx.ty(*id).dtype != float {
            let f = cx.imp.b.dtype(float);
            *id = cx.add(TensorLang::Cast([*id, f]))?;
        }
    }
    let out = cx.add(TensorLang::Pow([a, b]))?;
    if cx.ty(cx.input(0)?).dtype == DType::I64 {
        let i = cx.imp.b.dtype(DType::I64);
        return cx.add(TensorLang::Cast([out, i]));
    }
    Ok(out)
}

fn gemm(cx: &mut Cx) -> Result<Id> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let c = match cx.opt_input(2) {
        Some(c) => c,
        None => cx.imp.b.fill(0.0, &[]),
    };
    let (alpha, beta) = (cx.float_attr("alpha", 1.0)?, cx.float_attr("beta", 1.0)?);
    let (ta, tb) = (cx.int_attr("transA", Some(0))?, cx.int_attr("transB", Some(0))?);
    let bld = &mut cx.imp.b;
    let attrs = [bld.float(alpha), bld.float(beta), bld.int((ta != 0) as i64), bld.int((tb != 0) as i64)];
    cx.add(TensorLang::Gemm([a, b, c, attrs[0], attrs[1], attrs[2], attrs[3]]))
}

/// Reduce ops take axes as an attribute before `axes_input_since`, as an input after.
fn reduce(cx: &mut Cx, op: fn([Id; 3]) -> TensorLang, axes_input_since: i64) -> Result<Id> {
    let x = cx.input(0)?;
    let Some((axes, keepdims)) = cx.reduce_axes(x, axes_input_since)? else { return Ok(x) };
    let (axes, keep) = (cx.imp.b.ints(axes), cx.imp.b.int(keepdims as i64));
    cx.add(op([x, axes, keep]))
}

/// Before opset 13, Softmax and LogSoftmax flatten the input to 2-D at `axis` (default
/// 1) and normalize each row; from 13 on they normalize along `axis` (default -1).
fn softmax(cx: &mut Cx, op: fn([Id; 2]) -> TensorLang) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let rank = shape.len();
    if cx.imp.opset >= 13 {
        let axis = cx.axis_attr("axis", Some(-1), rank)?;
        let a = cx.imp.b.int(axis as i64);
        return cx.add(op([x, a]));
    }
    let axis = cx.int_attr("axis", Some(1))?;
    let axis = if axis < 0 { axis + rank as i64 } else { axis };
    if !(0..=rank as i64).contains(&axis) {
        return Err(cx.attr_error(format!("axis {axis} is outside the input's {rank} dims")));
    }
    let axis = axis as usize;
    // when every dim after `axis` is 1, the coerced rows are exactly the axis
    if axis < rank && shape[axis + 1..].iter().all(|&d| d == 1) {
        let a = cx.imp.b.int(axis as i64);
        return cx.add(op([x, a]));
    }
    let rows: usize = shape[..axis].iter().product();
    let cols: usize = shape[axis..].iter().product();
    let flat_shape = cx.imp.b.dims(&[rows, cols]);
    let flat = cx.add(TensorLang::Reshape([x, flat_shape]))?;
    let one = cx.imp.b.int(1);
    let y = cx.add(op([flat, one]))?;
    let back = cx.imp.b.dims(&shape);
    cx.add(TensorLang::Reshape([y, back]))
}

/// LayerNormalization; its optional Mean and InvStdDev outputs are computed with
/// reductions over the normalized axes.
fn layer_norm(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    let (x, scale) = (cx.input(0)?, cx.input(1)?);
    let bias = match cx.opt_input(2) {
        Some(b) => b,
        None => cx.imp.b.fill(0.0, &[]),
    };
    let rank = cx.rank(x);
    let axis = cx.axis_attr("axis", Some(-1), rank)?;
    let eps = cx.float_attr("epsilon", 1e-5)?;
    let (a, e) = (cx.imp.b.int(axis as i64), cx.imp.b.float(eps));
    let y = cx.add(TensorLang::LayerNorm([x, scale, bias, a, e]))?;
    let wants = |i: usize| cx.node.output.get(i).is_some_and(|o| !o.is_empty());
    if !wants(1) && !wants(2) {
        return Ok(vec![Some(y)]);
    }
    let axes = cx.imp.b.ints((axis as i64..rank as i64).collect());
    let keep = cx.imp.b.int(1);
    let mean = cx.add(TensorLang::ReduceMean([x, axes, keep]))?;
    let centered = cx.add(TensorLang::Sub([x, mean]))?;
    let squared = cx.add(TensorLang::Mul([centered, centered]))?;
    let var = cx.add(TensorLang::ReduceMean([squared, axes, keep]))?;
    let eps = cx.imp.b.fill(eps, &[]);
    let shifted = cx.add(TensorLang::Add([var, eps]))?;
    let std = cx.add(TensorLang::Sqrt(shifted))?;
    let inv_std = cx.add(TensorLang::Reciprocal(std))?;
    Ok(vec![Some(y), Some(mean), Some(inv_std)])
}

fn batch_norm(cx: &mut Cx) -> Result<Id> {
    if cx.int_attr("training_mode", Some(0))? != 0 {
        return Err(cx.unsupported("training_mode=1"));
    }
    if cx.int_attr("spatial", Some(1))? != 1 {
        return Err(cx.unsupported("spatial=0"));
    }
    cx.only_outputs(1, "the running statistics outputs of BatchNormalization (training)")?;
    let ids = [cx.input(0)?, cx.input(1)?, cx.input(2)?, cx.input(3)?, cx.input(4)?];
    let eps = cx.float_attr("epsilon", 1e-5)?;
    let e = cx.imp.b.float(eps);
    cx.add(TensorLang::BatchNorm([ids[0], ids[1], ids[2], ids[3], ids[4], e]))
}

fn reshape(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let target = if cx.imp.opset < 5 {
        cx.ints_attr("shape")?.ok_or_else(|| cx.attr_error("attribute `shape` is required".into()))?
    } else {
        cx.const_ints(1)?
    };
    let allow_zero = cx.int_attr("allowzero", Some(0))? != 0;
    let input = cx.shape(x);
    let numel: usize = input.iter().product();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            0 if !allow_zero => {
                let copied = *input.get(i).ok_or_else(|| {
                    cx.attr_error(format!(
                        "shape {} copies dim {i}, which the input {:?} lacks",
                        IntList(target.clone()),
                        input
                    ))
                })?;
                shape.push(copied);
            }
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                shape.push(1);
            }
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(cx.attr_error(format!("invalid shape {}", IntList(target.clone())))),
        }
    }
    if let Some(i) = infer_at {
        let known: usize = shape.iter().product();
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(cx.attr_error(format!(
                "cannot reshape {:?} ({numel} elements) to {}",
                input,
                IntList(target.clone())
            )));
        }
        shape[i] = numel / known;
    }
    let s = cx.imp.b.dims(&shape);
    cx.add(TensorLang::Reshape([x, s]))
}

fn squeeze(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let axes = if cx.imp.opset >= 13 {
        match cx.input_name(1) {
            Some(_) => Some(cx.const_ints(1)?),
            None => None,
        }
    } else {
        cx.ints_attr("axes")?
    };
    let axes = match axes {
        Some(a) => cx.normalize_axes(&a, shape.len())?,
        None => (0..shape.len() as i64).filter(|&i| shape[i as usize] == 1).collect(),
    };
    let a = cx.imp.b.ints(axes);
    cx.add(TensorLang::Squeeze([x, a]))
}

fn unsqueeze(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let axes = if cx.imp.opset >= 13 {
        cx.const_ints(1)?
    } else {
        cx.ints_attr("axes")?.ok_or_else(|| cx.attr_error("attribute `axes` is required".into()))?
    };
    let axes = cx.normalize_axes(&axes, cx.rank(x) + axes.len())?;
    let a = cx.imp.b.ints(axes);
    cx.add(TensorLang::Unsqueeze([x, a]))
}

/// `Tile(x, r)`: insert a size-1 axis before each axis, expand it to the repeat count,
/// merge each pair: `[a,b]` tiled by `[r,s]` is `[1,a,1,b] → [r,a,s,b] → [r·a, s·b]`.
fn tile(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let repeats = cx.const_ints(1)?;
    if repeats.len() != shape.len() || repeats.iter().any(|&r| r < 0) {
        return Err(cx.attr_error(format!("repeats {} must hold one non-negative count per axis", IntList(repeats))));
    }
    let interleaved: Vec<usize> = shape.iter().flat_map(|&d| [1, d]).collect();
    let expanded: Vec<usize> = shape.iter().zip(&repeats).flat_map(|(&d, &r)| [r as usize, d]).collect();
    let result: Vec<usize> = shape.iter().zip(&repeats).map(|(&d, &r)| d * r as usize).collect();
    let s1 = cx.imp.b.dims(&interleaved);
    let y = cx.add(TensorLang::Reshape([x, s1]))?;
    let s2 = cx.imp.b.dims(&expanded);
    let y = cx.add(TensorLang::Expand([y, s2]))?;
    let s3 = cx.imp.b.dims(&result);
    cx.add(TensorLang::Reshape([y, s3]))
}

/// Split becomes one slice per output.
fn split(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let axis = cx.axis_attr("axis", Some(0), shape.len())?;
    let dim = shape[axis];
    let n_out = cx.node.output.len();
    let sizes: Vec<usize> = {
        let given = if cx.imp.opset >= 13 {
            match cx.input_name(1) {
                Some(_) => Some(cx.const_ints(1)?),
                None => None,
            }
        } else {
            cx.ints_attr("split")?
        };
        match given {
            Some(s) => IntList(s).to_usizes().ok_or_else(|| cx.attr_error("negative split size".into()))?,
            None => {
                let parts = match cx.attr("num_outputs") {
                    Some(_) => cx.int_attr("num_outputs", None)? as usize,
                    None => n_out,
                };
                if parts == 0 {
                    return Err(cx.attr_error("Split needs at least one output".into()));
                }
                if cx.attr("num_outputs").is_none() && !dim.is_multiple_of(parts) {
                    return Err(cx.attr_error(format!("cannot split size {dim} into {parts} equal parts")));
                }
                // with num_outputs, all parts but the last have ceil(dim / parts)
                let chunk = dim.div_ceil(parts);
                (0..parts).map(|i| chunk.min(dim.saturating_sub(i * chunk))).collect()
            }
        }
    };
    if sizes.len() != n_out || sizes.iter().sum::<usize>() != dim {
        return Err(cx.attr_error(format!("split sizes {:?} must be one per output ({n_out}) and sum to {dim}", sizes)));
    }
    let mut outputs = Vec::with_capacity(n_out);
    let mut offset = 0;
    for size in sizes {
        let mut starts = vec![0i64; shape.len()];
        let mut ends: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        starts[axis] = offset as i64;
        ends[axis] = (offset + size) as i64;
        offset += size;
        let b = &mut cx.imp.b;
        let (s, e, st) = (b.ints(starts), b.ints(ends), b.ints(vec![1; shape.len()]));
        outputs.push(Some(cx.add(TensorLang::Slice([x, s, e, st]))?));
    }
    Ok(outputs)
}

/// Slice: starts/ends/axes/steps as attributes before opset 10, inputs after;
/// normalized to one clamped start, end and step per axis.
fn slice(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let shape = cx.shape(x);
    let rank = shape.len();
    let (starts, ends, axes, steps) = if cx.imp.opset < 10 {
        let req = |n: &str| cx.ints_attr(n)?.ok_or_else(|| cx.attr_error(format!("attribute `{n}` is required")));
        (req("starts")?, req("ends")?, cx.ints_attr("axes")?, None)
    } else {
        let opt = |cx: &Cx, i| -> Result<Option<Vec<i64>>> { cx.input_name(i).map(|_| cx.const_ints(i)).transpose() };
        (cx.const_ints(1)?, cx.const_ints(2)?, opt(cx, 3)?, opt(cx, 4)?)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(cx.attr_error("starts, ends, axes and steps must have the same length".into()));
    }
    let mut s: Vec<i64> = vec![0; rank];
    let mut e: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let mut st: Vec<i64> = vec![1; rank];
    let mut seen = vec![false; rank];
    for i in 0..starts.len() {
        let axis = normalize_axis(axes[i], rank)
            .ok_or_else(|| cx.attr_error(format!("axis {} is outside the rank {rank}", axes[i])))?;
        if std::mem::replace(&mut seen[axis], true) {
            return Err(cx.attr_error(format!("axis {axis} is sliced twice")));
        }
        let dim = shape[axis] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(cx.attr_error("slice step must not be 0".into()));
        }
        let wrap = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (start, end) = (wrap(starts[i]), wrap(ends[i]));
        let (start, end) = if step > 0 {
            (start.clamp(0, dim), end.clamp(0, dim))
        } else {
            (start.clamp(-1, dim - 1), end.clamp(-1, dim - 1))
        };
        s[axis] = start;
        e[axis] = end;
        st[axis] = step;
    }
    let b = &mut cx.imp.b;
    let (s, e, st) = (b.ints(s), b.ints(e), b.ints(st));
    cx.add(TensorLang::Slice([x, s, e, st]))
}

fn conv(cx: &mut Cx) -> Result<Id> {
    let (x, w) = (cx.input(0)?, cx.input(1)?);
    let (xs, ws) = (cx.shape(x), cx.shape(w));
    if xs.len() < 3 || ws.len() != xs.len() {
        return Err(cx.attr_error(format!(
            "needs input [N,C,…] and weight [M,C/group,…] of equal rank ≥ 3, got {xs:?} and {ws:?}"
        )));
    }
    let n = xs.len() - 2;
    let kernel = match cx.ints_attr("kernel_shape")? {
        Some(k) => IntList(k).to_usizes().ok_or_else(|| cx.attr_error("negative kernel_shape".into()))?,
        None => ws[2..].to_vec(),
    };
    if kernel != ws[2..] {
        return Err(cx.attr_error(format!("kernel_shape {kernel:?} does not match the weight {ws:?}")));
    }
    let strides = cx.spatial_attr("strides", n)?;
    let dilations = cx.spatial_attr("dilations", n)?;
    let pads = cx.pads(&xs[2..], &kernel, &strides, &dilations)?;
    let group = cx.int_attr("group", Some(1))?;
    let b = match cx.opt_input(2) {
        Some(b) => b,
        None => cx.imp.b.fill(0.0, &[ws[0]]),
    };
    let bld = &mut cx.imp.b;
    let attrs = [bld.dims(&strides), bld.dims(&pads), bld.dims(&dilations), bld.int(group)];
    cx.add(TensorLang::Conv([x, w, b, attrs[0], attrs[1], attrs[2], attrs[3]]))
}

fn pool(cx: &mut Cx, max: bool) -> Result<Id> {
    if max {
        cx.only_outputs(1, "the Indices output of MaxPool")?;
    }
    let x = cx.input(0)?;
    pool_of(cx, x, max, None)
}

/// A pool of `x` with the node's window attributes; `include_pad` overrides the node's
/// `count_include_pad` (LpPool sums over the whole window, pads included).
fn pool_of(cx: &mut Cx, x: Id, max: bool, include_pad: Option<bool>) -> Result<Id> {
    let xs = cx.shape(x);
    if xs.len() < 3 {
        return Err(cx.attr_error(format!("needs an input [N,C,…] with spatial dims, got {xs:?}")));
    }
    let n = xs.len() - 2;
    let kernel = cx.spatial_attr("kernel_shape", n)?;
    if cx.ints_attr("kernel_shape")?.is_none() {
        return Err(cx.attr_error("attribute `kernel_shape` is required".into()));
    }
    let strides = cx.spatial_attr("strides", n)?;
    let dilations = cx.spatial_attr("dilations", n)?;
    let pads = cx.pads(&xs[2..], &kernel, &strides, &dilations)?;
    let ceil = cx.int_attr("ceil_mode", Some(0))? != 0;
    let b = &mut cx.imp.b;
    let (k, s, p, d, c) = (b.dims(&kernel), b.dims(&strides), b.dims(&pads), b.dims(&dilations), b.int(ceil as i64));
    if max {
        cx.add(TensorLang::MaxPool([x, k, s, p, d, c]))
    } else {
        let include = match include_pad {
            Some(i) => i,
            None => cx.int_attr("count_include_pad", Some(0))? != 0,
        };
        let inc = cx.imp.b.int(include as i64);
        cx.add(TensorLang::AvgPool([x, k, s, p, d, c, inc]))
    }
}

/// Pad in constant mode: pads as an attribute before opset 11, as an input after (with
/// optional `axes` from opset 18).
fn pad(cx: &mut Cx) -> Result<Id> {
    let x = cx.input(0)?;
    let rank = cx.rank(x);
    let mode = cx.string_attr("mode", "constant")?;
    if mode != "constant" {
        return Err(cx.unsupported(&format!("Pad mode `{mode}` (only constant)")));
    }
    let (pads, value, axes) = if cx.imp.opset < 11 {
        let pads = cx.ints_attr("pads")?.ok_or_else(|| cx.attr_error("attribute `pads` is required".into()))?;
        (pads, cx.float_attr("value", 0.0)?, None)
    } else {
        let value = match cx.input_name(2) {
            Some(_) => {
                let v = cx.const_input(2)?;
                if v.len() != 1 || v.dtype() != DType::F32 {
                    return Err(cx.unsupported("a Pad value that is not one f32"));
                }
                v.to_f32_vec()[0]
            }
            None => 0.0,
        };
        let axes = cx.input_name(3).map(|_| cx.const_ints(3)).transpose()?;
        (cx.const_ints(1)?, value, axes)
    };
    let axes: Vec<usize> = match axes {
        Some(axes) => axes
            .iter()
            .map(|&a| {
                normalize_axis(a, rank).ok_or_else(|| cx.attr_error(format!("axis {a} is outside the rank {rank}")))
            })
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(cx.attr_error(format!("pads needs {} values, found {}", 2 * axes.len(), pads.len())));
    }
    if pads.iter().any(|&p| p < 0) {
        return Err(cx.unsupported("negative pads (cropping)"));
    }
    let mut full = vec![0i64; 2 * rank];
    for (i, &axis) in axes.iter().enumerate() {
        full[axis] = pads[i];
        full[axis + rank] = pads[i + axes.len()];
    }
    let (p, v) = (cx.imp.b.ints(full), cx.imp.b.float(value));
    cx.add(TensorLang::Pad([x, p, v]))
}

/// Dropout is the identity at inference; its mask output is all true.
fn dropout(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    let x = cx.input(0)?;
    if cx.input_name(2).is_some() && cx.const_input(2)?.to_i64_vec().first() == Some(&1) {
        // training mode drops elements at random, unless the ratio is 0
        let ratio = match cx.input_name(1) {
            Some(_) => cx.const_input(1)?.to_f32_vec().first().copied().unwrap_or(0.5),
            None => 0.5,
        };
        if ratio != 0.0 {
            return Err(cx.unsupported("Dropout in training mode with a non-zero ratio (it is random)"));
        }
    }
    if cx.attr("is_test").is_some_and(|a| a.i == Some(0)) && cx.imp.opset < 7 {
        return Err(cx.unsupported("Dropout with is_test=0 (training mode)"));
    }
    let mut outputs = vec![Some(x)];
    if cx.node.output.get(1).is_some_and(|o| !o.is_empty()) {
        let shape = cx.shape(x);
        let mask = Tensor::Bool(ndarray::ArrayD::from_elem(ndarray::IxDyn(&shape), true));
        let name = cx.node.output[1].clone();
        outputs.push(Some(cx.imp.constant(mask, &name)));
    }
    Ok(outputs)
}

fn constant(cx: &mut Cx) -> Result<Id> {
    let attr = cx.node.attribute.first().ok_or_else(|| cx.attr_error("Constant needs a value attribute".into()))?;
    let name = attr.name.clone().unwrap_or_default();
    let value = match name.as_str() {
        "value" => cx.tensor_attr(attr)?,
        "value_float" => Tensor::scalar_f32(attr.f.unwrap_or(0.0)),
        "value_floats" => {
            let n = attr.floats.len();
            Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), attr.floats.clone()).expect("1-D"))
        }
        "value_int" => Tensor::I64(ndarray::arr0(attr.i.unwrap_or(0)).into_dyn()),
        "value_ints" => Tensor::i64_vec(attr.ints.clone()),
        other => return Err(cx.unsupported(&format!("a Constant given by `{other}`"))),
    };
    Ok(cx.constant(value))
}

/// Range with constant operands is computed at import.
fn range(cx: &mut Cx) -> Result<Id> {
    let (start, limit, delta) = (cx.const_input(0)?, cx.const_input(1)?, cx.const_input(2)?);
    if start.dtype() != limit.dtype()
        || start.dtype() != delta.dtype()
        || [&start, &limit, &delta].iter().any(|t| t.len() != 1)
    {
        return Err(cx.attr_error("Range needs three scalars of one type".into()));
    }
    let t = match start.dtype() {
        DType::I64 => {
            let (s, l, d) = (start.to_i64_vec()[0], limit.to_i64_vec()[0], delta.to_i64_vec()[0]);
            if d == 0 {
                return Err(cx.attr_error("Range delta must not be 0".into()));
            }
            let n = ((l - s) as f64 / d as f64).ceil().max(0.0) as i64;
            Tensor::i64_vec((0..n).map(|i| s + i * d).collect())
        }
        DType::F32 => {
            let (s, l, d) = (start.to_f32_vec()[0], limit.to_f32_vec()[0], delta.to_f32_vec()[0]);
            if d == 0.0 {
                return Err(cx.attr_error("Range delta must not be 0".into()));
            }
            let n = ((l - s) / d).ceil().max(0.0) as usize;
            let v: Vec<f32> = (0..n).map(|i| s + i as f32 * d).collect();
            Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), v).expect("1-D"))
        }
        other => return Err(cx.attr_error(format!("Range of {other}"))),
    };
    Ok(cx.constant(t))
}
