//! # saturate-costmodels: what a program costs on a target
//!
//! A [`CostModel`] prices programs in seconds for one target. Extraction needs two
//! prices:
//!
//! - [`CostModel::node_cost`], per e-node, which extractors add up. It can only
//!   approximate fusion: an elementwise node pays its arithmetic, its reads and write,
//!   and either a launch (priced as running alone) or none (as fused into a neighbour);
//!   the optimizer extracts under both [`Pricing`]s. A node whose operands are all
//!   constants costs nothing, since it is computed once, at compile time.
//! - [`CostModel::program_cost`], for a whole extracted program, which groups
//!   elementwise chains as the backend will (one loop a group: it reads the group's inputs
//!   once, writes its outputs once, and launches once). Reports and the choice between
//!   candidate extractions use this one.
//!
//! ## Adding a model
//!
//! Most targets are a [`Roofline`]: a peak rate for GEMM-like kernels, one for
//! elementwise and reduction loops, a memory bandwidth, and a per-kernel launch overhead;
//! each kernel takes `max(flops / rate, bytes / bandwidth) + launch`. Implement
//! [`CostModel`] directly only for a target that this shape does not describe, and
//! register it in [`model_for`]. What an op costs in FLOPs and bytes is [`work`](mod@work),
//! shared by all models.
//!
//! - [`cpu`]: the host's roofline, with rates measured once and cached;
//! - [`measured`]: the host's measured model, the backend's own kernels timed on a grid
//!   of shapes (`saturate calibrate`) and interpolated — what `--target cpu` uses;
//! - [`gpu`]: V100 and H100, from their published peak rates and bandwidths.

pub mod cpu;
pub mod gpu;
pub mod measured;
pub mod program;

pub use measured::{MeasuredCpu, Table};
pub use program::{program_cost, program_cost_with, Fusion, Prices};
pub use saturate_egraph::work::{self, work, Kind, NodeInfo, Work};

use saturate_egraph::Graph;

/// Prices programs for one target, in seconds.
pub trait CostModel: Send + Sync {
    /// The target's name, as `--target` spells it.
    fn name(&self) -> &str;

    /// The parameters this model prices with.
    fn roofline(&self) -> &Roofline;

    /// The cost of one node, for extractors. `constant` says all its tensor operands are
    /// constants (then it runs at compile time and costs nothing). An elementwise node
    /// is priced as a loop of its own, launch included.
    fn node_cost(&self, info: &NodeInfo, constant: bool) -> f64 {
        self.node_cost_as(info, constant, Pricing::Alone)
    }

    /// [`node_cost`](Self::node_cost) with elementwise nodes priced either alone or as
    /// fused into a neighbour's loop (no launch). Neither is right for every node; the
    /// optimizer extracts with both and keeps the program whose whole-program cost is
    /// lower.
    fn node_cost_as(&self, info: &NodeInfo, constant: bool, pricing: Pricing) -> f64 {
        if constant {
            return 0.0;
        }
        let r = self.roofline();
        let w = work(info);
        match w.kind {
            Kind::Source | Kind::View => 0.0,
            Kind::Elementwise => {
                let launch = if pricing == Pricing::Alone { r.launch } else { 0.0 };
                r.kernel_time(w.flops, w.bytes_in + w.bytes_out, r.vector_flops, launch)
            }
            Kind::Copy | Kind::Reduction => r.kernel_time(w.flops, w.bytes_in + w.bytes_out, r.vector_flops, r.launch),
            Kind::Gemm => r.kernel_time(w.flops, w.bytes_in + w.bytes_out, r.gemm_flops, r.launch),
        }
    }

    /// The cost of a whole program, with elementwise chains grouped as the backend fuses
    /// them. Fails only on a graph that does not type-check.
    fn program_cost(&self, graph: &Graph) -> saturate_egraph::Result<f64> {
        program_cost(self.roofline(), graph)
    }
}

/// How per-node prices treat elementwise nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// As a loop of its own, with a launch: favours fused ops and short chains.
    Alone,
    /// As fused into a neighbour's loop, without a launch: favours sharing work between
    /// chains (merged products feeding several elementwise consumers).
    Fused,
}

/// The parameters of a roofline target.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Roofline {
    pub name: String,
    /// FLOP/s of matrix products and convolutions.
    pub gemm_flops: f64,
    /// FLOP/s of elementwise and reduction loops.
    pub vector_flops: f64,
    /// Memory bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Seconds to start one kernel.
    pub launch: f64,
}

impl Roofline {
    /// `max(flops / rate, bytes / bandwidth) + launch`.
    pub fn kernel_time(&self, flops: f64, bytes: f64, rate: f64, launch: f64) -> f64 {
        (flops / rate).max(bytes / self.bandwidth) + launch
    }
}

impl CostModel for Roofline {
    fn name(&self) -> &str {
        &self.name
    }

    fn roofline(&self) -> &Roofline {
        self
    }
}

/// The targets `--target` accepts.
pub const TARGETS: &[&str] = &["cpu", "gpu-v100", "gpu-h100"];

/// The model of a target: `cpu` (calibrated on this host, from the cache when there is
/// one), `gpu-v100`, `gpu-h100`.
pub fn model_for(target: &str) -> Result<Box<dyn CostModel>, String> {
    match target {
        "cpu" => Ok(Box::new(cpu::host_model()?)),
        "gpu-v100" => Ok(Box::new(gpu::v100())),
        "gpu-h100" => Ok(Box::new(gpu::h100())),
        other => Err(format!("unknown target `{other}`; targets are {}", TARGETS.join(", "))),
    }
}
