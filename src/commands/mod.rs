//! One module a subcommand: each parses nothing (clap did) and prints what its crate
//! call returns.

pub mod bench;
pub mod check_rules;
pub mod conformance;
pub mod convert;
pub mod engine;
pub mod fuzz;
pub mod info;
pub mod optimize;
pub mod rules;
pub mod run;
