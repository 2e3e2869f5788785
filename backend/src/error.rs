//! What can go wrong when compiling or running a program.

/// A backend error: every variant says what to do or what is missing.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the JIT cannot run `{op}` (node {node}) yet; it runs: {supported}")]
    Unsupported { op: String, node: usize, supported: String },
    #[error(transparent)]
    Graph(#[from] saturate_egraph::Error),
    #[error("code generation failed: {0}")]
    Codegen(String),
    #[error("{0}")]
    Input(String),
}

impl BackendError {
    /// The graph uses something the JIT does not run (rather than something failing).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, BackendError::Unsupported { .. })
    }
}
