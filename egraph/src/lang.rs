//! `TensorLang`: the operator language of the e-graph.
//!
//! Every tensor operation is an e-node whose children are its tensor operands followed
//! by its attributes. Attributes (axes, permutations, strides, pads, scalar constants)
//! are leaves, so a rewrite rule can match on them and an applier can compute new ones:
//!
//! ```text
//! (conv %x %w %b [2,2] [3,3,3,3] [1,1] 1)      ; strides, pads, dilations, group
//! (transpose (transpose ?x [1,0]) [1,0])        ; a pattern over permutations
//! ```
//!
//! Leaves are written so that each kind is recognizable from its text alone:
//!
//! | leaf | written | example |
//! |---|---|---|
//! | [`Int`](TensorLang::Int) | an integer | `1`, `-1` |
//! | [`Float`](TensorLang::Float) | a number with `.` or `e`, `inf`, `-inf`, `NaN` | `0.5`, `1e-5` |
//! | [`Ints`](TensorLang::Ints) | a bracketed list, no spaces | `[0,2,1,3]`, `[]` |
//! | [`DType`](TensorLang::DType) | `f32`, `i64`, `bool` | `f32` |
//! | [`Name`](TensorLang::Name) | `%` and a name | `%conv1_w` |
//! | [`Act`](TensorLang::Act) | `act_` and an activation | `act_relu`, `act_id` |
//!
//! Model inputs, weights and splat constants are the sources of a graph:
//! `(input %x f32 [1,3,224,224])`, `(weight %w f32 [64,3,7,7])`, `(fill 0.5 [1])`.
//! A weight's data lives in the [`Graph`](crate::Graph)'s weights table, never in the
//! e-graph. The attribute conventions of each op are documented in [`crate::infer`],
//! which computes every op's static result type.

use crate::{DType, IntList};
use egg::{define_language, Id, Symbol};
use ordered_float::OrderedFloat;
use std::fmt;
use std::str::FromStr;

/// Declares [`TensorLang`], [`OPS`], [`UnaryOp`], [`BinaryOp`], [`View`] and every op's
/// descriptor from one table, so nothing about an op can drift from the language: an op
/// added to the table is in every list, and every exhaustive `match` over [`View`]
/// that does not handle it fails to compile.
macro_rules! tensor_language {
    (
        $(#[$meta:meta])*
        sources { $($sname:literal = $svariant:ident($($schildren:tt)+) => $sdesc:tt,)* }
        unary { $($uname:literal = $uvariant:ident($($uchildren:tt)+) => $udesc:tt,)* }
        binary { $($bname:literal = $bvariant:ident => $bdesc:tt,)* }
        ops { $($oname:literal = $ovariant:ident($($ochildren:tt)+) => $odesc:tt,)* }
        leaves { $($leaf:ident($data:ty),)* }
    ) => {
        define_language! {
            $(#[$meta])*
            pub enum TensorLang {
                $($sname = $svariant($($schildren)+),)*
                $($uname = $uvariant($($uchildren)+),)*
                $($bname = $bvariant([Id; 2]),)*
                $($oname = $ovariant($($ochildren)+),)*
                $($leaf($data),)*
            }
        }

        /// Every op of [`TensorLang`] as written in S-expressions: the sources (`input`,
        /// `weight`, `fill`) first, then the unary and binary elementwise functions, then
        /// the rest, in the order of the table. The one list of ops: what the JIT runs
        /// and what fuzzing must cover derive from it.
        pub const OPS: &[&str] = &[$($sname,)* $($uname,)* $($bname,)* $($oname,)*];

        /// The unary elementwise functions, one a row of the table's `unary` group.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum UnaryOp {
            $($uvariant,)*
        }

        /// The binary elementwise ops, one a row of the table's `binary` group.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum BinaryOp {
            $($bvariant,)*
        }

        static UNARY_DESCS: &[UnaryDesc] = &[$(UnaryDesc { name: $uname, ..UnaryDesc $udesc },)*];
        static BINARY_DESCS: &[BinaryDesc] = &[$(BinaryDesc { name: $bname, ..BinaryDesc $bdesc },)*];
        static OP_DESCS: &[OpDesc] = &[
            $(OpDesc { name: $sname, kind: Kind::Source, ..OpDesc $sdesc },)*
            $(OpDesc { name: $oname, ..OpDesc $odesc },)*
        ];

        /// Positions in `OP_DESCS`.
        #[allow(clippy::enum_variant_names)]
        enum OpIndex {
            $($svariant,)*
            $($ovariant,)*
        }

        impl UnaryOp {
            pub const ALL: &'static [UnaryOp] = &[$(UnaryOp::$uvariant,)*];

            pub fn desc(self) -> &'static UnaryDesc {
                &UNARY_DESCS[self as usize]
            }
        }

        impl BinaryOp {
            pub const ALL: &'static [BinaryOp] = &[$(BinaryOp::$bvariant,)*];

            pub fn desc(self) -> &'static BinaryDesc {
                &BINARY_DESCS[self as usize]
            }

            /// The node `(op a b)`.
            pub fn node(self, ab: [Id; 2]) -> TensorLang {
                match self {
                    $(BinaryOp::$bvariant => TensorLang::$bvariant(ab),)*
                }
            }
        }

        /// A node as its consumers see it: the elementwise functions by their
        /// [`UnaryOp`] or [`BinaryOp`], every other op by itself. A `match` on a view
        /// handles each unary and binary function through one arm, and names every
        /// other op, so an op added to the table without a case fails to compile.
        #[derive(Debug, Clone, Copy)]
        pub enum View<'a> {
            $($svariant(&'a $($schildren)+),)*
            /// The function and the node's children: the operand, then the params.
            Unary(UnaryOp, &'a [Id]),
            Binary(BinaryOp, &'a [Id; 2]),
            $($ovariant(&'a $($ochildren)+),)*
            /// An attribute leaf.
            Leaf,
        }

        impl TensorLang {
            /// This node's [`View`].
            pub fn view(&self) -> View<'_> {
                match self {
                    $(TensorLang::$svariant(c) => View::$svariant(c),)*
                    $(TensorLang::$uvariant(..) => View::Unary(UnaryOp::$uvariant, egg::Language::children(self)),)*
                    $(TensorLang::$bvariant(c) => View::Binary(BinaryOp::$bvariant, c),)*
                    $(TensorLang::$ovariant(c) => View::$ovariant(c),)*
                    $(TensorLang::$leaf(_) => View::Leaf,)*
                }
            }

            /// This node's descriptor: its row of the table.
            pub fn desc(&self) -> Desc {
                match self {
                    $(TensorLang::$svariant(_) => Desc::Op(&OP_DESCS[OpIndex::$svariant as usize]),)*
                    $(TensorLang::$uvariant(..) => Desc::Unary(UnaryOp::$uvariant.desc()),)*
                    $(TensorLang::$bvariant(_) => Desc::Binary(BinaryOp::$bvariant.desc()),)*
                    $(TensorLang::$ovariant(_) => Desc::Op(&OP_DESCS[OpIndex::$ovariant as usize]),)*
                    $(TensorLang::$leaf(_) => Desc::Leaf,)*
                }
            }
        }

        /// The descriptor of the op named `name`, if the language has one.
        pub fn desc_of(name: &str) -> Option<Desc> {
            match name {
                $($sname => Some(Desc::Op(&OP_DESCS[OpIndex::$svariant as usize])),)*
                $($uname => Some(Desc::Unary(UnaryOp::$uvariant.desc())),)*
                $($bname => Some(Desc::Binary(BinaryOp::$bvariant.desc())),)*
                $($oname => Some(Desc::Op(&OP_DESCS[OpIndex::$ovariant as usize])),)*
                _ => None,
            }
        }
    };
}

use crate::ops::{Attr as A, BinaryDesc, Desc, Elem, Fuzz, Kind, OpDesc, Param, Role, UnaryDesc, BINARY, OP, UNARY};
use Role::{Attr as At, Tensor as T, Variadic};

/// Roles of the window attributes of convolutions and pools: strides, pads, dilations
/// (and a kernel first for pools).
const WINDOW3: [Role; 3] = [At(A::Window), At(A::Window), At(A::Window)];

tensor_language! {
    /// The tensor operator language; see the [module docs](self) for its conventions
    /// and [`crate::ops`] for what the table's rows hold.
    sources {
        "input" = Input([Id; 3]) => { roles: &[At(A::Name), At(A::DType), At(A::Shape)], fuzz: Fuzz::EXACT, ..OP },
        "weight" = Weight([Id; 3]) => { roles: &[At(A::Name), At(A::DType), At(A::Shape)], fuzz: Fuzz::EXACT, ..OP },
        "fill" = Fill([Id; 2]) => { roles: &[At(A::FillValue), At(A::Shape)], fuzz: Fuzz::EXACT, ..OP },
    }
    unary {
        "neg" = Neg(Id) => {
            onnx: &["Neg"], float: Some(|x, _| -x), int: Some(i64::wrapping_neg), fuzz: Fuzz::EXACT, ..UNARY
        },
        "abs" = Abs(Id) => {
            onnx: &["Abs"], float: Some(|x, _| x.abs()), int: Some(i64::wrapping_abs), fuzz: Fuzz::EXACT,
            non_negative: true, ..UNARY
        },
        "sqrt" = Sqrt(Id) => {
            onnx: &["Sqrt"], float: Some(|x, _| x.sqrt()), flops: 4.0, fuzz: Fuzz::SENSITIVE, non_negative: true, ..UNARY
        },
        "reciprocal" = Reciprocal(Id) => {
            onnx: &["Reciprocal"], float: Some(|x, _| 1.0 / x), flops: 4.0, fuzz: Fuzz::SENSITIVE, ..UNARY
        },
        "exp" = Exp(Id) => { onnx: &["Exp"], float: Some(|x, _| x.exp()), flops: 12.0, non_negative: true, ..UNARY },
        "log" = Log(Id) => { onnx: &["Log"], float: Some(|x, _| x.ln()), flops: 12.0, fuzz: Fuzz::SENSITIVE, ..UNARY },
        "erf" = Erf(Id) => { onnx: &["Erf"], float: Some(|x, _| crate::ops::erf(x)), flops: 12.0, ..UNARY },
        "tanh" = Tanh(Id) => { onnx: &["Tanh"], float: Some(|x, _| x.tanh()), flops: 12.0, ..UNARY },
        "sigmoid" = Sigmoid(Id) => {
            onnx: &["Sigmoid"], float: Some(crate::ops::sigmoid), flops: 12.0, non_negative: true, ..UNARY
        },
        "relu" = Relu(Id) => {
            onnx: &["Relu"], float: Some(crate::ops::relu), fuzz: Fuzz::EXACT, non_negative: true, ..UNARY
        },
        "floor" = Floor(Id) => { onnx: &["Floor"], float: Some(|x, _| x.floor()), fuzz: Fuzz::EXACT_SENSITIVE, ..UNARY },
        "ceil" = Ceil(Id) => { onnx: &["Ceil"], float: Some(|x, _| x.ceil()), fuzz: Fuzz::EXACT_SENSITIVE, ..UNARY },
        "not" = Not(Id) => { onnx: &["Not"], logical: Some(|b| !b), fuzz: Fuzz::EXACT, ..UNARY },
        "softsign" = Softsign(Id) => { onnx: &["Softsign"], float: Some(|x, _| x / (1.0 + x.abs())), flops: 4.0, ..UNARY },
        "softplus" = Softplus(Id) => {
            onnx: &["Softplus"], float: Some(crate::ops::softplus), flops: 16.0, non_negative: true, ..UNARY
        },
        "mish" = Mish(Id) => { onnx: &["Mish"], float: Some(crate::ops::mish), flops: 28.0, since: 18, ..UNARY },
        "elu" = Elu([Id; 2]) => {
            onnx: &["Elu"], params: &[Param { onnx: "alpha", default: 1.0, role: A::Alpha }],
            float: Some(crate::ops::elu), flops: 12.0, ..UNARY
        },
        "selu" = Selu([Id; 3]) => {
            onnx: &["Selu"],
            params: &[
                Param { onnx: "alpha", default: 1.673_263_2, role: A::Alpha },
                Param { onnx: "gamma", default: 1.050_701, role: A::Alpha },
            ],
            float: Some(crate::ops::selu), flops: 12.0, ..UNARY
        },
        "celu" = Celu([Id; 2]) => {
            onnx: &["Celu"], params: &[Param { onnx: "alpha", default: 1.0, role: A::PositiveAlpha }],
            float: Some(crate::ops::celu), flops: 14.0, since: 12, ..UNARY
        },
        "hard_sigmoid" = HardSigmoid([Id; 3]) => {
            onnx: &["HardSigmoid"],
            params: &[
                Param { onnx: "alpha", default: 0.2, role: A::Alpha },
                Param { onnx: "beta", default: 0.5, role: A::Alpha },
            ],
            float: Some(crate::ops::hard_sigmoid), flops: 4.0, non_negative: true, ..UNARY
        },
        "hard_swish" = HardSwish(Id) => {
            onnx: &["HardSwish"], float: Some(crate::ops::hard_swish), flops: 5.0, since: 14, ..UNARY
        },
        "sign" = Sign(Id) => {
            onnx: &["Sign"], float: Some(crate::ops::sign), int: Some(i64::signum), fuzz: Fuzz::EXACT_SENSITIVE, ..UNARY
        },
        "round" = Round(Id) => {
            onnx: &["Round"], float: Some(crate::ops::round), fuzz: Fuzz::EXACT_SENSITIVE, ..UNARY
        },
        "sin" = Sin(Id) => { onnx: &["Sin"], float: Some(|x, _| x.sin()), flops: 16.0, fuzz: Fuzz::SENSITIVE, ..UNARY },
        "cos" = Cos(Id) => { onnx: &["Cos"], float: Some(|x, _| x.cos()), flops: 16.0, fuzz: Fuzz::SENSITIVE, ..UNARY },
        "is_nan" = IsNaN(Id) => {
            onnx: &["IsNaN"], predicate: Some(|x, _| x.is_nan()), fuzz: Fuzz::EXACT_SENSITIVE, ..UNARY
        },
        // the ONNX attributes detect_negative and detect_positive, as 0.0 or 1.0
        "is_inf" = IsInf([Id; 3]) => {
            onnx: &["IsInf"],
            params: &[
                Param { onnx: "detect_negative", default: 1.0, role: A::Flag01 },
                Param { onnx: "detect_positive", default: 1.0, role: A::Flag01 },
            ],
            predicate: Some(crate::ops::is_inf), fuzz: Fuzz::EXACT_SENSITIVE, ..UNARY
        },
        "leaky_relu" = LeakyRelu([Id; 2]) => {
            onnx: &["LeakyRelu"], params: &[Param { onnx: "alpha", default: 0.01, role: A::Alpha }],
            float: Some(crate::ops::leaky_relu), ..UNARY
        },
        // imported by its own lowering: its bounds are inputs from opset 11 on
        "clip" = Clip([Id; 3]) => {
            onnx: &["Clip"],
            params: &[
                Param { onnx: "min", default: f32::NEG_INFINITY, role: A::ClipLo },
                Param { onnx: "max", default: f32::INFINITY, role: A::ClipHi },
            ],
            float: Some(crate::ops::clip), fuzz: Fuzz::EXACT, ..UNARY
        },
        // fused functions that rewrite rules recover from their decompositions
        "gelu" = Gelu(Id) => {
            onnx: &["Gelu"], float: Some(crate::ops::gelu), flops: 16.0, fused: true, since: 20, ..UNARY
        },
        "gelu_tanh" = GeluTanh(Id) => { float: Some(crate::ops::gelu_tanh), flops: 16.0, fused: true, ..UNARY },
        "silu" = Silu(Id) => { float: Some(crate::ops::silu), flops: 12.0, fused: true, ..UNARY },
    }
    binary {
        "add" = Add => { onnx: &["Add"], float: Some(|p, q| p + q), int: Some(|p, q| Some(p.wrapping_add(q))), ..BINARY },
        "sub" = Sub => { onnx: &["Sub"], float: Some(|p, q| p - q), int: Some(|p, q| Some(p.wrapping_sub(q))), ..BINARY },
        "mul" = Mul => { onnx: &["Mul"], float: Some(|p, q| p * q), int: Some(|p, q| Some(p.wrapping_mul(q))), ..BINARY },
        "div" = Div => {
            onnx: &["Div"], float: Some(|p, q| p / q),
            int: Some(|p, q| if q == 0 { None } else { Some(p.wrapping_div(q)) }),
            flops: 4.0, fuzz: Fuzz::SENSITIVE, ..BINARY
        },
        "pow" = Pow => { onnx: &["Pow"], float: Some(f64::powf), flops: 12.0, fuzz: Fuzz::SENSITIVE, ..BINARY },
        "max" = Max => {
            onnx: &["Max"], float: Some(crate::ops::nan_max), int: Some(|p, q| Some(p.max(q))), fuzz: Fuzz::EXACT, ..BINARY
        },
        "min" = Min => {
            onnx: &["Min"], float: Some(crate::ops::nan_min), int: Some(|p, q| Some(p.min(q))), fuzz: Fuzz::EXACT, ..BINARY
        },
        "equal" = Equal => {
            onnx: &["Equal"], compare: Some(|o| o == Some(std::cmp::Ordering::Equal)), fuzz: Fuzz::EXACT_SENSITIVE, ..BINARY
        },
        "less" = Less => {
            onnx: &["Less"], compare: Some(|o| o == Some(std::cmp::Ordering::Less)), fuzz: Fuzz::EXACT_SENSITIVE, ..BINARY
        },
        "greater" = Greater => {
            onnx: &["Greater"], compare: Some(|o| o == Some(std::cmp::Ordering::Greater)),
            fuzz: Fuzz::EXACT_SENSITIVE, ..BINARY
        },
        // ONNX Mod: fmod=1 is C's fmod (floats and integers), fmod=0 Python's % (integers)
        "fmod" = Fmod => {
            onnx: &["Mod"], onnx_attrs: &[("fmod", 1)], float: Some(|p, q| p % q), int: Some(crate::ops::fmod_int),
            flops: 4.0, fuzz: Fuzz::SENSITIVE, ..BINARY
        },
        "mod" = Mod => {
            onnx: &["Mod"], onnx_attrs: &[("fmod", 0)], int: Some(crate::ops::mod_int), flops: 4.0,
            fuzz: Fuzz::SENSITIVE, ..BINARY
        },
        "and" = And => { onnx: &["And"], logical: Some(|p, q| p && q), fuzz: Fuzz::EXACT, ..BINARY },
        "or" = Or => { onnx: &["Or"], logical: Some(|p, q| p || q), fuzz: Fuzz::EXACT, ..BINARY },
    }
    ops {
        "cast" = Cast([Id; 2]) => {
            onnx: &["Cast", "CastLike"], kind: Kind::Elementwise, roles: &[T(Elem::Any), At(A::DType)],
            fuzz: Fuzz::EXACT_SENSITIVE, ..OP
        },
        "where" = Where([Id; 3]) => {
            onnx: &["Where"], kind: Kind::Elementwise, roles: &[T(Elem::Bool), T(Elem::F32), T(Elem::F32)],
            fuzz: Fuzz::EXACT, ..OP
        },

        // linear algebra
        "matmul" = MatMul([Id; 2]) => {
            onnx: &["MatMul"], kind: Kind::LinearAlgebra, roles: &[T(Elem::F32), T(Elem::F32)], ..OP
        },
        "gemm" = Gemm([Id; 7]) => {
            onnx: &["Gemm"], kind: Kind::LinearAlgebra,
            roles: &[
                T(Elem::F32), T(Elem::F32), T(Elem::F32), At(A::Alpha), At(A::Alpha), At(A::Flag), At(A::Flag),
            ],
            ..OP
        },

        // reductions and normalizations
        "reduce_sum" = ReduceSum([Id; 3]) => {
            onnx: &["ReduceSum"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axes), At(A::Flag)], ..OP
        },
        "reduce_mean" = ReduceMean([Id; 3]) => {
            onnx: &["ReduceMean"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axes), At(A::Flag)], ..OP
        },
        "reduce_prod" = ReduceProd([Id; 3]) => {
            onnx: &["ReduceProd"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axes), At(A::Flag)], ..OP
        },
        "reduce_max" = ReduceMax([Id; 3]) => {
            onnx: &["ReduceMax"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axes), At(A::Flag)],
            fuzz: Fuzz::EXACT, ..OP
        },
        "reduce_min" = ReduceMin([Id; 3]) => {
            onnx: &["ReduceMin"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axes), At(A::Flag)],
            fuzz: Fuzz::EXACT, ..OP
        },
        // the index of the largest (smallest) element along an axis, the first of ties
        // (the last if the flag says so); NaN counts as the largest and the smallest
        "arg_max" = ArgMax([Id; 4]) => {
            onnx: &["ArgMax"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axis), At(A::Flag), At(A::Flag)],
            fuzz: Fuzz::EXACT_SENSITIVE, ..OP
        },
        "arg_min" = ArgMin([Id; 4]) => {
            onnx: &["ArgMin"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axis), At(A::Flag), At(A::Flag)],
            fuzz: Fuzz::EXACT_SENSITIVE, ..OP
        },
        // running sums along an axis (exclusive: each before its element; reverse: from
        // the end)
        "cum_sum" = CumSum([Id; 4]) => {
            onnx: &["CumSum"], kind: Kind::Reduction, roles: &[T(Elem::F32), At(A::Axis), At(A::Flag), At(A::Flag)], ..OP
        },
        "softmax" = Softmax([Id; 2]) => {
            onnx: &["Softmax"], kind: Kind::Normalization, roles: &[T(Elem::F32), At(A::Axis)], ..OP
        },
        "log_softmax" = LogSoftmax([Id; 2]) => {
            onnx: &["LogSoftmax"], kind: Kind::Normalization, roles: &[T(Elem::F32), At(A::Axis)], ..OP
        },
        "layer_norm" = LayerNorm([Id; 5]) => {
            onnx: &["LayerNormalization"], kind: Kind::Normalization,
            roles: &[T(Elem::F32), T(Elem::F32), T(Elem::F32), At(A::Axis), At(A::Eps)], ..OP
        },
        "batch_norm" = BatchNorm([Id; 6]) => {
            onnx: &["BatchNormalization"], kind: Kind::Elementwise,
            roles: &[T(Elem::F32), T(Elem::F32), T(Elem::F32), T(Elem::F32), T(Elem::F32), At(A::Eps)], ..OP
        },
        "lrn" = Lrn([Id; 5]) => {
            onnx: &["LRN"], kind: Kind::Normalization,
            roles: &[T(Elem::F32), At(A::LrnSize), At(A::Alpha), At(A::Alpha), At(A::Alpha)], ..OP
        },

        // layout
        "reshape" = Reshape([Id; 2]) => {
            onnx: &["Reshape"], roles: &[T(Elem::F32), At(A::ReshapeTo)], fuzz: Fuzz::EXACT, ..OP
        },
        "flatten" = Flatten([Id; 2]) => {
            onnx: &["Flatten"], roles: &[T(Elem::F32), At(A::FlattenAxis)], fuzz: Fuzz::EXACT, ..OP
        },
        "squeeze" = Squeeze([Id; 2]) => {
            onnx: &["Squeeze"], roles: &[T(Elem::F32), At(A::SqueezeAxes)], fuzz: Fuzz::EXACT, ..OP
        },
        "unsqueeze" = Unsqueeze([Id; 2]) => {
            onnx: &["Unsqueeze"], roles: &[T(Elem::F32), At(A::UnsqueezeAxes)], fuzz: Fuzz::EXACT, ..OP
        },
        "transpose" = Transpose([Id; 2]) => {
            onnx: &["Transpose"], roles: &[T(Elem::F32), At(A::Perm)], fuzz: Fuzz::EXACT, ..OP
        },
        "expand" = Expand([Id; 2]) => {
            onnx: &["Expand"], roles: &[T(Elem::F32), At(A::ExpandTo)], fuzz: Fuzz::EXACT, ..OP
        },
        "concat" = Concat(Box<[Id]>) => {
            onnx: &["Concat"], roles: &[At(A::Axis), Variadic(Elem::F32)], fuzz: Fuzz::EXACT, ..OP
        },
        "slice" = Slice([Id; 4]) => {
            onnx: &["Slice"], roles: &[T(Elem::F32), At(A::Slice), At(A::Slice), At(A::Slice)], fuzz: Fuzz::EXACT, ..OP
        },
        "gather" = Gather([Id; 3]) => {
            onnx: &["Gather"], roles: &[T(Elem::F32), T(Elem::Index), At(A::Axis)], fuzz: Fuzz::EXACT, ..OP
        },
        // out[…, i, …] = x[…, indices[…, i, …], …] along the axis; out has indices' shape
        "gather_elements" = GatherElements([Id; 3]) => {
            onnx: &["GatherElements"], roles: &[T(Elem::F32), T(Elem::Index), At(A::Axis)], fuzz: Fuzz::EXACT, ..OP
        },
        // out = x, then out[…, indices[p], …] = updates[p] along the axis for each p of
        // indices in order, combined with what is there by the reduction
        "scatter_elements" = ScatterElements([Id; 5]) => {
            onnx: &["ScatterElements"],
            roles: &[T(Elem::F32), T(Elem::Index), T(Elem::F32), At(A::Axis), At(A::Reduction)], fuzz: Fuzz::EXACT, ..OP
        },
        "pad" = Pad([Id; 3]) => {
            onnx: &["Pad"], roles: &[T(Elem::F32), At(A::PadList), At(A::FillValue)], fuzz: Fuzz::EXACT, ..OP
        },

        // convolution and pooling
        "conv" = Conv([Id; 7]) => {
            onnx: &["Conv"], kind: Kind::LinearAlgebra,
            roles: &[T(Elem::F32), T(Elem::F32), T(Elem::F32), WINDOW3[0], WINDOW3[1], WINDOW3[2], At(A::Window)],
            ..OP
        },
        "max_pool" = MaxPool([Id; 6]) => {
            onnx: &["MaxPool"], kind: Kind::Window,
            roles: &[T(Elem::F32), At(A::Window), WINDOW3[0], WINDOW3[1], WINDOW3[2], At(A::Flag)],
            fuzz: Fuzz::EXACT, ..OP
        },
        "avg_pool" = AvgPool([Id; 7]) => {
            onnx: &["AveragePool"], kind: Kind::Window,
            roles: &[T(Elem::F32), At(A::Window), WINDOW3[0], WINDOW3[1], WINDOW3[2], At(A::Flag), At(A::Flag)],
            ..OP
        },
        "global_avg_pool" = GlobalAvgPool(Id) => {
            onnx: &["GlobalAveragePool"], kind: Kind::Reduction, roles: &[T(Elem::F32)], ..OP
        },
        "global_max_pool" = GlobalMaxPool(Id) => {
            onnx: &["GlobalMaxPool"], kind: Kind::Reduction, roles: &[T(Elem::F32)], fuzz: Fuzz::EXACT, ..OP
        },

        // fused ops that rewrite rules introduce; each computes what its decomposed
        // form computes, in one kernel
        "rms_norm" = RmsNorm([Id; 4]) => {
            kind: Kind::Normalization, roles: &[T(Elem::F32), T(Elem::F32), At(A::Axis), At(A::Eps)], fused: true, ..OP
        },
        "matmul_bias_act" = MatMulBiasAct([Id; 4]) => {
            kind: Kind::LinearAlgebra, roles: &[T(Elem::F32), T(Elem::F32), T(Elem::F32), At(A::Act)], fused: true, ..OP
        },
        "conv_bias_act" = ConvBiasAct([Id; 8]) => {
            kind: Kind::LinearAlgebra,
            roles: &[
                T(Elem::F32), T(Elem::F32), T(Elem::F32), WINDOW3[0], WINDOW3[1], WINDOW3[2], At(A::Window), At(A::Act),
            ],
            fused: true, ..OP
        },
        // Winograd's F(m×m, 3×3) (see `crate::winograd`): the weights carried into the
        // (m+2)² space, then the convolution computed there
        "winograd_weights" = WinogradWeights([Id; 2]) => {
            kind: Kind::LinearAlgebra, roles: &[T(Elem::F32), At(A::WinogradTile)], fused: true, ..OP
        },
        "winograd_conv" = WinogradConv([Id; 6]) => {
            kind: Kind::LinearAlgebra,
            roles: &[T(Elem::F32), T(Elem::F32), T(Elem::F32), WINDOW3[1], At(A::WinogradTile), At(A::Act)],
            fused: true, ..OP
        },
        "attention" = Attention([Id; 4]) => {
            kind: Kind::LinearAlgebra, roles: &[T(Elem::F32), T(Elem::F32), T(Elem::F32), At(A::Scale)], fused: true, ..OP
        },
    }
    // attribute leaves; parsed in this order, so an integer never reads as a float
    leaves {
        Int(i64),
        Float(Float),
        Ints(IntList),
        DType(DType),
        Name(Name),
        Act(Activation),
    }
}

impl TensorLang {
    /// True for attribute leaves (integers, floats, lists, dtypes, names): the
    /// children that configure an op rather than carry tensor data.
    pub fn is_attribute(&self) -> bool {
        matches!(
            self,
            TensorLang::Int(_)
                | TensorLang::Float(_)
                | TensorLang::Ints(_)
                | TensorLang::DType(_)
                | TensorLang::Name(_)
                | TensorLang::Act(_)
        )
    }

    /// The op name as written in S-expressions (`conv`, `add`, …), or the leaf's text.
    pub fn op_name(&self) -> String {
        self.to_string()
    }
}

/// The activation an epilogue-fused op applies to its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Activation {
    /// No activation: the identity.
    Id,
    Relu,
    Gelu,
    GeluTanh,
    Sigmoid,
    Tanh,
    Silu,
}

impl Activation {
    pub const ALL: [Activation; 7] = [
        Activation::Id,
        Activation::Relu,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Silu,
    ];

    /// The elementwise function it applies (`None` for the identity).
    pub fn unary(self) -> Option<UnaryOp> {
        match self {
            Activation::Id => None,
            Activation::Relu => Some(UnaryOp::Relu),
            Activation::Gelu => Some(UnaryOp::Gelu),
            Activation::GeluTanh => Some(UnaryOp::GeluTanh),
            Activation::Sigmoid => Some(UnaryOp::Sigmoid),
            Activation::Tanh => Some(UnaryOp::Tanh),
            Activation::Silu => Some(UnaryOp::Silu),
        }
    }

    /// The spelling in S-expressions: `act_id`, `act_relu`, … (distinct from op names).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Id => "act_id",
            Activation::Relu => "act_relu",
            Activation::Gelu => "act_gelu",
            Activation::GeluTanh => "act_gelu_tanh",
            Activation::Sigmoid => "act_sigmoid",
            Activation::Tanh => "act_tanh",
            Activation::Silu => "act_silu",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("`{s}` is not an activation (act_id, act_relu, act_gelu, …)"))
    }
}

/// An f32 attribute leaf (an epsilon, an alpha, a fill value), ordered and hashed by
/// its bits so it can live in an e-node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Float(pub OrderedFloat<f32>);

impl Float {
    pub fn new(value: f32) -> Self {
        Float(OrderedFloat(value))
    }

    pub fn get(self) -> f32 {
        self.0 .0
    }
}

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.get();
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "inf" } else { "-inf" })
        } else {
            // `{:?}` is the shortest text that reads back to the same bits and always
            // has a `.` or an exponent, which tells a float from an integer.
            write!(f, "{v:?}")
        }
    }
}

impl FromStr for Float {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let looks_float = s.contains(['.', 'e', 'E']) || matches!(s, "inf" | "-inf" | "NaN");
        if !looks_float {
            return Err(format!("`{s}` is not a float (write 1.0, not 1)"));
        }
        s.parse::<f32>().map(Float::new).map_err(|_| format!("`{s}` is not a float"))
    }
}

/// The name of a model input or weight, written with a leading `%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(pub Symbol);

impl Name {
    pub fn new(name: &str) -> Self {
        Name(Symbol::from(name))
    }

    pub fn as_str(&self) -> &'static str {
        self.0.as_str()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

impl FromStr for Name {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix('%') {
            Some(name) if is_valid_name(name) => Ok(Name::new(name)),
            _ => Err(format!("`{s}` is not a name like %x")),
        }
    }
}

/// Whether `name` can be written after `%` as one S-expression atom.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | ';' | '%'))
}

/// Makes an arbitrary tensor name (ONNX allows anything) writable as a [`Name`],
/// by replacing characters that would break an S-expression atom with `_`.
pub fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_whitespace() || matches!(c, '(' | ')' | '"' | ';' | '%') { '_' } else { c })
        .collect();
    if cleaned.is_empty() {
        "_".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::{FromOp, Language, RecExpr};

    #[test]
    fn leaves_parse_by_their_spelling() {
        let e: RecExpr<TensorLang> =
            "(conv (input %x f32 [1,3,8,8]) (weight %w f32 [4,3,3,3]) (fill 0.0 [4]) [1,1] [1,1,1,1] [1,1] 1)"
                .parse()
                .unwrap();
        let kinds: Vec<&str> = e
            .as_ref()
            .iter()
            .map(|n| match n {
                TensorLang::Int(_) => "int",
                TensorLang::Float(_) => "float",
                TensorLang::Ints(_) => "ints",
                TensorLang::DType(_) => "dtype",
                TensorLang::Name(_) => "name",
                _ => "op",
            })
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "ints").count(), 6);
        assert_eq!(kinds.iter().filter(|k| **k == "float").count(), 1);
        assert_eq!(kinds.iter().filter(|k| **k == "int").count(), 1);
        assert_eq!(kinds.iter().filter(|k| **k == "name").count(), 2);
    }

    #[test]
    fn floats_print_back_to_the_same_bits() {
        for v in [0.02f32, 1e-5, -3.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, 1.0e30, 7.0e-45] {
            let text = Float::new(v).to_string();
            assert_eq!(text.parse::<Float>().unwrap().get().to_bits(), v.to_bits(), "{text}");
        }
        assert!("1".parse::<Float>().is_err());
    }

    #[test]
    fn the_op_list_is_the_language() {
        // every name in OPS is an op of the language (not a leaf), and names are unique
        for op in OPS {
            let node = (1..=8)
                .find_map(|arity| TensorLang::from_op(op, vec![Id::from(0usize); arity]).ok())
                .unwrap_or_else(|| panic!("{op} is not an op of the language"));
            assert!(!node.is_attribute(), "{op}");
        }
        let unique: std::collections::BTreeSet<_> = OPS.iter().collect();
        assert_eq!(unique.len(), OPS.len());
        assert_eq!(&OPS[..3], ["input", "weight", "fill"]);
    }

    #[test]
    fn every_row_describes_its_op() {
        for op in OPS {
            let desc = desc_of(op).unwrap_or_else(|| panic!("{op} has no row"));
            assert_eq!(desc.name(), Some(*op));
            let node = (1..=8)
                .find_map(|arity| TensorLang::from_op(op, vec![Id::from(0usize); arity]).ok())
                .unwrap_or_else(|| panic!("{op}"));
            assert_eq!(node.desc().name(), Some(*op));
            // a role for each child (a variadic role covers the rest)
            let roles = desc.roles();
            let variadic = roles.iter().any(|r| matches!(r, Role::Variadic(_)));
            if !variadic {
                assert_eq!(roles.len(), node.children().len(), "{op}: roles {roles:?}");
            }
        }
        for op in UnaryOp::ALL {
            let d = op.desc();
            let meanings = [d.float.is_some(), d.int.is_some(), d.logical.is_some(), d.predicate.is_some()];
            assert!(meanings.contains(&true), "{}: no meaning", d.name);
            assert!(!(d.float.is_some() && d.predicate.is_some()), "{}: a function or a test, not both", d.name);
            assert_eq!(
                d.params.len() + 1,
                TensorLang::from_op(d.name, vec![Id::from(0usize); d.params.len() + 1]).unwrap().children().len()
            );
        }
        for op in BinaryOp::ALL {
            let d = op.desc();
            assert!(d.float.is_some() || d.int.is_some() || d.compare.is_some() || d.logical.is_some(), "{}", d.name);
            assert_eq!(op.node([Id::from(0usize); 2]).desc().name(), Some(d.name));
        }
        assert!(desc_of("nope").is_none() && desc_of("act_relu").is_none());
    }

    #[test]
    fn views_group_the_elementwise_functions() {
        let e: RecExpr<TensorLang> = "(clip (erf (add (input %x f32 [2]) (fill 1.0 [2]))) -1.0 1.0)".parse().unwrap();
        let kinds: Vec<String> = e
            .as_ref()
            .iter()
            .filter_map(|n| match n.view() {
                View::Unary(op, c) => Some(format!("{}/{}", op.desc().name, c.len())),
                View::Binary(op, _) => Some(op.desc().name.to_string()),
                View::Input(_) | View::Fill(_) => Some("source".into()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["source", "source", "add", "erf/1", "clip/3"]);
    }

    #[test]
    fn names_are_sanitized_to_single_atoms() {
        assert_eq!(sanitize_name("gpu_0/data 0"), "gpu_0/data_0");
        assert_eq!(sanitize_name(""), "_");
        assert!(is_valid_name(&sanitize_name("a(b)%\"c;")));
    }
}
