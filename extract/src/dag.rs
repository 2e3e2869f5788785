//! DAG-aware extraction: the program's cost counts each class it uses once, as the
//! compiled program computes a shared subgraph once.
//!
//! Greedy per-class decisions cannot see sharing: a class may pick a node that avoids a
//! subgraph another class needs anyway. So the DAG extractor starts from greedy programs
//! and improves each by local search on the exact DAG cost:
//!
//! 1. seeds: the tree-greedy choice, and the input program itself (every one of its
//!    nodes is in the e-graph) completed with tree-greedy choices elsewhere;
//! 2. improvement: for each class of the current program, in turn, try every other node
//!    of the class and keep a change if the whole program (now reachable from the roots)
//!    costs less and has no cycle; when no single change helps, try sharing moves, which
//!    switch all consumers of a merged product at once (what multi-pattern rules need);
//!    repeat until nothing helps or the time budget is spent;
//! 3. the cheaper improved seed wins, by DAG cost here or by whole-program cost in
//!    [`optimize`](crate::optimize), which sees fusion.
//!
//! Starting from the input program guarantees the result is never worse than the input
//! by this measure. (Seeds that share costs among a class's users, or keep per-class
//! sets of descendants, were tried: on the model suite they never beat the tree seed
//! and cost more time than both local searches together.)

use crate::choice::Choice;
use crate::costs::CostTable;
use crate::tree;
use egg::{Id, Language};
use saturate_egraph::{Graph, TensorEGraph, TensorLang};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The DAG-aware choice for the program reachable from `roots`: the cheapest of
/// [`candidates`] by DAG cost.
pub fn extract(
    egraph: &TensorEGraph,
    costs: &CostTable,
    roots: &[Id],
    input: Option<&Graph>,
    budget: Duration,
) -> Choice {
    candidates(egraph, costs, roots, input, budget)
        .into_iter()
        .filter_map(|(_, c)| dag_cost(egraph, costs, &c, roots).map(|cost| (cost, c)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
        .unwrap_or_else(|| tree::extract(egraph, costs))
}

/// Every seed after local search, each acyclic. A caller with a finer measure than the
/// per-node sum (the whole-program cost, which sees fusion) picks among them.
pub fn candidates(
    egraph: &TensorEGraph,
    costs: &CostTable,
    roots: &[Id],
    input: Option<&Graph>,
    budget: Duration,
) -> Vec<(&'static str, Choice)> {
    let start = Instant::now();
    let tree = tree::extract(egraph, costs);
    let mut seeds = vec![("dag from tree", tree.clone())];
    if let Some(program) = input.and_then(|graph| choice_of_graph(egraph, graph)) {
        let mut seed = tree;
        seed.node.extend(program.node);
        seeds.push(("dag from input", seed));
    }
    let per_seed = budget.saturating_sub(start.elapsed()) / seeds.len() as u32;
    seeds
        .into_iter()
        .map(|(name, seed)| (name, improve(egraph, costs, roots, seed, per_seed)))
        .filter(|(_, c)| c.topological(egraph, roots).is_ok())
        .collect()
}

/// The sum of the costs of the classes the program uses, each once; `None` if the
/// program has a cycle or an unchosen class.
pub fn dag_cost(egraph: &TensorEGraph, costs: &CostTable, choice: &Choice, roots: &[Id]) -> Option<f64> {
    let order = choice.topological(egraph, roots).ok()?;
    Some(order.iter().map(|&c| costs.get(c, choice.node[&c])).sum())
}

/// Local search: single-class changes that lower the DAG cost, then, when none is
/// left, sharing moves (see [`Sharing`]); until neither helps or the budget is spent.
/// The program is kept as reference counts of the classes it uses, so a change costs
/// only the classes it adds or drops.
pub fn improve(egraph: &TensorEGraph, costs: &CostTable, roots: &[Id], mut choice: Choice, budget: Duration) -> Choice {
    let start = Instant::now();
    let mut program = Program::new(egraph, costs, &choice, roots);
    let mut sharing: Option<Sharing> = None;
    loop {
        let Ok(order) = choice.topological(egraph, roots) else { return choice };
        let mut improved = false;
        for class in order.into_iter().rev() {
            if start.elapsed() > budget {
                return choice;
            }
            if !program.uses(class) {
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
                    if let Some(sharing) = &mut sharing {
                        sharing.rejected.clear();
                    }
                    break;
                }
                program.switch(egraph, costs, &mut choice, class, current);
                if (program.cost - before).abs() > before.abs() * 1e-9 {
                    // the trial went round a cycle of stale choices outside the program,
                    // which reference counts keep alive: count afresh
                    program = Program::new(egraph, costs, &choice, roots);
                }
            }
        }
        if !improved {
            let sharing = sharing.get_or_insert_with(|| Sharing::new(egraph));
            improved = sharing.try_all(egraph, costs, roots, &mut choice, &mut program, || start.elapsed() > budget);
        }
        if !improved {
            return choice;
        }
    }
}

/// Sharing moves, for the products that multi-pattern rules merge. Two matmuls that
/// share an input become slices of one wider matmul, but no single-class change can
/// reach that program: switching one consumer to its slice adds the whole wide product
/// and saves only one narrow one. A sharing move switches *every* consumer of a sliced
/// product at once, each along the shortest chain of nodes from a class the program
/// already uses down to its slice, and keeps the lot if the program got cheaper.
struct Sharing {
    /// For each class, the (class, node index) pairs whose node uses it.
    parents: HashMap<Id, Vec<(Id, usize)>>,
    /// Classes sliced by nodes of at least two other classes, with those slice nodes.
    products: Vec<(Id, Vec<(Id, usize)>)>,
    /// Products whose move did not pay since the program last changed.
    rejected: HashSet<Id>,
}

/// How far above a slice a sharing move looks for a class the program uses: the slice's
/// class itself, its consumer (an add), and that one's (a fused activation).
const SHARING_DEPTH: usize = 3;

impl Sharing {
    fn new(egraph: &TensorEGraph) -> Sharing {
        let mut parents: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
        let mut slicers: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
        for class in egraph.classes() {
            for (i, node) in class.nodes.iter().enumerate() {
                for &c in node.children() {
                    parents.entry(egraph.find(c)).or_default().push((class.id, i));
                }
                if let TensorLang::Slice([x, ..]) = node {
                    let x = egraph.find(*x);
                    if x != class.id {
                        slicers.entry(x).or_default().push((class.id, i));
                    }
                }
            }
        }
        let mut products: Vec<(Id, Vec<(Id, usize)>)> = slicers
            .into_iter()
            .filter(|(_, users)| users.iter().map(|u| u.0).collect::<HashSet<_>>().len() >= 2)
            .collect();
        products.sort_by_key(|p| p.0);
        Sharing { parents, products, rejected: HashSet::new() }
    }

    /// Tries a sharing move on every product; true if one was kept. A move changes
    /// several classes at once and may close a cycle through classes outside the
    /// program, which reference counts cannot undo, so it edits only the choice and
    /// prices the result afresh.
    fn try_all(
        &mut self,
        egraph: &TensorEGraph,
        costs: &CostTable,
        roots: &[Id],
        choice: &mut Choice,
        program: &mut Program,
        out_of_time: impl Fn() -> bool,
    ) -> bool {
        let mut improved = false;
        for (product, slicers) in &self.products {
            if out_of_time() {
                break;
            }
            if self.rejected.contains(product) {
                continue;
            }
            let mut undo: Vec<(Id, Option<usize>)> = Vec::new();
            for &(class, node) in slicers {
                if let Some(chain) = self.chain_from_program(program, class, node, *product) {
                    apply_chain(program, choice, &chain, &mut undo);
                }
            }
            if undo.is_empty() {
                continue;
            }
            match dag_cost(egraph, costs, choice, roots) {
                Some(cost) if cost < program.cost * (1.0 - 1e-9) => {
                    *program = Program::new(egraph, costs, choice, roots);
                    improved = true;
                    self.rejected.clear();
                }
                _ => {
                    self.rejected.insert(*product);
                    for (class, old) in undo.into_iter().rev() {
                        match old {
                            Some(i) => choice.node.insert(class, i),
                            None => choice.node.remove(&class),
                        };
                    }
                }
            }
        }
        improved
    }

    /// The shortest chain of (class, node) from a class the program uses down to
    /// `class`'s `node`, each node using the next class; `None` if there is none within
    /// [`SHARING_DEPTH`]. (A slice already chosen gives a chain that changes nothing.)
    fn chain_from_program(&self, program: &Program, class: Id, node: usize, product: Id) -> Option<Vec<(Id, usize)>> {
        let mut frontier = vec![vec![(class, node)]];
        let mut seen: HashSet<Id> = HashSet::from([class, product]);
        for _ in 0..SHARING_DEPTH {
            let mut next = Vec::new();
            for chain in frontier {
                let top = chain[0].0;
                if program.uses(top) {
                    return Some(chain);
                }
                for &(parent, i) in self.parents.get(&top).into_iter().flatten() {
                    if seen.insert(parent) {
                        let mut longer = vec![(parent, i)];
                        longer.extend(&chain);
                        next.push(longer);
                    }
                }
            }
            frontier = next;
        }
        frontier.into_iter().find(|chain| program.uses(chain[0].0))
    }
}

/// Makes each class of the chain use its node, bottom-up, up to the first class the
/// program already uses (whose new node pulls the rest in).
fn apply_chain(program: &Program, choice: &mut Choice, chain: &[(Id, usize)], undo: &mut Vec<(Id, Option<usize>)>) {
    for &(class, node) in chain.iter().rev() {
        let old = choice.node.insert(class, node);
        if old != Some(node) {
            undo.push((class, old));
        }
        if program.uses(class) {
            return;
        }
    }
}

/// The classes a choice's program uses, with how many uses each has, and their cost.
struct Program {
    refs: HashMap<Id, usize>,
    cost: f64,
}

impl Program {
    fn new(egraph: &TensorEGraph, costs: &CostTable, choice: &Choice, roots: &[Id]) -> Program {
        let mut program = Program { refs: HashMap::new(), cost: 0.0 };
        for &r in roots {
            program.add(egraph, costs, choice, egraph.find(r));
        }
        program
    }

    fn uses(&self, class: Id) -> bool {
        self.refs.get(&class).is_some_and(|&r| r > 0)
    }

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

/// The input program's own node in each of its classes (the first, where several
/// share one), if all are found.
pub fn choice_of_graph(egraph: &TensorEGraph, graph: &Graph) -> Option<Choice> {
    let mut classes: Vec<Id> = Vec::with_capacity(graph.expr.len());
    let mut choice = Choice::default();
    for node in graph.expr.as_ref() {
        let canonical = node.clone().map_children(|c| egraph.find(classes[usize::from(c)]));
        let class = egraph.lookup(canonical.clone())?;
        let index = egraph[class].nodes.iter().position(|n| n.clone().map_children(|c| egraph.find(c)) == canonical)?;
        // the first node wins: a later one in the same class (a relu the rules proved
        // a no-op) may use it, and choosing that one would close a cycle
        choice.node.entry(class).or_insert(index);
        classes.push(class);
    }
    Some(choice)
}
