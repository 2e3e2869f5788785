//! The cost of a whole program, with the fusion the backend performs.
//!
//! Chains of elementwise ops become one loop: an elementwise node joins the group of an
//! elementwise operand that nothing else consumes. A group reads its inputs once,
//! writes its results once (those used outside it or returned), and launches once. Every
//! other node is its own kernel. Nodes computed from constants only run at compile time
//! and cost nothing; views cost nothing.

use crate::work::{work, Kind, NodeInfo, Work};
use crate::Roofline;
use saturate_egraph::{Graph, Language, Meta, TensorLang};

/// How the backend will run a program: which nodes are computed at compile time, what
/// each node's work is, and which elementwise nodes share a loop. The cost model and the
/// backend both use it, so what is priced as one loop is compiled as one loop.
pub struct Fusion {
    /// Computed from weights and constants only (at compile time).
    pub constant: Vec<bool>,
    /// Each node's work; `None` for attribute leaves.
    pub works: Vec<Option<Work>>,
    /// Uses of each node's value (operands of other nodes, and graph outputs).
    pub consumers: Vec<usize>,
    /// The one node that uses each node's value, where there is exactly one.
    pub sole_consumer: Vec<Option<usize>>,
    group: Vec<usize>,
}

impl Fusion {
    /// Groups the nodes of `graph`, whose metas are `metas`: an elementwise node joins
    /// the group of each elementwise operand that nothing else consumes.
    pub fn of(graph: &Graph, metas: &[Meta]) -> Fusion {
        let n = graph.expr.len();
        let nodes = graph.expr.as_ref();
        let is_tensor = |i: usize| matches!(metas[i], Meta::Tensor(_));
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
        let mut sole_consumer = vec![None; n];
        for (i, node) in nodes.iter().enumerate() {
            for &c in node.children() {
                let c = usize::from(c);
                consumers[c] += 1;
                sole_consumer[c] = if consumers[c] == 1 { Some(i) } else { None };
            }
        }
        for port in &graph.outputs {
            let c = usize::from(port.id);
            consumers[c] += 1;
            sole_consumer[c] = None;
        }
        let works: Vec<Option<Work>> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let out = metas[i].tensor()?;
                let children = node.children().iter().map(|&c| &metas[usize::from(c)]).collect();
                Some(work(&NodeInfo { node, output: out, children }))
            })
            .collect();
        let mut fusion = Fusion { constant, works, consumers, sole_consumer, group: (0..n).collect() };
        for (i, node) in nodes.iter().enumerate() {
            if !fusion.is_loop_element(i) {
                continue;
            }
            for &c in node.children() {
                let c = usize::from(c);
                if fusion.is_loop_element(c) && fusion.consumers[c] == 1 {
                    let root = fusion.find(c);
                    let mine = fusion.find(i);
                    fusion.group[root] = mine;
                }
            }
        }
        fusion
    }

    /// An elementwise node computed at run time: a member of some loop.
    pub fn is_loop_element(&self, i: usize) -> bool {
        !self.constant[i] && self.works[i].is_some_and(|w| w.kind == Kind::Elementwise)
    }

    /// The representative of `i`'s loop (the node whose value leaves the loop).
    pub fn group_of(&self, i: usize) -> usize {
        let mut i = i;
        while self.group[i] != i {
            i = self.group[i];
        }
        i
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.group[i] != i {
            self.group[i] = self.group[self.group[i]];
            i = self.group[i];
        }
        i
    }
}

/// What a model charges for the kernels of a program, for [`program_cost_with`].
pub trait Prices {
    /// A node that runs as a kernel of its own (not an elementwise loop member), launch
    /// included. `feeds_loop` says its one reader is a run-time elementwise loop (and it
    /// is no output), which can take over its last pass (a convolution's bias).
    fn kernel(&self, info: &NodeInfo, w: &Work, feeds_loop: bool) -> f64;
    /// The arithmetic of an elementwise node as one member of a fused loop.
    fn loop_arithmetic(&self, info: &NodeInfo, w: &Work) -> f64;
    /// A fused loop whose members' arithmetic adds up to `arithmetic` seconds and which
    /// reads and writes `bytes`, launch included.
    fn loop_time(&self, arithmetic: f64, bytes: f64) -> f64;
    /// What every run costs besides its kernels.
    fn run_overhead(&self) -> f64 {
        0.0
    }
}

impl Prices for Roofline {
    fn kernel(&self, _: &NodeInfo, w: &Work, _: bool) -> f64 {
        match w.kind {
            Kind::Source | Kind::View | Kind::Elementwise => 0.0,
            Kind::Copy | Kind::Reduction => {
                self.kernel_time(w.flops, w.bytes_in + w.bytes_out, self.vector_flops, self.launch)
            }
            Kind::Gemm => self.kernel_time(w.flops, w.bytes_in + w.bytes_out, self.gemm_flops, self.launch),
        }
    }

    fn loop_arithmetic(&self, _: &NodeInfo, w: &Work) -> f64 {
        w.flops / self.vector_flops
    }

    fn loop_time(&self, arithmetic: f64, bytes: f64) -> f64 {
        arithmetic.max(bytes / self.bandwidth) + self.launch
    }
}

/// The cost of `graph` on `r`, in seconds.
pub fn program_cost(r: &Roofline, graph: &Graph) -> saturate_egraph::Result<f64> {
    program_cost_with(r, graph)
}

/// The cost of `graph` under `prices`, in seconds: kernels one by one, each fused loop
/// once.
pub fn program_cost_with(prices: &dyn Prices, graph: &Graph) -> saturate_egraph::Result<f64> {
    let metas = graph.metas()?; // types only: the weights' data may not be attached yet
    let n = graph.expr.len();
    let nodes = graph.expr.as_ref();
    let is_tensor = |i: usize| matches!(metas[i], Meta::Tensor(_));
    let fusion = Fusion::of(graph, &metas);

    let mut total = prices.run_overhead();
    let mut group_arithmetic = vec![0.0; n];
    let mut group_bytes = vec![0.0; n];
    let mut is_group = vec![false; n];
    let bytes_of = |i: usize| metas[i].tensor().map_or(0.0, |t| (t.numel() * t.dtype.byte_size()) as f64);
    for (i, node) in nodes.iter().enumerate() {
        let Some(w) = fusion.works[i] else { continue };
        if fusion.constant[i] || matches!(w.kind, Kind::Source | Kind::View) {
            continue;
        }
        let Some(output) = metas[i].tensor() else { continue };
        let info =
            NodeInfo { node, output, children: node.children().iter().map(|&c| &metas[usize::from(c)]).collect() };
        if w.kind != Kind::Elementwise {
            let is_output = graph.outputs.iter().any(|p| usize::from(p.id) == i);
            let feeds_loop = !is_output && fusion.sole_consumer[i].is_some_and(|c| fusion.is_loop_element(c));
            total += prices.kernel(&info, &w, feeds_loop);
            continue;
        }
        let g = fusion.group_of(i);
        is_group[g] = true;
        group_arithmetic[g] += prices.loop_arithmetic(&info, &w);
        // reads from outside the group; writes if used outside it
        for &c in node.children() {
            let c = usize::from(c);
            if is_tensor(c) && fusion.group_of(c) != g {
                group_bytes[g] += bytes_of(c);
            }
        }
        if fusion.sole_consumer[i].is_none_or(|consumer| fusion.group_of(consumer) != g) {
            group_bytes[g] += bytes_of(i);
        }
    }
    for g in 0..n {
        if is_group[g] {
            total += prices.loop_time(group_arithmetic[g], group_bytes[g]);
        }
    }
    Ok(total)
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
