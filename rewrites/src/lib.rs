//! # saturate-rewrites: the rule library and equality saturation
//!
//! Rules are data. A researcher adds a rule by adding a line to a `.rules` file in
//! `rewrites/rules/` (embedded at build time, one file a theme) or by passing a file of
//! their own; no recompile. Rust code is only for the named guards ([`guards`]) and
//! attribute functions ([`functions`]) rule files call.
//!
//! - [`rule`]: the rule-file syntax and its parser;
//! - [`guards`], [`functions`]: what `:when` and `:let` can call;
//! - [`apply`]: rules as egg rewrites, with every application type-checked;
//! - [`library`]: the built-in library and user files;
//! - [`schedule`]: backoff scheduling with parallel search;
//! - [`saturate`](mod@saturate): running it all on a graph.
//!
//! `rewrites/rules/README.md` explains how to write rules that do not blow up the
//! e-graph.

pub mod apply;
pub mod functions;
pub mod guards;
pub mod library;
pub mod rule;
pub mod saturate;
pub mod schedule;

pub use library::Library;
pub use rule::{DirectedRule, RuleError};
pub use saturate::{egraph_of, saturate, Limits, Saturated, SaturationReport};
