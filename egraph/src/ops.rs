//! What each operator is: the descriptors of the op table in [`crate::lang`].
//!
//! Every op of [`TensorLang`](crate::TensorLang) has one row in that table, and the row
//! holds the facts everything else derives from: its name in the e-graph, the ONNX ops
//! that import to it, what its children are ([`Role`]s), its [`Kind`], whether a fuzz
//! case may feed it inexact values ([`Fuzz`]), and — for the elementwise functions of one
//! operand ([`UnaryDesc`]) and of two ([`BinaryDesc`]) — their meaning, in f64, and their
//! cost in FLOPs per element. The supported-op lists (`OPS`, the backend's, the ONNX
//! importer's), the interpreter's and the type checker's treatment of elementwise ops,
//! the fuzz generator and the FLOP counts read these rows.
//!
//! # Adding an operator
//!
//! A unary elementwise function (`softsign`, say) is one row in the `unary` group of the
//! table (its ONNX name, its meaning on f64, its FLOPs) and one arm in the JIT's
//! `backend/src/jit/loops.rs`, whose `match` over [`UnaryOp`] does not compile without
//! it; a new polynomial goes in `backend/src/jit/math.rs`. Import, export, type rule,
//! interpreter, cost, fuzzing and rule checking follow from the row.
//!
//! Any other op is a row in the `ops` group, and then every exhaustive `match` over
//! [`View`](crate::lang::View) that does not handle it fails to compile: the type rule
//! (`infer.rs`), the interpreter, the work model (`work.rs`), lowering, export, and the
//! fuzz generator.

/// What kind of kernel an op is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Inputs, weights, splat constants.
    Source,
    /// One output element from the same position of its operands.
    Elementwise,
    /// Reduces axes to fewer elements.
    Reduction,
    /// Normalizes along axes (softmax, layer norm, LRN): reads rows, writes them.
    Normalization,
    /// Slides a window over spatial axes (pooling).
    Window,
    /// Moves or views data without arithmetic.
    Layout,
    /// Matrix products and convolutions.
    LinearAlgebra,
}

/// How fuzzing may feed an op (see `verify/src/fuzz/gen.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fuzz {
    /// Its result is exact when its operands are: it only moves, selects or compares.
    pub exact: bool,
    /// It jumps where its operand crosses a point (floor at integers, comparisons at
    /// ties, sqrt and log at zero), so a last-bit difference in its operand changes the
    /// answer: it takes only exact operands.
    pub sensitive: bool,
}

impl Fuzz {
    pub const PLAIN: Fuzz = Fuzz { exact: false, sensitive: false };
    pub const EXACT: Fuzz = Fuzz { exact: true, sensitive: false };
    pub const SENSITIVE: Fuzz = Fuzz { exact: false, sensitive: true };
    pub const EXACT_SENSITIVE: Fuzz = Fuzz { exact: true, sensitive: true };
}

/// What a child slot of an op holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A tensor operand.
    Tensor(Elem),
    /// Any number of tensor operands (the rest of the children).
    Variadic(Elem),
    /// An attribute leaf.
    Attr(Attr),
}

/// The element type a tensor operand is drawn with when rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    F32,
    Bool,
    /// i64 indices into another operand.
    Index,
    Any,
}

/// What an attribute leaf means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Name,
    DType,
    Shape,
    Perm,
    ReshapeTo,
    ExpandTo,
    SqueezeAxes,
    UnsqueezeAxes,
    FlattenAxis,
    Axis,
    Axes,
    Flag,
    Alpha,
    /// A strictly positive float (celu's alpha divides).
    PositiveAlpha,
    /// 0.0 or 1.0, a flag held as a float param (is_inf's signs).
    Flag01,
    Eps,
    ClipLo,
    ClipHi,
    FillValue,
    LrnSize,
    Slice,
    PadList,
    Act,
    Scale,
    Window,
    /// Outputs per side of a Winograd tile: 2 or 4.
    WinogradTile,
    /// How a scatter combines an update with what is there: an index into
    /// [`SCATTER_REDUCTIONS`].
    Reduction,
}

/// The `reduction` attribute of ONNX's scatters, by their code in the e-graph.
pub const SCATTER_REDUCTIONS: [&str; 5] = ["none", "add", "mul", "max", "min"];

/// A float attribute of a unary function, after its operand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    /// The ONNX attribute it imports from.
    pub onnx: &'static str,
    /// Its ONNX default.
    pub default: f32,
    pub role: Attr,
}

/// A unary elementwise function: `y = f(x, params…)`.
#[derive(Debug, Clone, Copy)]
pub struct UnaryDesc {
    pub name: &'static str,
    /// The ONNX ops that import to it directly (export writes the first).
    pub onnx: &'static [&'static str],
    pub params: &'static [Param],
    /// Its value on f32 elements, computed in f64 (params in order); `None` if f32 is
    /// not accepted.
    pub float: Option<fn(f64, &[f32]) -> f64>,
    /// Its value on i64 elements, if defined.
    pub int: Option<fn(i64) -> i64>,
    /// Its value on booleans, if defined.
    pub logical: Option<fn(bool) -> bool>,
    /// A test of f32 elements with a bool result (`isnan`), if it is one.
    pub predicate: Option<fn(f64, &[f32]) -> bool>,
    /// FLOPs per element, for `saturate info` and the cost models.
    pub flops: f64,
    pub fuzz: Fuzz,
    /// Its result is never negative (a fact rule guards use).
    pub non_negative: bool,
    /// Rewrite rules introduce it (it has a decomposition in other ops).
    pub fused: bool,
    /// The opset that introduced its ONNX op; export (at opset 19) writes a newer one
    /// as its decomposition.
    pub since: i64,
}

/// The defaults rows of the `unary` group start from.
pub const UNARY: UnaryDesc = UnaryDesc {
    name: "",
    onnx: &[],
    params: &[],
    float: None,
    int: None,
    logical: None,
    predicate: None,
    flops: 1.0,
    fuzz: Fuzz::PLAIN,
    non_negative: false,
    fused: false,
    since: 1,
};

/// A binary elementwise op with numpy broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct BinaryDesc {
    pub name: &'static str,
    pub onnx: &'static [&'static str],
    /// Its value on f32 elements, in f64.
    pub float: Option<fn(f64, f64) -> f64>,
    /// Its value on i64 elements; `None` where it is undefined (division by zero).
    pub int: Option<fn(i64, i64) -> Option<i64>>,
    /// A comparison: from how the operands order (`None`: unordered, a NaN), whether
    /// it holds; defined on every dtype, with a bool result.
    pub compare: Option<fn(Option<std::cmp::Ordering>) -> bool>,
    /// Its value on booleans (and, or).
    pub logical: Option<fn(bool, bool) -> bool>,
    /// The integer attributes its ONNX op has when it means this row (`Mod` with
    /// `fmod=1` is `fmod`, with `fmod=0` is `mod`); absent ones count as 0.
    pub onnx_attrs: &'static [(&'static str, i64)],
    pub flops: f64,
    pub fuzz: Fuzz,
}

/// The remainder of a division truncated toward zero (C's fmod): the sign of `p`.
pub(crate) fn fmod_int(p: i64, q: i64) -> Option<i64> {
    (q != 0).then(|| p.wrapping_rem(q))
}

/// The remainder of a floored division (Python's %): the sign of `q`.
pub(crate) fn mod_int(p: i64, q: i64) -> Option<i64> {
    let r = fmod_int(p, q)?;
    Some(if r != 0 && (r < 0) != (q < 0) { r.wrapping_add(q) } else { r })
}

pub const BINARY: BinaryDesc = BinaryDesc {
    name: "",
    onnx: &[],
    float: None,
    int: None,
    compare: None,
    logical: None,
    onnx_attrs: &[],
    flops: 1.0,
    fuzz: Fuzz::PLAIN,
};

/// Any other op.
#[derive(Debug, Clone, Copy)]
pub struct OpDesc {
    pub name: &'static str,
    /// The ONNX ops that import to it (by their own lowering in `onnx/ops.rs`).
    pub onnx: &'static [&'static str],
    pub kind: Kind,
    pub roles: &'static [Role],
    pub fuzz: Fuzz,
    /// Rewrite rules introduce it (it has a decomposition in other ops).
    pub fused: bool,
}

pub const OP: OpDesc = OpDesc { name: "", onnx: &[], kind: Kind::Layout, roles: &[], fuzz: Fuzz::PLAIN, fused: false };

/// The descriptor of any node.
#[derive(Debug, Clone, Copy)]
pub enum Desc {
    Unary(&'static UnaryDesc),
    Binary(&'static BinaryDesc),
    Op(&'static OpDesc),
    /// An attribute leaf, not an op.
    Leaf,
}

impl Desc {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Desc::Unary(d) => Some(d.name),
            Desc::Binary(d) => Some(d.name),
            Desc::Op(d) => Some(d.name),
            Desc::Leaf => None,
        }
    }

    pub fn onnx(self) -> &'static [&'static str] {
        match self {
            Desc::Unary(d) => d.onnx,
            Desc::Binary(d) => d.onnx,
            Desc::Op(d) => d.onnx,
            Desc::Leaf => &[],
        }
    }

    pub fn kind(self) -> Option<Kind> {
        match self {
            Desc::Unary(_) | Desc::Binary(_) => Some(Kind::Elementwise),
            Desc::Op(d) => Some(d.kind),
            Desc::Leaf => None,
        }
    }

    pub fn fuzz(self) -> Fuzz {
        match self {
            Desc::Unary(d) => d.fuzz,
            Desc::Binary(d) => d.fuzz,
            Desc::Op(d) => d.fuzz,
            Desc::Leaf => Fuzz::EXACT,
        }
    }

    pub fn fused(self) -> bool {
        match self {
            Desc::Unary(d) => d.fused,
            Desc::Binary(_) | Desc::Leaf => false,
            Desc::Op(d) => d.fused,
        }
    }

    /// What each child slot holds.
    pub fn roles(self) -> Vec<Role> {
        match self {
            Desc::Unary(d) => {
                let x = if d.float.is_some() || d.predicate.is_some() { Elem::F32 } else { Elem::Bool };
                std::iter::once(Role::Tensor(x)).chain(d.params.iter().map(|p| Role::Attr(p.role))).collect()
            }
            Desc::Binary(d) => {
                let e = if d.float.is_some() || d.compare.is_some() { Elem::F32 } else { Elem::Bool };
                vec![Role::Tensor(e); 2]
            }
            Desc::Op(d) => d.roles.to_vec(),
            Desc::Leaf => vec![],
        }
    }
}

// The meanings of the elementwise rows, where a closure would not read well.

pub(crate) fn relu(x: f64, _: &[f32]) -> f64 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

pub(crate) fn sigmoid(x: f64, _: &[f32]) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub(crate) fn leaky_relu(x: f64, p: &[f32]) -> f64 {
    if x < 0.0 {
        p[0] as f64 * x
    } else {
        x
    }
}

/// NaN stays NaN; otherwise the value clamped to `[p[0], p[1]]`.
pub(crate) fn clip(x: f64, p: &[f32]) -> f64 {
    if x.is_nan() {
        x
    } else {
        x.max(p[0] as f64).min(p[1] as f64)
    }
}

pub(crate) fn gelu(x: f64, _: &[f32]) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

pub(crate) fn gelu_tanh(x: f64, _: &[f32]) -> f64 {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
}

pub(crate) fn silu(x: f64, _: &[f32]) -> f64 {
    x / (1.0 + (-x).exp())
}

/// ln(1 + eˣ), computed so that it neither overflows nor loses small values.
pub(crate) fn softplus(x: f64, _: &[f32]) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

pub(crate) fn mish(x: f64, p: &[f32]) -> f64 {
    x * softplus(x, p).tanh()
}

/// α·(eˣ − 1) below zero, x above (elu; selu scales both by γ).
pub(crate) fn elu(x: f64, p: &[f32]) -> f64 {
    if x < 0.0 {
        p[0] as f64 * x.exp_m1()
    } else {
        x
    }
}

pub(crate) fn selu(x: f64, p: &[f32]) -> f64 {
    let (alpha, gamma) = (p[0] as f64, p[1] as f64);
    if x <= 0.0 {
        gamma * alpha * x.exp_m1()
    } else {
        gamma * x
    }
}

/// max(0, x) + min(0, α·(e^(x/α) − 1)).
pub(crate) fn celu(x: f64, p: &[f32]) -> f64 {
    let alpha = p[0] as f64;
    if x.is_nan() {
        return x;
    }
    x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0)
}

/// max(0, min(1, α·x + β)).
pub(crate) fn hard_sigmoid(x: f64, p: &[f32]) -> f64 {
    (p[0] as f64 * x + p[1] as f64).clamp(0.0, 1.0)
}

/// x · max(0, min(1, x/6 + 1/2)).
pub(crate) fn hard_swish(x: f64, _: &[f32]) -> f64 {
    x * (x / 6.0 + 0.5).clamp(0.0, 1.0)
}

/// −1, 0 or 1 (NaN stays NaN, ±0 stays as it is).
pub(crate) fn sign(x: f64, _: &[f32]) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// Rounds half to even, as ONNX's Round does.
pub(crate) fn round(x: f64, _: &[f32]) -> f64 {
    x.round_ties_even()
}

/// Whether x is infinite with a sign `p` selects (p[0]: negative ones, p[1]: positive).
pub(crate) fn is_inf(x: f64, p: &[f32]) -> bool {
    (x == f64::NEG_INFINITY && p[0] != 0.0) || (x == f64::INFINITY && p[1] != 0.0)
}

pub(crate) fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// `max` and `min` propagate NaN (IEEE's maxNum would drop it).
pub(crate) fn nan_max(p: f64, q: f64) -> f64 {
    if p.is_nan() || q.is_nan() {
        f64::NAN
    } else {
        p.max(q)
    }
}

pub(crate) fn nan_min(p: f64, q: f64) -> f64 {
    if p.is_nan() || q.is_nan() {
        f64::NAN
    } else {
        p.min(q)
    }
}
