//! The reference interpreter: the oracle every other part of saturate is checked
//! against.
//!
//! It evaluates a [`Graph`] node by node in program order, each op written for clarity
//! on ndarray. Where the result depends on the order of a summation (matmul, conv,
//! reductions, normalizations), it accumulates in f64 and rounds once at the end, so
//! its answer is close to the exact one rather than to one particular f32 schedule.
//! Transcendental functions are evaluated in f64 too.
//!
//! Kernels are grouped by kind: [`elementwise`], [`linalg`], [`reduce`], [`layout`],
//! [`window`] (convolution and pooling).

pub mod elementwise;
pub mod layout;
pub mod linalg;
pub mod reduce;
pub mod window;
pub mod winograd;

use ndarray::ArrayD;
use saturate_egraph::onnx::ConstantFolder;
use saturate_egraph::{Activation, BinaryOp, DType, Graph, Id, Language, Meta, RecExpr, Tensor, TensorLang, View};
use std::collections::BTreeMap;

/// Why a run failed: bad inputs, or a runtime error in a node (an index out of range,
/// an integer division by zero).
#[derive(Debug, thiserror::Error)]
pub enum InterpError {
    #[error("the model takes {expected} input(s), but {got} were given")]
    InputCount { expected: usize, got: usize },
    #[error("input {index} (`{name}`) must be {expected}, but the given tensor is {got}")]
    InputType { index: usize, name: String, expected: String, got: String },
    #[error("node #{id} ({op}): {reason}")]
    Node { id: usize, op: String, reason: String },
    #[error("{0}")]
    Graph(#[from] saturate_egraph::Error),
}

/// Runs `graph` on `inputs` (in the order of `graph.inputs`) and returns its outputs.
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    let metas = graph.check()?;
    if inputs.len() != graph.inputs.len() {
        return Err(InterpError::InputCount { expected: graph.inputs.len(), got: inputs.len() });
    }
    let mut values: Vec<Option<Tensor>> = vec![None; graph.expr.len()];
    for (index, (port, tensor)) in graph.inputs.iter().zip(inputs).enumerate() {
        let expected = graph.tensor_type(&metas, port.id);
        if tensor.ty() != expected {
            return Err(InterpError::InputType {
                index,
                name: port.name.clone(),
                expected: expected.to_string(),
                got: tensor.ty().to_string(),
            });
        }
        values[usize::from(port.id)] = Some(tensor.clone());
    }

    // free each intermediate after its last use; ports are kept to the end
    let mut last_use = vec![0usize; graph.expr.len()];
    for (id, node) in graph.expr.items() {
        for &c in node.children() {
            last_use[usize::from(c)] = usize::from(id);
        }
    }
    for port in &graph.outputs {
        last_use[usize::from(port.id)] = usize::MAX;
    }

    for (id, node) in graph.expr.items() {
        let i = usize::from(id);
        if values[i].is_some() || !matches!(metas[i], Meta::Tensor(_)) {
            continue;
        }
        let value = match node {
            TensorLang::Weight([name, ..]) => graph.weights[graph.name_of(*name)].clone(),
            TensorLang::Input(_) => unreachable!("inputs were bound above"),
            _ => eval_node(&graph.expr, id, &|c| values[usize::from(c)].as_ref().expect("operands are computed first"))
                .map_err(|reason| InterpError::Node { id: i, op: node.to_string(), reason })?,
        };
        values[i] = Some(value);
        for &c in node.children() {
            if last_use[usize::from(c)] == i && !matches!(graph.expr[c], TensorLang::Input(_)) {
                values[usize::from(c)] = None;
            }
        }
    }
    Ok(graph.outputs.iter().map(|p| values[usize::from(p.id)].clone().expect("outputs are computed")).collect())
}

/// The interpreter as the constant folder of ONNX import.
#[derive(Debug, Default, Clone, Copy)]
pub struct Interpreter;

impl ConstantFolder for Interpreter {
    fn fold(&self, expr: &RecExpr<TensorLang>, id: Id, weights: &BTreeMap<String, Tensor>) -> Result<Tensor, String> {
        let mut operands: BTreeMap<Id, Tensor> = BTreeMap::new();
        for &c in expr[id].children() {
            let value = match &expr[c] {
                TensorLang::Weight([name, ..]) => match &expr[*name] {
                    TensorLang::Name(n) => {
                        weights.get(n.as_str()).cloned().ok_or(format!("weight %{n} has no data"))?
                    }
                    _ => return Err("malformed weight node".into()),
                },
                TensorLang::Fill(_) => eval_node(expr, c, &|_| unreachable!("fill has no operands"))?,
                n if n.is_attribute() => continue,
                other => return Err(format!("operand {other} is not a constant")),
            };
            operands.insert(c, value);
        }
        eval_node(expr, id, &|c| &operands[&c])
    }
}

/// Evaluates op node `id` of `expr`, given the values of its tensor operands.
pub fn eval_node<'v>(expr: &RecExpr<TensorLang>, id: Id, operand: &dyn Fn(Id) -> &'v Tensor) -> Result<Tensor, String> {
    use View as L;
    let a = Attrs { expr };
    let f32_of = |id: Id| -> Result<&ArrayD<f32>, String> {
        operand(id).as_f32().ok_or_else(|| format!("expected an f32 operand, found {}", operand(id).ty()))
    };
    Ok(match expr[id].view() {
        L::Input(_) | L::Weight(_) => return Err("sources are bound by the caller".into()),
        L::Fill([v, shape]) => Tensor::filled(&a.dims(*shape), a.float(*v)),

        L::Unary(op, c) => {
            let params: Vec<f32> = c[1..].iter().map(|&p| a.float(p)).collect();
            elementwise::unary(operand(c[0]), op, &params)?
        }
        L::Cast([x, d]) => elementwise::cast(operand(*x), a.dtype(*d)),

        L::Binary(op, [x, y]) => elementwise::binary(operand(*x), operand(*y), op)?,
        L::Where([c, x, y]) => elementwise::select(operand(*c), operand(*x), operand(*y))?,

        L::MatMul([x, y]) => Tensor::F32(linalg::matmul(f32_of(*x)?, f32_of(*y)?)?),
        L::Gemm([x, y, c, alpha, beta, ta, tb]) => Tensor::F32(linalg::gemm(
            f32_of(*x)?,
            f32_of(*y)?,
            f32_of(*c)?,
            a.float(*alpha),
            a.float(*beta),
            a.int(*ta) != 0,
            a.int(*tb) != 0,
        )?),

        L::ReduceSum([x, axes, keep]) => {
            reduce::reduce(operand(*x), &a.axes(*axes), a.int(*keep) != 0, reduce::Reduction::Sum)?
        }
        L::ReduceProd([x, axes, keep]) => {
            reduce::reduce(operand(*x), &a.axes(*axes), a.int(*keep) != 0, reduce::Reduction::Prod)?
        }
        L::ReduceMean([x, axes, keep]) => {
            reduce::reduce(operand(*x), &a.axes(*axes), a.int(*keep) != 0, reduce::Reduction::Mean)?
        }
        L::ReduceMax([x, axes, keep]) => {
            reduce::reduce(operand(*x), &a.axes(*axes), a.int(*keep) != 0, reduce::Reduction::Max)?
        }
        L::ReduceMin([x, axes, keep]) => {
            reduce::reduce(operand(*x), &a.axes(*axes), a.int(*keep) != 0, reduce::Reduction::Min)?
        }
        L::ArgMax([x, axis, keep, last]) | L::ArgMin([x, axis, keep, last]) => reduce::arg_extreme(
            operand(*x),
            a.int(*axis) as usize,
            a.int(*keep) != 0,
            a.int(*last) != 0,
            matches!(expr[id], TensorLang::ArgMax(_)),
        )?,
        L::CumSum([x, axis, exclusive, reverse]) => {
            reduce::cum_sum(operand(*x), a.int(*axis) as usize, a.int(*exclusive) != 0, a.int(*reverse) != 0)?
        }
        L::Softmax([x, axis]) => Tensor::F32(reduce::softmax(f32_of(*x)?, a.int(*axis) as usize, false)),
        L::LogSoftmax([x, axis]) => Tensor::F32(reduce::softmax(f32_of(*x)?, a.int(*axis) as usize, true)),
        L::LayerNorm([x, scale, bias, axis, eps]) => Tensor::F32(reduce::layer_norm(
            f32_of(*x)?,
            f32_of(*scale)?,
            f32_of(*bias)?,
            a.int(*axis) as usize,
            a.float(*eps),
        )?),
        L::BatchNorm([x, scale, bias, mean, var, eps]) => Tensor::F32(reduce::batch_norm(
            f32_of(*x)?,
            [f32_of(*scale)?, f32_of(*bias)?, f32_of(*mean)?, f32_of(*var)?],
            a.float(*eps),
        )),
        L::Lrn([x, size, alpha, beta, bias]) => Tensor::F32(reduce::lrn(
            f32_of(*x)?,
            a.int(*size) as usize,
            a.float(*alpha),
            a.float(*beta),
            a.float(*bias),
        )),

        L::Reshape([x, shape]) => layout::reshape(operand(*x), &a.dims(*shape))?,
        L::Expand([x, shape]) => layout::expand(operand(*x), &a.dims(*shape))?,
        L::Flatten([x, _]) | L::Squeeze([x, _]) | L::Unsqueeze([x, _]) => {
            // these only change the shape, which type inference already computed
            let shape = output_shape(expr, id, operand)?;
            layout::reshape(operand(*x), &shape)?
        }
        L::Transpose([x, perm]) => layout::transpose(operand(*x), &a.axes(*perm)),
        L::Concat(children) => {
            let parts: Vec<&Tensor> = children[1..].iter().map(|&c| operand(c)).collect();
            layout::concat(&parts, a.int(children[0]) as usize)?
        }
        L::Slice([x, starts, ends, steps]) => {
            layout::slice(operand(*x), &a.ints(*starts), &a.ints(*ends), &a.ints(*steps))
        }
        L::ScatterElements([x, idx, updates, axis, reduction]) => layout::scatter_elements(
            operand(*x),
            operand(*idx),
            operand(*updates),
            a.int(*axis) as usize,
            a.int(*reduction),
        )?,
        L::GatherElements([x, idx, axis]) => {
            layout::gather_elements(operand(*x), operand(*idx), a.int(*axis) as usize)?
        }
        L::Gather([x, idx, axis]) => layout::gather(operand(*x), operand(*idx), a.int(*axis) as usize)?,

        L::Conv([x, w, b, strides, pads, dilations, group]) => {
            let win = window::Window {
                kernel: f32_of(*w)?.shape()[2..].to_vec(),
                strides: a.dims(*strides),
                pads: a.dims(*pads),
                dilations: a.dims(*dilations),
            };
            Tensor::F32(window::conv(f32_of(*x)?, f32_of(*w)?, f32_of(*b)?, &win, a.int(*group) as usize))
        }
        L::MaxPool([x, kernel, strides, pads, dilations, _ceil]) => {
            let win = window::Window {
                kernel: a.dims(*kernel),
                strides: a.dims(*strides),
                pads: a.dims(*pads),
                dilations: a.dims(*dilations),
            };
            // the inferred output shape already accounts for ceil_mode
            let out = output_shape(expr, id, operand)?;
            Tensor::F32(window::pool(f32_of(*x)?, &win, &out, window::PoolKind::Max))
        }
        L::AvgPool([x, kernel, strides, pads, dilations, _ceil, include_pad]) => {
            let win = window::Window {
                kernel: a.dims(*kernel),
                strides: a.dims(*strides),
                pads: a.dims(*pads),
                dilations: a.dims(*dilations),
            };
            let out = output_shape(expr, id, operand)?;
            let kind = window::PoolKind::Average { count_include_pad: a.int(*include_pad) != 0 };
            Tensor::F32(window::pool(f32_of(*x)?, &win, &out, kind))
        }
        L::Pad([x, pads, value]) => layout::pad(operand(*x), &a.dims(*pads), a.float(*value))?,
        L::RmsNorm([x, scale, axis, eps]) => {
            Tensor::F32(reduce::rms_norm(f32_of(*x)?, f32_of(*scale)?, a.int(*axis) as usize, a.float(*eps)))
        }
        L::MatMulBiasAct([x, y, bias, act]) => {
            let product = linalg::matmul(f32_of(*x)?, f32_of(*y)?)?;
            let biased = elementwise::binary(&Tensor::F32(product), operand(*bias), BinaryOp::Add)?;
            Tensor::F32(elementwise::activate(biased.as_f32().expect("f32"), a.act(*act)))
        }
        L::ConvBiasAct([x, w, b, strides, pads, dilations, group, act]) => {
            let win = window::Window {
                kernel: f32_of(*w)?.shape()[2..].to_vec(),
                strides: a.dims(*strides),
                pads: a.dims(*pads),
                dilations: a.dims(*dilations),
            };
            let conv = window::conv(f32_of(*x)?, f32_of(*w)?, f32_of(*b)?, &win, a.int(*group) as usize);
            Tensor::F32(elementwise::activate(&conv, a.act(*act)))
        }
        L::WinogradWeights([w, tile]) => Tensor::F32(winograd::weights(f32_of(*w)?, winograd_tile(a.int(*tile))?)),
        L::WinogradConv([x, u, b, pads, tile, act]) => {
            let tile = winograd_tile(a.int(*tile))?;
            let conv = winograd::conv(f32_of(*x)?, f32_of(*u)?, f32_of(*b)?, &a.dims(*pads), tile);
            Tensor::F32(elementwise::activate(&conv, a.act(*act)))
        }
        L::Attention([q, k, v, scale]) => {
            Tensor::F32(linalg::attention(f32_of(*q)?, f32_of(*k)?, f32_of(*v)?, a.float(*scale))?)
        }
        L::GlobalAvgPool(x) => Tensor::F32(window::global_pool(f32_of(*x)?, false)),
        L::GlobalMaxPool(x) => Tensor::F32(window::global_pool(f32_of(*x)?, true)),

        L::Leaf => return Err(format!("{} is an attribute, not an op", expr[id])),
    })
}

fn winograd_tile(m: i64) -> Result<&'static saturate_egraph::WinogradTile, String> {
    saturate_egraph::WinogradTile::of(m).ok_or_else(|| format!("a Winograd tile has 2 or 4 outputs a side, not {m}"))
}

/// The statically inferred shape of node `id`, from its operands' actual types.
fn output_shape<'v>(
    expr: &RecExpr<TensorLang>,
    id: Id,
    operand: &dyn Fn(Id) -> &'v Tensor,
) -> Result<Vec<usize>, String> {
    let node = &expr[id];
    let metas: BTreeMap<Id, Meta> = node
        .children()
        .iter()
        .map(|&c| {
            let meta = if expr[c].is_attribute() {
                saturate_egraph::infer::infer(&expr[c], &|_| unreachable!("leaves have no children"))
                    .expect("leaves infer")
            } else {
                Meta::Tensor(operand(c).ty())
            };
            (c, meta)
        })
        .collect();
    match saturate_egraph::infer::infer(node, &|c| &metas[&c])? {
        Meta::Tensor(t) => Ok(t.shape),
        _ => Err("not a tensor op".into()),
    }
}

/// Reads attribute leaves.
struct Attrs<'e> {
    expr: &'e RecExpr<TensorLang>,
}

impl Attrs<'_> {
    fn int(&self, id: Id) -> i64 {
        match &self.expr[id] {
            TensorLang::Int(v) => *v,
            other => panic!("type checking guarantees an integer here, found {other}"),
        }
    }

    fn float(&self, id: Id) -> f32 {
        match &self.expr[id] {
            TensorLang::Float(v) => v.get(),
            other => panic!("type checking guarantees a float here, found {other}"),
        }
    }

    fn ints(&self, id: Id) -> Vec<i64> {
        match &self.expr[id] {
            TensorLang::Ints(v) => v.0.clone(),
            other => panic!("type checking guarantees an integer list here, found {other}"),
        }
    }

    fn dims(&self, id: Id) -> Vec<usize> {
        self.ints(id).into_iter().map(|v| v as usize).collect()
    }

    fn axes(&self, id: Id) -> Vec<usize> {
        self.dims(id)
    }

    fn act(&self, id: Id) -> Activation {
        match &self.expr[id] {
            TensorLang::Act(a) => *a,
            other => panic!("type checking guarantees an activation here, found {other}"),
        }
    }

    fn dtype(&self, id: Id) -> DType {
        match &self.expr[id] {
            TensorLang::DType(d) => *d,
            other => panic!("type checking guarantees a dtype here, found {other}"),
        }
    }
}
