//! DAG-aware extraction: the program's cost counts each class it uses once, as the
//! compiled program computes a shared subgraph once.
//!
//! Greedy per-class decisions cannot see sharing: a class may pick a node that avoids a
//! subgraph another class needs anyway. So the DAG extractor starts from several greedy
//! programs and improves each by local search on the exact DAG cost:
//!
//! 1. seeds: the tree-greedy choice; the input program itself (every one of its nodes
//!    is in the e-graph), completed with tree-greedy choices elsewhere; and, on small
//!    e-graphs, the cost-set greedy choice (each class keeps the node whose set of
//!    descendant classes costs least);
//! 2. improvement: for each class of the current program, in turn, try every other node
//!    of the class; keep a change if the whole program (now reachable from the roots)
//!    costs less and has no cycle; repeat until a pass changes nothing or the time budget
//!    is spent;
//! 3. the cheapest improved seed wins.
//!
//! Starting from the input program guarantees the result is never worse than the input
//! by this measure.

use crate::choice::Choice;
use crate::costs::CostTable;
use crate::tree;
use egg::{Id, Language};
use saturate_egraph::{Graph, TensorEGraph};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// E-graphs up to this many nodes also get the cost-set greedy seed.
const COST_SET_LIMIT: usize = 8_000;

/// The DAG-aware choice for the program reachable from `roots`.
pub fn extract(egraph: &TensorEGraph, costs: &CostTable, roots: &[Id], input: Option<&Graph>, budget: Duration) -> Choice {
    let start = Instant::now();
    let tree = tree::extract(egraph, costs);
    let mut seeds = vec![tree.clone()];
    if let Some(graph) = input {
        if let Some(program) = choice_of_graph(egraph, graph) {
            let mut seed = tree.clone();
            seed.node.extend(program.node);
            seeds.push(seed);
        }
    }
    if egraph.total_number_of_nodes() <= COST_SET_LIMIT {
        let mut seed = tree.clone();
        seed.node.extend(cost_sets(egraph, costs, budget / 4).node);
        seeds.push(seed);
    }
    let per_seed = budget.saturating_sub(start.elapsed()) / seeds.len() as u32;
    seeds
        .into_iter()
        .filter_map(|seed| {
            let improved = improve(egraph, costs, roots, seed, per_seed);
            dag_cost(egraph, costs, &improved, roots).map(|c| (c, improved))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
        .unwrap_or(tree)
}

/// The sum of the costs of the classes the program uses, each once; `None` if the
/// program has a cycle or an unchosen class.
pub fn dag_cost(egraph: &TensorEGraph, costs: &CostTable, choice: &Choice, roots: &[Id]) -> Option<f64> {
    let order = choice.topological(egraph, roots).ok()?;
    Some(order.iter().map(|&c| costs.get(c, choice.node[&c])).sum())
}

/// Local search: single-class changes that lower the DAG cost, until none does or the
/// budget is spent. The program is kept as reference counts of the classes it uses, so
/// a change costs only the classes it adds or drops.
pub fn improve(egraph: &TensorEGraph, costs: &CostTable, roots: &[Id], mut choice: Choice, budget: Duration) -> Choice {
    let start = Instant::now();
    let Ok(order) = choice.topological(egraph, roots) else { return choice };
    let mut program = Program { refs: HashMap::new(), cost: 0.0 };
    for &r in roots {
        program.add(egraph, costs, &choice, egraph.find(r));
    }
    let _ = order;
    loop {
        let mut improved = false;
        let Ok(order) = choice.topological(egraph, roots) else { return choice };
        for class in order.into_iter().rev() {
            if start.elapsed() > budget {
                return choice;
            }
            if program.refs.get(&class).copied().unwrap_or(0) == 0 {
                continue; // dropped by an earlier change in this pass
            }
            let current = choice.node[&class];
            for i in 0..egraph[class].nodes.len() {
                if i == current || !costs.get(class, i).is_finite() {
                    continue;
                }
                let before = program.cost;
                program.switch(egraph, costs, &mut choice, class, i);
                if program.cost < before * (1.0 - 1e-9) && choice.topological(egraph, roots).is_ok() {
                    improved = true;
                    break;
                }
                program.switch(egraph, costs, &mut choice, class, current);
            }
        }
        if !improved {
            return choice;
        }
    }
}

/// The classes a choice's program uses, with how many uses each has, and their cost.
struct Program {
    refs: HashMap<Id, usize>,
    cost: f64,
}

impl Program {
    /// One more use of `class`: if it is new, it and its children enter the program.
    fn add(&mut self, egraph: &TensorEGraph, costs: &CostTable, choice: &Choice, class: Id) {
        let mut stack = vec![class];
        while let Some(c) = stack.pop() {
            let refs = self.refs.entry(c).or_insert(0);
            *refs += 1;
            if *refs == 1 {
                let Some(&i) = choice.node.get(&c) else { continue };
                self.cost += costs.get(c, i);
                stack.extend(egraph[c].nodes[i].children().iter().map(|&k| egraph.find(k)));
            }
        }
    }

    /// One use of `class` fewer: if it was the last, it and its children leave.
    fn remove(&mut self, egraph: &TensorEGraph, costs: &CostTable, choice: &Choice, class: Id) {
        let mut stack = vec![class];
        while let Some(c) = stack.pop() {
            let Some(refs) = self.refs.get_mut(&c) else { continue };
            *refs -= 1;
            if *refs == 0 {
                let Some(&i) = choice.node.get(&c) else { continue };
                self.cost -= costs.get(c, i);
                stack.extend(egraph[c].nodes[i].children().iter().map(|&k| egraph.find(k)));
            }
        }
    }

    /// Makes `class` (in the program) use node `to`.
    fn switch(&mut self, egraph: &TensorEGraph, costs: &CostTable, choice: &mut Choice, class: Id, to: usize) {
        let from = choice.node[&class];
        let old: Vec<Id> = egraph[class].nodes[from].children().iter().map(|&k| egraph.find(k)).collect();
        let new: Vec<Id> = egraph[class].nodes[to].children().iter().map(|&k| egraph.find(k)).collect();
        // add the new uses first, so classes both nodes use stay in
        choice.node.insert(class, to);
        self.cost += costs.get(class, to) - costs.get(class, from);
        for c in new {
            self.add(egraph, costs, choice, c);
        }
        for c in old {
            self.remove(egraph, costs, choice, c);
        }
    }
}

/// The input program's own node in each of its classes, if all are found.
pub fn choice_of_graph(egraph: &TensorEGraph, graph: &Graph) -> Option<Choice> {
    let mut classes: Vec<Id> = Vec::with_capacity(graph.expr.len());
    let mut choice = Choice::default();
    for node in graph.expr.as_ref() {
        let canonical = node.clone().map_children(|c| egraph.find(classes[usize::from(c)]));
        let class = egraph.lookup(canonical.clone())?;
        let index = egraph[class].nodes.iter().position(|n| n.clone().map_children(|c| egraph.find(c)) == canonical)?;
        choice.node.insert(class, index);
        classes.push(class);
    }
    Some(choice)
}

type CostSet = Rc<HashMap<Id, f64>>;

/// Cost-set greedy: each class keeps the node whose set of descendant classes (each
/// counted once) costs least. Nodes whose children's sets contain their own class would
/// close a cycle and are skipped.
fn cost_sets(egraph: &TensorEGraph, costs: &CostTable, budget: Duration) -> Choice {
    let start = Instant::now();
    let mut best: HashMap<Id, (f64, usize, CostSet)> = HashMap::new();
    let mut changed = true;
    while changed && start.elapsed() < budget {
        changed = false;
        for class in egraph.classes() {
            for (i, node) in class.nodes.iter().enumerate() {
                let own = costs.get(class.id, i);
                if !own.is_finite() {
                    continue;
                }
                let children: Option<Vec<&CostSet>> = node.children().iter().map(|&c| best.get(&egraph.find(c)).map(|b| &b.2)).collect();
                let Some(children) = children else { continue };
                if children.iter().any(|s| s.contains_key(&class.id)) {
                    continue;
                }
                let mut set: HashMap<Id, f64> = HashMap::new();
                let mut seen: HashSet<*const HashMap<Id, f64>> = HashSet::new();
                for part in &children {
                    if seen.insert(Rc::as_ptr(part)) {
                        for (&k, &v) in part.iter() {
                            set.entry(k).or_insert(v);
                        }
                    }
                }
                set.insert(class.id, own);
                let total: f64 = set.values().sum();
                if best.get(&class.id).is_none_or(|b| total < b.0 * (1.0 - 1e-12)) {
                    best.insert(class.id, (total, i, Rc::new(set)));
                    changed = true;
                }
            }
        }
    }
    Choice { node: best.into_iter().map(|(c, b)| (c, b.1)).collect() }
}
