//! Functions: the named computations a rule's `:let` clauses call to make new
//! attributes (compose two permutations, add two constants, the slice bounds of a
//! merged matmul's outputs).
//!
//! A function reads the matched classes' types, attribute values and splat values and
//! returns an attribute leaf, or `None` when it does not apply (then the rule does not
//! apply either). To add one: a function `fn(&[GuardArg]) -> Option<TensorLang>` and an
//! entry in [`FUNCTIONS`].

use crate::guards::GuardArg;
use saturate_egraph::shape::broadcast;
use saturate_egraph::{Float, IntList, TensorLang};

/// A named attribute function.
pub struct Function {
    pub name: &'static str,
    pub arity: usize,
    /// One line for `saturate rules --functions`.
    pub doc: &'static str,
    pub eval: fn(&[GuardArg]) -> Option<TensorLang>,
}

/// Finds a function by name.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

fn ints(v: Vec<i64>) -> Option<TensorLang> {
    Some(TensorLang::Ints(IntList(v)))
}

fn float(v: f32) -> Option<TensorLang> {
    v.is_finite().then_some(TensorLang::Float(Float::new(v)))
}

fn int(v: i64) -> Option<TensorLang> {
    Some(TensorLang::Int(v))
}

fn splat2(a: &[GuardArg], f: fn(f32, f32) -> f32) -> Option<TensorLang> {
    float(f(a[0].facts().splat?, a[1].facts().splat?))
}

fn float2(a: &[GuardArg], f: fn(f32, f32) -> f32) -> Option<TensorLang> {
    float(f(a[0].float()?, a[1].float()?))
}

fn shape_of(a: &GuardArg) -> Option<Vec<i64>> {
    Some(a.tensor()?.shape.iter().map(|&d| d as i64).collect())
}

fn axis_of(a: &GuardArg) -> Option<usize> {
    usize::try_from(a.int()?).ok()
}

/// Every function rule files can use.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "compose-perm",
        arity: 2,
        doc: "(compose-perm ?p ?q): the permutation of transpose(transpose(x, ?p), ?q) as one",
        eval: |a| {
            let (p, q) = (a[0].ints()?, a[1].ints()?);
            (p.len() == q.len()).then(|| q.iter().map(|&i| p.get(i as usize).copied()).collect::<Option<Vec<_>>>()).flatten().and_then(ints)
        },
    },
    Function {
        name: "invert-perm",
        arity: 1,
        doc: "(invert-perm ?p): the permutation that undoes ?p",
        eval: |a| {
            let p = a[0].ints()?;
            let mut inv = vec![0i64; p.len()];
            for (i, &v) in p.iter().enumerate() {
                *inv.get_mut(usize::try_from(v).ok()?)? = i as i64;
            }
            ints(inv)
        },
    },
    Function {
        name: "swap-last-two",
        arity: 1,
        doc: "(swap-last-two ?x): the permutation exchanging the last two axes of ?x",
        eval: |a| {
            let r = a[0].tensor()?.rank();
            (r >= 2).then(|| {
                let mut p: Vec<i64> = (0..r as i64).collect();
                p.swap(r - 2, r - 1);
                p
            }).and_then(ints)
        },
    },
    Function {
        name: "shape-of",
        arity: 1,
        doc: "(shape-of ?x): the shape of ?x as a list",
        eval: |a| ints(shape_of(&a[0])?),
    },
    Function {
        name: "broadcast-shape",
        arity: 2,
        doc: "(broadcast-shape ?a ?b): the shape ?a and ?b broadcast to",
        eval: |a| ints(broadcast(&a[0].tensor()?.shape, &a[1].tensor()?.shape)?.iter().map(|&d| d as i64).collect()),
    },
    Function {
        name: "last-axis-of",
        arity: 1,
        doc: "(last-axis-of ?x): the index of the last axis of ?x",
        eval: |a| int(a[0].tensor()?.rank().checked_sub(1)? as i64),
    },
    Function {
        name: "axes-from",
        arity: 2,
        doc: "(axes-from ?x ?axis): the axes ?axis, ?axis+1, … up to the last of ?x",
        eval: |a| ints((a[1].int()?..a[0].tensor()?.rank() as i64).collect()),
    },
    Function {
        name: "trailing-unit-axes",
        arity: 1,
        doc: "(trailing-unit-axes ?w): [1, …, rank(?w)-1], to unsqueeze a per-channel [C] vector to [C,1,…,1] like ?w",
        eval: |a| ints((1..a[0].tensor()?.rank() as i64).collect()),
    },
    Function {
        name: "channel-shape",
        arity: 1,
        doc: "(channel-shape ?y): [C, 1, …, 1] for ?y of shape [N, C, …], the shape of a per-channel vector",
        eval: |a| {
            let t = a[0].tensor()?;
            (t.rank() >= 2).then(|| std::iter::once(t.shape[1] as i64).chain(std::iter::repeat_n(1, t.rank() - 2)).collect()).and_then(ints)
        },
    },
    Function {
        name: "channel-vector-shape",
        arity: 1,
        doc: "(channel-vector-shape ?y): [C] for ?y of shape [N, C, …]",
        eval: |a| ints(vec![*a[0].tensor()?.shape.get(1)? as i64]),
    },
    Function {
        name: "splat-add",
        arity: 2,
        doc: "(splat-add ?a ?b): the sum of two splat constants' values",
        eval: |a| splat2(a, |x, y| x + y),
    },
    Function {
        name: "splat-sub",
        arity: 2,
        doc: "(splat-sub ?a ?b): the difference of two splat constants' values",
        eval: |a| splat2(a, |x, y| x - y),
    },
    Function {
        name: "splat-mul",
        arity: 2,
        doc: "(splat-mul ?a ?b): the product of two splat constants' values",
        eval: |a| splat2(a, |x, y| x * y),
    },
    Function {
        name: "splat-div",
        arity: 2,
        doc: "(splat-div ?a ?b): the quotient of two splat constants' values",
        eval: |a| splat2(a, |x, y| x / y),
    },
    Function {
        name: "splat-max",
        arity: 2,
        doc: "(splat-max ?a ?b): the larger of two splat constants' values",
        eval: |a| splat2(a, f32::max),
    },
    Function {
        name: "splat-min",
        arity: 2,
        doc: "(splat-min ?a ?b): the smaller of two splat constants' values",
        eval: |a| splat2(a, f32::min),
    },
    Function {
        name: "splat-pow",
        arity: 2,
        doc: "(splat-pow ?a ?b): the value of ?a to the power ?b, for splat constants",
        eval: |a| splat2(a, |x, y| (x as f64).powf(y as f64) as f32),
    },
    Function {
        name: "splat-value",
        arity: 1,
        doc: "(splat-value ?c): the value of the splat constant ?c",
        eval: |a| float(a[0].facts().splat?),
    },
    Function {
        name: "splat-neg",
        arity: 1,
        doc: "(splat-neg ?c): minus the value of the splat constant ?c",
        eval: |a| float(-a[0].facts().splat?),
    },
    Function {
        name: "splat-recip",
        arity: 1,
        doc: "(splat-recip ?c): one over the value of the splat constant ?c",
        eval: |a| float(1.0 / a[0].facts().splat?),
    },
    Function {
        name: "splat-sqrt",
        arity: 1,
        doc: "(splat-sqrt ?c): the square root of the value of the splat constant ?c",
        eval: |a| float(a[0].facts().splat?.sqrt()),
    },
    Function {
        name: "splat-exp",
        arity: 1,
        doc: "(splat-exp ?c): e to the value of the splat constant ?c",
        eval: |a| float(a[0].facts().splat?.exp()),
    },
    Function {
        name: "splat-log",
        arity: 1,
        doc: "(splat-log ?c): the natural logarithm of the value of the splat constant ?c",
        eval: |a| float(a[0].facts().splat?.ln()),
    },
    Function {
        name: "float-add",
        arity: 2,
        doc: "(float-add ?a ?b): the sum of two float attributes",
        eval: |a| float2(a, |x, y| x + y),
    },
    Function {
        name: "float-mul",
        arity: 2,
        doc: "(float-mul ?a ?b): the product of two float attributes (or splat values)",
        eval: |a| float(a[0].float().or(a[0].facts().splat)? * a[1].float().or(a[1].facts().splat)?),
    },
    Function {
        name: "float-max",
        arity: 2,
        doc: "(float-max ?a ?b): the larger of two float attributes",
        eval: |a| {
            let (x, y) = (a[0].float()?, a[1].float()?);
            Some(TensorLang::Float(Float::new(x.max(y))))
        },
    },
    Function {
        name: "float-min",
        arity: 2,
        doc: "(float-min ?a ?b): the smaller of two float attributes",
        eval: |a| {
            let (x, y) = (a[0].float()?, a[1].float()?);
            Some(TensorLang::Float(Float::new(x.min(y))))
        },
    },
    Function {
        name: "int-add",
        arity: 2,
        doc: "(int-add ?a ?b): the sum of two integer attributes",
        eval: |a| int(a[0].int()? + a[1].int()?),
    },
    Function {
        name: "zeros-of-rank",
        arity: 1,
        doc: "(zeros-of-rank ?x): a list of zeros, one per axis of ?x (slice starts)",
        eval: |a| ints(vec![0; a[0].tensor()?.rank()]),
    },
    Function {
        name: "ones-of-rank",
        arity: 1,
        doc: "(ones-of-rank ?x): a list of ones, one per axis of ?x (unit steps or strides)",
        eval: |a| ints(vec![1; a[0].tensor()?.rank()]),
    },
    Function {
        name: "offset-along",
        arity: 2,
        doc: "(offset-along ?first ?axis): slice starts that skip ?first along ?axis (the second part of a concatenation)",
        eval: |a| {
            let (t, axis) = (a[0].tensor()?, axis_of(&a[1])?);
            let mut s = vec![0i64; t.rank()];
            *s.get_mut(axis)? = t.shape[axis] as i64;
            ints(s)
        },
    },
    Function {
        name: "end-after",
        arity: 3,
        doc: "(end-after ?first ?second ?axis): slice ends of the second part of ?first ++ ?second along ?axis",
        eval: |a| {
            let (first, second, axis) = (a[0].tensor()?, a[1].tensor()?, axis_of(&a[2])?);
            let mut e = shape_of(&a[1])?;
            *e.get_mut(axis)? = (first.shape.get(axis)? + second.shape.get(axis)?) as i64;
            ints(e)
        },
    },
    Function {
        name: "pads-add",
        arity: 2,
        doc: "(pads-add ?p ?q): two pad lists added elementwise (lengths must match)",
        eval: |a| {
            let (p, q) = (a[0].ints()?, a[1].ints()?);
            (p.len() == q.len()).then(|| p.iter().zip(q).map(|(x, y)| x + y).collect()).and_then(ints)
        },
    },
    Function {
        name: "spatial-pads",
        arity: 1,
        doc: "(spatial-pads ?p): the spatial part of a full-rank pad list [0,0,h…,0,0,h…] as [h…, h…], if batch and channel pads are 0",
        eval: |a| {
            let p = a[0].ints()?;
            let rank = p.len() / 2;
            if rank < 3 || p[0] != 0 || p[1] != 0 || p[rank] != 0 || p[rank + 1] != 0 {
                return None;
            }
            ints(p[2..rank].iter().chain(&p[rank + 2..]).copied().collect())
        },
    },
    Function {
        name: "kernel-center-pads",
        arity: 2,
        doc: "(kernel-center-pads ?small ?big): pads of a conv weight ?small to the spatial size of ?big, centred",
        eval: |a| {
            let (s, b) = (a[0].tensor()?, a[1].tensor()?);
            if s.rank() != b.rank() || s.rank() < 3 {
                return None;
            }
            let r = s.rank();
            let mut pads = vec![0i64; 2 * r];
            for i in 2..r {
                let extra = b.shape[i].checked_sub(s.shape[i])?;
                if extra % 2 != 0 {
                    return None;
                }
                pads[i] = (extra / 2) as i64;
                pads[i + r] = (extra / 2) as i64;
            }
            ints(pads)
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_unique_and_disjoint_from_guards() {
        let mut names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len());
        for f in FUNCTIONS {
            assert!(crate::guards::lookup(f.name).is_none(), "{} is both a guard and a function", f.name);
        }
    }
}
