//! The e-class analysis: every e-class knows the static type of the tensors it
//! denotes (or the attribute value it is), and a few facts about its values that
//! rewrite guards ask for.
//!
//! `make` runs [`infer`] on each new e-node. All e-nodes of a class denote the same
//! value, so they agree on its type; a rewrite never adds an ill-typed node (the rule
//! applier type-checks a right-hand side before adding it), but should one appear it is
//! recorded as an error in [`ClassData::meta`] instead of crashing the search.
//!
//! [`Facts`] are what is known about the values: that every element equals one number
//! (`fill` constants), a sign, and whether the class depends on weights and constants
//! only (then it is computed once, at compile time). Merging two classes keeps the
//! facts known of either, since both describe the same value.

use crate::infer::{infer, Meta};
use crate::{TensorLang, TensorType};
use egg::{Analysis, DidMerge, EGraph, Id, Language};

/// The e-graph saturate builds: TensorLang nodes with shapes in the analysis.
pub type TensorEGraph = EGraph<TensorLang, ShapeAnalysis>;

/// Computes [`ClassData`] for every e-class.
#[derive(Debug, Default, Clone)]
pub struct ShapeAnalysis;

/// What an e-class denotes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassData {
    /// The type (or attribute value), or why a node of the class is ill-typed.
    pub meta: Result<Meta, String>,
    pub facts: Facts,
}

impl ClassData {
    pub fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref().ok()
    }

    pub fn tensor(&self) -> Option<&TensorType> {
        self.meta().and_then(Meta::tensor)
    }
}

/// What is known about the values of a tensor class.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Facts {
    /// Every element equals this value.
    pub splat: Option<f32>,
    pub sign: Sign,
    /// Computed from weights and constants only: free at run time.
    pub constant: bool,
}

/// A sign known for every element (NaN aside: NaN stays NaN under the rewrites that
/// sign facts enable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Sign {
    #[default]
    Unknown,
    /// `x ≥ 0`
    NonNegative,
    /// `x > 0`
    Positive,
}

impl Sign {
    pub fn non_negative(self) -> bool {
        self >= Sign::NonNegative
    }

    fn of_value(v: f32) -> Sign {
        if v > 0.0 {
            Sign::Positive
        } else if v >= 0.0 {
            Sign::NonNegative
        } else {
            Sign::Unknown
        }
    }
}

impl Analysis<TensorLang> for ShapeAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut TensorEGraph, enode: &TensorLang, _id: Id) -> ClassData {
        let invalid_child = enode.children().iter().find_map(|&c| egraph[c].data.meta.as_ref().err().cloned());
        if let Some(reason) = invalid_child {
            return ClassData { meta: Err(format!("operand is ill-typed: {reason}")), facts: Facts::default() };
        }
        let meta = infer(enode, &|c| egraph[c].data.meta().expect("children were checked above"))
            .map_err(|reason| format!("{enode}: {reason}"));
        let facts = facts(enode, &|c| &egraph[c].data);
        ClassData { meta, facts }
    }

    fn merge(&mut self, to: &mut ClassData, from: ClassData) -> DidMerge {
        // a valid type wins over an invalid one; two valid types agree (a faulty rule
        // that merged different types keeps the first)
        let (mut to_changed, mut from_changed) = (false, false);
        match (&to.meta, &from.meta) {
            (Err(_), Ok(_)) => {
                to.meta = from.meta.clone();
                to_changed = true;
            }
            (Ok(_), Err(_)) => from_changed = true,
            (a, b) => from_changed |= a != b,
        }
        let merged = Facts {
            splat: to.facts.splat.or(from.facts.splat),
            sign: to.facts.sign.max(from.facts.sign),
            constant: to.facts.constant || from.facts.constant,
        };
        to_changed |= merged != to.facts;
        from_changed |= merged != from.facts;
        to.facts = merged;
        DidMerge(to_changed, from_changed)
    }
}

/// The facts a new node establishes from its children's.
pub fn facts<'a>(node: &TensorLang, child: &dyn Fn(Id) -> &'a ClassData) -> Facts {
    use crate::ops::Desc;
    use TensorLang as L;
    let f = |id: Id| child(id).facts;
    let tensor_children = || node.children().iter().copied().filter(|&c| child(c).tensor().is_some());
    let constant = match node {
        L::Input(_) => false,
        L::Weight(_) | L::Fill(_) => true,
        n if n.is_attribute() => false,
        _ => tensor_children().all(|c| f(c).constant),
    };
    let float = |id: Id| match child(id).meta() {
        Some(Meta::Float(v)) => Some(*v),
        _ => None,
    };
    let nonneg = |id: Id| f(id).sign.non_negative();
    let all_nonneg = || tensor_children().all(|c| f(c).sign.non_negative());
    let nonneg_if = |b: bool| if b { Sign::NonNegative } else { Sign::Unknown };

    let splat = match node {
        L::Fill([v, _]) => float(*v),
        L::Reshape([x, _]) | L::Flatten([x, _]) | L::Squeeze([x, _]) | L::Unsqueeze([x, _]) | L::Expand([x, _]) => {
            f(*x).splat
        }
        L::Transpose([x, _]) | L::Slice([x, ..]) => f(*x).splat,
        _ => None,
    };
    let sign = match node {
        L::Fill([v, _]) => float(*v).map_or(Sign::Unknown, Sign::of_value),
        n if matches!(n.desc(), Desc::Unary(d) if d.non_negative) => Sign::NonNegative,
        L::Softmax(_) => Sign::NonNegative,
        L::Mul([a, b]) if a == b => Sign::NonNegative,
        L::Add([a, b]) | L::Max([a, b]) => {
            let (sa, sb) = (f(*a).sign, f(*b).sign);
            match node {
                L::Max(_) => sa.max(sb),
                // a positive plus a non-negative stays positive
                _ if sa.non_negative() && sb.non_negative() => sa.max(sb),
                _ => Sign::Unknown,
            }
        }
        L::Mul(_) | L::Div(_) | L::Min(_) | L::MatMul(_) | L::Concat(_) | L::Where(_) => nonneg_if(all_nonneg()),
        L::Reciprocal(x) | L::GlobalAvgPool(x) | L::GlobalMaxPool(x) => nonneg_if(nonneg(*x)),
        L::Pow([x, _]) => nonneg_if(nonneg(*x)),
        L::Clip([x, lo, hi]) => {
            // min(max(x, lo), hi): the upper bound caps whatever the lower one gives, so
            // a negative one makes every element negative (`abs(clip(softmax, -∞, -0.25))`
            // lost its abs when this looked at the lower bound alone)
            let lower = match float(*lo) {
                Some(lo) if lo > 0.0 => Sign::Positive,
                Some(lo) if lo >= 0.0 => Sign::NonNegative,
                _ => f(*x).sign,
            };
            match float(*hi) {
                Some(hi) if hi > 0.0 => lower,
                Some(hi) if hi >= 0.0 => lower.min(Sign::NonNegative),
                _ => Sign::Unknown,
            }
        }
        L::Reshape([x, _]) | L::Flatten([x, _]) | L::Squeeze([x, _]) | L::Unsqueeze([x, _]) | L::Expand([x, _]) => {
            f(*x).sign
        }
        L::Transpose([x, _]) | L::Slice([x, ..]) | L::Gather([x, ..]) => f(*x).sign,
        L::ReduceSum([x, ..])
        | L::ReduceProd([x, ..])
        | L::ReduceMean([x, ..])
        | L::ReduceMax([x, ..])
        | L::ReduceMin([x, ..]) => nonneg_if(nonneg(*x)),
        L::MaxPool([x, ..]) | L::AvgPool([x, ..]) => nonneg_if(nonneg(*x)),
        L::Pad([x, _, v]) => nonneg_if(nonneg(*x) && float(*v).is_some_and(|v| v >= 0.0)),
        L::Conv([x, w, b, ..]) => nonneg_if(nonneg(*x) && nonneg(*w) && nonneg(*b)),
        L::MatMulBiasAct([.., act]) | L::ConvBiasAct([.., act]) | L::WinogradConv([.., act]) => {
            match child(*act).meta() {
                Some(Meta::Act(a)) if a.unary().is_some_and(|op| op.desc().non_negative) => Sign::NonNegative,
                _ => Sign::Unknown,
            }
        }
        L::Attention([_, _, v, _]) => nonneg_if(nonneg(*v)),
        _ => Sign::Unknown,
    };
    Facts { splat, sign, constant }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;

    fn class_of(text: &str) -> (TensorEGraph, Id) {
        let mut eg = TensorEGraph::default();
        let expr: RecExpr<TensorLang> = text.parse().unwrap();
        let root = eg.add_expr(&expr);
        (eg, root)
    }

    #[test]
    fn classes_carry_static_types() {
        let (eg, root) = class_of("(relu (matmul (input %x f32 [8,16]) (weight %w f32 [16,4])))");
        assert_eq!(eg[root].data.tensor().unwrap().shape, vec![8, 4]);
    }

    #[test]
    fn ill_typed_nodes_are_marked_not_panicking() {
        let (eg, root) = class_of("(add (input %x f32 [2,3]) (input %y f32 [4]))");
        assert!(matches!(&eg[root].data.meta, Err(r) if r.contains("do not broadcast")));
    }

    #[test]
    fn facts_follow_the_ops() {
        let (eg, root) = class_of("(relu (input %x f32 [2]))");
        assert_eq!(eg[root].data.facts.sign, Sign::NonNegative);
        assert!(!eg[root].data.facts.constant);

        let (eg, root) = class_of("(reshape (fill 2.5 [6]) [2,3])");
        assert_eq!(eg[root].data.facts, Facts { splat: Some(2.5), sign: Sign::Positive, constant: true });

        let (eg, root) = class_of("(matmul (weight %a f32 [2,2]) (weight %b f32 [2,2]))");
        assert!(eg[root].data.facts.constant, "weight-only products are constants");

        let (eg, root) = class_of("(mul (input %x f32 [2]) (input %x f32 [2]))");
        assert_eq!(eg[root].data.facts.sign, Sign::NonNegative, "a square");
        let (eg, root) = class_of("(add (input %x f32 [2]) (fill 1.0 []))");
        assert_eq!(eg[root].data.facts.sign, Sign::Unknown);
    }

    #[test]
    fn merging_keeps_what_either_side_knows() {
        let mut eg = TensorEGraph::default();
        let x: RecExpr<TensorLang> = "(relu (input %x f32 [2]))".parse().unwrap();
        let y: RecExpr<TensorLang> = "(exp (input %y f32 [2]))".parse().unwrap();
        let z: RecExpr<TensorLang> = "(input %z f32 [2])".parse().unwrap();
        let (a, b) = (eg.add_expr(&x), eg.add_expr(&z));
        eg.union(a, b);
        let c = eg.add_expr(&y);
        eg.union(b, c);
        eg.rebuild();
        assert_eq!(eg[a].data.facts.sign, Sign::NonNegative);
    }
}
