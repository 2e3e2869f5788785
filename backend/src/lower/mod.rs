//! Lowering: an optimized [`Graph`] to buffers and steps ([`crate::plan`]).
//!
//! The graph's nodes are visited in order, and each op knows its lowering:
//!
//! - sources: inputs get an arena buffer, weights a constant buffer holding their data,
//!   `fill` constants become literals inside the loops that read them (and a buffer only
//!   when something else needs one);
//! - views (reshape, flatten, squeeze, unsqueeze, contiguous slices) share their
//!   operand's storage;
//! - elementwise ops run in the loops [`costmodels::Fusion`](saturate_costmodels::Fusion)
//!   groups them into, exactly as the cost model priced them ([`elementwise`]);
//! - layout ops (transpose, expand, strided slices, concat, pad, cast) are generated
//!   strided copies ([`layout`]);
//! - matmul, gemm and their fused epilogues call the GEMM crate ([`linalg`]).
//!
//! A step whose operands are all constant is marked constant: it runs once, at compile
//! time, and its result is a constant buffer.

mod conv;
mod elementwise;
mod layout;
mod linalg;
mod rows;
mod winograd;

use crate::error::BackendError;
use crate::jit::{self, Jit};
use crate::loops::LoopSpec;
use crate::plan::{Buffer, BufferId, ConvAlgorithm, Kernel, Loc, Port, Step};
use crate::rows::RowOp;
use crate::window::WindowOp;
use saturate_costmodels::Fusion;
use saturate_egraph::{Activation, Graph, Id, Meta, TensorLang, TensorType};
use std::collections::HashMap;

/// Everything lowering produces, before code is finalized and memory planned.
pub struct Lowered {
    pub jit: Jit,
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
    /// Data of the weight buffers.
    pub initial: Vec<(BufferId, Vec<u8>)>,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// How each convolution computed at run time runs, in graph order.
    pub convolutions: Vec<ConvAlgorithm>,
}

/// Lowers `graph`; fused elementwise loops that the wide kernels implement run on `wide`
/// vectors where given.
pub fn lower(graph: &Graph, wide: Option<crate::wide::Isa>) -> Result<Lowered, BackendError> {
    let metas = graph.check()?;
    let fusion = Fusion::of(graph, &metas);
    let n = graph.expr.len();
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        if fusion.is_loop_element(i) {
            members.entry(fusion.group_of(i)).or_default().push(i);
        }
    }
    let mut l = Lowering {
        graph,
        nodes: graph.expr.as_ref(),
        metas,
        fusion,
        jit: Jit::new()?,
        wide,
        buffers: Vec::new(),
        steps: Vec::new(),
        locs: vec![None; n],
        views: vec![None; n],
        deferred_bias: vec![None; n],
        placed: vec![None; n],
        initial: Vec::new(),
        inputs: Vec::new(),
        convolutions: Vec::new(),
    };
    l.find_transposed_views();
    l.place_concat_inputs();
    for i in 0..n {
        l.lower_node(i, &members)?;
    }
    let inputs = std::mem::take(&mut l.inputs);
    let mut outputs = Vec::new();
    for port in &graph.outputs {
        let i = usize::from(port.id);
        let loc = l.loc(i)?;
        let ty = l.ty(i).clone();
        outputs.push(Port { name: port.name.clone(), dtype: ty.dtype, shape: ty.shape, loc });
    }
    let convolutions = l.convolutions;
    Ok(Lowered { jit: l.jit, buffers: l.buffers, steps: l.steps, initial: l.initial, inputs, outputs, convolutions })
}

struct Lowering<'g> {
    graph: &'g Graph,
    nodes: &'g [TensorLang],
    metas: Vec<Meta>,
    fusion: Fusion,
    jit: Jit,
    /// The instruction set of the wide kernels, if they are used.
    wide: Option<crate::wide::Isa>,
    buffers: Vec<Buffer>,
    steps: Vec<Step>,
    locs: Vec<Option<Loc>>,
    /// Nodes never materialized: transposes that only matrix products read, which read
    /// the transposed tensor's source with permuted strides instead (see [`View`]).
    views: Vec<Option<View>>,
    /// Convolution results still without their bias (the bias node, and its strides over
    /// the result): the elementwise loop that reads them adds it (see `conv.rs`).
    deferred_bias: Vec<Option<(usize, Vec<isize>)>>,
    /// Where a node's value is written when it is not a buffer of its own: a concat's
    /// result, and the parts of it its inputs write in place (see `place_concat_inputs`).
    placed: Vec<Option<Loc>>,
    initial: Vec<(BufferId, Vec<u8>)>,
    inputs: Vec<Port>,
    convolutions: Vec<ConvAlgorithm>,
}

/// A tensor read in place from another node's buffer: `source` holds its elements, and
/// `strides` are the element strides of its own axes there.
#[derive(Debug, Clone)]
struct View {
    source: usize,
    strides: Vec<isize>,
}

impl Lowering<'_> {
    /// Marks as [`View`]s the run-time transposes (of a materialized, non-view source)
    /// whose every reader is a matrix product: the GEMM takes any strides, so the copy
    /// would only cost a pass over memory (BERT's attention heads are all such).
    fn find_transposed_views(&mut self) {
        use TensorLang as L;
        let n = self.nodes.len();
        let mut only_products = vec![true; n];
        for node in self.nodes {
            let product = matches!(node, L::MatMul(_) | L::MatMulBiasAct(_));
            for (k, &c) in saturate_egraph::Language::children(node).iter().enumerate() {
                // a product's first two children are its operands; bias and the rest are not
                only_products[usize::from(c)] &= product && k < 2;
            }
        }
        for port in &self.graph.outputs {
            only_products[usize::from(port.id)] = false;
        }
        for (i, &only) in only_products.iter().enumerate() {
            let L::Transpose([x, perm]) = &self.nodes[i] else { continue };
            let x = usize::from(*x);
            let shape = &self.ty(x).shape;
            if !only || self.fusion.constant[i] || shape.len() < 2 || self.views[x].is_some() {
                continue;
            }
            let own = crate::loops::contiguous_strides(shape);
            let strides = self.ints(*perm).iter().map(|&p| own[p as usize]).collect();
            self.views[i] = Some(View { source: x, strides });
        }
    }

    /// Gives each run-time concat whose inputs are contiguous blocks of its result (every
    /// axis before the concat axis of size 1) its buffer now, and lets each of its inputs
    /// be written straight into its block: the concat then copies only model inputs,
    /// weights, aliases and values already placed in another concat.
    ///
    /// An input read elsewhere too may be placed: its block is written once, by its
    /// producer, and nothing else writes there (the concat's other inputs have other
    /// blocks), and the memory plan keeps the whole buffer alive while any block is read.
    /// Concats are visited last first, so that a concat which feeds a later one is placed
    /// in it and its own inputs with it: DenseNet's blocks, chains of
    /// `concat(concat(…), new)`, then write every layer's features once, into one buffer,
    /// where each layer's concat copied all before it (NasNet-A's cells end in concats of
    /// inputs read once).
    fn place_concat_inputs(&mut self) {
        use TensorLang as L;
        let outputs: Vec<usize> = self.graph.outputs.iter().map(|p| usize::from(p.id)).collect();
        for c in (0..self.nodes.len()).rev() {
            let L::Concat(children) = &self.nodes[c] else { continue };
            let children = children.clone();
            let axis = self.int(children[0]) as usize;
            let shape = self.ty(c).shape.clone();
            if self.fusion.constant[c] || shape[..axis].iter().any(|&d| d != 1) {
                continue;
            }
            let whole = match self.placed[c] {
                Some(loc) => loc,
                None => self.new_buffer(bytes_of(self.ty(c)), false),
            };
            self.placed[c] = Some(whole);
            let block = shape[axis + 1..].iter().product::<usize>() * self.ty(c).dtype.byte_size();
            let mut along = 0;
            for &p in &children[1..] {
                let p = usize::from(p);
                // an alias (reshape) or a leaf has no producer that could write the block
                let own_value = !matches!(
                    self.nodes[p],
                    L::Input(_)
                        | L::Weight(_)
                        | L::Fill(_)
                        | L::Reshape(_)
                        | L::Flatten(_)
                        | L::Squeeze(_)
                        | L::Unsqueeze(_)
                );
                if own_value
                    && !self.fusion.constant[p]
                    && self.views[p].is_none()
                    && !outputs.contains(&p)
                    && self.placed[p].is_none()
                {
                    self.placed[p] = Some(whole.at(along * block));
                }
                along += self.ty(p).shape[axis];
            }
        }
    }

    /// Where a matrix product reads operand `i`, and the element strides of its axes.
    fn operand(&mut self, i: usize) -> Result<(Loc, Vec<isize>), BackendError> {
        match self.views[i].clone() {
            Some(view) => Ok((self.loc(view.source)?, view.strides)),
            None => Ok((self.loc(i)?, crate::loops::contiguous_strides(&self.ty(i).shape))),
        }
    }

    /// Lowers node `i`. The `match` over its [`saturate_egraph::View`] is exhaustive: an op added to the
    /// op table does not compile until it is lowered here (elementwise functions are,
    /// by the loop generator).
    fn lower_node(&mut self, i: usize, members: &HashMap<usize, Vec<usize>>) -> Result<(), BackendError> {
        use saturate_egraph::View as L;
        let node = &self.nodes[i];
        match node.view() {
            L::Leaf => {}
            L::Input([name, ..]) => {
                let ty = self.ty(i).clone();
                let loc = self.new_buffer(bytes_of(&ty), false);
                let name = self.graph.name_of(*name).to_string();
                self.inputs.push(Port { name, dtype: ty.dtype, shape: ty.shape, loc });
                self.locs[i] = Some(loc);
            }
            L::Weight([name, ..]) => {
                let name = self.graph.name_of(*name);
                let data = self.graph.weights.get(name).map(saturate_egraph::Tensor::to_le_bytes).unwrap_or_default();
                let loc = self.new_buffer(data.len(), true);
                self.initial.push((loc.buffer, data));
                self.locs[i] = Some(loc);
            }
            L::Fill(_) => {} // a literal where loops read it; a buffer on demand (`loc`)
            L::Reshape([x, _]) | L::Flatten([x, _]) | L::Squeeze([x, _]) | L::Unsqueeze([x, _]) => {
                self.locs[i] = Some(self.loc(usize::from(*x))?);
            }
            _ if self.fusion.is_loop_element(i) => {
                if let Some(group) = members.get(&i) {
                    self.lower_group(i, group)?; // i is the group's root
                }
            }
            _ if self.fusion.works[i].is_some_and(|w| w.kind == saturate_costmodels::Kind::Elementwise) => {
                self.lower_group(i, &[i])?; // constant: computed once, at compile time
            }
            L::Transpose(_) if self.views[i].is_some() => {} // read in place by its products
            L::Transpose([x, perm]) => self.transpose(i, *x, *perm)?,
            L::Expand([x, _]) => self.expand(i, *x)?,
            L::Slice([x, starts, _, steps]) => self.slice(i, *x, *starts, *steps)?,
            L::Concat(children) => self.concat(i, children)?,
            L::Pad([x, pads, value]) => self.pad(i, *x, *pads, *value)?,
            L::Cast([x, _]) => self.cast(i, *x)?,
            L::MatMul([a, b]) => self.matmul(i, *a, *b, None)?,
            L::MatMulBiasAct([a, b, bias, act]) => {
                let act = self.act(*act);
                self.matmul(i, *a, *b, Some((*bias, act)))?
            }
            L::Gemm([a, b, c, alpha, beta, ta, tb]) => self.gemm(i, [*a, *b, *c], [*alpha, *beta], [*ta, *tb])?,
            L::ReduceSum([x, axes, _]) => self.reduce(i, *x, *axes, RowOp::Sum)?,
            L::ReduceProd([x, axes, _]) => self.reduce(i, *x, *axes, RowOp::Prod)?,
            L::ReduceMean([x, axes, _]) => self.reduce(i, *x, *axes, RowOp::Mean)?,
            L::ReduceMax([x, axes, _]) => self.reduce(i, *x, *axes, RowOp::Max)?,
            L::ReduceMin([x, axes, _]) => self.reduce(i, *x, *axes, RowOp::Min)?,
            L::ArgMax([x, axis, _, last]) | L::ArgMin([x, axis, _, last]) => {
                let op = RowOp::ArgExtreme { max: matches!(node, TensorLang::ArgMax(_)), last: self.int(*last) != 0 };
                self.arg_extreme(i, *x, *axis, op)?
            }
            L::CumSum([x, axis, exclusive, reverse]) => {
                let op = RowOp::CumSum { exclusive: self.int(*exclusive) != 0, reverse: self.int(*reverse) != 0 };
                self.softmax(i, *x, *axis, op)?
            }
            L::Softmax([x, axis]) => self.softmax(i, *x, *axis, RowOp::Softmax)?,
            L::LogSoftmax([x, axis]) => self.softmax(i, *x, *axis, RowOp::LogSoftmax)?,
            L::LayerNorm([x, scale, bias, axis, eps]) => self.normalize(i, *x, &[*scale, *bias], *axis, *eps, true)?,
            L::RmsNorm([x, scale, axis, eps]) => self.normalize(i, *x, &[*scale], *axis, *eps, false)?,
            L::GlobalAvgPool(x) => self.global_pool(i, *x, RowOp::Mean)?,
            L::GlobalMaxPool(x) => self.global_pool(i, *x, RowOp::Max)?,
            L::Conv([x, w, b, s, p, d, g]) => self.conv(i, [*x, *w, *b, *s, *p, *d, *g], Activation::Id)?,
            L::ConvBiasAct([x, w, b, s, p, d, g, act]) => {
                let act = self.act(*act);
                self.conv(i, [*x, *w, *b, *s, *p, *d, *g], act)?
            }
            L::WinogradWeights([w, tile]) => self.winograd_weights(i, *w, *tile)?,
            L::WinogradConv(children) => self.winograd_conv(i, *children)?,
            L::Lrn([x, size, alpha, beta, bias]) => self.lrn(i, *x, [*size, *alpha, *beta, *bias])?,
            L::Gather([x, indices, axis]) => self.gather(i, *x, *indices, *axis)?,
            L::GatherElements([x, indices, axis]) => self.gather_elements(i, *x, *indices, *axis)?,
            L::ScatterElements([x, indices, updates, axis, reduction]) => {
                self.scatter_elements(i, [*x, *indices, *updates], *axis, *reduction)?
            }
            L::Attention([q, k, v, scale]) => self.attention(i, [*q, *k, *v], *scale)?,
            L::MaxPool([x, k, s, p, d, _]) => self.pool(i, *x, [*k, *s, *p, *d], WindowOp::Max)?,
            L::AvgPool([x, k, s, p, d, _, include_pad]) => {
                let count_include_pad = self.int(*include_pad) != 0;
                self.pool(i, *x, [*k, *s, *p, *d], WindowOp::Average { count_include_pad })?
            }
            L::Unary(..) | L::Binary(..) | L::Where(_) | L::BatchNorm(_) => {
                unreachable!("elementwise nodes are loop elements or constants, lowered above")
            }
        }
        Ok(())
    }

    fn ty(&self, i: usize) -> &TensorType {
        self.metas[i].tensor().expect("lowering asks only for tensor nodes")
    }

    fn float(&self, id: Id) -> f32 {
        match self.metas[usize::from(id)] {
            Meta::Float(v) => v,
            Meta::Int(v) => v as f32,
            ref other => unreachable!("type checking guarantees a float, found {other:?}"),
        }
    }

    fn int(&self, id: Id) -> i64 {
        match self.metas[usize::from(id)] {
            Meta::Int(v) => v,
            ref other => unreachable!("type checking guarantees an integer, found {other:?}"),
        }
    }

    fn ints(&self, id: Id) -> Vec<i64> {
        match &self.metas[usize::from(id)] {
            Meta::Ints(v) => v.clone(),
            other => unreachable!("type checking guarantees a list, found {other:?}"),
        }
    }

    fn act(&self, id: Id) -> Activation {
        match self.metas[usize::from(id)] {
            Meta::Act(a) => a,
            ref other => unreachable!("type checking guarantees an activation, found {other:?}"),
        }
    }

    /// The value of a `fill` node, if `i` is one.
    fn splat(&self, i: usize) -> Option<f32> {
        match self.nodes[i] {
            TensorLang::Fill([v, _]) => Some(self.float(v)),
            _ => None,
        }
    }

    fn new_buffer(&mut self, bytes: usize, constant: bool) -> Loc {
        self.buffers.push(Buffer { bytes, constant });
        Loc { buffer: BufferId(self.buffers.len() - 1), offset: 0 }
    }

    /// A fresh buffer for node `i`'s value (constant if `i` is), or where it was placed.
    fn output(&mut self, i: usize) -> Loc {
        if let Some(loc) = self.placed[i] {
            self.locs[i] = Some(loc);
            return loc;
        }
        let bytes = bytes_of(self.ty(i));
        let loc = self.new_buffer(bytes, self.fusion.constant[i]);
        self.locs[i] = Some(loc);
        loc
    }

    /// Where node `i`'s value is, materializing a `fill` the first time one is needed.
    fn loc(&mut self, i: usize) -> Result<Loc, BackendError> {
        if let Some(loc) = self.locs[i] {
            return Ok(loc);
        }
        let Some(value) = self.splat(i) else {
            unreachable!("node {i} ({}) is used before it is lowered", self.nodes[i]);
        };
        let ty = self.ty(i).clone();
        let loc = self.output(i);
        let spec = elementwise::fill_spec(&ty.shape, ty.dtype, value);
        self.push_loop("fill", spec, vec![loc], true)?;
        Ok(loc)
    }

    /// Generates the loop of `spec` and adds its step; `args` are its operands' then its
    /// outputs' locations.
    fn push_loop(
        &mut self,
        what: &str,
        mut spec: LoopSpec,
        args: Vec<Loc>,
        constant: bool,
    ) -> Result<(), BackendError> {
        spec.coalesce();
        if spec.is_empty() {
            return Ok(());
        }
        let writes = (0..args.len()).map(|k| k >= spec.operands.len()).collect();
        let index = self.jit.define(what, |b, params| jit::loops::generate(b, params, &spec))?;
        let outer = spec.dims[0];
        let per_outer = spec.len() / outer.max(1) * spec.work_per_element();
        let program =
            self.wide.and_then(|isa| crate::wide::LoopProgram::new(&spec, isa)).map(crate::wide::Program::Loop);
        let kernel = Kernel::wide_or_loop(index, program, outer, per_outer);
        self.steps.push(Step { kernel, args, writes, constant });
        Ok(())
    }
}

fn bytes_of(ty: &TensorType) -> usize {
    ty.numel() * ty.dtype.byte_size()
}
