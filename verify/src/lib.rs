//! # saturate-verify: the oracle
//!
//! - [`interp`]: the reference interpreter, which defines what every op computes;
//! - [`load`]: loading models (`.onnx` or `.sexp`) with the interpreter as the constant
//!   folder of import;
//! - [`compare`]: the tolerance rule outputs are compared with;
//! - [`rulecheck`]: the rule checker, which evaluates both sides of every rewrite rule;
//! - [`suite`]: the model suite (Tensat's graphs, built here) that tests and benchmarks use;
//! - [`conformance`]: running the ONNX backend test data (node tests and the light model
//!   zoo) through the interpreter or a compiled engine;
//! - [`exports`]: the PyTorch export suite (torchvision and transformers models as
//!   `torch.onnx.export` writes them) against onnxruntime's outputs;
//! - [`peer`]: timing a model on onnxruntime or OpenVINO, for measured comparisons;
//! - [`fuzz`]: differential fuzzing of random graphs: compiled and optimized against the
//!   interpreter.

pub mod compare;
pub mod conformance;
pub mod exports;
pub mod fuzz;
pub mod interp;
pub mod load;
pub mod peer;
pub mod rng;
pub mod rulecheck;
pub mod suite;

pub use interp::{run, InterpError, Interpreter};
pub use load::{load_for_inputs, load_model, load_model_with_dims};
