//! The engines `run` and `conformance` can use: the interpreter or the JIT.

use clap::ValueEnum;
use saturate_egraph::{Graph, Tensor};
use saturate_verify::conformance::EngineError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Engine {
    /// The reference interpreter (exact, slow).
    Interp,
    /// Compiled to native code with Cranelift (fast).
    Jit,
}

/// Computes `graph`'s outputs on `engine` (the JIT with `threads` threads).
pub fn run(engine: Engine, threads: usize, graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
    match engine {
        Engine::Interp => saturate_verify::conformance::interpreter(graph, inputs),
        Engine::Jit => {
            let options = saturate_backend::Options::threads(threads);
            let compiled = saturate_backend::compile(graph, &options).and_then(|mut exe| exe.run(inputs));
            compiled.map_err(|e| EngineError { unsupported: e.is_unsupported(), message: e.to_string() })
        }
    }
}
