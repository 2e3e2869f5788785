//! Guards: the named conditions a rule's `:when` clauses call.
//!
//! A guard looks at the matched classes' types, attribute values and [`Facts`] (splat
//! values, signs, constness) and says whether the rule may apply. Each guard also tells
//! the rule checker how to build random instances that satisfy it ([`Witness`]), so every
//! guarded rule is checked on inputs where it claims to hold.
//!
//! To add a guard: a function `fn(&[GuardArg]) -> bool` and an entry in [`GUARDS`].

use egg::Id;
use saturate_egraph::shape::broadcast;
use saturate_egraph::{ClassData, Facts, Meta, TensorType};

/// A guard argument: the class a variable matched (with its id), or a literal leaf
/// (no id).
#[derive(Debug, Clone, Copy)]
pub struct GuardArg<'a> {
    pub id: Option<Id>,
    pub data: &'a ClassData,
}

impl<'a> GuardArg<'a> {
    pub fn tensor(&self) -> Option<&'a TensorType> {
        self.data.tensor()
    }

    pub fn facts(&self) -> Facts {
        self.data.facts
    }

    pub fn float(&self) -> Option<f32> {
        match self.data.meta() {
            Some(Meta::Float(v)) => Some(*v),
            Some(Meta::Int(v)) => Some(*v as f32),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self.data.meta() {
            Some(Meta::Int(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn ints(&self) -> Option<&'a [i64]> {
        match self.data.meta() {
            Some(Meta::Ints(v)) => Some(v),
            _ => None,
        }
    }
}

/// How the rule checker makes an argument satisfy a guard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Witness {
    /// Random instances satisfy it often enough; they are simply filtered.
    Filter,
    /// Argument `var` is built as a `fill` of the value given by literal argument `value`.
    Splat { var: usize, value: usize },
    /// Argument `var` is built as a `fill` of a random value.
    AnySplat(usize),
    /// Argument is built from values ≥ 0 (an `abs`).
    NonNegative(usize),
    /// Argument is built from values > 0 (an `exp`).
    Positive(usize),
    /// Argument is built from weights only.
    Constant(usize),
}

/// A named guard.
pub struct Guard {
    pub name: &'static str,
    pub arity: usize,
    /// One line for `saturate rules --guards`.
    pub doc: &'static str,
    pub check: fn(&[GuardArg]) -> bool,
    pub witness: Witness,
}

/// Finds a guard by name.
pub fn lookup(name: &str) -> Option<&'static Guard> {
    GUARDS.iter().find(|g| g.name == name)
}

/// Every guard rule files can use.
pub static GUARDS: &[Guard] = &[
    Guard {
        name: "is-const",
        arity: 2,
        doc: "(is-const ?c V): every element of ?c equals the number V",
        check: |a| matches!((a[0].facts().splat, a[1].float()), (Some(x), Some(v)) if x == v),
        witness: Witness::Splat { var: 0, value: 1 },
    },
    Guard {
        name: "is-splat",
        arity: 1,
        doc: "(is-splat ?c): every element of ?c is the same known number",
        check: |a| a[0].facts().splat.is_some(),
        witness: Witness::AnySplat(0),
    },
    Guard {
        name: "nonzero-splat",
        arity: 1,
        doc: "(nonzero-splat ?c): every element of ?c is the same known, non-zero, finite number",
        check: |a| a[0].facts().splat.is_some_and(|v| v != 0.0 && v.is_finite()),
        witness: Witness::AnySplat(0),
    },
    Guard {
        name: "non-negative",
        arity: 1,
        doc: "(non-negative ?x): every element of ?x is ≥ 0 (or NaN)",
        check: |a| a[0].facts().sign.non_negative(),
        witness: Witness::NonNegative(0),
    },
    Guard {
        name: "positive",
        arity: 1,
        doc: "(positive ?x): every element of ?x is > 0 (or NaN)",
        check: |a| a[0].facts().sign == saturate_egraph::Sign::Positive,
        witness: Witness::Positive(0),
    },
    Guard {
        name: "constant",
        arity: 1,
        doc: "(constant ?x): ?x is computed from weights and constants only (free at run time)",
        check: |a| a[0].facts().constant,
        witness: Witness::Constant(0),
    },
    Guard {
        name: "not-constant",
        arity: 1,
        doc: "(not-constant ?x): ?x depends on a model input",
        check: |a| !a[0].facts().constant,
        witness: Witness::Filter,
    },
    Guard {
        name: "same-shape",
        arity: 2,
        doc: "(same-shape ?a ?b): ?a and ?b have the same shape",
        check: |a| matches!((a[0].tensor(), a[1].tensor()), (Some(x), Some(y)) if x.shape == y.shape),
        witness: Witness::Filter,
    },
    Guard {
        name: "broadcasts-to",
        arity: 2,
        doc: "(broadcasts-to ?a ?b): ?a broadcasts to exactly the shape of ?b",
        check: |a| matches!((a[0].tensor(), a[1].tensor()), (Some(x), Some(y)) if broadcast(&x.shape, &y.shape).as_deref() == Some(&y.shape[..])),
        witness: Witness::Filter,
    },
    Guard {
        name: "scalar",
        arity: 1,
        doc: "(scalar ?c): ?c has one element",
        check: |a| a[0].tensor().is_some_and(|t| t.numel() == 1),
        witness: Witness::Filter,
    },
    Guard {
        name: "rank",
        arity: 2,
        doc: "(rank ?x N): ?x has N dimensions",
        check: |a| matches!((a[0].tensor(), a[1].int()), (Some(t), Some(n)) if t.rank() as i64 == n),
        witness: Witness::Filter,
    },
    Guard {
        name: "rank-at-least",
        arity: 2,
        doc: "(rank-at-least ?x N): ?x has N dimensions or more",
        check: |a| matches!((a[0].tensor(), a[1].int()), (Some(t), Some(n)) if t.rank() as i64 >= n),
        witness: Witness::Filter,
    },
    Guard {
        name: "identity-perm",
        arity: 1,
        doc: "(identity-perm ?p): the permutation ?p leaves every axis in place",
        check: |a| a[0].ints().is_some_and(|p| p.iter().enumerate().all(|(i, &v)| v == i as i64)),
        witness: Witness::Filter,
    },
    Guard {
        name: "swaps-last-two",
        arity: 1,
        doc: "(swaps-last-two ?p): the permutation ?p exchanges the last two axes only",
        check: |a| a[0].ints().is_some_and(swaps_last_two),
        witness: Witness::Filter,
    },
    Guard {
        name: "last-axis",
        arity: 2,
        doc: "(last-axis ?x ?axis): the axis attribute ?axis is the last axis of ?x",
        check: |a| matches!((a[0].tensor(), a[1].int()), (Some(t), Some(ax)) if t.rank() as i64 - 1 == ax),
        witness: Witness::Filter,
    },
    Guard {
        name: "shape-is",
        arity: 2,
        doc: "(shape-is ?x ?s): the shape of ?x is the list ?s",
        check: |a| matches!((a[0].tensor(), a[1].ints()), (Some(t), Some(s)) if t.shape.iter().map(|&d| d as i64).eq(s.iter().copied())),
        witness: Witness::Filter,
    },
    Guard {
        name: "all-zero",
        arity: 1,
        doc: "(all-zero ?l): every value of the list ?l is 0",
        check: |a| a[0].ints().is_some_and(|l| l.iter().all(|&v| v == 0)),
        witness: Witness::Filter,
    },
    Guard {
        name: "all-one",
        arity: 1,
        doc: "(all-one ?l): every value of the list ?l is 1",
        check: |a| a[0].ints().is_some_and(|l| l.iter().all(|&v| v == 1)),
        witness: Witness::Filter,
    },
    Guard {
        name: "kernel-1x1",
        arity: 1,
        doc: "(kernel-1x1 ?w): the conv weight ?w has spatial size 1 on every axis",
        check: |a| a[0].tensor().is_some_and(|t| t.rank() >= 3 && t.shape[2..].iter().all(|&d| d == 1)),
        witness: Witness::Filter,
    },
    Guard {
        name: "kernel-3x3",
        arity: 1,
        doc: "(kernel-3x3 ?w): the conv weight ?w is [M,C,3,3]: 2-D filters of 3×3",
        check: |a| a[0].tensor().is_some_and(|t| t.rank() == 4 && t.shape[2..] == [3, 3]),
        witness: Witness::Filter,
    },
    Guard {
        name: "per-channel",
        arity: 2,
        doc: "(per-channel ?c ?y): ?c broadcasts to ?y [N,C,…] and varies along the channel axis only",
        check: |a| matches!((a[0].tensor(), a[1].tensor()), (Some(c), Some(y)) if per_channel(&c.shape, &y.shape)),
        witness: Witness::Filter,
    },
    Guard {
        name: "float-at-least",
        arity: 2,
        doc: "(float-at-least ?f V): the float attribute ?f is ≥ V",
        check: |a| matches!((a[0].float(), a[1].float()), (Some(f), Some(v)) if f >= v),
        witness: Witness::Filter,
    },
    Guard {
        name: "float-at-most",
        arity: 2,
        doc: "(float-at-most ?f V): the float attribute ?f is ≤ V",
        check: |a| matches!((a[0].float(), a[1].float()), (Some(f), Some(v)) if f <= v),
        witness: Witness::Filter,
    },
    Guard {
        name: "distinct",
        arity: 2,
        doc: "(distinct ?a ?b): ?a and ?b are different classes",
        check: |a| matches!((a[0].id, a[1].id), (Some(x), Some(y)) if x != y),
        witness: Witness::Filter,
    },
    Guard {
        name: "ordered",
        arity: 2,
        doc: "(ordered ?a ?b): ?a's class id is below ?b's (matches a symmetric pair once)",
        check: |a| matches!((a[0].id, a[1].id), (Some(x), Some(y)) if x < y),
        witness: Witness::Filter,
    },
    Guard {
        name: "same-rank",
        arity: 2,
        doc: "(same-rank ?a ?b): ?a and ?b have the same number of dimensions",
        check: |a| matches!((a[0].tensor(), a[1].tensor()), (Some(x), Some(y)) if x.rank() == y.rank()),
        witness: Witness::Filter,
    },
    Guard {
        name: "same-dtype",
        arity: 2,
        doc: "(same-dtype ?a ?b): ?a and ?b have the same element type",
        check: |a| matches!((a[0].tensor(), a[1].tensor()), (Some(x), Some(y)) if x.dtype == y.dtype),
        witness: Witness::Filter,
    },
    Guard {
        name: "not-splat",
        arity: 1,
        doc: "(not-splat ?x): ?x is not known to be a splat constant",
        check: |a| a[0].facts().splat.is_none(),
        witness: Witness::Filter,
    },
    Guard {
        name: "is-const-near",
        arity: 2,
        doc: "(is-const-near ?c V): every element of ?c equals V within 1e-6 relative (for constants exporters round, like √2)",
        check: |a| matches!((a[0].facts().splat, a[1].float()), (Some(x), Some(v)) if (x - v).abs() <= 1e-6 * v.abs().max(1.0)),
        witness: Witness::Splat { var: 0, value: 1 },
    },
    Guard {
        name: "same-list",
        arity: 2,
        doc: "(same-list ?a ?b): the integer lists ?a and ?b are equal",
        check: |a| matches!((a[0].ints(), a[1].ints()), (Some(x), Some(y)) if x == y),
        witness: Witness::Filter,
    },
    Guard {
        name: "same-int",
        arity: 2,
        doc: "(same-int ?a ?b): the integer attributes ?a and ?b are equal",
        check: |a| matches!((a[0].int(), a[1].int()), (Some(x), Some(y)) if x == y),
        witness: Witness::Filter,
    },
    Guard {
        name: "trailing-axes",
        arity: 2,
        doc: "(trailing-axes ?x ?axes): ?axes are the last axes of ?x, k, k+1, …, rank-1 (k < rank)",
        check: |a| matches!((a[0].tensor(), a[1].ints()), (Some(t), Some(ax)) if !ax.is_empty() && ax.len() <= t.rank() && ax.iter().enumerate().all(|(i, &v)| v == (t.rank() - ax.len() + i) as i64)),
        witness: Witness::Filter,
    },
    Guard {
        name: "single-axis",
        arity: 1,
        doc: "(single-axis ?axes): the axis list ?axes holds one axis",
        check: |a| a[0].ints().is_some_and(|l| l.len() == 1),
        witness: Witness::Filter,
    },
    Guard {
        name: "channel-vector-for",
        arity: 2,
        doc: "(channel-vector-for ?c ?w): ?c is a per-output-channel vector for the conv weight ?w: broadcasts to [N,M,1,…] with M = ?w's output channels",
        check: |a| matches!((a[0].tensor(), a[1].tensor()), (Some(c), Some(w)) if channel_vector_for(&c.shape, &w.shape)),
        witness: Witness::Filter,
    },
    Guard {
        name: "adjacent-along",
        arity: 4,
        doc: "(adjacent-along ?e1 ?s2 ?x ?axis): a slice ending at ?e1 and one starting at ?s2 meet along ?axis and cover ?x fully on every other axis",
        check: |a| match (a[0].ints(), a[1].ints(), a[2].tensor(), a[3].int()) {
            (Some(e1), Some(s2), Some(x), Some(axis)) => {
                let axis = axis as usize;
                e1.len() == x.rank() && s2.len() == x.rank() && axis < x.rank()
                    && (0..x.rank()).all(|i| if i == axis { e1[i] == s2[i] } else { s2[i] == 0 && e1[i] == x.shape[i] as i64 })
            }
            _ => false,
        },
        witness: Witness::Filter,
    },
    Guard {
        name: "kernel-covers",
        arity: 2,
        doc: "(kernel-covers ?x ?k): the pooling kernel ?k spans every spatial axis of ?x [N, C, …] exactly",
        check: |a| matches!((a[0].tensor(), a[1].ints()), (Some(t), Some(k)) if t.rank() >= 2 && k.len() == t.rank() - 2 && k.iter().zip(&t.shape[2..]).all(|(&k, &d)| k == d as i64)),
        witness: Witness::Filter,
    },
    Guard {
        name: "f32",
        arity: 1,
        doc: "(f32 ?x): ?x holds f32 values",
        check: |a| a[0].tensor().is_some_and(|t| t.dtype == saturate_egraph::DType::F32),
        witness: Witness::Filter,
    },
];

fn swaps_last_two(p: &[i64]) -> bool {
    let n = p.len();
    n >= 2
        && p[..n - 2].iter().enumerate().all(|(i, &v)| v == i as i64)
        && p[n - 2] == n as i64 - 1
        && p[n - 1] == n as i64 - 2
}

/// Whether `c` is a per-output-channel vector for conv weight `w` ([M, C/g, k…]): it
/// broadcasts against the conv output [N, M, …] varying along axis 1 only.
pub fn channel_vector_for(c: &[usize], w: &[usize]) -> bool {
    if w.len() < 3 || c.len() > w.len() {
        return false;
    }
    let offset = w.len() - c.len();
    c.iter().enumerate().all(|(i, &d)| d == 1 || (i + offset == 1 && d == w[0]))
}

/// Whether `c` broadcast to `y` ([N,C,…]) is constant except along axis 1.
pub fn per_channel(c: &[usize], y: &[usize]) -> bool {
    if y.len() < 2 || broadcast(c, y).as_deref() != Some(y) {
        return false;
    }
    let offset = y.len() - c.len().min(y.len());
    c.iter().enumerate().all(|(i, &d)| i + offset == 1 || d == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::FUNCTIONS;
    use saturate_egraph::{ClassData, DType, Facts, IntList, Sign};

    /// Odd arguments: scalars, empty lists, negative values, missing facts.
    fn odd_arguments() -> Vec<ClassData> {
        let tensor = |shape: &[usize]| Meta::Tensor(TensorType::new(DType::F32, shape.to_vec()));
        let metas = vec![
            tensor(&[]),
            tensor(&[0]),
            tensor(&[3]),
            tensor(&[2, 1, 4]),
            tensor(&[1, 2, 3, 4, 5]),
            Meta::Int(-3),
            Meta::Int(0),
            Meta::Int(7),
            Meta::Float(f32::NAN),
            Meta::Float(-1.0),
            Meta::Ints(vec![]),
            Meta::Ints(vec![-1, 5, 2]),
            Meta::Ints(IntList(vec![0, 0, 1, 1, 0, 0, 1, 1]).0),
            Meta::DType(DType::I64),
        ];
        let facts = [Facts::default(), Facts { splat: Some(0.0), sign: Sign::NonNegative, constant: true }];
        metas
            .into_iter()
            .flat_map(|m| facts.iter().map(move |f| ClassData { meta: Ok(m.clone()), facts: *f }))
            .collect()
    }

    #[test]
    fn guards_and_functions_never_panic_on_odd_arguments() {
        let odd = odd_arguments();
        let mut seed = 0usize;
        for _ in 0..4000 {
            for guard in GUARDS {
                let args: Vec<GuardArg> = (0..guard.arity)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407 + i);
                        GuardArg { id: Some(Id::from(seed % 3)), data: &odd[(seed >> 33) % odd.len()] }
                    })
                    .collect();
                let _ = (guard.check)(&args);
            }
            for function in FUNCTIONS {
                let args: Vec<GuardArg> = (0..function.arity)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407 + i);
                        GuardArg { id: None, data: &odd[(seed >> 33) % odd.len()] }
                    })
                    .collect();
                let _ = (function.eval)(&args);
            }
        }
    }

    #[test]
    fn per_channel_shapes() {
        assert!(per_channel(&[1, 8, 1, 1], &[2, 8, 5, 5]));
        assert!(per_channel(&[8, 1, 1], &[2, 8, 5, 5]));
        assert!(per_channel(&[1], &[2, 8, 5, 5]));
        assert!(!per_channel(&[8], &[2, 8, 5, 8]), "a trailing [8] varies along the last axis");
        assert!(!per_channel(&[1, 8, 5, 1], &[2, 8, 5, 5]));
    }

    #[test]
    fn guard_names_are_unique() {
        let mut names: Vec<_> = GUARDS.iter().map(|g| g.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), GUARDS.len());
    }
}
