//! # saturate-extract: from a saturated e-graph to the best program
//!
//! - [`costs`]: the cost of every e-node under a [`CostModel`](saturate_costmodels::CostModel);
//! - [`tree`], [`dag`], [`ilp`]: the three extractors: tree-greedy (shared subgraphs
//!   counted once per use), DAG-greedy (counted once: the default), and an exact ILP
//!   warm-started from DAG-greedy and bounded by a time limit;
//! - [`choice`]: a choice of one node per class, checked acyclic and built into a
//!   [`Graph`](saturate_egraph::Graph);
//! - [`optimize`](mod@optimize): the whole pipeline, saturation to report;
//! - [`measured`]: the clock's choice among the input and the candidates extraction found.

pub mod choice;
pub mod costs;
pub mod dag;
pub mod ilp;
pub mod measured;
pub mod optimize;
pub mod tree;

pub use choice::Choice;
pub use measured::{choose_by_clock, Measured, Rematch, Trial};
pub use optimize::{optimize, Candidate, ExtractorKind, OptimizeOptions, OptimizeReport};
