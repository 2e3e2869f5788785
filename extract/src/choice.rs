//! A [`Choice`] of one e-node per e-class, and turning it into a [`Graph`].

use egg::{Id, Language};
use saturate_egraph::{Graph, GraphBuilder, Port, TensorEGraph, TensorLang};
use std::collections::{BTreeMap, HashMap};

/// The node chosen in each class (its index in the class's node list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choice {
    pub node: HashMap<Id, usize>,
}

impl Choice {
    pub fn get<'a>(&self, egraph: &'a TensorEGraph, class: Id) -> Option<&'a TensorLang> {
        let class = egraph.find(class);
        self.node.get(&class).map(|&i| &egraph[class].nodes[i])
    }

    /// The classes the program reachable from `roots` uses, children before parents, or
    /// the class where a cycle closes.
    pub fn topological(&self, egraph: &TensorEGraph, roots: &[Id]) -> Result<Vec<Id>, String> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: HashMap<Id, Mark> = HashMap::new();
        let mut order = Vec::new();
        for &root in roots {
            // iterative depth-first search, so deep programs cannot overflow the stack
            let mut stack = vec![(egraph.find(root), false)];
            while let Some((class, expanded)) = stack.pop() {
                if expanded {
                    marks.insert(class, Mark::Done);
                    order.push(class);
                    continue;
                }
                match marks.get(&class) {
                    Some(Mark::Done) => continue,
                    Some(Mark::Open) => return Err(format!("the chosen program has a cycle through class {class}")),
                    None => {}
                }
                let node = self.get(egraph, class).ok_or_else(|| format!("no node was chosen for class {class}"))?;
                marks.insert(class, Mark::Open);
                stack.push((class, true));
                for &c in node.children() {
                    let c = egraph.find(c);
                    match marks.get(&c) {
                        Some(Mark::Done) => {}
                        Some(Mark::Open) => return Err(format!("the chosen program has a cycle through class {c}")),
                        None => stack.push((c, false)),
                    }
                }
            }
        }
        Ok(order)
    }

    /// Builds the chosen program as a graph with `original`'s inputs, output names and
    /// weights. Fails on a cycle or an ill-typed choice.
    pub fn to_graph(&self, egraph: &TensorEGraph, roots: &[Id], original: &Graph) -> Result<Graph, String> {
        Ok(self.to_program(egraph, roots, original)?.with_weights_from(original))
    }

    /// [`to_graph`](Self::to_graph) without the weights' data, which only the program
    /// finally kept needs: cheap enough to build for every candidate.
    pub fn to_program(&self, egraph: &TensorEGraph, roots: &[Id], original: &Graph) -> Result<Graph, String> {
        let order = self.topological(egraph, roots)?;
        let mut b = GraphBuilder::default();
        let mut ids: HashMap<Id, Id> = HashMap::new();
        // the inputs first, in their order, so they keep their place even where unused
        let original_metas = original.check().map_err(|e| e.to_string())?;
        for port in &original.inputs {
            let ty = original_metas[usize::from(port.id)].tensor().cloned().ok_or("input is not a tensor")?;
            let TensorLang::Input([name, ..]) = &original.expr[port.id] else {
                return Err("graph input is not an input node".into());
            };
            b.input(original.name_of(*name), &ty);
        }
        for class in order {
            let node = self.get(egraph, class).expect("topological order only holds chosen classes").clone();
            let new = node.map_children(|c| ids[&egraph.find(c)]);
            let id = b.add(new).map_err(|e| format!("the chosen program is ill-typed at class {class}: {e}"))?;
            ids.insert(class, id);
        }
        let inputs = original
            .inputs
            .iter()
            .map(|p| {
                let TensorLang::Input(children) = &original.expr[p.id] else { unreachable!("checked above") };
                let name = original.name_of(children[0]);
                let id = b.expr.as_ref().iter().position(|n| matches!(n, TensorLang::Input([c, ..]) if matches!(&b.expr[*c], TensorLang::Name(x) if x.as_str() == name)));
                Port { name: p.name.clone(), id: Id::from(id.expect("inputs were added first")) }
            })
            .collect();
        let outputs = original
            .outputs
            .iter()
            .zip(roots)
            .map(|(p, r)| Port { name: p.name.clone(), id: ids[&egraph.find(*r)] })
            .collect();
        Ok(Graph { expr: b.expr, inputs, outputs, weights: BTreeMap::new() }.canonicalize())
    }
}
