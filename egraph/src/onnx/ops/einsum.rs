//! `Einsum`, lowered to transposes, reshapes, sums and batched matrix products — the
//! equations exporters emit (`bij,bjk->bik`, `bhqd,bhkd->bhqk`, `...ij->...ji`, `i,i->`).
//!
//! Operands are taken left to right, two at a time. For a pair, every label is one of:
//! *batch* (in both and still needed), *contracted* (in both, needed no more), or *free*
//! (in one only, still needed); a label in one operand that is needed nowhere else is
//! summed out of it first. Each operand is transposed to `[batch, free, contracted]`
//! (the right one `[batch, contracted, free]`), reshaped to three axes, multiplied, and
//! reshaped back; the last result is summed over what the output drops and transposed
//! into the output's order. `...` stands for the same leading axes in every operand.
//! A label repeated within one operand (a diagonal) is not supported.

use super::Cx;
use crate::{Result, TensorLang as L};
use egg::Id;

/// An operand in the making: its node and the label of each axis.
struct Term {
    id: Id,
    labels: Vec<char>,
}

pub(super) fn einsum(cx: &mut Cx) -> Result<Id> {
    let equation: String = cx.string_attr("equation", "")?.chars().filter(|c| !c.is_whitespace()).collect();
    let inputs = cx.present_inputs();
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (equation.clone(), None),
    };
    let specs: Vec<&str> = lhs.split(',').collect();
    if specs.len() != inputs.len() {
        return Err(cx.attr_error(format!(
            "`{equation}` names {} operands, the node has {}",
            specs.len(),
            inputs.len()
        )));
    }
    // `...` becomes as many anonymous labels (from U+0100 on) as the operand has spare axes
    let ellipsis_rank = specs
        .iter()
        .zip(&inputs)
        .filter(|(s, _)| s.contains("..."))
        .map(|(s, &x)| cx.rank(x) - (s.len() - 3))
        .max()
        .unwrap_or(0);
    let anonymous: Vec<char> = (0..ellipsis_rank).map(|i| char::from_u32(0x100 + i as u32).expect("a char")).collect();
    let expand = |s: &str, rank: usize| -> Vec<char> {
        match s.split_once("...") {
            Some((a, b)) => {
                let spare = rank - a.len() - b.len();
                a.chars().chain(anonymous[ellipsis_rank - spare..].iter().copied()).chain(b.chars()).collect()
            }
            None => s.chars().collect(),
        }
    };
    let mut terms: Vec<Term> = Vec::new();
    for (s, &x) in specs.iter().zip(&inputs) {
        let labels = expand(s, cx.rank(x));
        if labels.len() != cx.rank(x) {
            return Err(cx.attr_error(format!(
                "`{s}` has {} labels for an operand of rank {}",
                labels.len(),
                cx.rank(x)
            )));
        }
        if (1..labels.len()).any(|i| labels[..i].contains(&labels[i])) {
            return Err(cx.unsupported(&format!("a label repeated within `{s}` (a diagonal)")));
        }
        terms.push(Term { id: x, labels });
    }
    let output: Vec<char> = match rhs {
        Some(r) => expand(&r, ellipsis_rank + r.len() - if r.contains("...") { 3 } else { 0 }),
        None => {
            // implicit: the ellipsis, then the labels that appear once, alphabetically
            let all: Vec<char> = terms.iter().flat_map(|t| t.labels.clone()).collect();
            let mut once: Vec<char> = all
                .iter()
                .copied()
                .filter(|c| !anonymous.contains(c) && all.iter().filter(|d| *d == c).count() == 1)
                .collect();
            once.sort_unstable();
            anonymous.iter().copied().chain(once).collect()
        }
    };
    let sizes = label_sizes(cx, &terms)?;
    let mut acc = terms.remove(0);
    while !terms.is_empty() {
        let next = terms.remove(0);
        let needed: Vec<char> = output.iter().chain(terms.iter().flat_map(|t| t.labels.iter())).copied().collect();
        acc = pair(cx, acc, next, &needed, &sizes)?;
    }
    // what the output drops, summed; then its order
    let acc = sum_out(cx, acc, &output)?;
    let perm: Vec<i64> = output
        .iter()
        .map(|c| acc.labels.iter().position(|d| d == c).map(|p| p as i64))
        .collect::<Option<_>>()
        .ok_or_else(|| cx.attr_error(format!("`{equation}`: an output label no operand has")))?;
    if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
        return Ok(acc.id);
    }
    let p = cx.imp.b.ints(perm);
    cx.add(L::Transpose([acc.id, p]))
}

/// The size of every label; sizes of 1 broadcast.
fn label_sizes(cx: &Cx, terms: &[Term]) -> Result<Vec<(char, usize)>> {
    let mut sizes: Vec<(char, usize)> = Vec::new();
    for t in terms {
        for (&c, &n) in t.labels.iter().zip(&cx.shape(t.id)) {
            match sizes.iter_mut().find(|(d, _)| *d == c) {
                Some((_, m)) if *m == n || n == 1 => {}
                Some((_, m)) if *m == 1 => *m = n,
                Some((_, m)) => return Err(cx.attr_error(format!("label `{c}` is {m} in one operand, {n} in another"))),
                None => sizes.push((c, n)),
            }
        }
    }
    Ok(sizes)
}

fn size(sizes: &[(char, usize)], c: char) -> usize {
    sizes.iter().find(|(d, _)| *d == c).map_or(1, |p| p.1)
}

/// `t` summed over its labels that `keep` does not hold.
fn sum_out(cx: &mut Cx, t: Term, keep: &[char]) -> Result<Term> {
    let axes: Vec<i64> = (0..t.labels.len()).filter(|&i| !keep.contains(&t.labels[i])).map(|i| i as i64).collect();
    if axes.is_empty() {
        return Ok(t);
    }
    let labels = t.labels.iter().copied().filter(|c| keep.contains(c)).collect();
    let (a, k) = (cx.imp.b.ints(axes), cx.imp.b.int(0));
    Ok(Term { id: cx.add(L::ReduceSum([t.id, a, k]))?, labels })
}

/// `t` with its axes in the order of `labels`, broadcast to their sizes, then reshaped to
/// the products of the groups' sizes.
fn arrange(cx: &mut Cx, t: &Term, groups: &[&[char]], sizes: &[(char, usize)]) -> Result<Id> {
    let order: Vec<char> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let perm: Vec<i64> = order.iter().map(|c| t.labels.iter().position(|d| d == c).expect("a label") as i64).collect();
    let mut id = t.id;
    if perm.iter().enumerate().any(|(i, &p)| p != i as i64) {
        let p = cx.imp.b.ints(perm);
        id = cx.add(L::Transpose([id, p]))?;
    }
    let full: Vec<usize> = order.iter().map(|&c| size(sizes, c)).collect();
    if cx.shape(id) != full {
        let to = cx.imp.b.dims(&full);
        id = cx.add(L::Expand([id, to]))?;
    }
    let grouped: Vec<usize> = groups.iter().map(|g| g.iter().map(|&c| size(sizes, c)).product()).collect();
    cx.reshape(id, &grouped)
}

/// The product of two operands over their shared labels that `needed` no longer holds.
fn pair(cx: &mut Cx, a: Term, b: Term, needed: &[char], sizes: &[(char, usize)]) -> Result<Term> {
    // labels of one operand alone that nothing needs are summed out of it first
    let a_keep: Vec<char> = a.labels.iter().copied().filter(|c| needed.contains(c) || b.labels.contains(c)).collect();
    let a = sum_out(cx, a, &a_keep)?;
    let b_keep: Vec<char> = b.labels.iter().copied().filter(|c| needed.contains(c) || a.labels.contains(c)).collect();
    let b = sum_out(cx, b, &b_keep)?;
    let shared: Vec<char> = a.labels.iter().copied().filter(|c| b.labels.contains(c)).collect();
    let batch: Vec<char> = shared.iter().copied().filter(|c| needed.contains(c)).collect();
    let contracted: Vec<char> = shared.iter().copied().filter(|c| !needed.contains(c)).collect();
    let a_free: Vec<char> = a.labels.iter().copied().filter(|c| !shared.contains(c)).collect();
    let b_free: Vec<char> = b.labels.iter().copied().filter(|c| !shared.contains(c)).collect();
    let x = arrange(cx, &a, &[&batch, &a_free, &contracted], sizes)?;
    let y = arrange(cx, &b, &[&batch, &contracted, &b_free], sizes)?;
    let product = cx.add(L::MatMul([x, y]))?;
    let labels: Vec<char> = batch.iter().chain(&a_free).chain(&b_free).copied().collect();
    let dims: Vec<usize> = labels.iter().map(|&c| size(sizes, c)).collect();
    Ok(Term { id: cx.reshape(product, &dims)?, labels })
}
