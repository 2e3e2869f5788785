//! The rule scheduler: exponential backoff (as egg's `BackoffScheduler`), with the
//! search of all rules run in parallel on rayon's pool.
//!
//! Searching is read-only on the e-graph, so every rule that is not banned searches
//! at once through egg's `RewriteScheduler::search_rewrites` hook; applying the matches
//! stays sequential. A rule that matches more than its limit in one iteration is banned
//! for a while, and its limit and ban double each time: explosive rules (reassociation,
//! commutation) get a fair share instead of all of it.

use egg::{EGraph, Rewrite, RewriteScheduler, RunnerLimits, RunnerResult, SearchMatches, Symbol};
use rayon::prelude::*;
use saturate_egraph::{ShapeAnalysis, TensorLang};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, Default)]
struct RuleStats {
    banned_until: usize,
    times_banned: usize,
}

/// Backoff scheduling with parallel search.
#[derive(Debug, Clone)]
pub struct ParallelBackoff {
    /// Matches a rule may have in one iteration before it is banned (doubles per ban).
    pub match_limit: usize,
    /// Iterations of the first ban (doubles per ban).
    pub ban_length: usize,
    /// Search rules on several threads.
    pub parallel: bool,
    stats: HashMap<Symbol, RuleStats>,
    /// How many times each rule was banned.
    pub bans: HashMap<Symbol, usize>,
    /// Multi-pattern rules, which run only in the first `multi_iterations` iterations:
    /// each merge of parallel ops enables merges of the merged ones, combinatorially
    /// (Tensat's k_multi).
    multi: HashSet<Symbol>,
    multi_iterations: usize,
}

impl ParallelBackoff {
    pub fn new(match_limit: usize, ban_length: usize, parallel: bool) -> Self {
        ParallelBackoff {
            match_limit,
            ban_length,
            parallel,
            stats: HashMap::new(),
            bans: HashMap::new(),
            multi: HashSet::new(),
            multi_iterations: usize::MAX,
        }
    }

    /// Runs the rules named in `multi` only during the first `iterations` iterations.
    pub fn with_multi_rules(mut self, multi: impl IntoIterator<Item = Symbol>, iterations: usize) -> Self {
        self.multi = multi.into_iter().collect();
        self.multi_iterations = iterations;
        self
    }
}

impl Default for ParallelBackoff {
    fn default() -> Self {
        ParallelBackoff::new(1_000, 3, true)
    }
}

type Graph = EGraph<TensorLang, ShapeAnalysis>;

impl RewriteScheduler<TensorLang, ShapeAnalysis> for ParallelBackoff {
    fn can_stop(&mut self, iteration: usize) -> bool {
        // saturated with rules still banned: lift the nearest ban instead of stopping
        let nearest = self.stats.values().filter(|s| s.banned_until > iteration).map(|s| s.banned_until).min();
        match nearest {
            None => true,
            Some(until) => {
                let delta = until - iteration;
                for s in self.stats.values_mut().filter(|s| s.banned_until > iteration) {
                    s.banned_until -= delta;
                }
                false
            }
        }
    }

    fn search_rewrites<'a>(
        &mut self,
        iteration: usize,
        egraph: &Graph,
        rewrites: &[&'a Rewrite<TensorLang, ShapeAnalysis>],
        limits: &RunnerLimits,
    ) -> RunnerResult<Vec<Vec<SearchMatches<'a, TensorLang>>>> {
        let thresholds: Vec<Option<usize>> = rewrites
            .iter()
            .map(|rw| {
                if iteration >= self.multi_iterations && self.multi.contains(&rw.name) {
                    return None;
                }
                let s = self.stats.entry(rw.name).or_default();
                (iteration >= s.banned_until)
                    .then(|| self.match_limit.checked_shl(s.times_banned as u32).unwrap_or(usize::MAX))
            })
            .collect();
        let search = |(rw, limit): (&&'a Rewrite<TensorLang, ShapeAnalysis>, &Option<usize>)| match limit {
            Some(limit) => rw.search_with_limit(egraph, limit.saturating_add(1)),
            None => Vec::new(),
        };
        let found: Vec<Vec<SearchMatches<'a, TensorLang>>> = if self.parallel {
            rewrites.par_iter().zip(thresholds.par_iter()).map(search).collect()
        } else {
            rewrites.iter().zip(thresholds.iter()).map(search).collect()
        };
        let mut result = Vec::with_capacity(found.len());
        for ((rw, limit), matches) in rewrites.iter().zip(&thresholds).zip(found) {
            let total: usize = matches.iter().map(|m| m.substs.len()).sum();
            match limit {
                Some(limit) if total > *limit => {
                    let s = self.stats.get_mut(&rw.name).expect("stats were created above");
                    s.banned_until = iteration + (self.ban_length << s.times_banned);
                    s.times_banned += 1;
                    *self.bans.entry(rw.name).or_default() += 1;
                    result.push(Vec::new());
                }
                _ => result.push(matches),
            }
        }
        limits.check_limits(iteration, egraph)?;
        Ok(result)
    }
}
