//! The cost of a whole program, with the fusion the backend performs.
//!
//! Chains of elementwise ops become one loop: an elementwise node joins the group of an
//! elementwise operand that nothing else consumes. A group reads its inputs once,
//! writes its results once (those used outside it or returned), and launches once. Every
//! other node is its own kernel. Nodes computed from constants only run at compile time
//! and cost nothing; views cost nothing.

use crate::work::{work, Kind, NodeInfo};
use crate::Roofline;
use saturate_egraph::{Graph, Language, Meta, TensorLang};

/// The cost of `graph` on `r`, in seconds.
pub fn program_cost(r: &Roofline, graph: &Graph) -> saturate_egraph::Result<f64> {
    let metas = graph.metas()?; // types only: the weights' data may not be attached yet
    let n = graph.expr.len();
    let nodes = graph.expr.as_ref();
    let is_tensor = |i: usize| matches!(metas[i], Meta::Tensor(_));

    // constant: sources and everything computed from constants only
    let mut constant = vec![false; n];
    for (i, node) in nodes.iter().enumerate() {
        constant[i] = match node {
            TensorLang::Input(_) => false,
            TensorLang::Weight(_) | TensorLang::Fill(_) => true,
            _ if !is_tensor(i) => false,
            _ => node.children().iter().filter(|&&c| is_tensor(usize::from(c))).all(|&c| constant[usize::from(c)]),
        };
    }
    let mut consumers = vec![0usize; n];
    for node in nodes {
        for &c in node.children() {
            consumers[usize::from(c)] += 1;
        }
    }
    for port in &graph.outputs {
        consumers[usize::from(port.id)] += 1;
    }

    let works: Vec<Option<crate::Work>> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let out = metas[i].tensor()?;
            let children = node.children().iter().map(|&c| &metas[usize::from(c)]).collect();
            Some(work(&NodeInfo { node, output: out, children }))
        })
        .collect();

    // group elementwise chains: a node's group is its sole-consumer elementwise operand's
    let mut group: Vec<usize> = (0..n).collect();
    let elementwise = |i: usize| !constant[i] && works[i].is_some_and(|w| w.kind == Kind::Elementwise);
    for (i, node) in nodes.iter().enumerate() {
        if !elementwise(i) {
            continue;
        }
        for &c in node.children() {
            let c = usize::from(c);
            if elementwise(c) && consumers[c] == 1 {
                let root = find(&mut group, c);
                group[root] = find(&mut group, i);
            }
        }
    }

    // price: kernels one by one, groups as one loop
    let mut total = 0.0;
    let mut group_flops = vec![0.0; n];
    let mut group_bytes = vec![0.0; n];
    let mut is_group = vec![false; n];
    let bytes_of = |i: usize| metas[i].tensor().map_or(0.0, |t| (t.numel() * t.dtype.byte_size()) as f64);
    for (i, node) in nodes.iter().enumerate() {
        let Some(w) = works[i] else { continue };
        if constant[i] {
            continue;
        }
        match w.kind {
            Kind::Source | Kind::View => {}
            Kind::Elementwise => {
                let g = find(&mut group, i);
                is_group[g] = true;
                group_flops[g] += w.flops;
                // reads from outside the group; writes if used outside it
                for &c in node.children() {
                    let c = usize::from(c);
                    if is_tensor(c) && find(&mut group, c) != g {
                        group_bytes[g] += bytes_of(c);
                    }
                }
                if consumers[i] != 1 || !node_feeds_group(nodes, &mut group, i, g) {
                    group_bytes[g] += bytes_of(i);
                }
            }
            Kind::Copy | Kind::Reduction => {
                total += r.kernel_time(w.flops, w.bytes_in + w.bytes_out, r.vector_flops, r.launch)
            }
            Kind::Gemm => total += r.kernel_time(w.flops, w.bytes_in + w.bytes_out, r.gemm_flops, r.launch),
        }
    }
    for g in 0..n {
        if is_group[g] {
            total += r.kernel_time(group_flops[g], group_bytes[g], r.vector_flops, r.launch);
        }
    }
    Ok(total)
}

/// Whether the single consumer of node `i` is in group `g`.
fn node_feeds_group(nodes: &[TensorLang], group: &mut [usize], i: usize, g: usize) -> bool {
    nodes.iter().enumerate().any(|(j, n)| n.children().iter().any(|&c| usize::from(c) == i) && find(group, j) == g)
}

fn find(group: &mut [usize], mut i: usize) -> usize {
    while group[i] != i {
        group[i] = group[group[i]];
        i = group[i];
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roofline() -> Roofline {
        Roofline { name: "test".into(), gemm_flops: 1e11, vector_flops: 1e10, bandwidth: 1e10, launch: 1e-6 }
    }

    fn graph(text: &str) -> Graph {
        saturate_egraph::sexp::parse(text, "t", None).unwrap()
    }

    #[test]
    fn an_elementwise_chain_is_one_loop() {
        let chain = graph("(saturate-graph 1)\n(input %x f32 [1000000])\n(output \"y\" (relu (exp (neg %x))))\n");
        let single = graph("(saturate-graph 1)\n(input %x f32 [1000000])\n(output \"y\" (relu %x))\n");
        let (a, b) = (program_cost(&roofline(), &chain).unwrap(), program_cost(&roofline(), &single).unwrap());
        // the same bytes move (4 MB in, 4 MB out); the chain only adds arithmetic
        assert!(a < 2.0 * b, "{a} vs {b}");
        assert!((b - (8e6 / 1e10 + 1e-6)).abs() < 1e-9, "{b}");
    }

    #[test]
    fn weight_only_work_is_free() {
        let g = graph("(saturate-graph 1)\n(input %x f32 [64,64])\n(weight %w f32 [64,64] (values 0))\n(output \"y\" (matmul %x (transpose (mul %w (fill 2.0 [])) [1,0])))\n"
            .replace("(values 0)", &format!("(values{})", " 0".repeat(64 * 64)))
            .as_str());
        let plain = graph(
            "(saturate-graph 1)\n(input %x f32 [64,64])\n(input %w f32 [64,64])\n(output \"y\" (matmul %x %w))\n",
        );
        let (a, b) = (program_cost(&roofline(), &g).unwrap(), program_cost(&roofline(), &plain).unwrap());
        assert!((a - b).abs() < 1e-12, "the transpose and scale of a weight cost nothing: {a} vs {b}");
    }
}
