//! # saturate-egraph: the tensor IR
//!
//! This crate owns what a tensor program *is* in saturate:
//!
//! - [`TensorLang`] ([`lang`]): the operator language, an egg `define_language!` whose
//!   attributes are leaves;
//! - [`DType`], [`TensorType`] and [`Tensor`]: element types, static shapes, values;
//! - [`infer`]: the type rule of every op, and the e-class analysis built on it
//!   ([`analysis`]);
//! - [`Graph`] ([`graph`]): a program with named inputs, outputs and a weights table;
//! - import and export: ONNX models ([`onnx`]) and the S-expression graph format
//!   ([`sexp`]).
//!
//! Evaluation lives elsewhere (the reference interpreter in `saturate-verify`); import
//! folds constant subgraphs through the [`onnx::ConstantFolder`] it is given.

pub mod analysis;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod infer;
pub mod lang;
pub mod onnx;
pub mod ops;
pub mod sexp;
pub mod shape;
pub mod stats;
pub mod tensor;
pub mod winograd;
pub mod work;

pub use analysis::{ClassData, Facts, ShapeAnalysis, Sign, TensorEGraph};
pub use dtype::{f16, DType, Element};
pub use error::{Error, Result};
pub use graph::{Graph, GraphBuilder, Port};
pub use infer::Meta;
pub use lang::{desc_of, Activation, BinaryOp, Float, Name, TensorLang, UnaryOp, View, OPS};
pub use shape::{IntList, TensorType};
pub use tensor::Tensor;
pub use winograd::WinogradTile;

pub use egg::{Id, Language, RecExpr};
