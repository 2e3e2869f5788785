//! The measured CPU model: what this backend's own kernels took on this host, on a grid
//! of shapes, interpolated.
//!
//! A roofline prices a kernel by its FLOPs and bytes at one peak rate each; the clock
//! disagrees wherever a kernel runs below its peak — a 1×1024 product (GEMV), a product
//! with K = 16, a softmax over rows of 16, an exp that costs forty times an add, a
//! transpose that strides through memory. A [`Table`] holds instead, per kernel kind,
//! the seconds it took per unit of work (a FLOP, an element, a byte, an output·tap) at
//! each point of a grid of shapes, and [`MeasuredCpu`] prices a node by looking its
//! shape up in the grid of its kind, interpolating between the points.
//!
//! The backend fills the table (`saturate calibrate`, which times its kernels;
//! `saturate_backend::calibrate`): this crate cannot compile programs, it only prices
//! them. The cache is keyed by the host (CPU model and the vector features the backend
//! picks its kernels by) and by a version of the backend's kernels, so a new machine or
//! a change to the backend measures again.
//!
//! ## How a node is priced
//!
//! | node | grid | unit |
//! |---|---|---|
//! | matmul, gemm, fused matmul | `products` over (M, N, K) | FLOP, times the batch |
//! | 1×1 convolution | `convolutions["pointwise"]` over (M, positions, C) | FLOP |
//! | other convolutions | `convolutions["spatial"]` over (M, positions, C·taps) | FLOP |
//! | Winograd convolution | `convolutions["winograd2"]`, `["winograd4"]` over (M, positions, C·9) | FLOP of the direct one |
//! | depthwise convolution, pools | `windows[op]` over (taps, outputs) | output·tap |
//! | softmax, norms, reductions | `rows[op]` over (row length, elements) | element |
//! | transpose, concat, slice, … | `copies` over (bytes moved) | byte |
//! | a fused elementwise loop | `streams` over (bytes moved), plus `elementwise[op]` a member | byte, element |
//!
//! Every kernel adds `launch`, every run `run_overhead`. Interpolation is multilinear in
//! the logarithms of the coordinates and of the cost, and clamps outside the grid.

use crate::program::{program_cost_with, Prices};
use crate::work::{work, Kind, NodeInfo, Work};
use crate::{CostModel, Pricing, Roofline};
use saturate_egraph::{Graph, Meta, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A cost per unit of work measured at the points of a grid: `axes[d]` holds the
/// coordinates along dimension `d` (ascending), `seconds` one value per point, the last
/// axis varying fastest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub axes: Vec<Vec<f64>>,
    pub seconds: Vec<f64>,
}

impl Grid {
    /// A grid over `axes` with every value zero, to be filled with [`set`](Self::set).
    pub fn new(axes: Vec<Vec<f64>>) -> Grid {
        let points = axes.iter().map(Vec::len).product();
        Grid { axes, seconds: vec![0.0; points] }
    }

    /// Every point's coordinates, in storage order.
    pub fn points(&self) -> Vec<Vec<f64>> {
        let mut points = vec![Vec::new()];
        for axis in &self.axes {
            points = points.iter().flat_map(|p| axis.iter().map(move |&x| [p.clone(), vec![x]].concat())).collect();
        }
        points
    }

    /// Sets the value of the `index`th point of [`points`](Self::points).
    pub fn set(&mut self, index: usize, seconds: f64) {
        self.seconds[index] = seconds;
    }

    /// Whether the grid has one positive, finite value per point (a table read from disk
    /// may not).
    pub fn is_complete(&self) -> bool {
        !self.axes.is_empty()
            && self
                .axes
                .iter()
                .all(|a| !a.is_empty() && a.iter().all(|&x| x > 0.0) && a.windows(2).all(|w| w[0] < w[1]))
            && self.seconds.len() == self.axes.iter().map(Vec::len).product::<usize>()
            && self.seconds.iter().all(|&s| s > 0.0 && s.is_finite())
    }

    /// The value at `at` (one coordinate per axis): multilinear between the
    /// surrounding points in log–log space, the nearest edge outside the grid.
    pub fn at(&self, at: &[f64]) -> f64 {
        // per axis: the lower neighbour and the weight of the upper one
        let cells: Vec<(usize, f64)> = self
            .axes
            .iter()
            .zip(at)
            .map(|(axis, &x)| {
                let x = x.max(f64::MIN_POSITIVE).ln();
                let logs: Vec<f64> = axis.iter().map(|a| a.ln()).collect();
                match logs.iter().rposition(|&a| a <= x) {
                    None => (0, 0.0),
                    Some(i) if i + 1 == logs.len() => (i, 0.0),
                    Some(i) => (i, (x - logs[i]) / (logs[i + 1] - logs[i])),
                }
            })
            .collect();
        let mut log_cost = 0.0;
        for corner in 0..1usize << cells.len() {
            let (mut index, mut weight) = (0, 1.0);
            for (d, &(i, t)) in cells.iter().enumerate() {
                let upper = corner >> d & 1 == 1;
                let coordinate = if upper { (i + 1).min(self.axes[d].len() - 1) } else { i };
                weight *= if upper { t } else { 1.0 - t };
                index = index * self.axes[d].len() + coordinate;
            }
            if weight > 0.0 {
                log_cost += weight * self.seconds[index].ln();
            }
        }
        log_cost.exp()
    }
}

/// The grids a complete table has in `convolutions` (a table without one is measured
/// again).
pub const CONVOLUTION_GRIDS: [&str; 4] = ["pointwise", "spatial", "winograd2", "winograd4"];

/// The key in `convolutions` of the grid of Winograd's F(m×m, 3×3), for m of 2 or 4.
pub fn winograd_grid(m: usize) -> Option<&'static str> {
    match m {
        2 => Some(CONVOLUTION_GRIDS[2]),
        4 => Some(CONVOLUTION_GRIDS[3]),
        _ => None,
    }
}

/// What this backend's kernels took on one host. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The CPU model and the vector features the backend chose its kernels by.
    pub host: String,
    /// The version of the backend's kernels it was measured with.
    pub kernels: String,
    /// Threads the kernels ran on.
    pub threads: usize,
    /// How long the calibration took.
    pub calibration_seconds: f64,
    /// Seconds to enter and leave a compiled program, once a run.
    pub run_overhead: f64,
    /// Seconds per kernel beyond its work.
    pub launch: f64,
    /// Seconds per FLOP of a matrix product with weights, over (M, N, K).
    pub products: Grid,
    /// Seconds per FLOP of a convolution, by algorithm: `pointwise` over (output
    /// channels, positions, input channels), `spatial` over (output channels, positions,
    /// input channels × taps).
    pub convolutions: BTreeMap<String, Grid>,
    /// Seconds per element of each elementwise op's arithmetic in a fused loop, beyond
    /// moving the loop's operands (the marginal cost of one more op in a chain).
    pub elementwise: BTreeMap<String, f64>,
    /// The elementwise ops that could not be measured, and why: priced by the roofline.
    #[serde(default)]
    pub unmeasured: BTreeMap<String, String>,
    /// Seconds per byte a fused loop reads and writes, over (bytes).
    pub streams: Grid,
    /// Seconds per byte a copy (transpose) reads and writes, over (bytes).
    pub copies: Grid,
    /// Seconds per element of a row kernel, by op, over (row length, elements).
    pub rows: BTreeMap<String, Grid>,
    /// Seconds per output·tap of a window kernel, by op, over (taps, outputs).
    pub windows: BTreeMap<String, Grid>,
}

impl Table {
    /// Whether every grid is complete and every number usable: a table read from disk
    /// that is not is measured again.
    pub fn is_complete(&self) -> bool {
        let mut grids = self.grids().peekable();
        grids.peek().is_some()
            && grids.all(Grid::is_complete)
            && CONVOLUTION_GRIDS.iter().all(|k| self.convolutions.contains_key(*k))
            && self.launch >= 0.0
            && self.run_overhead >= 0.0
            && self.elementwise.values().all(|s| *s >= 0.0 && s.is_finite())
    }

    /// The points measured, over all grids and ops.
    pub fn points(&self) -> usize {
        self.grids().map(|g| g.seconds.len()).sum::<usize>() + self.elementwise.len()
    }

    fn grids(&self) -> impl Iterator<Item = &Grid> {
        [&self.products, &self.streams, &self.copies]
            .into_iter()
            .chain(self.convolutions.values())
            .chain(self.rows.values())
            .chain(self.windows.values())
    }
}

/// The host's measured model: a [`Table`], and a roofline drawn from it for what the
/// table has no grid for (and for the optimizer's roofline variants).
#[derive(Debug, Clone)]
pub struct MeasuredCpu {
    pub table: Table,
    roofline: Roofline,
}

impl MeasuredCpu {
    /// The model of `table`; `roofline` prices what the table does not cover.
    pub fn new(table: Table, roofline: Roofline) -> MeasuredCpu {
        let launch = table.launch;
        MeasuredCpu { roofline: Roofline { launch, ..roofline }, table }
    }

    /// The seconds of a kernel that is not part of a fused loop, launch included.
    fn kernel_seconds(&self, info: &NodeInfo, w: &Work) -> f64 {
        let t = &self.table;
        let out = info.output.numel() as f64;
        let work = match info.node.view() {
            View::MatMul(_) | View::MatMulBiasAct(_) => {
                let (a, b) = (shape(info, 0), shape(info, 1));
                let m = if a.len() >= 2 { a[a.len() - 2] } else { 1 };
                let k = a.last().copied().unwrap_or(1);
                let n = if b.len() >= 2 { b[b.len() - 1] } else { 1 };
                let product = 2.0 * out * k as f64 * t.products.at(&[m as f64, n as f64, k as f64]);
                match info.node.view() {
                    // the bias and activation: one more pass over the product, in cache
                    View::MatMulBiasAct(_) => {
                        let bytes = 8.0 * out;
                        product
                            + out * (self.op_seconds("add") + self.activation_seconds(info, 3))
                            + bytes * t.streams.at(&[bytes])
                    }
                    _ => product,
                }
            }
            View::Gemm(_) => {
                let (m, n) =
                    (info.output.shape.first().copied().unwrap_or(1), info.output.shape.get(1).copied().unwrap_or(1));
                let k = if m * n > 0 { (w.flops / (2.0 * (m * n) as f64)).max(1.0) } else { 1.0 };
                w.flops * t.products.at(&[m as f64, n as f64, k])
            }
            View::Conv(_) | View::ConvBiasAct(_) => self.conv_seconds(info, w),
            View::WinogradConv(_) => self.winograd_seconds(info, w),
            View::Attention(_) => {
                // priced as its first product, queries · keysᵀ
                let (q, v) = (shape(info, 0), shape(info, 2));
                let at = |s: &[usize], back: usize| s.len().checked_sub(back).map_or(1, |i| s[i]) as f64;
                w.flops * t.products.at(&[at(&q, 2), at(&v, 2), at(&q, 1)])
            }
            View::MaxPool(_) | View::AvgPool(_) => {
                let name = if matches!(info.node.view(), View::MaxPool(_)) { "max_pool" } else { "avg_pool" };
                let taps = ints(info, 1).iter().product::<i64>().max(1) as f64;
                match t.windows.get(name) {
                    Some(g) => out * taps * g.at(&[taps, out]),
                    None => self.roofline_seconds(w) - t.launch,
                }
            }
            _ if w.kind == Kind::Reduction => self.row_seconds(info, w),
            _ if w.kind == Kind::Copy => {
                let bytes = w.bytes_in + w.bytes_out;
                bytes * t.copies.at(&[bytes.max(1.0)])
            }
            _ => self.roofline_seconds(w) - t.launch,
        };
        work + t.launch
    }

    /// A Winograd convolution at the rate calibrated for its tile, per FLOP of the direct
    /// convolution it stands for, over (M, positions, C·9) as a direct 3×3 one; an
    /// activation adds its arithmetic. (Pricing it from its parts, the (m+2)² products at
    /// the products' rate and its transforms as streams, missed what short products cost
    /// beyond their FLOPs: 36 calls of 4 columns over a 7×7 image took twice the direct
    /// form's time where it promised less.)
    fn winograd_seconds(&self, info: &NodeInfo, w: &Work) -> f64 {
        let grid = match info.children.get(4) {
            Some(Meta::Int(m)) => usize::try_from(*m).ok().and_then(winograd_grid),
            _ => None,
        };
        let (x, out) = (shape(info, 0), &info.output.shape);
        let (Some(grid), [_, c, _, _], [_, k, oh, ow]) = (grid, x.as_slice(), out.as_slice()) else {
            return self.roofline_seconds(w) - self.table.launch;
        };
        let outputs = info.output.numel() as f64;
        let direct_flops = 2.0 * outputs * (*c * 9) as f64;
        direct_flops * self.table.convolutions[grid].at(&[*k as f64, (oh * ow) as f64, (c * 9) as f64])
            + outputs * self.activation_seconds(info, 5)
    }

    fn conv_seconds(&self, info: &NodeInfo, w: &Work) -> f64 {
        let t = &self.table;
        let (x, weights, out) = (shape(info, 0), shape(info, 1), &info.output.shape);
        if x.len() < 3 || weights.len() < 3 || out.len() < 3 {
            return self.roofline_seconds(w) - t.launch;
        }
        let channels = x[1];
        let group = match info.children.get(6) {
            Some(Meta::Int(g)) if *g > 0 => *g as usize,
            _ => 1,
        };
        let (m, taps) = (weights[0], weights[2..].iter().product::<usize>());
        let positions: usize = out[2..].iter().product();
        if group == channels && m == group {
            let outputs = info.output.numel() as f64;
            return match t.windows.get("depthwise") {
                Some(g) => outputs * taps as f64 * g.at(&[taps as f64, outputs]),
                None => self.roofline_seconds(w) - t.launch,
            };
        }
        let (mg, cg) = ((m / group).max(1), (channels / group).max(1));
        let (kind, k) = if taps == 1 { ("pointwise", cg) } else { ("spatial", cg * taps) };
        let grid = &t.convolutions[kind];
        // the grid was measured with the bias pass; an activation adds its arithmetic
        let outputs = info.output.numel() as f64;
        w.flops * grid.at(&[mg as f64, positions as f64, k as f64]) + outputs * self.activation_seconds(info, 7)
    }

    /// Seconds per element of an elementwise op in a loop; the roofline's for one the
    /// table lacks.
    fn op_seconds(&self, name: &str) -> f64 {
        self.table.elementwise.get(name).copied().unwrap_or(1.0 / self.roofline.vector_flops)
    }

    /// Seconds per element of the activation that child `i` names (none: zero).
    fn activation_seconds(&self, info: &NodeInfo, i: usize) -> f64 {
        match info.children.get(i) {
            Some(Meta::Act(act)) => act.unary().map_or(0.0, |op| self.op_seconds(op.desc().name)),
            _ => 0.0,
        }
    }

    fn row_seconds(&self, info: &NodeInfo, w: &Work) -> f64 {
        let name = info.node.desc().name().unwrap_or("");
        let input = info.children.first().and_then(|m| m.tensor()).map_or(0.0, |t| t.numel() as f64);
        let out = info.output.numel() as f64;
        let (kind, row) = match name {
            "softmax" | "log_softmax" | "layer_norm" | "rms_norm" => {
                (name, info.output.shape.last().copied().unwrap_or(1) as f64)
            }
            "reduce_max" | "reduce_min" | "arg_max" | "arg_min" => ("reduce_max", input / out.max(1.0)),
            "reduce_sum" | "reduce_prod" | "cum_sum" => ("reduce_sum", input / out.max(1.0)),
            "reduce_mean" => ("reduce_mean", input / out.max(1.0)),
            _ => return self.roofline_seconds(w) - self.table.launch,
        };
        match self.table.rows.get(kind) {
            Some(g) => input.max(out) * g.at(&[row.max(1.0), input.max(out).max(1.0)]),
            None => self.roofline_seconds(w) - self.table.launch,
        }
    }

    fn roofline_seconds(&self, w: &Work) -> f64 {
        let r = &self.roofline;
        let rate = if w.kind == Kind::Gemm { r.gemm_flops } else { r.vector_flops };
        r.kernel_time(w.flops, w.bytes_in + w.bytes_out, rate, r.launch)
    }
}

fn shape(info: &NodeInfo, i: usize) -> Vec<usize> {
    info.children.get(i).and_then(|m| m.tensor()).map(|t| t.shape.clone()).unwrap_or_default()
}

fn ints(info: &NodeInfo, i: usize) -> Vec<i64> {
    match info.children.get(i) {
        Some(Meta::Ints(v)) => v.clone(),
        _ => Vec::new(),
    }
}

impl Prices for MeasuredCpu {
    fn kernel(&self, info: &NodeInfo, w: &Work, feeds_loop: bool) -> f64 {
        let seconds = self.kernel_seconds(info, w);
        // a convolution's bias pass (in its grid) moves into the loop that reads it
        let plain = match (info.node.view(), info.children.get(7)) {
            (View::Conv(_), _) => true,
            (View::ConvBiasAct(_), Some(Meta::Act(act))) => act.unary().is_none(),
            _ => false,
        };
        if feeds_loop && plain {
            let bytes = 8.0 * info.output.numel() as f64;
            return (seconds - bytes * self.table.streams.at(&[bytes])).max(0.5 * seconds);
        }
        seconds
    }

    fn loop_arithmetic(&self, info: &NodeInfo, w: &Work) -> f64 {
        let out = info.output.numel() as f64;
        match info.node.desc().name().and_then(|n| self.table.elementwise.get(n)) {
            Some(seconds) => out * seconds,
            None => w.flops / self.roofline.vector_flops,
        }
    }

    fn loop_time(&self, arithmetic: f64, bytes: f64) -> f64 {
        // the streams were measured with one op's arithmetic overlapping them, so the
        // arithmetic of the others adds
        bytes * self.table.streams.at(&[bytes.max(1.0)]) + arithmetic + self.table.launch
    }

    fn run_overhead(&self) -> f64 {
        self.table.run_overhead
    }
}

impl CostModel for MeasuredCpu {
    fn name(&self) -> &str {
        "cpu"
    }

    fn roofline(&self) -> &Roofline {
        &self.roofline
    }

    fn node_cost_as(&self, info: &NodeInfo, constant: bool, pricing: Pricing) -> f64 {
        if constant {
            return 0.0;
        }
        let w = work(info);
        match w.kind {
            Kind::Source | Kind::View => 0.0,
            Kind::Elementwise => {
                let bytes = w.bytes_in + w.bytes_out;
                let alone = self.loop_time(self.loop_arithmetic(info, &w), bytes);
                if pricing == Pricing::Alone {
                    alone
                } else {
                    alone - self.table.launch
                }
            }
            _ => self.kernel_seconds(info, &w),
        }
    }

    fn program_cost(&self, graph: &Graph) -> saturate_egraph::Result<f64> {
        program_cost_with(self, graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_returns_its_points_and_interpolates_between_them_in_log_space() {
        let mut g = Grid::new(vec![vec![1.0, 4.0], vec![10.0, 1000.0]]);
        for (i, p) in g.points().iter().enumerate() {
            g.set(i, p[0] * p[1]);
        }
        assert_eq!(g.points()[1], vec![1.0, 1000.0]);
        assert!((g.at(&[4.0, 10.0]) - 40.0).abs() < 1e-9);
        // log-linear: halfway in log x between 1 and 4 is 2, a product is exact there
        assert!((g.at(&[2.0, 100.0]) - 200.0).abs() < 1e-6, "{}", g.at(&[2.0, 100.0]));
        // outside the grid: the nearest edge
        assert!((g.at(&[0.5, 1e6]) - 1000.0).abs() < 1e-6);
        assert!((g.at(&[100.0, 1.0]) - 40.0).abs() < 1e-6);
        assert!(g.is_complete());
        g.set(0, f64::NAN);
        assert!(!g.is_complete());
    }

    /// A table with one value a grid: every FLOP, byte and element costs the same.
    fn flat(products: f64, stream: f64, exp: f64) -> MeasuredCpu {
        let grid = |s: f64, dims: usize| Grid { axes: vec![vec![1.0]; dims], seconds: vec![s] };
        let by = |names: &[&str], g: Grid| names.iter().map(|n| (n.to_string(), g.clone())).collect();
        let table = Table {
            host: "test".into(),
            kernels: "test".into(),
            threads: 1,
            calibration_seconds: 0.0,
            run_overhead: 1e-6,
            launch: 1e-7,
            products: grid(products, 3),
            convolutions: [("winograd2", 3.0), ("winograd4", 1.0), ("pointwise", 2.0), ("spatial", 2.0)]
                .map(|(name, per_flop)| (name.to_string(), grid(per_flop * products, 3)))
                .into(),
            elementwise: [("exp".to_string(), exp), ("neg".to_string(), 0.0)].into(),
            unmeasured: BTreeMap::new(),
            streams: grid(stream, 1),
            copies: grid(3.0 * stream, 1),
            rows: by(&["softmax"], grid(1e-9, 2)),
            windows: by(&["depthwise"], grid(5e-10, 2)),
        };
        let roofline =
            Roofline { name: "cpu".into(), gemm_flops: 1e11, vector_flops: 1e10, bandwidth: 1e10, launch: 1e-6 };
        MeasuredCpu::new(table, roofline)
    }

    fn cost(model: &MeasuredCpu, text: &str) -> f64 {
        model.program_cost(&saturate_egraph::sexp::parse(text, "t", None).unwrap()).unwrap()
    }

    #[test]
    fn kernels_cost_what_their_grid_says() {
        let m = flat(1e-11, 1e-10, 2e-9);
        let header = "(saturate-graph 1)\n(input %x f32 [1000])\n";
        let (neg, exp) = (
            cost(&m, &format!("{header}(output \"y\" (neg %x))\n")),
            cost(&m, &format!("{header}(output \"y\" (exp (neg %x)))\n")),
        );
        // one loop either way, moving 8000 bytes; exp adds its arithmetic
        assert!((neg - (1e-6 + 1e-7 + 8000.0 * 1e-10)).abs() < 1e-12, "{neg}");
        assert!((exp - neg - 1000.0 * 2e-9).abs() < 1e-12, "{exp} vs {neg}");

        let product =
            "(saturate-graph 1)\n(input %a f32 [8,16])\n(input %b f32 [16,32])\n(output \"y\" (matmul %a %b))\n";
        assert!((cost(&m, product) - (1e-6 + 1e-7 + 2.0 * 8.0 * 16.0 * 32.0 * 1e-11)).abs() < 1e-12);

        let depthwise = "(saturate-graph 1)\n(input %x f32 [1,4,5,5])\n(input %w f32 [4,1,3,3])\n(input %b f32 [4])\n\
            (output \"y\" (conv %x %w %b [1,1] [1,1,1,1] [1,1] 4))\n";
        assert!((cost(&m, depthwise) - (1e-6 + 1e-7 + 100.0 * 9.0 * 5e-10)).abs() < 1e-12, "{}", cost(&m, depthwise));
        let dense = depthwise.replace("[4,1,3,3]", "[4,4,3,3]").replace(" 4))", " 1))");
        assert!((cost(&m, &dense) - (1e-6 + 1e-7 + (2.0 * 4.0 * 25.0 * 36.0 + 100.0) * 2e-11)).abs() < 1e-12);
        // Winograd at its tile's rate per FLOP of the direct convolution; its weights free
        for (tile, per_flop) in [(2, 3e-11), (4, 1e-11)] {
            let winograd = dense.replace(
                "(conv %x %w %b [1,1] [1,1,1,1] [1,1] 1)",
                &format!(
                    "(winograd_conv %x (winograd_weights (fill 0.5 [4,4,3,3]) {tile}) %b [1,1,1,1] {tile} act_id)"
                ),
            );
            let want = 1e-6 + 1e-7 + 2.0 * 4.0 * 25.0 * 36.0 * per_flop;
            assert!((cost(&m, &winograd) - want).abs() < 1e-12, "F({tile}): {} vs {want}", cost(&m, &winograd));
        }
    }

    #[test]
    fn a_one_point_axis_is_a_constant_along_it() {
        let g = Grid { axes: vec![vec![8.0], vec![1.0, 2.0]], seconds: vec![3.0, 6.0] };
        assert!((g.at(&[1e9, 2.0]) - 6.0).abs() < 1e-9);
        assert!((g.at(&[1.0, 1.5]) - 3.0 * 1.5).abs() < 1e-9);
    }
}
