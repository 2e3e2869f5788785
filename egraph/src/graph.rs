//! The [`Graph`]: a whole tensor program with named inputs, named outputs and a
//! weights table.
//!
//! The program is a [`RecExpr`] of [`TensorLang`] nodes, a DAG in topological order:
//! a shared subexpression is one node used many times, as it will be computed once.
//! Inputs and weights are leaves of the DAG, `(input %x f32 [..])` and
//! `(weight %w f32 [..])`; weight data lives in [`Graph::weights`], keyed by name.
//!
//! Graphs are built with a [`GraphBuilder`], which hash-conses nodes and checks the type
//! of each one as it is added, so a graph that exists is well-typed.

use crate::infer::{infer, Meta};
use crate::{DType, Error, IntList, Name, Result, Tensor, TensorLang, TensorType};
use egg::{Id, Language, RecExpr};
use std::collections::{BTreeMap, HashMap};

/// A named value of the program: a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The name the user knows it by (the ONNX name).
    pub name: String,
    /// The node that produces it.
    pub id: Id,
}

/// A tensor program with static shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub expr: RecExpr<TensorLang>,
    /// Model inputs in the order callers pass them; each `id` is an `input` node.
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// Weight data by name (the name inside `(weight %name …)`, without `%`).
    pub weights: BTreeMap<String, Tensor>,
}

impl Graph {
    /// The meta (type or attribute value) of every node, in node order.
    pub fn metas(&self) -> Result<Vec<Meta>> {
        let mut metas: Vec<Meta> = Vec::with_capacity(self.expr.len());
        for (id, node) in self.expr.items() {
            if node.any(|c| c >= id) {
                return Err(Error::Invalid(format!("node {id} ({node}) refers to a later node")));
            }
            let meta = infer(node, &|c| &metas[usize::from(c)]).map_err(|reason| Error::Shape {
                node: format!("#{id}"),
                op: node.to_string(),
                reason,
            })?;
            metas.push(meta);
        }
        Ok(metas)
    }

    /// The type of a tensor node. Panics if `id` is an attribute leaf; use on ports.
    pub fn tensor_type(&self, metas: &[Meta], id: Id) -> TensorType {
        metas[usize::from(id)].tensor().expect("a port is a tensor").clone()
    }

    /// Checks that the graph is well-formed: every node well-typed, inputs are input
    /// nodes, every weight node has data of its declared type.
    pub fn check(&self) -> Result<Vec<Meta>> {
        let metas = self.metas()?;
        for port in &self.inputs {
            if !matches!(self.expr[port.id], TensorLang::Input(_)) {
                return Err(Error::Invalid(format!("graph input `{}` is not an input node", port.name)));
            }
        }
        for port in self.inputs.iter().chain(&self.outputs) {
            if metas[usize::from(port.id)].tensor().is_none() {
                return Err(Error::Invalid(format!("port `{}` is not a tensor", port.name)));
            }
        }
        for (id, node) in self.expr.items() {
            if let TensorLang::Weight([name, ..]) = node {
                let name = self.name_of(*name);
                let declared = metas[usize::from(id)].tensor().unwrap();
                match self.weights.get(name) {
                    Some(t) if t.ty() == *declared => {}
                    Some(t) => {
                        return Err(Error::BadTensor {
                            name: name.into(),
                            reason: format!("declared {declared} but its data is {}", t.ty()),
                        })
                    }
                    None => return Err(Error::BadTensor { name: name.into(), reason: "has no data".into() }),
                }
            }
        }
        Ok(metas)
    }

    /// The text of a `Name` leaf.
    pub fn name_of(&self, id: Id) -> &'static str {
        match &self.expr[id] {
            TensorLang::Name(n) => n.as_str(),
            other => panic!("expected a name leaf, found {other}"),
        }
    }

    /// Rebuilds the graph with nodes in canonical order: the input nodes first, then a
    /// post-order walk from each output, identical nodes merged, unreachable ones
    /// dropped (weights nobody uses too). Two graphs that denote the same program
    /// node for node are equal after canonicalization, whatever order built them.
    pub fn canonicalize(&self) -> Graph {
        let mut b = GraphBuilder::default();
        let mut map: HashMap<Id, Id> = HashMap::new();
        let mut copy = |root: Id, b: &mut GraphBuilder| -> Id {
            // iterative post-order so deep graphs cannot overflow the stack
            let mut stack = vec![(root, false)];
            while let Some((id, expanded)) = stack.pop() {
                if map.contains_key(&id) {
                    continue;
                }
                let node = &self.expr[id];
                if expanded {
                    let new = node.clone().map_children(|c| map[&c]);
                    let new_id = b.add_unchecked(new);
                    map.insert(id, new_id);
                } else {
                    stack.push((id, true));
                    for &c in node.children().iter().rev() {
                        stack.push((c, false));
                    }
                }
            }
            map[&root]
        };
        let inputs = self.inputs.iter().map(|p| Port { name: p.name.clone(), id: copy(p.id, &mut b) }).collect();
        let outputs = self.outputs.iter().map(|p| Port { name: p.name.clone(), id: copy(p.id, &mut b) }).collect();
        Graph { expr: b.expr, inputs, outputs, weights: BTreeMap::new() }.with_weights_from(self)
    }

    /// The graph with the data of the weights its nodes use taken from `source` (and no
    /// other): rewritten programs are built without data, which is copied once, at the end.
    pub fn with_weights_from(mut self, source: &Graph) -> Graph {
        self.weights = self
            .expr
            .as_ref()
            .iter()
            .filter_map(|n| match n {
                TensorLang::Weight([name, ..]) => Some(self.name_of(*name)),
                _ => None,
            })
            .filter_map(|n| source.weights.get(n).map(|t| (n.to_string(), t.clone())))
            .collect();
        self
    }

    /// Number of nodes per op name (attribute leaves and sources — inputs, weights and
    /// `fill` constants — excluded).
    pub fn op_histogram(&self) -> BTreeMap<String, usize> {
        let mut hist = BTreeMap::new();
        for node in self.expr.as_ref() {
            if !node.is_attribute()
                && !matches!(node, TensorLang::Input(_) | TensorLang::Weight(_) | TensorLang::Fill(_))
            {
                *hist.entry(node.to_string()).or_insert(0) += 1;
            }
        }
        hist
    }
}

/// Builds a [`Graph`]'s expression one node at a time, merging identical nodes and
/// inferring each node's type as it goes.
#[derive(Default)]
pub struct GraphBuilder {
    pub expr: RecExpr<TensorLang>,
    memo: HashMap<TensorLang, Id>,
    metas: Vec<Meta>,
}

impl GraphBuilder {
    /// Adds `node` (its children must already be in the builder) and returns its id,
    /// or the reason it is ill-typed.
    pub fn add(&mut self, node: TensorLang) -> std::result::Result<Id, String> {
        if let Some(&id) = self.memo.get(&node) {
            return Ok(id);
        }
        let meta = infer(&node, &|c| &self.metas[usize::from(c)])?;
        Ok(self.push(node, meta))
    }

    /// Like [`add`](Self::add) for nodes already known to be well-typed (copies of
    /// checked graphs). Ill-typed nodes get no meta and panic when inspected.
    fn add_unchecked(&mut self, node: TensorLang) -> Id {
        if let Some(&id) = self.memo.get(&node) {
            return id;
        }
        let meta = infer(&node, &|c| &self.metas[usize::from(c)]).unwrap_or(Meta::Int(0));
        self.push(node, meta)
    }

    fn push(&mut self, node: TensorLang, meta: Meta) -> Id {
        let id = self.expr.add(node.clone());
        self.memo.insert(node, id);
        self.metas.push(meta);
        id
    }

    pub fn meta(&self, id: Id) -> &Meta {
        &self.metas[usize::from(id)]
    }

    /// The type of tensor node `id`; attribute leaves have none.
    pub fn tensor_type(&self, id: Id) -> Option<&TensorType> {
        self.meta(id).tensor()
    }

    pub fn node(&self, id: Id) -> &TensorLang {
        &self.expr[id]
    }

    pub fn int(&mut self, v: i64) -> Id {
        self.leaf(TensorLang::Int(v))
    }

    pub fn float(&mut self, v: f32) -> Id {
        self.leaf(TensorLang::Float(crate::Float::new(v)))
    }

    pub fn ints(&mut self, v: Vec<i64>) -> Id {
        self.leaf(TensorLang::Ints(IntList(v)))
    }

    pub fn dims(&mut self, shape: &[usize]) -> Id {
        self.leaf(TensorLang::Ints(IntList::from_usizes(shape)))
    }

    pub fn dtype(&mut self, d: DType) -> Id {
        self.leaf(TensorLang::DType(d))
    }

    pub fn name(&mut self, n: &str) -> Id {
        self.leaf(TensorLang::Name(Name::new(n)))
    }

    fn leaf(&mut self, node: TensorLang) -> Id {
        self.add(node).expect("leaves are always well-formed")
    }

    /// Adds `(input %name dtype shape)`.
    pub fn input(&mut self, name: &str, ty: &TensorType) -> Id {
        let children = [self.name(name), self.dtype(ty.dtype), self.dims(&ty.shape)];
        self.add(TensorLang::Input(children)).expect("input nodes are well-formed")
    }

    /// Adds `(weight %name dtype shape)`.
    pub fn weight(&mut self, name: &str, ty: &TensorType) -> Id {
        let children = [self.name(name), self.dtype(ty.dtype), self.dims(&ty.shape)];
        self.add(TensorLang::Weight(children)).expect("weight nodes are well-formed")
    }

    /// Adds `(fill value shape)`.
    pub fn fill(&mut self, value: f32, shape: &[usize]) -> Id {
        let children = [self.float(value), self.dims(shape)];
        self.add(TensorLang::Fill(children)).expect("fill nodes are well-formed")
    }
}
