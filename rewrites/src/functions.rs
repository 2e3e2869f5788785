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

/// The value of a splat class, or of a float literal.
fn value(a: &GuardArg) -> Option<f32> {
    a.facts().splat.or_else(|| a.float())
}

fn splat2(a: &[GuardArg], f: fn(f32, f32) -> f32) -> Option<TensorLang> {
    float(f(value(&a[0])?, value(&a[1])?))
}

fn float2(a: &[GuardArg], f: fn(f32, f32) -> f32) -> Option<TensorLang> {
    float(f(value(&a[0])?, value(&a[1])?))
}

fn shape_of(a: &GuardArg) -> Option<Vec<i64>> {
    Some(a.tensor()?.shape.iter().map(|&d| d as i64).collect())
}

fn axis_of(a: &GuardArg) -> Option<usize> {
    usize::try_from(a.int()?).ok()
}

fn dims(v: &[usize]) -> Option<TensorLang> {
    ints(v.iter().map(|&d| d as i64).collect())
}

/// Composes two positive-step slices: the `which` list (0 starts, 1 ends, 2 steps) of
/// slice(slice(x, s1, e1, t1), s2, e2, t2) as one slice.
fn compose_slices(a: &[GuardArg], which: usize) -> Option<TensorLang> {
    let (s1, e1, t1, s2, e2, t2) = (a[0].ints()?, a[1].ints()?, a[2].ints()?, a[3].ints()?, a[4].ints()?, a[5].ints()?);
    let n = s1.len();
    if [e1.len(), t1.len(), s2.len(), e2.len(), t2.len()].iter().any(|&l| l != n)
        || t1.iter().chain(t2).any(|&t| t <= 0)
    {
        return None;
    }
    let out = (0..n)
        .map(|i| match which {
            0 => s1[i] + s2[i] * t1[i],
            1 => (s1[i] + e2[i] * t1[i]).min(e1[i]).max(s1[i] + s2[i] * t1[i]),
            _ => t1[i] * t2[i],
        })
        .collect();
    ints(out)
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
        doc: "(float-add ?a ?b): the sum of two float attributes (or splat values)",
        eval: |a| float2(a, |x, y| x + y),
    },
    Function {
        name: "float-mul",
        arity: 2,
        doc: "(float-mul ?a ?b): the product of two float attributes (or splat values)",
        eval: |a| float2(a, |x, y| x * y),
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
            let d = *t.shape.get(axis)?;
            s[axis] = d as i64;
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
        name: "squeezed-shape",
        arity: 2,
        doc: "(squeezed-shape ?x ?axes): the shape of ?x without ?axes",
        eval: |a| {
            let (t, axes) = (a[0].tensor()?, a[1].ints()?);
            dims(&(0..t.rank()).filter(|&i| !axes.contains(&(i as i64))).map(|i| t.shape[i]).collect::<Vec<_>>())
        },
    },
    Function {
        name: "unsqueezed-shape",
        arity: 2,
        doc: "(unsqueezed-shape ?x ?axes): the shape of ?x with size-1 axes inserted at ?axes",
        eval: |a| {
            let (t, axes) = (a[0].tensor()?, a[1].ints()?);
            let rank = t.rank() + axes.len();
            let mut it = t.shape.iter();
            dims(&(0..rank).map(|i| if axes.contains(&(i as i64)) { Some(1) } else { it.next().copied() }).collect::<Option<Vec<_>>>()?)
        },
    },
    Function {
        name: "flattened-shape",
        arity: 2,
        doc: "(flattened-shape ?x ?axis): the 2-D shape flatten(?x, ?axis) has",
        eval: |a| {
            let (t, axis) = (a[0].tensor()?, axis_of(&a[1])?);
            (axis <= t.rank()).then(|| vec![t.shape[..axis].iter().product(), t.shape[axis..].iter().product()]).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "permuted-shape",
        arity: 2,
        doc: "(permuted-shape ?x ?perm): the shape of transpose(?x, ?perm)",
        eval: |a| {
            let (t, p) = (a[0].tensor()?, a[1].ints()?);
            dims(&p.iter().map(|&i| t.shape.get(i as usize).copied()).collect::<Option<Vec<_>>>()?)
        },
    },
    Function {
        name: "broadcast-lists",
        arity: 2,
        doc: "(broadcast-lists ?a ?b): the broadcast of two shape lists",
        eval: |a| {
            let (x, y) = (IntList(a[0].ints()?.to_vec()).to_usizes()?, IntList(a[1].ints()?.to_vec()).to_usizes()?);
            dims(&broadcast(&x, &y)?)
        },
    },
    Function {
        name: "perm-axis",
        arity: 2,
        doc: "(perm-axis ?perm ?axis): where ?axis of the input lands after transpose(·, ?perm)",
        eval: |a| {
            let (p, axis) = (a[0].ints()?, a[1].int()?);
            int(p.iter().position(|&v| v == axis)? as i64)
        },
    },
    Function {
        name: "perm-axis-inverse",
        arity: 2,
        doc: "(perm-axis-inverse ?perm ?axis): the input axis that transpose(·, ?perm) moves to ?axis",
        eval: |a| {
            let (p, axis) = (a[0].ints()?, a[1].int()?);
            int(*p.get(usize::try_from(axis).ok()?)?)
        },
    },
    Function {
        name: "gather-shape",
        arity: 3,
        doc: "(gather-shape ?x ?indices ?axis): the shape of gather(?x, ?indices, ?axis)",
        eval: |a| {
            let (x, i, axis) = (a[0].tensor()?, a[1].tensor()?, axis_of(&a[2])?);
            let mut s = x.shape.get(..axis)?.to_vec();
            s.extend(&i.shape);
            s.extend(x.shape.get(axis + 1..)?);
            dims(&s)
        },
    },
    Function {
        name: "first-axis",
        arity: 1,
        doc: "(first-axis ?axes): the first axis of an axis list",
        eval: |a| int(*a[0].ints()?.first()?),
    },
    Function {
        name: "second-last-axis-of",
        arity: 1,
        doc: "(second-last-axis-of ?x): the index of the second-to-last axis of ?x (matrix rows)",
        eval: |a| int(a[0].tensor()?.rank().checked_sub(2)? as i64),
    },
    Function {
        name: "rows-2d",
        arity: 1,
        doc: "(rows-2d ?a): [product of all but the last dim, last dim], ?a flattened to a matrix of rows",
        eval: |a| {
            let t = a[0].tensor()?;
            let (last, lead) = t.shape.split_last()?;
            dims(&[lead.iter().product(), *last])
        },
    },
    Function {
        name: "matmul-shape",
        arity: 2,
        doc: "(matmul-shape ?a ?b): the shape of matmul(?a, ?b) for operands of rank ≥ 2",
        eval: |a| {
            let (x, y) = (&a[0].tensor()?.shape, &a[1].tensor()?.shape);
            if x.len() < 2 || y.len() < 2 {
                return None;
            }
            let mut out = broadcast(&x[..x.len() - 2], &y[..y.len() - 2])?;
            out.extend([x[x.len() - 2], y[y.len() - 1]]);
            dims(&out)
        },
    },
    Function {
        name: "weight-channel-shape",
        arity: 1,
        doc: "(weight-channel-shape ?w): [M, 1, …, 1] of the rank of conv weight ?w, to scale its output channels",
        eval: |a| {
            let t = a[0].tensor()?;
            dims(&std::iter::once(*t.shape.first()?).chain(std::iter::repeat_n(1, t.rank().checked_sub(1)?)).collect::<Vec<_>>())
        },
    },
    Function {
        name: "out-channels",
        arity: 1,
        doc: "(out-channels ?w): [M], the shape of the bias of conv weight ?w",
        eval: |a| dims(&[*a[0].tensor()?.shape.first()?]),
    },
    Function {
        name: "bias-channel-shape",
        arity: 1,
        doc: "(bias-channel-shape ?w): [M, 1, …, 1] with one 1 per spatial axis of conv weight ?w: a bias that broadcasts over the output",
        eval: |a| {
            let t = a[0].tensor()?;
            dims(&std::iter::once(*t.shape.first()?).chain(std::iter::repeat_n(1, t.rank().checked_sub(2)?)).collect::<Vec<_>>())
        },
    },
    Function {
        name: "bias-column",
        arity: 1,
        doc: "(bias-column ?w): [M, 1], the bias of conv weight ?w as a column to add to a [.., M, HW] product",
        eval: |a| dims(&[*a[0].tensor()?.shape.first()?, 1]),
    },
    Function {
        name: "matrix-bias-column",
        arity: 1,
        doc: "(matrix-bias-column ?m): [M, 1] for a matrix ?m of shape [M, K]",
        eval: |a| {
            let t = a[0].tensor()?;
            (t.rank() == 2).then(|| vec![t.shape[0], 1]).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "matrix-rows",
        arity: 1,
        doc: "(matrix-rows ?m): [M] for a matrix ?m of shape [M, K]",
        eval: |a| {
            let t = a[0].tensor()?;
            (t.rank() == 2).then(|| vec![t.shape[0]]).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "spatial-ones",
        arity: 1,
        doc: "(spatial-ones ?x): a 1 per spatial axis of ?x [N, C, …] (unit strides or dilations)",
        eval: |a| ints(vec![1; a[0].tensor()?.rank().checked_sub(2)?]),
    },
    Function {
        name: "spatial-zero-pads",
        arity: 1,
        doc: "(spatial-zero-pads ?x): zero pads, begins and ends, for the spatial axes of ?x",
        eval: |a| ints(vec![0; 2 * a[0].tensor()?.rank().checked_sub(2)?]),
    },
    Function {
        name: "weight-matrix",
        arity: 1,
        doc: "(weight-matrix ?w): [M, C·k…], conv weight ?w as a matrix",
        eval: |a| {
            let t = a[0].tensor()?;
            dims(&[*t.shape.first()?, t.shape[1..].iter().product()])
        },
    },
    Function {
        name: "image-matrix",
        arity: 1,
        doc: "(image-matrix ?x): [N, C, H·W…], input ?x with its spatial axes flattened",
        eval: |a| {
            let t = a[0].tensor()?;
            (t.rank() >= 3).then(|| vec![t.shape[0], t.shape[1], t.shape[2..].iter().product()]).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "conv-1x1-shape",
        arity: 2,
        doc: "(conv-1x1-shape ?x ?w): [N, M, spatial…], the output of a stride-1, unpadded 1×1 conv of ?x by ?w",
        eval: |a| {
            let (x, w) = (a[0].tensor()?, a[1].tensor()?);
            let m = *w.shape.first()?;
            (x.rank() >= 3).then(|| [x.shape[0], m].into_iter().chain(x.shape[2..].iter().copied()).collect()).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "conv-1x1-matrix-shape",
        arity: 2,
        doc: "(conv-1x1-matrix-shape ?x ?m): [N, M, H·W…], the product of a [M, C] matrix ?m with ?x as an image matrix",
        eval: |a| {
            let (x, m) = (a[0].tensor()?, a[1].tensor()?);
            (x.rank() >= 3 && m.rank() == 2).then(|| vec![x.shape[0], m.shape[0], x.shape[2..].iter().product()]).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "kernel-1x1-weight-shape",
        arity: 2,
        doc: "(kernel-1x1-weight-shape ?m ?x): [M, C, 1, …] for a [M, C] matrix ?m and an input ?x of the conv's rank",
        eval: |a| {
            let (m, x) = (a[0].tensor()?, a[1].tensor()?);
            (m.rank() == 2 && x.rank() >= 3).then(|| [m.shape[0], m.shape[1]].into_iter().chain(std::iter::repeat_n(1, x.rank() - 2)).collect()).and_then(|v: Vec<usize>| dims(&v))
        },
    },
    Function {
        name: "slice-compose-starts",
        arity: 6,
        doc: "(slice-compose-starts ?s1 ?e1 ?t1 ?s2 ?e2 ?t2): starts of two positive-step slices composed",
        eval: |a| compose_slices(a, 0),
    },
    Function {
        name: "slice-compose-ends",
        arity: 6,
        doc: "(slice-compose-ends ?s1 ?e1 ?t1 ?s2 ?e2 ?t2): ends of two positive-step slices composed",
        eval: |a| compose_slices(a, 1),
    },
    Function {
        name: "slice-compose-steps",
        arity: 6,
        doc: "(slice-compose-steps ?s1 ?e1 ?t1 ?s2 ?e2 ?t2): steps of two positive-step slices composed",
        eval: |a| compose_slices(a, 2),
    },
    Function {
        name: "enlarged-pads",
        arity: 3,
        doc: "(enlarged-pads ?p ?small ?big): conv pads ?p grown so a kernel padded from ?small's size to ?big's gives the same output",
        eval: |a| {
            let (p, s, b) = (a[0].ints()?, a[1].tensor()?, a[2].tensor()?);
            let n = s.rank().checked_sub(2)?;
            if p.len() != 2 * n || b.rank() != s.rank() {
                return None;
            }
            let grow = |i: usize| -> Option<i64> {
                let extra = b.shape[i + 2].checked_sub(s.shape[i + 2])?;
                (extra % 2 == 0).then_some((extra / 2) as i64)
            };
            ints((0..2 * n).map(|i| Some(p[i] + grow(i % n)?)).collect::<Option<Vec<_>>>()?)
        },
    },
    Function {
        name: "half-bounds",
        arity: 3,
        doc: "(half-bounds ?x ?axis ?which): slice bounds of half ?which of ?x along ?axis, as starts (which 0, 1) or ends (which 2, 3) of halves 0/1",
        eval: |a| {
            let (t, axis, which) = (a[0].tensor()?, axis_of(&a[1])?, a[2].int()?);
            let d = *t.shape.get(axis)?;
            if d % 2 != 0 {
                return None;
            }
            let half = (d / 2) as i64;
            let mut v: Vec<i64> = if which >= 2 { t.shape.iter().map(|&x| x as i64).collect() } else { vec![0; t.rank()] };
            v[axis] = match which {
                0 => 0,
                1 => half,
                2 => half,
                _ => 2 * half,
            };
            ints(v)
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
