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

/// Declares [`TensorLang`] and [`OPS`] from one table, so the list of ops cannot drift
/// from the language: an op added to the enum is in the list.
macro_rules! tensor_language {
    (
        $(#[$meta:meta])*
        ops { $($name:literal = $variant:ident($($children:tt)+),)* }
        leaves { $($leaf:ident($data:ty),)* }
    ) => {
        define_language! {
            $(#[$meta])*
            pub enum TensorLang {
                $($name = $variant($($children)+),)*
                $($leaf($data),)*
            }
        }

        /// Every op of [`TensorLang`] as written in S-expressions, sources (`input`,
        /// `weight`, `fill`) first, in the order the language declares them: the one list
        /// of ops, from which the others (what the JIT runs, what fuzzing must cover) derive.
        pub const OPS: &[&str] = &[$($name),*];
    };
}

tensor_language! {
    /// The tensor operator language; see the [module docs](self) for its conventions.
    ops {
        // sources
        "input" = Input([Id; 3]),
        "weight" = Weight([Id; 3]),
        "fill" = Fill([Id; 2]),

        // elementwise, one operand
        "neg" = Neg(Id),
        "abs" = Abs(Id),
        "sqrt" = Sqrt(Id),
        "reciprocal" = Reciprocal(Id),
        "exp" = Exp(Id),
        "log" = Log(Id),
        "erf" = Erf(Id),
        "tanh" = Tanh(Id),
        "sigmoid" = Sigmoid(Id),
        "relu" = Relu(Id),
        "floor" = Floor(Id),
        "ceil" = Ceil(Id),
        "not" = Not(Id),
        "leaky_relu" = LeakyRelu([Id; 2]),
        "clip" = Clip([Id; 3]),
        "cast" = Cast([Id; 2]),

        // elementwise, broadcasting operands
        "add" = Add([Id; 2]),
        "sub" = Sub([Id; 2]),
        "mul" = Mul([Id; 2]),
        "div" = Div([Id; 2]),
        "pow" = Pow([Id; 2]),
        "max" = Max([Id; 2]),
        "min" = Min([Id; 2]),
        "equal" = Equal([Id; 2]),
        "less" = Less([Id; 2]),
        "greater" = Greater([Id; 2]),
        "and" = And([Id; 2]),
        "or" = Or([Id; 2]),
        "where" = Where([Id; 3]),

        // linear algebra
        "matmul" = MatMul([Id; 2]),
        "gemm" = Gemm([Id; 7]),

        // reductions and normalizations
        "reduce_sum" = ReduceSum([Id; 3]),
        "reduce_mean" = ReduceMean([Id; 3]),
        "reduce_max" = ReduceMax([Id; 3]),
        "reduce_min" = ReduceMin([Id; 3]),
        "softmax" = Softmax([Id; 2]),
        "log_softmax" = LogSoftmax([Id; 2]),
        "layer_norm" = LayerNorm([Id; 5]),
        "batch_norm" = BatchNorm([Id; 6]),
        "lrn" = Lrn([Id; 5]),

        // layout
        "reshape" = Reshape([Id; 2]),
        "flatten" = Flatten([Id; 2]),
        "squeeze" = Squeeze([Id; 2]),
        "unsqueeze" = Unsqueeze([Id; 2]),
        "transpose" = Transpose([Id; 2]),
        "expand" = Expand([Id; 2]),
        "concat" = Concat(Box<[Id]>),
        "slice" = Slice([Id; 4]),
        "gather" = Gather([Id; 3]),

        // convolution and pooling
        "conv" = Conv([Id; 7]),
        "max_pool" = MaxPool([Id; 6]),
        "avg_pool" = AvgPool([Id; 7]),
        "global_avg_pool" = GlobalAvgPool(Id),
        "global_max_pool" = GlobalMaxPool(Id),
        "pad" = Pad([Id; 3]),

        // fused ops that rewrite rules introduce; each computes what its decomposed
        // form computes, in one kernel
        "gelu" = Gelu(Id),
        "gelu_tanh" = GeluTanh(Id),
        "silu" = Silu(Id),
        "rms_norm" = RmsNorm([Id; 4]),
        "matmul_bias_act" = MatMulBiasAct([Id; 4]),
        "conv_bias_act" = ConvBiasAct([Id; 8]),
        "attention" = Attention([Id; 4]),
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
    use egg::{FromOp, RecExpr};

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
    fn names_are_sanitized_to_single_atoms() {
        assert_eq!(sanitize_name("gpu_0/data 0"), "gpu_0/data_0");
        assert_eq!(sanitize_name(""), "_");
        assert!(is_valid_name(&sanitize_name("a(b)%\"c;")));
    }
}
