//! The e-class analysis: every e-class knows the static type of the tensors it
//! denotes (or the attribute value it is).
//!
//! `make` runs [`infer`] on each new e-node. All e-nodes of a class denote the same
//! value, so they must agree on its type; a rewrite that would put an ill-typed node in
//! the e-graph is a bug in the rule (rules check shapes with guards). Such nodes are
//! recorded as [`ClassData::Invalid`] so they can be found and reported instead of
//! crashing the search.

use crate::infer::{infer, Meta};
use crate::TensorLang;
use egg::{Analysis, DidMerge, EGraph, Id, Language};

/// The e-graph saturate builds: TensorLang nodes with shapes in the analysis.
pub type TensorEGraph = EGraph<TensorLang, ShapeAnalysis>;

/// Computes [`ClassData`] for every e-class.
#[derive(Debug, Default, Clone)]
pub struct ShapeAnalysis;

/// What an e-class denotes, or why a node in it is ill-typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassData {
    Valid(Meta),
    Invalid(String),
}

impl ClassData {
    pub fn meta(&self) -> Option<&Meta> {
        match self {
            ClassData::Valid(m) => Some(m),
            ClassData::Invalid(_) => None,
        }
    }
}

impl Analysis<TensorLang> for ShapeAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut TensorEGraph, enode: &TensorLang, _id: Id) -> ClassData {
        let invalid_child = enode
            .children()
            .iter()
            .find_map(|&c| match &egraph[c].data {
                ClassData::Invalid(reason) => Some(reason.clone()),
                ClassData::Valid(_) => None,
            });
        if let Some(reason) = invalid_child {
            return ClassData::Invalid(format!("operand is ill-typed: {reason}"));
        }
        let result = infer(enode, &|c| match &egraph[c].data {
            ClassData::Valid(m) => m,
            ClassData::Invalid(_) => unreachable!("children were checked above"),
        });
        match result {
            Ok(meta) => ClassData::Valid(meta),
            Err(reason) => ClassData::Invalid(format!("{enode}: {reason}")),
        }
    }

    fn merge(&mut self, to: &mut ClassData, from: ClassData) -> DidMerge {
        // a valid type wins over an invalid one; two valid types must agree, and if a
        // faulty rule merged classes of different types the first one is kept
        match (&*to, from) {
            (ClassData::Invalid(_), from @ ClassData::Valid(_)) => {
                *to = from;
                DidMerge(true, false)
            }
            (ClassData::Valid(_), ClassData::Invalid(_)) => DidMerge(false, true),
            (a, b) => DidMerge(false, *a != b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;

    #[test]
    fn classes_carry_static_types() {
        let mut eg = TensorEGraph::default();
        let expr: RecExpr<TensorLang> =
            "(relu (matmul (input %x f32 [8,16]) (weight %w f32 [16,4])))"
                .parse()
                .unwrap();
        let root = eg.add_expr(&expr);
        match &eg[root].data {
            ClassData::Valid(Meta::Tensor(t)) => assert_eq!(t.shape, vec![8, 4]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ill_typed_nodes_are_marked_not_panicking() {
        let mut eg = TensorEGraph::default();
        let expr: RecExpr<TensorLang> = "(add (input %x f32 [2,3]) (input %y f32 [4]))"
            .parse()
            .unwrap();
        let root = eg.add_expr(&expr);
        assert!(matches!(&eg[root].data, ClassData::Invalid(r) if r.contains("do not broadcast")));
    }
}
