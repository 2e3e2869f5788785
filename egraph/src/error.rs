//! The errors of loading and checking graphs. Each says what is wrong and where
//! (file, node, line), because the people who see them are debugging a model.

use std::path::PathBuf;

/// Why a model or graph could not be loaded, saved or checked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },

    #[error("{path} is not a valid ONNX file: {reason}")]
    Decode { path: PathBuf, reason: String },

    #[error("node `{node}` uses op `{op}`{domain}, which saturate does not support.\nSupported ONNX ops: {supported}")]
    UnsupportedOp { op: String, domain: String, node: String, supported: String },

    #[error("node `{node}` ({op}): {what} is not supported")]
    Unsupported { node: String, op: String, what: String },

    #[error(
        "tensor `{tensor}` has element type {dtype}, which saturate does not support (it supports FLOAT, DOUBLE, FLOAT16, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32 and BOOL)"
    )]
    UnsupportedType { tensor: String, dtype: String },

    #[error("node `{node}` ({op}) needs input `{input}` to be a constant: saturate compiles for static shapes, so shapes, axes and sizes must be known before running")]
    NeedsConstant { node: String, op: String, input: String },

    #[error("input `{tensor}`: dimension `{dim}` is symbolic; give its size with --dim {dim}=N (run and bench also take it from the inputs given)")]
    UnboundDim { tensor: String, dim: String },

    #[error("node `{node}` reads tensor `{tensor}`, which no node, graph input or initializer produces")]
    MissingTensor { node: String, tensor: String },

    #[error("the graph has a cycle: {nodes} depend on each other")]
    Cycle { nodes: String },

    #[error("initializer `{name}`: raw_data holds {got} bytes, but {ty} needs {expected}")]
    RawDataLength { name: String, ty: String, expected: usize, got: usize },

    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },

    #[error("node `{node}` ({op}): {reason}")]
    Shape { node: String, op: String, reason: String },

    #[error("{file}:{line}: {reason}")]
    Syntax { file: String, line: usize, reason: String },

    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// True when the model is valid ONNX but uses something saturate does not support
    /// (an op, an element type, an attribute value), as opposed to a broken model.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Error::UnsupportedOp { .. }
                | Error::Unsupported { .. }
                | Error::UnsupportedType { .. }
                | Error::NeedsConstant { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
