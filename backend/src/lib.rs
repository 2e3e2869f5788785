//! The backend: an optimized [`Graph`] compiled to native code, and run.
//!
//! ```text
//! Graph ── lower ──► buffers + steps ── Cranelift ──► kernels ── memory plan ──► Executable
//! ```
//!
//! - [`lower`] walks the graph: each op knows how it runs (a generated loop, a view, a
//!   GEMM call), and elementwise ops are grouped into loops exactly as the cost model
//!   priced them ([`saturate_costmodels::Fusion`]);
//! - [`loops`] is the IR of one fused loop, and [`jit`] generates its code (f32x4 with a
//!   scalar tail, transcendental functions as polynomials in CLIF);
//! - [`wide`] runs fused f32 loops, row kernels and 2-D pools and depthwise convolutions on the host's
//!   widest vectors (AVX-512, AVX2) instead, where it has them;
//! - [`gemm`] runs matrix products through the `gemm` crate;
//! - [`memory`] places run-time buffers in one arena, reusing space by liveness;
//! - [`calibrate`] times the backend's own kernels on a grid of shapes, for the
//!   measured cost model;
//! - [`runtime`] runs the steps, splitting big loops across a team of spinning threads
//!   (`team.rs`), reading inputs and writing outputs where the caller holds them
//!   ([`Executable::run_into`]).
//!
//! Weights, and everything computed from them alone, are prepared once, at compile time.
//!
//! ```
//! use saturate_backend::{compile, Options};
//! use saturate_egraph::{sexp, Tensor};
//!
//! let graph = sexp::parse("(saturate-graph 1)\n(input %x f32 [5])\n(output \"y\" (relu (neg %x)))\n", "t", None).unwrap();
//! let mut exe = compile(&graph, &Options::threads(1)).unwrap();
//! let x = Tensor::F32(ndarray::arr1(&[-2.0f32, -1.0, 0.0, 1.0, 2.0]).into_dyn());
//! let y = exe.run(&[x]).unwrap();
//! assert_eq!(y[0].to_f32_vec(), vec![2.0, 1.0, 0.0, 0.0, 0.0]);
//! ```

pub mod bench;
pub mod calibrate;
pub mod error;
pub mod gather;
pub mod gemm;
pub mod jit;
pub mod loops;
pub mod lower;
pub mod memory;
pub mod plan;
pub mod rows;
pub mod runtime;
mod team;
pub mod wide;
pub mod window;

pub use error::BackendError;
pub use runtime::Executable;

use plan::BufferId;
use runtime::AlignedBuf;
use saturate_egraph::Graph;

/// How to compile.
#[derive(Debug, Clone)]
pub struct Options {
    /// Threads for loops and matrix products (1: all on the calling thread).
    pub threads: usize,
    /// Which code fused elementwise loops run.
    pub kernels: Kernels,
}

/// The code of fused elementwise loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The host's widest vectors (AVX-512, else AVX2 with FMA: [`wide`]) for the loops
    /// they implement, Cranelift's f32x4 loops for the rest and on other hosts.
    #[default]
    Widest,
    /// The AVX2 kernels even where the host has AVX-512 (so an AVX-512 host tests both),
    /// Cranelift's loops where it has neither.
    Avx2,
    /// Cranelift's loops only: the reference the wide kernels are checked against.
    Clif,
}

impl Kernels {
    /// The kernel kinds this host can run: for tests that check each against the
    /// interpreter.
    pub fn all_here() -> Vec<Kernels> {
        let mut kinds = vec![Kernels::Widest];
        if wide::Isa::detect() == Some(wide::Isa::Avx512) && wide::Isa::avx2() {
            kinds.push(Kernels::Avx2);
        }
        kinds.push(Kernels::Clif);
        kinds
    }
}

impl Default for Options {
    fn default() -> Self {
        Options { threads: std::thread::available_parallelism().map_or(1, |n| n.get()), kernels: Kernels::Widest }
    }
}

impl Options {
    /// The default options with `threads` threads.
    pub fn threads(threads: usize) -> Options {
        Options { threads, ..Default::default() }
    }

    /// For differential fuzzing: one thread, and the widest kernels, the AVX2 ones or
    /// Cranelift's loops depending on the graph (its size modulo 3), so a campaign checks
    /// each against the interpreter.
    pub fn for_fuzzing(graph: &Graph) -> Options {
        let kernels = [Kernels::Widest, Kernels::Avx2, Kernels::Clif][graph.expr.len() % 3];
        Options { threads: 1, kernels }
    }
}

/// Compiles `graph`: lowers it, generates its kernels, plans its memory and computes its
/// constant parts.
pub fn compile(graph: &Graph, options: &Options) -> Result<Executable, BackendError> {
    let wide = match options.kernels {
        Kernels::Widest => wide::Isa::detect(),
        Kernels::Avx2 => wide::Isa::avx2().then_some(wide::Isa::Avx2),
        Kernels::Clif => None,
    };
    let lowered = lower::lower(graph, wide)?;
    let code = lowered.jit.finish()?;
    let pinned_start: Vec<BufferId> = lowered.inputs.iter().map(|p| p.loc.buffer).collect();
    let pinned_end: Vec<BufferId> = lowered.outputs.iter().map(|p| p.loc.buffer).collect();
    let (offsets, arena_bytes) = memory::plan(&lowered.buffers, &lowered.steps, &pinned_start, &pinned_end);
    let (constants, constant_ptrs) = constant_buffers(&lowered.buffers, &lowered.initial);
    let threads = options.threads.max(1);
    let team =
        team::Team::new(threads).map_err(|e| BackendError::Codegen(format!("starting {threads} threads: {e}")))?;
    let external = runtime::external_buffers(&lowered.buffers, &lowered.steps, &lowered.inputs, &lowered.outputs);
    let mut arg_start = Vec::with_capacity(lowered.steps.len());
    let mut total_args = 0;
    for s in &lowered.steps {
        arg_start.push(total_args);
        total_args += s.args.len();
    }
    let mut exe = Executable {
        external,
        bases: vec![std::ptr::null_mut(); lowered.buffers.len()],
        args: vec![std::ptr::null_mut(); total_args],
        arg_start,
        code,
        steps: lowered.steps,
        buffers: lowered.buffers,
        offsets,
        constants,
        constant_ptrs,
        arena: AlignedBuf::zeroed(arena_bytes),
        inputs: lowered.inputs,
        outputs: lowered.outputs,
        team,
        threads,
        convolutions: lowered.convolutions,
    };
    exe.prepare_constants();
    if let Some(isa) = wide {
        exe.pack_weights(isa);
    }
    Ok(exe)
}

/// One allocation holding every constant buffer (each at an [`memory::ALIGN`]ed offset),
/// with the initial data written in, and each buffer's address (null for run-time ones).
fn constant_buffers(buffers: &[plan::Buffer], initial: &[(BufferId, Vec<u8>)]) -> (AlignedBuf, Vec<*mut u8>) {
    let mut offsets = Vec::with_capacity(buffers.len());
    let mut total = 0;
    for b in buffers {
        offsets.push(total);
        if b.constant {
            total += b.bytes.div_ceil(memory::ALIGN) * memory::ALIGN;
        }
    }
    let mut memory = AlignedBuf::zeroed(total);
    let bytes = memory.bytes_mut();
    for (id, data) in initial {
        if buffers[id.0].constant {
            bytes[offsets[id.0]..offsets[id.0] + data.len()].copy_from_slice(data);
        }
    }
    let base = memory.ptr();
    let ptrs = buffers
        .iter()
        .zip(&offsets)
        .map(|(b, &at)| if b.constant { base.wrapping_add(at) } else { std::ptr::null_mut() })
        .collect();
    (memory, ptrs)
}
