//! Random instances of a rule's left-hand side: concrete, well-typed expressions that
//! the pattern matches, with inputs to evaluate them on.
//!
//! The pattern is walked bottom-up. When an op is reached, its unbound variables are
//! chosen to suit it: tensors get shapes that fit the op (a conv's weight matches its
//! input's channels, a matmul's operands share the inner dimension, broadcasting operands
//! often share or broadcast a shape, with size-1 dims), attributes get values valid for
//! the op's operands (a permutation of their rank, axes within it). Guards with a
//! [`Witness`] shape the variable they constrain: `(is-const ?c 1.0)` makes `?c` a
//! `(fill 1.0 …)`, `(non-negative ?x)` makes it an `(abs …)`. Whatever does not fit is
//! rejected by type checking, and the caller tries again.

use crate::rng::Rng;
use egg::{ENodeOrVar, Id, Language, PatternAst, Var};
use saturate_egraph::ops::{Attr as AttrKind, Elem as Kind, Role};
use saturate_egraph::{Activation, DType, Float, GraphBuilder, IntList, Tensor, TensorLang, TensorType};
use saturate_rewrites::guards::{self, Witness};
use saturate_rewrites::rule::{Arg, DirectedRule};
use std::collections::{BTreeMap, HashMap};

/// Input, weight and bias shapes of a conv.
type ConvShapes = (Vec<usize>, Vec<usize>, Vec<usize>);

/// How the values of an input are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Values {
    /// f32: a mixture of signs, zeros, small and large magnitudes.
    Any,
    /// i64 indices valid for an axis of this size (negative ones included).
    Index(usize),
    /// i64 small integers.
    SmallInt,
    Bool,
}

/// A model input of an instance.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub id: Id,
    pub name: String,
    pub ty: TensorType,
    pub values: Values,
}

/// A concrete left-hand side.
pub struct Instance {
    pub b: GraphBuilder,
    /// Where each pattern variable went.
    pub vars: HashMap<Var, Id>,
    pub inputs: Vec<InputSpec>,
    pub weights: BTreeMap<String, Tensor>,
    /// The instance of each left-hand part.
    pub roots: Vec<Id>,
}

/// What a guard asks of a variable.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Splat(f32),
    AnySplat,
    /// A splat that is also positive (two guards on one variable).
    PositiveSplat,
    NonNegative,
    Positive,
    Constant,
}

/// The roles of an op's child slots, from its row of the op table (a variadic role
/// fills the rest of the children).
fn roles(op: &TensorLang) -> Vec<Role> {
    let n = op.children().len();
    let mut roles = Vec::with_capacity(n);
    for role in op.desc().roles() {
        match role {
            Role::Variadic(e) => roles.extend(std::iter::repeat_n(Role::Tensor(e), n - roles.len())),
            r => roles.push(r),
        }
    }
    assert_eq!(roles.len(), n, "{op}: its row has a role for each child");
    roles
}

/// The state of an op's child slot while it is being generated.
#[derive(Debug, Clone, Copy)]
enum SlotState {
    Bound(Id),
    Unbound(Var),
}

/// Builds random instances of one rule.
pub struct Builder<'r> {
    rule: &'r DirectedRule,
    wants: HashMap<Var, Want>,
    /// The pattern convolves or pools: operands are mostly images [N, C, spatial…].
    images: bool,
}

impl<'r> Builder<'r> {
    pub fn new(rule: &'r DirectedRule) -> Self {
        let mut wants = HashMap::new();
        for call in &rule.guards {
            let Some(g) = guards::lookup(&call.name) else { continue };
            let var = |i: usize| match call.args.get(i) {
                Some(Arg::Var(v)) => Some(*v),
                _ => None,
            };
            let literal = |i: usize| match call.args.get(i) {
                Some(Arg::Leaf(TensorLang::Float(f))) => Some(f.get()),
                Some(Arg::Leaf(TensorLang::Int(v))) => Some(*v as f32),
                _ => None,
            };
            let (v, want) = match g.witness {
                Witness::Splat { var: v, value } => (var(v), literal(value).map(Want::Splat)),
                Witness::AnySplat(v) => (var(v), Some(Want::AnySplat)),
                Witness::NonNegative(v) => (var(v), Some(Want::NonNegative)),
                Witness::Positive(v) => (var(v), Some(Want::Positive)),
                Witness::Constant(v) => (var(v), Some(Want::Constant)),
                Witness::Filter => (None, None),
            };
            if let (Some(v), Some(w)) = (v, want) {
                let combined = match (wants.get(&v).copied(), w) {
                    (Some(Want::AnySplat), Want::NonNegative | Want::Positive)
                    | (Some(Want::NonNegative | Want::Positive), Want::AnySplat) => Want::PositiveSplat,
                    (Some(Want::Splat(value)), _) | (_, Want::Splat(value)) => Want::Splat(value),
                    _ => w,
                };
                wants.insert(v, combined);
            }
        }
        let images = rule.lhs.iter().any(|(_, p)| {
            p.as_ref().iter().any(|n| {
                matches!(
                    n,
                    ENodeOrVar::ENode(
                        TensorLang::Conv(_)
                            | TensorLang::ConvBiasAct(_)
                            | TensorLang::MaxPool(_)
                            | TensorLang::AvgPool(_)
                            | TensorLang::GlobalAvgPool(_)
                            | TensorLang::GlobalMaxPool(_)
                            | TensorLang::BatchNorm(_)
                            | TensorLang::Lrn(_)
                    )
                )
            })
        });
        Builder { rule, wants, images }
    }

    /// One random instance, or why this attempt failed.
    pub fn build(&self, rng: &mut Rng) -> Result<Instance, String> {
        let palette = Palette::random(rng, self.images);
        let mut g = Gen {
            rng,
            palette,
            inst: Instance::empty(),
            wants: &self.wants,
            halves: HashMap::new(),
            last_weight: None,
        };
        for (bound, pattern) in &self.rule.lhs {
            let root = g.pattern(pattern)?;
            if let Some(v) = bound {
                if let Some(&existing) = g.inst.vars.get(v) {
                    if existing != root {
                        return Err(format!("{v} is bound twice"));
                    }
                }
                g.inst.vars.insert(*v, root);
            }
            g.inst.roots.push(root);
        }
        Ok(g.inst)
    }
}

impl Instance {
    fn empty() -> Self {
        Instance {
            b: GraphBuilder::default(),
            vars: HashMap::new(),
            inputs: Vec::new(),
            weights: BTreeMap::new(),
            roots: Vec::new(),
        }
    }
}

/// Shapes for one attempt: a base shape and a small palette of sizes, so that operands
/// often agree or broadcast.
struct Palette {
    sizes: Vec<usize>,
    base: Vec<usize>,
}

impl Palette {
    fn random(rng: &mut Rng, images: bool) -> Self {
        let all = [1usize, 2, 3, 4, 5, 7];
        let n = 2 + rng.below(2);
        let sizes: Vec<usize> = (0..n).map(|_| *rng.pick(&all)).collect();
        let base = if images {
            let spatial = 1 + rng.below(2);
            [1 + rng.below(2), 1 + rng.below(4)].into_iter().chain((0..spatial).map(|_| 3 + rng.below(5))).collect()
        } else {
            let rank = *rng.pick(&[1usize, 2, 2, 3, 3, 4]);
            (0..rank).map(|_| *rng.pick(&sizes)).collect()
        };
        Palette { sizes, base }
    }
}

struct Gen<'a> {
    rng: &'a mut Rng,
    palette: Palette,
    inst: Instance,
    wants: &'a HashMap<Var, Want>,
    /// The half of an axis last sliced off each input, so the next slice of it can take
    /// the other half (patterns that split and re-join need both).
    halves: HashMap<Id, (usize, bool)>,
    /// The last conv weight shape made, reused so sibling convs often agree.
    last_weight: Option<Vec<usize>>,
}

impl Gen<'_> {
    fn pattern(&mut self, pattern: &PatternAst<TensorLang>) -> Result<Id, String> {
        let nodes = pattern.as_ref();
        let mut slots: Vec<SlotState> = Vec::with_capacity(nodes.len());
        for node in nodes {
            let state = match node {
                ENodeOrVar::Var(v) => match self.inst.vars.get(v) {
                    Some(&id) => SlotState::Bound(id),
                    None => SlotState::Unbound(*v),
                },
                ENodeOrVar::ENode(n) if n.is_leaf() => SlotState::Bound(self.inst.b.add(n.clone())?),
                ENodeOrVar::ENode(n) => {
                    let mut children: Vec<SlotState> = n.children().iter().map(|&c| slots[usize::from(c)]).collect();
                    self.bind_children(n, &mut children)?;
                    let ids: Vec<Id> = children
                        .iter()
                        .map(|s| match s {
                            SlotState::Bound(id) => *id,
                            SlotState::Unbound(v) => unreachable!("{v} was bound by bind_children"),
                        })
                        .collect();
                    let mut k = 0;
                    let node = n.clone().map_children(|_| {
                        k += 1;
                        ids[k - 1]
                    });
                    SlotState::Bound(self.inst.b.add(node)?)
                }
            };
            // a variable bound while building its parent is visible to later nodes
            slots.push(match state {
                SlotState::Unbound(v) => self.inst.vars.get(&v).map_or(state, |&id| SlotState::Bound(id)),
                s => s,
            });
            // earlier slots may hold the same variable: refresh them
            for s in slots.iter_mut() {
                if let SlotState::Unbound(v) = *s {
                    if let Some(&id) = self.inst.vars.get(&v) {
                        *s = SlotState::Bound(id);
                    }
                }
            }
        }
        match slots.last() {
            Some(SlotState::Bound(id)) => Ok(*id),
            _ => Err("a left-hand side that is a bare variable matches anything".into()),
        }
    }

    fn ty(&self, id: Id) -> Option<TensorType> {
        self.inst.b.tensor_type(id).cloned()
    }

    fn bound_ty(&self, s: &SlotState) -> Option<TensorType> {
        match s {
            SlotState::Bound(id) => self.ty(*id),
            SlotState::Unbound(_) => None,
        }
    }

    fn int_of(&self, s: &SlotState) -> Option<i64> {
        match s {
            SlotState::Bound(id) => match self.inst.b.node(*id) {
                TensorLang::Int(v) => Some(*v),
                _ => None,
            },
            _ => None,
        }
    }

    /// Binds the unbound variables among `children` to suit op `n`.
    fn bind_children(&mut self, n: &TensorLang, children: &mut [SlotState]) -> Result<(), String> {
        let roles = roles(n);
        // tensors first, shaped for the op; then attributes, which depend on them
        let shapes = self.tensor_shapes(n, children, &roles)?;
        for (i, role) in roles.iter().enumerate() {
            // a variable repeated among the operands is bound once
            if let SlotState::Unbound(v) = children[i] {
                if let Some(&id) = self.inst.vars.get(&v) {
                    children[i] = SlotState::Bound(id);
                }
            }
            if let (SlotState::Unbound(v), Role::Tensor(kind)) = (children[i], role) {
                let shape = shapes[i].clone().unwrap_or_else(|| self.random_shape());
                let id = self.tensor_var(v, *kind, shape, n, children)?;
                children[i] = SlotState::Bound(id);
            }
        }
        let window = if roles.contains(&Role::Attr(AttrKind::Window)) { Some(self.window(n, children)?) } else { None };
        let slice = if roles.contains(&Role::Attr(AttrKind::Slice)) { Some(self.slice(children)?) } else { None };
        let mut window_slot = 0;
        let mut slice_slot = 0;
        for (i, role) in roles.iter().enumerate() {
            if let SlotState::Unbound(v) = children[i] {
                if let Some(&id) = self.inst.vars.get(&v) {
                    children[i] = SlotState::Bound(id);
                }
            }
            let SlotState::Unbound(v) = children[i] else {
                if *role == Role::Attr(AttrKind::Window) {
                    window_slot += 1;
                }
                if *role == Role::Attr(AttrKind::Slice) {
                    slice_slot += 1;
                }
                continue;
            };
            let leaf = match role {
                Role::Attr(AttrKind::Window) => {
                    window_slot += 1;
                    window.as_ref().expect("computed above")[window_slot - 1].clone()
                }
                Role::Attr(AttrKind::Slice) => {
                    slice_slot += 1;
                    TensorLang::Ints(IntList(slice.as_ref().expect("computed above")[slice_slot - 1].clone()))
                }
                Role::Attr(kind) => self.attribute(*kind, n, children)?,
                Role::Tensor(_) | Role::Variadic(_) => {
                    unreachable!("tensors were bound above; roles() expands variadic ones")
                }
            };
            let id = self.inst.b.add(leaf)?;
            self.inst.vars.insert(v, id);
            children[i] = SlotState::Bound(id);
        }
        Ok(())
    }

    fn random_shape(&mut self) -> Vec<usize> {
        let base = self.palette.base.clone();
        match self.rng.below(10) {
            0..=4 => base,
            5 | 6 => base.iter().map(|&d| if self.rng.chance(0.5) { 1 } else { d }).collect(),
            7 => base[self.rng.below(base.len() + 1)..].to_vec(),
            _ => {
                let rank = base.len();
                (0..rank).map(|_| *self.rng.pick(&self.palette.sizes)).collect()
            }
        }
    }

    /// Shapes for the op's unbound tensor slots where the op constrains them; `None`
    /// leaves a slot to [`Self::random_shape`].
    fn tensor_shapes(
        &mut self,
        n: &TensorLang,
        children: &[SlotState],
        roles: &[Role],
    ) -> Result<Vec<Option<Vec<usize>>>, String> {
        use TensorLang as L;
        let mut shapes: Vec<Option<Vec<usize>>> = vec![None; children.len()];
        let bound: Vec<Option<TensorType>> = children.iter().map(|s| self.bound_ty(s)).collect();
        let first_bound =
            bound.iter().zip(roles).find_map(|(t, r)| matches!(r, Role::Tensor(_)).then(|| t.clone()).flatten());
        match n {
            L::MatMul(_) | L::MatMulBiasAct(_) => {
                let (a, b) = self.matmul_pair(bound[0].as_ref(), bound[1].as_ref());
                shapes[0] = Some(a.clone());
                shapes[1] = Some(b.clone());
                if matches!(n, L::MatMulBiasAct(_)) {
                    if let Some(out) = matmul_out(&a, &b) {
                        shapes[2] = Some(self.broadcastable_to(&out));
                    }
                }
            }
            L::Gemm(_) => {
                let (m, k, nn) = (self.size(), self.size(), self.size());
                shapes[0] = Some(vec![m, k]);
                shapes[1] = Some(vec![k, nn]);
                shapes[2] = Some(self.broadcastable_to(&[m, nn]));
            }
            L::Attention(_) => {
                let batch = self.batch_dims();
                let (s, t, d, e) = (self.size(), self.size(), self.size(), self.size());
                let with = |tail: [usize; 2]| batch.iter().copied().chain(tail).collect::<Vec<_>>();
                shapes[0] = Some(bound[0].as_ref().map_or(with([s, d]), |t| t.shape.clone()));
                let q = shapes[0].clone().unwrap();
                let d = q[q.len() - 1];
                let prefix = &q[..q.len() - 2];
                shapes[1] = Some(prefix.iter().copied().chain([t, d]).collect());
                shapes[2] = Some(prefix.iter().copied().chain([t, e]).collect());
            }
            L::Conv(_) | L::ConvBiasAct(_) => {
                let (x, w, b) = self.conv_shapes(bound[0].as_ref(), bound[1].as_ref(), self.int_of(&children[6]))?;
                shapes[0] = Some(x);
                shapes[1] = Some(w);
                shapes[2] = Some(b);
            }
            L::MaxPool(_) | L::AvgPool(_) | L::GlobalAvgPool(_) | L::GlobalMaxPool(_) | L::Lrn(_) => {
                shapes[0] = Some(self.image_shape());
            }
            L::BatchNorm(_) => {
                let x = bound[0].as_ref().map_or_else(|| self.image_shape(), |t| t.shape.clone());
                let c = *x.get(1).unwrap_or(&1);
                shapes[0] = Some(x);
                for s in shapes.iter_mut().take(5).skip(1) {
                    *s = Some(vec![c]);
                }
            }
            L::LayerNorm(_) | L::RmsNorm(_) => {
                let x = bound[0].as_ref().map_or_else(|| self.random_shape(), |t| t.shape.clone());
                let axis = self.int_of(&children[if matches!(n, L::LayerNorm(_)) { 3 } else { 2 }]).map(|a| a as usize);
                let axis = axis.unwrap_or_else(|| if x.is_empty() { 0 } else { self.rng.below(x.len()) });
                let normalized = x.get(axis..).unwrap_or(&[]).to_vec();
                let params = if self.rng.chance(0.7) {
                    normalized.clone()
                } else {
                    normalized[self.rng.below(normalized.len() + 1)..].to_vec()
                };
                shapes[0] = Some(x);
                shapes[1] = Some(params.clone());
                if matches!(n, L::LayerNorm(_)) {
                    shapes[2] = Some(params);
                }
            }
            L::Concat(c) => {
                let axis = self.int_of(&children[0]);
                let proto = first_bound.map_or_else(|| self.random_shape(), |t| t.shape);
                if !proto.is_empty() {
                    let axis = axis.map_or_else(|| self.rng.below(proto.len()), |a| a as usize).min(proto.len() - 1);
                    for shape in shapes.iter_mut().take(c.len()).skip(1) {
                        let mut s = proto.clone();
                        s[axis] = self.size();
                        *shape = Some(s);
                    }
                }
            }
            L::Gather(_) => {
                let rank = self.rng.below(3);
                shapes[1] = Some((0..rank).map(|_| self.size()).collect());
            }
            _ => {
                // elementwise and the rest: operands that often share or broadcast a shape
                if let Some(t) = first_bound {
                    for (i, s) in shapes.iter_mut().enumerate() {
                        if bound[i].is_none() && matches!(roles[i], Role::Tensor(_)) && self.rng.chance(0.6) {
                            *s = Some(if self.rng.chance(0.7) {
                                t.shape.clone()
                            } else {
                                self.broadcastable_to(&t.shape)
                            });
                        }
                    }
                }
            }
        }
        Ok(shapes)
    }

    fn size(&mut self) -> usize {
        *self.rng.pick(&self.palette.sizes.clone())
    }

    fn batch_dims(&mut self) -> Vec<usize> {
        (0..self.rng.below(3)).map(|_| self.size()).collect()
    }

    fn image_shape(&mut self) -> Vec<usize> {
        let spatial = 1 + self.rng.below(2);
        let mut s = vec![1 + self.rng.below(2), 1 + self.rng.below(4)];
        s.extend((0..spatial).map(|_| 3 + self.rng.below(5)));
        s
    }

    /// A shape that broadcasts to `target`: a suffix of it, some dims set to 1.
    fn broadcastable_to(&mut self, target: &[usize]) -> Vec<usize> {
        let start = self.rng.below(target.len() + 1);
        target[start..].iter().map(|&d| if self.rng.chance(0.3) { 1 } else { d }).collect()
    }

    fn matmul_pair(&mut self, a: Option<&TensorType>, b: Option<&TensorType>) -> (Vec<usize>, Vec<usize>) {
        match (a, b) {
            (Some(a), Some(b)) => (a.shape.clone(), b.shape.clone()),
            (Some(a), None) => {
                let k = *a.shape.last().unwrap_or(&1);
                let batch =
                    if a.rank() > 2 && self.rng.chance(0.5) { a.shape[..a.rank() - 2].to_vec() } else { Vec::new() };
                (a.shape.clone(), batch.into_iter().chain([k, self.size()]).collect())
            }
            (None, Some(b)) => {
                let k = if b.rank() >= 2 { b.shape[b.rank() - 2] } else { *b.shape.first().unwrap_or(&1) };
                let batch = if b.rank() > 2 && self.rng.chance(0.7) {
                    b.shape[..b.rank() - 2].to_vec()
                } else {
                    self.batch_dims()
                };
                (batch.into_iter().chain([self.size(), k]).collect(), b.shape.clone())
            }
            (None, None) => {
                let batch = self.batch_dims();
                let (m, k, n) = (self.size(), self.size(), self.size());
                let b_batch = if self.rng.chance(0.5) { batch.clone() } else { Vec::new() };
                (batch.into_iter().chain([m, k]).collect(), b_batch.into_iter().chain([k, n]).collect())
            }
        }
    }

    /// Input, weight and bias shapes of a conv with `group` (if fixed).
    fn conv_shapes(
        &mut self,
        x: Option<&TensorType>,
        w: Option<&TensorType>,
        group: Option<i64>,
    ) -> Result<ConvShapes, String> {
        let image =
            |t: &TensorType| if t.rank() >= 3 { Ok(()) } else { Err(format!("conv operand of rank {}", t.rank())) };
        x.map(image).transpose()?;
        w.map(image).transpose()?;
        let group = group.map(|g| g.max(1) as usize);
        match (x, w) {
            (Some(x), Some(w)) => Ok((x.shape.clone(), w.shape.clone(), vec![w.shape[0]])),
            (Some(x), None) => {
                let c = x.shape[1];
                let g = group.unwrap_or(if self.rng.chance(0.3) { c } else { 1 }).max(1);
                if let Some(w) =
                    self.last_weight.clone().filter(|w| w.len() == x.rank() && w[1] * g == c && self.rng.chance(0.5))
                {
                    return Ok((x.shape.clone(), w.clone(), vec![w[0]]));
                }
                let m = g * (1 + self.rng.below(3));
                let kernel: Vec<usize> = x.shape[2..].iter().map(|&s| 1 + self.rng.below(s.clamp(1, 3))).collect();
                let w: Vec<usize> = [m, (c / g).max(1)].into_iter().chain(kernel).collect();
                self.last_weight = Some(w.clone());
                Ok((x.shape.clone(), w, vec![m]))
            }
            (None, Some(w)) => {
                let g = group.unwrap_or(1);
                let spatial: Vec<usize> = w.shape[2..].iter().map(|&k| k + self.rng.below(4)).collect();
                let x: Vec<usize> = [1 + self.rng.below(2), w.shape[1] * g].into_iter().chain(spatial).collect();
                Ok((x, w.shape.clone(), vec![w.shape[0]]))
            }
            (None, None) => {
                let x = self.image_shape();
                let c = x[1];
                let g = group.unwrap_or(if self.rng.chance(0.25) { c } else { 1 }).max(1);
                let c = if c.is_multiple_of(g) { c } else { g };
                let x = [x[0], c].into_iter().chain(x[2..].iter().copied()).collect::<Vec<_>>();
                let m = g * (1 + self.rng.below(3));
                let kernel: Vec<usize> = x[2..].iter().map(|&s| 1 + self.rng.below(s.clamp(1, 3))).collect();
                let w: Vec<usize> = [m, c / g].into_iter().chain(kernel).collect();
                Ok((x, w, vec![m]))
            }
        }
    }

    /// A tensor variable: a model input, or what its guard witness needs.
    fn tensor_var(
        &mut self,
        v: Var,
        kind: Kind,
        shape: Vec<usize>,
        _op: &TensorLang,
        _children: &[SlotState],
    ) -> Result<Id, String> {
        let want = self.wants.get(&v).copied();
        // constants are mostly scalars, as in real graphs, so they broadcast anywhere
        let splat_shape = |g: &mut Self, shape: Vec<usize>| if g.rng.chance(0.6) { Vec::new() } else { shape };
        let id = match want {
            Some(Want::Splat(value)) => {
                let shape = splat_shape(self, shape);
                self.inst.b.fill(value, &shape)
            }
            Some(Want::AnySplat) => {
                let value = *self.rng.pick(&[-2.0f32, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0]);
                let shape = splat_shape(self, shape);
                self.inst.b.fill(value, &shape)
            }
            Some(Want::PositiveSplat) => {
                let value = *self.rng.pick(&[0.25f32, 0.5, 1.0, 2.0, 3.0]);
                let shape = splat_shape(self, shape);
                self.inst.b.fill(value, &shape)
            }
            Some(Want::NonNegative) => {
                let x = self.input(v, DType::F32, shape, Values::Any);
                self.inst.b.add(TensorLang::Abs(x))?
            }
            Some(Want::Positive) => {
                let x = self.input(v, DType::F32, shape, Values::Any);
                // ≥ 0.1, so that dividing by it stays within 10× of the inputs' magnitude
                let (lo, hi) = (self.inst.b.float(0.1), self.inst.b.float(f32::INFINITY));
                self.inst.b.add(TensorLang::Clip([x, lo, hi]))?
            }
            Some(Want::Constant) => {
                let name = format!("w{}", self.inst.weights.len());
                let ty = TensorType::f32(shape);
                let data = super::values::random_tensor(self.rng, &ty, Values::Any);
                let id = self.inst.b.weight(&name, &ty);
                self.inst.weights.insert(name, data);
                id
            }
            None => match kind {
                Kind::Bool => self.input(v, DType::Bool, shape, Values::Bool),
                Kind::Index => {
                    // indices for the gather this variable feeds: valid for its data's axis
                    let bound = 3;
                    self.input(v, DType::I64, shape, Values::Index(bound))
                }
                Kind::F32 | Kind::Any => self.input(v, DType::F32, shape, Values::Any),
            },
        };
        self.inst.vars.insert(v, id);
        Ok(id)
    }

    fn input(&mut self, v: Var, dtype: DType, shape: Vec<usize>, values: Values) -> Id {
        let name = format!("{}", v).trim_start_matches('?').to_string();
        let name = if self.inst.inputs.iter().any(|i| i.name == name) {
            format!("{name}{}", self.inst.inputs.len())
        } else {
            name
        };
        let ty = TensorType::new(dtype, shape);
        let id = self.inst.b.input(&name, &ty);
        self.inst.inputs.push(InputSpec { id, name, ty, values });
        id
    }

    /// Conv or pool window attributes: `[kernel?, strides, pads, dilations, group?]`
    /// in the order of the op's window slots.
    fn window(&mut self, n: &TensorLang, children: &[SlotState]) -> Result<Vec<TensorLang>, String> {
        let x = self.bound_ty(&children[0]).ok_or("window ops need their input first")?;
        if x.rank() < 3 {
            return Err(format!("window op on rank {}", x.rank()));
        }
        let spatial = x.rank().saturating_sub(2);
        let kernel: Vec<usize> = match n {
            TensorLang::Conv(_) | TensorLang::ConvBiasAct(_) => {
                self.bound_ty(&children[1]).map(|w| w.shape[2..].to_vec()).unwrap_or_default()
            }
            // sometimes the whole image, as global pooling does
            _ if self.rng.chance(0.2) => x.shape[2..].to_vec(),
            _ => x.shape[2..].iter().map(|&s| 1 + self.rng.below(s.clamp(1, 3))).collect(),
        };
        let strides: Vec<usize> = (0..spatial).map(|_| 1 + self.rng.below(2)).collect();
        let dilations: Vec<usize> = (0..spatial)
            .map(|i| if kernel.get(i).copied().unwrap_or(1) > 1 && self.rng.chance(0.2) { 2 } else { 1 })
            .collect();
        let pads: Vec<usize> = (0..2 * spatial)
            .map(|i| self.rng.below(kernel.get(i % spatial.max(1)).copied().unwrap_or(1).max(1)))
            .collect();
        let list = |v: &[usize]| TensorLang::Ints(IntList::from_usizes(v));
        Ok(match n {
            TensorLang::Conv(_) | TensorLang::ConvBiasAct(_) => {
                let group = match (self.bound_ty(&children[0]), self.bound_ty(&children[1])) {
                    (Some(x), Some(w)) if w.shape[1] > 0 => (x.shape[1] / w.shape[1]).max(1),
                    _ => 1,
                };
                vec![list(&strides), list(&pads), list(&dilations), TensorLang::Int(group as i64)]
            }
            _ => vec![list(&kernel), list(&strides), list(&pads), list(&dilations)],
        })
    }

    /// Slice starts, ends and steps for the bound input.
    fn slice(&mut self, children: &[SlotState]) -> Result<Vec<Vec<i64>>, String> {
        let x = self.bound_ty(&children[0]).ok_or("slice needs its input first")?;
        // often one half of one axis, the way splits and merges slice, and the other
        // half of what was last sliced off the same input
        let input = match children[0] {
            SlotState::Bound(id) => Some(id),
            SlotState::Unbound(_) => None,
        };
        let previous = input.and_then(|id| self.halves.get(&id).copied());
        if x.rank() > 0 && (previous.is_some() || self.rng.chance(0.35)) {
            let (axis, first) = match previous {
                Some((axis, first)) if self.rng.chance(0.8) => (axis, !first),
                _ => (
                    if x.rank() > 1 && self.rng.chance(0.5) { 1 } else { self.rng.below(x.rank()) },
                    self.rng.chance(0.5),
                ),
            };
            let d = x.shape[axis] as i64;
            let half = d / 2;
            let mut starts = vec![0i64; x.rank()];
            let mut ends: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
            if first {
                ends[axis] = half;
            } else {
                starts[axis] = half;
            }
            if let Some(id) = input {
                self.halves.insert(id, (axis, first));
            }
            return Ok(vec![starts, ends, vec![1; x.rank()]]);
        }
        let (mut starts, mut ends, mut steps) = (Vec::new(), Vec::new(), Vec::new());
        for &d in &x.shape {
            let d = d as i64;
            let step = *self.rng.pick(&[1i64, 1, 1, 2, -1]);
            // mostly non-empty ranges: an empty slice checks nothing
            let empty = d == 0 || self.rng.chance(0.1);
            let (s, e) = match (step > 0, empty) {
                (true, true) => {
                    let s = self.rng.range(0, d);
                    (s, s)
                }
                (true, false) => {
                    let s = self.rng.range(0, d - 1);
                    (s, self.rng.range(s + 1, d))
                }
                (false, true) => {
                    let s = self.rng.range(-1, d - 1);
                    (s, s)
                }
                (false, false) => {
                    let s = self.rng.range(0, d - 1);
                    (s, self.rng.range(-1, s - 1))
                }
            };
            starts.push(s);
            ends.push(e);
            steps.push(step);
        }
        Ok(vec![starts, ends, steps])
    }

    fn attribute(&mut self, kind: AttrKind, n: &TensorLang, children: &[SlotState]) -> Result<TensorLang, String> {
        use AttrKind as A;
        let primary = children.iter().find_map(|s| self.bound_ty(s));
        let rank = primary.as_ref().map_or(0, |t| t.rank());
        let shape = primary.as_ref().map(|t| t.shape.clone()).unwrap_or_default();
        let ints = |v: Vec<i64>| TensorLang::Ints(IntList(v));
        let float = |v: f32| TensorLang::Float(Float::new(v));
        Ok(match kind {
            A::Perm => ints(self.rng.permutation(rank)),
            A::ReshapeTo => ints(self.reshape_target(&shape)),
            A::ExpandTo => {
                let mut t: Vec<i64> = shape
                    .iter()
                    .map(|&d| if d == 1 && self.rng.chance(0.6) { self.size() as i64 } else { d as i64 })
                    .collect();
                if self.rng.chance(0.3) {
                    t.insert(0, self.size() as i64);
                }
                ints(t)
            }
            A::SqueezeAxes => {
                ints((0..rank as i64).filter(|&i| shape[i as usize] == 1 && self.rng.chance(0.7)).collect())
            }
            A::UnsqueezeAxes => {
                let k = 1 + self.rng.below(2);
                let mut axes: Vec<i64> = self.rng.permutation(rank + k).into_iter().take(k).collect();
                axes.sort_unstable();
                ints(axes)
            }
            A::FlattenAxis => TensorLang::Int(self.rng.below(rank + 1) as i64),
            A::Axis => TensorLang::Int(self.rng.below(rank.max(1)) as i64),
            A::Axes => {
                let mut axes: Vec<i64> = (0..rank as i64).filter(|_| self.rng.chance(0.5)).collect();
                if axes.is_empty() && rank > 0 {
                    axes.push(self.rng.below(rank) as i64);
                }
                ints(axes)
            }
            A::Flag => TensorLang::Int(self.rng.below(2) as i64),
            A::Alpha => float(*self.rng.pick(&[0.5f32, 1.0, 2.0, -1.0, 0.1, 0.75])),
            A::PositiveAlpha => float(*self.rng.pick(&[0.5f32, 1.0, 2.0, 0.1])),
            A::Flag01 => float(*self.rng.pick(&[0.0f32, 1.0])),
            A::Eps => float(*self.rng.pick(&[1e-5f32, 1e-3])),
            A::ClipLo => float(*self.rng.pick(&[f32::NEG_INFINITY, -1.0, 0.0, 0.5])),
            A::ClipHi => float(*self.rng.pick(&[f32::INFINITY, 1.0, 2.0, 6.0])),
            A::DType => TensorLang::DType(*self.rng.pick(&DType::ALL)),
            A::FillValue => float(*self.rng.pick(&[0.0f32, 1.0, -1.0, 0.5, 2.0, -3.0])),
            A::Shape => ints(self.random_shape().iter().map(|&d| d as i64).collect()),
            A::LrnSize => TensorLang::Int(*self.rng.pick(&[1i64, 3, 5])),
            A::WinogradTile => TensorLang::Int(*self.rng.pick(&[2i64, 4])),
            A::PadList => ints((0..2 * rank).map(|_| self.rng.below(3) as i64).collect()),
            A::Act => TensorLang::Act(*self.rng.pick(&Activation::ALL)),
            A::Scale => float(*self.rng.pick(&[0.125f32, 0.5, 1.0])),
            A::Reduction => TensorLang::Int(self.rng.below(saturate_egraph::ops::SCATTER_REDUCTIONS.len()) as i64),
            A::Slice | A::Window => unreachable!("generated jointly for {n}"),
            A::Name => return Err(format!("{n}: names are not generated (sources come from the pattern's variables)")),
        })
    }

    /// A random shape with the same number of elements as `shape`: often `shape` with a
    /// run of adjacent dims merged (as flattening does), else a random factorization.
    fn reshape_target(&mut self, shape: &[usize]) -> Vec<i64> {
        if shape.len() >= 2 && self.rng.chance(0.4) {
            let start = self.rng.below(shape.len() - 1);
            let end = start + 2 + self.rng.below(shape.len() - start - 1);
            let merged: usize = shape[start..end].iter().product();
            return shape[..start]
                .iter()
                .copied()
                .chain([merged])
                .chain(shape[end..].iter().copied())
                .map(|d| d as i64)
                .collect();
        }
        let mut factors = Vec::new();
        let mut n: usize = shape.iter().product();
        if n == 0 {
            return vec![0];
        }
        let mut p = 2;
        while n > 1 {
            while n.is_multiple_of(p) {
                factors.push(p);
                n /= p;
            }
            p += 1;
        }
        let rank = 1 + self.rng.below(4);
        let mut dims = vec![1i64; rank];
        for f in factors {
            let i = self.rng.below(rank);
            dims[i] *= f as i64;
        }
        dims
    }
}

/// The shape of `matmul(a, b)` for operands of rank ≥ 2.
fn matmul_out(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mut out = saturate_egraph::shape::broadcast(&a[..a.len() - 2], &b[..b.len() - 2])?;
    out.extend([a[a.len() - 2], b[b.len() - 1]]);
    Some(out)
}

/// Applies op-specific fixes the generic generator cannot know: gather indices take
/// the size of the gathered axis.
pub fn index_bounds(inst: &mut Instance) {
    let expr = inst.b.expr.clone();
    for node in expr.as_ref() {
        if let TensorLang::Gather([x, idx, axis]) = node {
            let (Some(xt), TensorLang::Int(axis)) = (inst.b.tensor_type(*x), inst.b.node(*axis)) else { continue };
            let dim = xt.shape.get(*axis as usize).copied().unwrap_or(1);
            for input in inst.inputs.iter_mut().filter(|i| i.id == *idx) {
                input.values = Values::Index(dim);
            }
        }
    }
}
