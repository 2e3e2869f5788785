//! Turning a [`DirectedRule`] into an egg [`Rewrite`], and applying it safely.
//!
//! The [`RuleApplier`] runs for every match: it computes the `:let` attributes, checks
//! the `:when` guards, then type-checks each right-hand side against the class it will
//! join, before adding anything. An application whose right-hand side is ill-typed, or has
//! another type than the matched class, is skipped and counted, so the e-graph only ever
//! holds well-typed nodes and every class one type.

use crate::functions::{self, Function};
use crate::guards::{self, Guard, GuardArg};
use crate::rule::{Arg, DirectedRule, Side};
use egg::{Applier, ENodeOrVar, Id, MultiPattern, Pattern, PatternAst, Rewrite, SearchMatches, Subst, Symbol, Var};
use saturate_egraph::infer::{infer, Meta};
use saturate_egraph::{ClassData, ShapeAnalysis, TensorEGraph, TensorLang};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The e-nodes rules added, each with the rule that added it first (children as they
/// were then; canonicalize them with `find` before comparing).
pub type Provenance = Arc<Mutex<Vec<(TensorLang, Symbol)>>>;

/// Why matches of a rule did not become applications, counted over a run.
#[derive(Debug, Default)]
pub struct ApplyCounts {
    /// A guard said no, or a `:let` function did not apply.
    pub guarded: AtomicUsize,
    /// The right-hand side did not type-check, or had another type than the match.
    pub ill_typed: AtomicUsize,
}

/// Builds the egg rewrite of `rule`; `counts` collects its rejected applications and
/// `provenance` the nodes it adds.
pub fn to_rewrite(
    rule: &DirectedRule,
    counts: Arc<ApplyCounts>,
    provenance: Provenance,
) -> Rewrite<TensorLang, ShapeAnalysis> {
    let mut applier = RuleApplier::new(rule, counts);
    applier.provenance = Some(provenance);
    let name = rule.name.as_str();
    if rule.is_multi() {
        let parts: Vec<(Var, PatternAst<TensorLang>)> =
            rule.lhs.iter().map(|(v, p)| (v.expect("multi-rules bind every part"), p.clone())).collect();
        Rewrite::new(name, MultiPattern::new(parts), applier).expect("rules are validated when parsed")
    } else {
        Rewrite::new(name, Pattern::new(rule.lhs[0].1.clone()), applier).expect("rules are validated when parsed")
    }
}

/// An argument of a guard or function, resolved once: literals get their class data
/// up front.
#[derive(Debug, Clone)]
enum ResolvedArg {
    Var(Var),
    Literal(ClassData),
}

/// The applier of a rule: lets, guards, type checks, then the right-hand sides.
pub struct RuleApplier {
    rhs: Side,
    lets: Vec<(Var, &'static Function, Vec<ResolvedArg>)>,
    guards: Vec<(&'static Guard, Vec<ResolvedArg>)>,
    counts: Arc<ApplyCounts>,
    provenance: Option<Provenance>,
}

impl RuleApplier {
    pub fn new(rule: &DirectedRule, counts: Arc<ApplyCounts>) -> Self {
        let lets = rule
            .lets
            .iter()
            .map(|(v, call)| (*v, functions::lookup(&call.name).expect("validated"), resolve(&call.args)))
            .collect();
        let guards = rule
            .guards
            .iter()
            .map(|call| (guards::lookup(&call.name).expect("validated"), resolve(&call.args)))
            .collect();
        RuleApplier { rhs: rule.rhs.clone(), lets, guards, counts, provenance: None }
    }

    /// The right-hand sides, each with the variable of the class it rewrites (`None`: the
    /// matched class).
    pub fn rhs(&self) -> &Side {
        &self.rhs
    }

    /// Binds the lets and checks the guards; `None` if the rule does not apply here.
    pub fn prepare(&self, egraph: &mut TensorEGraph, subst: &Subst) -> Option<Subst> {
        let mut subst = subst.clone();
        for (var, function, args) in &self.lets {
            let leaf = {
                let args = guard_args(egraph, &subst, args);
                (function.eval)(&args)?
            };
            let id = egraph.add(leaf);
            subst.insert(*var, id);
        }
        for (guard, args) in &self.guards {
            if !(guard.check)(&guard_args(egraph, &subst, args)) {
                return None;
            }
        }
        Some(subst)
    }
}

fn resolve(args: &[Arg]) -> Vec<ResolvedArg> {
    args.iter()
        .map(|a| match a {
            Arg::Var(v) => ResolvedArg::Var(*v),
            Arg::Leaf(leaf) => ResolvedArg::Literal(literal_data(leaf)),
        })
        .collect()
}

/// The class data a literal leaf would have.
pub fn literal_data(leaf: &TensorLang) -> ClassData {
    let meta = infer(leaf, &|_| unreachable!("leaves have no children"));
    ClassData { meta, facts: Default::default() }
}

fn guard_args<'a>(egraph: &'a TensorEGraph, subst: &Subst, args: &'a [ResolvedArg]) -> Vec<GuardArg<'a>> {
    args.iter()
        .map(|a| match a {
            ResolvedArg::Var(v) => {
                let id = egraph.find(subst[*v]);
                GuardArg { id: Some(id), data: &egraph[id].data }
            }
            ResolvedArg::Literal(data) => GuardArg { id: None, data },
        })
        .collect()
}

impl RuleApplier {
    /// Adds the pattern's instance, recording the new nodes' provenance.
    fn instantiate(
        &self,
        egraph: &mut TensorEGraph,
        pattern: &PatternAst<TensorLang>,
        subst: &Subst,
        rule: Symbol,
    ) -> Id {
        let mut ids: Vec<Id> = Vec::with_capacity(pattern.as_ref().len());
        let mut added = Vec::new();
        for node in pattern.as_ref() {
            let id = match node {
                ENodeOrVar::Var(v) => subst[*v],
                ENodeOrVar::ENode(n) => {
                    let n = egg::Language::map_children(n.clone(), |c| ids[usize::from(c)]);
                    if egraph.lookup(n.clone()).is_none() && !egg::Language::is_leaf(&n) {
                        added.push(n.clone());
                    }
                    egraph.add(n)
                }
            };
            ids.push(id);
        }
        if let Some(p) = &self.provenance {
            let mut p = p.lock().expect("provenance lock");
            p.extend(added.into_iter().map(|n| (n, rule)));
        }
        *ids.last().expect("patterns are not empty")
    }
}

/// The type a pattern instantiated under `subst` would have, without adding anything.
pub fn typecheck(egraph: &TensorEGraph, pattern: &PatternAst<TensorLang>, subst: &Subst) -> Result<Meta, String> {
    let mut metas: Vec<Meta> = Vec::with_capacity(pattern.as_ref().len());
    for node in pattern.as_ref() {
        let meta = match node {
            ENodeOrVar::Var(v) => {
                let id = subst.get(*v).ok_or_else(|| format!("{v} is unbound"))?;
                egraph[*id].data.meta.clone()?
            }
            ENodeOrVar::ENode(n) => infer(n, &|c| &metas[usize::from(c)])?,
        };
        metas.push(meta);
    }
    metas.pop().ok_or_else(|| "empty pattern".into())
}

impl Applier<TensorLang, ShapeAnalysis> for RuleApplier {
    fn apply_matches(&self, egraph: &mut TensorEGraph, matches: &[SearchMatches<TensorLang>], rule: Symbol) -> Vec<Id> {
        let mut changed = Vec::new();
        for m in matches {
            for subst in &m.substs {
                let Some(subst) = self.prepare(egraph, subst) else {
                    self.counts.guarded.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                // every part must type-check against its class before any is added
                let targets: Vec<Id> = self.rhs.iter().map(|(v, _)| v.map_or(m.eclass, |v| subst[v])).collect();
                let well_typed = self.rhs.iter().zip(&targets).all(|((_, pat), &target)| {
                    let want = egraph[target].data.meta();
                    matches!((typecheck(egraph, pat, &subst), want), (Ok(got), Some(want)) if &got == want)
                });
                if !well_typed {
                    self.counts.ill_typed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                for ((_, pat), target) in self.rhs.iter().zip(targets) {
                    let id = self.instantiate(egraph, pat, &subst, rule);
                    if egraph.union(target, id) {
                        changed.push(id);
                    }
                }
            }
        }
        changed
    }

    fn apply_one(
        &self,
        egraph: &mut TensorEGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<TensorLang>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let matches = [SearchMatches { eclass, substs: vec![subst.clone()], ast: None }];
        self.apply_matches(egraph, &matches, rule)
    }
}
