//! Calibration: this backend's own kernels timed on a grid of shapes, for the measured
//! CPU cost model ([`saturate_costmodels::measured`]).
//!
//! Each point of each grid is a one-kernel program, compiled as a model's would be and
//! timed for a few milliseconds on one thread; its time, less what an empty run costs,
//! over its units of work (FLOPs, elements, bytes, output·taps) is the grid's value
//! there. The grids:
//!
//! | kernel | grid | points |
//! |---|---|---|
//! | products with weights | M ∈ {1, 8, 64, 512, 4096}, N ∈ {16, 128, 1024, 4096}, K ∈ {16, 128, 1024} | 60 |
//! | convolutions: 1×1, 3×3, 3×3 by Winograd F(2×2) and F(4×4) | C, M ∈ {16, 64, 256}, H = W ∈ {7, 14, 28, 56} | 144 |
//! | elementwise ops in a loop | each f32 unary and binary op: a chain of 5 against a chain of 1 | 2 an op |
//! | fused-loop streams | 8 KB to 256 MB moved | 5 |
//! | copies (transpose of heads) | 24 KB to 50 MB moved | 5 |
//! | row kernels | 7 ops × rows of {16, 128, 1024} × {16 K, 256 K, 4 M} elements | 63 |
//! | windows | max and average pool, depthwise × 3×3, 5×5 × 32 channels of 14², 56², 112² | 18 |
//!
//! and two programs of tiny kernels for the cost of a launch and of a run. It takes
//! well under a minute and reports its progress to a callback (the CLI draws a bar).
//! The result is cached by [`host_model`], keyed by [`host`] and [`KERNELS_VERSION`].

use crate::bench::{measure, BenchOptions};
use crate::wide::Isa;
use crate::{compile, Kernels, Options};
use saturate_costmodels::measured::{winograd_grid, Grid, MeasuredCpu, Table, CONVOLUTION_GRIDS};
use saturate_costmodels::{cpu, CostModel};
use saturate_egraph::{sexp, BinaryOp, Graph, Tensor, UnaryOp};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The version of the backend's kernels: a hash of its sources at build time.
pub const KERNELS_VERSION: &str = env!("SATURATE_KERNELS_VERSION");

/// This host as the backend sees it: the CPU's name and the vector kernels it picks.
pub fn host() -> String {
    let isa = match Isa::detect() {
        Some(Isa::Avx512) => "avx512",
        Some(Isa::Avx2) => "avx2+fma",
        None => "f32x4",
    };
    format!("{} [{isa}]", cpu::cpu_name())
}

/// Where the measured table is cached: beside the roofline's calibration.
pub fn cache_path() -> PathBuf {
    cpu::cache_path().with_file_name("cpu-kernels.json")
}

/// The cached table, if it was measured on this host with these kernels and is whole.
pub fn cached() -> Option<Table> {
    let text = std::fs::read_to_string(cache_path()).ok()?;
    let table: Table = serde_json::from_str(&text).ok()?;
    (table.host == host() && table.kernels == KERNELS_VERSION && table.is_complete()).then_some(table)
}

/// The host's measured model: the cached table, or one measured now (and cached), with
/// `progress` told each point.
pub fn host_model(progress: &mut dyn FnMut(Progress)) -> Result<MeasuredCpu, String> {
    let roofline = cpu::host_model()?;
    let table = match cached() {
        Some(table) => table,
        None => {
            let table = calibrate(progress)?;
            save(&table)?;
            table
        }
    };
    Ok(MeasuredCpu::new(table, roofline))
}

/// The model of `target`: the measured one for `cpu`, the analytic ones for GPUs.
pub fn model_for(target: &str, progress: &mut dyn FnMut(Progress)) -> Result<Box<dyn CostModel>, String> {
    match target {
        "cpu" => Ok(Box::new(host_model(progress)?)),
        other => saturate_costmodels::model_for(other),
    }
}

/// Writes `table` to the cache (atomically: a concurrent reader sees the old file or
/// the new one).
pub fn save(table: &Table) -> Result<PathBuf, String> {
    let path = cache_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(table).map_err(|e| e.to_string())?;
    let partial = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&partial, text).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Where a calibration is.
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    /// The point being measured.
    pub what: &'a str,
}

/// How long each point is timed.
const PER_POINT: Duration = Duration::from_millis(25);

/// Times every grid point (see the [module docs](self)).
pub fn calibrate(progress: &mut dyn FnMut(Progress)) -> Result<Table, String> {
    let start = Instant::now();
    let mut clock = Stopwatch { done: 0, total: 0, progress };
    let plan = Plan::new();
    clock.total = plan.points() + 4;

    // what a run and a kernel cost, from programs of tiny kernels
    let run = clock.time("empty run", "(relu %x)", &[16])?;
    let one = clock.time("one kernel", &softmaxes(1), &[16])?;
    let nine = clock.time("nine kernels", &softmaxes(9), &[16])?;
    let launch = ((nine - one) / 8.0).max(0.0);
    let run_overhead = (run - launch).max(0.0);
    let base = run; // a program of one kernel doing (almost) nothing
    let per_unit = |t: f64, units: f64| (t - base).max(0.05 * t) / units;

    let mut products = Grid::new(plan.products.clone());
    for (i, p) in products.points().iter().enumerate() {
        let (m, n, k) = (p[0] as usize, p[1] as usize, p[2] as usize);
        let t =
            clock.time(&format!("product {m}×{k}·{k}×{n}"), &format!("(matmul %x (fill 0.01 [{k},{n}]))"), &[m, k])?;
        products.set(i, per_unit(t, 2.0 * (m * n * k) as f64));
    }

    let mut convolutions = BTreeMap::new();
    for kind in CONVOLUTION_KINDS {
        let side = kind.side();
        let mut grid = Grid::new(plan.convolutions(side));
        for (i, p) in grid.points().iter().enumerate() {
            let (m, hw, c) = (p[0] as usize, (p[1].sqrt().round()) as usize, p[2] as usize / (side * side));
            let t = clock.time(&format!("{} {c}→{m} on {hw}²", kind.label()), &kind.program(m, c), &[1, c, hw, hw])?;
            grid.set(i, per_unit(t, 2.0 * (m * hw * hw * c * side * side) as f64));
        }
        convolutions.insert(kind.name().to_string(), grid);
    }

    let mut elementwise = BTreeMap::new();
    let mut unmeasured = BTreeMap::new();
    let n = 8192; // in L1: the chain's arithmetic, not memory, sets its time
    for (name, op) in plan.elementwise_ops() {
        let once = clock.time(&format!("{name}, once"), &op.chain(1), &[n]);
        let five = clock.time(&format!("{name}, five times"), &op.chain(5), &[n]);
        match (once, five) {
            (Ok(once), Ok(five)) => {
                elementwise.insert(name.to_string(), ((five - once) / (4 * n) as f64).max(0.0));
            }
            (Err(e), _) | (_, Err(e)) => {
                unmeasured.insert(name.to_string(), e);
            }
        }
    }

    let mut streams = Grid::new(vec![plan.streams.iter().map(|&n| 8.0 * n as f64).collect()]);
    for (i, &n) in plan.streams.iter().enumerate() {
        let t = clock.time(&format!("a loop over {} elements", n), "(neg %x)", &[n])?;
        streams.set(i, per_unit(t, 8.0 * n as f64));
    }
    let mut copies = Grid::new(vec![plan.copies.iter().map(|&s| 8.0 * (s * 768) as f64).collect()]);
    for (i, &s) in plan.copies.iter().enumerate() {
        let t = clock.time(&format!("transpose of {s}×12×64"), "(transpose %x [1,0,2])", &[s, 12, 64])?;
        copies.set(i, per_unit(t, 8.0 * (s * 768) as f64));
    }

    let mut rows = BTreeMap::new();
    for &kind in ROW_KINDS {
        let mut grid = Grid::new(plan.rows.clone());
        for (i, p) in grid.points().iter().enumerate() {
            let (row, elements) = (p[0] as usize, p[1] as usize);
            let text = row_text(kind, row);
            let t = clock.time(&format!("{kind} over rows of {row}"), &text, &[elements / row, row])?;
            grid.set(i, per_unit(t, elements as f64));
        }
        rows.insert(kind.to_string(), grid);
    }

    let mut windows = BTreeMap::new();
    for kind in ["max_pool", "avg_pool", "depthwise"] {
        let mut grid = Grid::new(vec![vec![9.0, 25.0], plan.windows.iter().map(|&hw| (32 * hw * hw) as f64).collect()]);
        for (i, p) in grid.points().iter().enumerate() {
            let (side, hw) = (if p[0] < 10.0 { 3 } else { 5 }, ((p[1] / 32.0).sqrt().round()) as usize);
            let pad = side / 2;
            let window = format!("[{side},{side}] [1,1] [{pad},{pad},{pad},{pad}] [1,1]");
            let text = match kind {
                "max_pool" => format!("(max_pool %x {window} 0)"),
                "avg_pool" => format!("(avg_pool %x {window} 0 0)"),
                _ => format!(
                    "(conv %x (fill 0.1 [32,1,{side},{side}]) (fill 0.0 [32]) [1,1] [{pad},{pad},{pad},{pad}] [1,1] 32)"
                ),
            };
            let t = clock.time(&format!("{kind} {side}×{side} on {hw}²"), &text, &[1, 32, hw, hw])?;
            grid.set(i, per_unit(t, p[0] * p[1]));
        }
        windows.insert(kind.to_string(), grid);
    }

    let table = Table {
        host: host(),
        kernels: KERNELS_VERSION.to_string(),
        threads: 1,
        calibration_seconds: start.elapsed().as_secs_f64(),
        run_overhead,
        launch,
        products,
        convolutions,
        elementwise,
        unmeasured,
        streams,
        copies,
        rows,
        windows,
    };
    if !table.is_complete() {
        return Err("calibration produced an incomplete table (a kernel timed at zero?)".into());
    }
    Ok(table)
}

/// The row kernels the table measures.
const ROW_KINDS: &[&str] =
    &["softmax", "log_softmax", "layer_norm", "rms_norm", "reduce_sum", "reduce_mean", "reduce_max"];

fn row_text(kind: &str, row: usize) -> String {
    match kind {
        "layer_norm" => format!("(layer_norm %x (fill 1.5 [{row}]) (fill 0.25 [{row}]) 1 1e-5)"),
        "rms_norm" => format!("(rms_norm %x (fill 0.5 [{row}]) 1 1e-5)"),
        "softmax" | "log_softmax" => format!("({kind} %x 1)"),
        _ => format!("({kind} %x [1] 1)"),
    }
}

/// `k` softmaxes in a chain: `k` kernels that cannot fuse.
fn softmaxes(k: usize) -> String {
    (0..k).fold("%x".to_string(), |inner, _| format!("(softmax {inner} 0)"))
}

/// The grids' coordinates.
struct Plan {
    products: Vec<Vec<f64>>,
    streams: Vec<usize>,
    copies: Vec<usize>,
    rows: Vec<Vec<f64>>,
    windows: Vec<usize>,
}

const CHANNELS: [f64; 3] = [16.0, 64.0, 256.0];
const SIDES: [f64; 4] = [7.0, 14.0, 28.0, 56.0];

impl Plan {
    fn new() -> Plan {
        Plan {
            products: vec![
                vec![1.0, 8.0, 64.0, 512.0, 4096.0],
                vec![16.0, 128.0, 1024.0, 4096.0],
                vec![16.0, 128.0, 1024.0],
            ],
            streams: vec![1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 25],
            copies: vec![4, 32, 256, 2048, 8192],
            rows: vec![vec![16.0, 128.0, 1024.0], vec![16384.0, 262144.0, 4194304.0]],
            windows: vec![14, 56, 112],
        }
    }

    /// (output channels, positions, input channels × taps) of `side`×`side` kernels.
    fn convolutions(&self, side: usize) -> Vec<Vec<f64>> {
        let taps = (side * side) as f64;
        vec![CHANNELS.to_vec(), SIDES.iter().map(|s| s * s).collect(), CHANNELS.iter().map(|c| c * taps).collect()]
    }

    fn elementwise_ops(&self) -> Vec<(&'static str, Elementwise)> {
        let unary = UnaryOp::ALL.iter().filter(|op| op.desc().float.is_some() && op.desc().predicate.is_none());
        let binary = BinaryOp::ALL.iter().filter(|op| op.desc().float.is_some());
        unary
            .map(|&op| (op.desc().name, Elementwise::Unary(op)))
            .chain(binary.map(|&op| (op.desc().name, Elementwise::Binary(op))))
            .collect()
    }

    fn points(&self) -> usize {
        let grid = |axes: &[Vec<f64>]| axes.iter().map(Vec::len).product::<usize>();
        grid(&self.products)
            + CONVOLUTION_KINDS.len() * grid(&self.convolutions(1))
            + 2 * self.elementwise_ops().len()
            + self.streams.len()
            + self.copies.len()
            + ROW_KINDS.len() * grid(&self.rows)
            + 3 * 2 * self.windows.len()
    }
}

/// The convolutions timed, each over the grid of its kernel's side: the direct ones the
/// backend chooses for a `conv` (1×1 as a product; 3×3 by shifted taps or im2col), and
/// Winograd's two tiles, priced per FLOP of the direct convolution they stand for.
#[derive(Clone, Copy)]
enum ConvolutionKind {
    Pointwise,
    Spatial,
    Winograd(usize),
}

const CONVOLUTION_KINDS: [ConvolutionKind; 4] =
    [ConvolutionKind::Pointwise, ConvolutionKind::Spatial, ConvolutionKind::Winograd(2), ConvolutionKind::Winograd(4)];

impl ConvolutionKind {
    fn side(self) -> usize {
        match self {
            ConvolutionKind::Pointwise => 1,
            _ => 3,
        }
    }

    /// The grid's key in the table's `convolutions` (what the cost model looks up).
    fn name(self) -> &'static str {
        match self {
            ConvolutionKind::Pointwise => CONVOLUTION_GRIDS[0],
            ConvolutionKind::Spatial => CONVOLUTION_GRIDS[1],
            ConvolutionKind::Winograd(m) => winograd_grid(m).expect("calibration times tiles of 2 and 4"),
        }
    }

    fn label(self) -> String {
        match self {
            ConvolutionKind::Winograd(m) => format!("Winograd F({m}×{m},3×3)"),
            _ => format!("convolution {0}×{0}", self.side()),
        }
    }

    /// The one-kernel program over `%x` of `c` channels, with `m` output channels.
    fn program(self, m: usize, c: usize) -> String {
        let (side, pad) = (self.side(), self.side() / 2);
        let weights = format!("(fill 0.01 [{m},{c},{side},{side}])");
        match self {
            ConvolutionKind::Winograd(t) => {
                format!("(winograd_conv %x (winograd_weights {weights} {t}) (fill 0.0 [{m}]) [1,1,1,1] {t} act_id)")
            }
            _ => format!("(conv %x {weights} (fill 0.0 [{m}]) [1,1] [{pad},{pad},{pad},{pad}] [1,1] 1)"),
        }
    }
}

/// An elementwise op to time in chains.
#[derive(Clone, Copy)]
enum Elementwise {
    Unary(UnaryOp),
    Binary(BinaryOp),
}

impl Elementwise {
    /// The op applied `k` times in a chain to `%x` (and `%y`, the second operand of
    /// every binary one), its parameters at their defaults.
    fn chain(self, k: usize) -> String {
        (0..k).fold("%x".to_string(), |inner, _| match self {
            Elementwise::Unary(op) => {
                let params: String = op.desc().params.iter().map(|p| format!(" {:?}", p.default)).collect();
                format!("({} {inner}{params})", op.desc().name)
            }
            // exporters raise to constant powers, which the backend turns into
            // products; a cube stands for them
            Elementwise::Binary(BinaryOp::Pow) => format!("(pow {inner} (fill 3.0 []))"),
            Elementwise::Binary(op) => format!("({} {inner} %y)", op.desc().name),
        })
    }
}

/// Compiles and times one-kernel programs, counting them for the progress callback.
struct Stopwatch<'a> {
    done: usize,
    total: usize,
    progress: &'a mut dyn FnMut(Progress),
}

impl Stopwatch<'_> {
    /// The median seconds of a run of `expr` over `%x` (and `%y`, if it uses one) of
    /// `shape`, each filled with values in [0.1, 0.9].
    fn time(&mut self, what: &str, expr: &str, shape: &[usize]) -> Result<f64, String> {
        (self.progress)(Progress { done: self.done, total: self.total, what });
        self.done += 1;
        let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        let mut text = format!("(saturate-graph 1)\n(input %x f32 [{dims}])\n");
        if expr.contains("%y") {
            text += &format!("(input %y f32 [{dims}])\n");
        }
        text += &format!("(output \"out\" {expr})\n");
        let graph: Graph = sexp::parse(&text, what, None).map_err(|e| format!("{what}: {e}"))?;
        let inputs: Vec<Tensor> = graph.inputs.iter().enumerate().map(|(i, _)| filled(shape, i)).collect();
        let mut exe =
            compile(&graph, &Options { threads: 1, kernels: Kernels::Widest }).map_err(|e| format!("{what}: {e}"))?;
        let options = BenchOptions { warmup: 2, min_runs: 5, max_runs: 1_000_000, min_time: PER_POINT };
        let timing = measure(&mut exe, &inputs, &options).map_err(|e| format!("{what}: {e}"))?;
        Ok(timing.median_ms * 1e-3)
    }
}

/// A tensor of `shape` with values spread over [0.1, 0.9] (in every op's domain).
fn filled(shape: &[usize], seed: usize) -> Tensor {
    let numel: usize = shape.iter().product();
    let values: Vec<f32> =
        (0..numel).map(|i| 0.1 + 0.8 * (((i * 7919 + seed * 104729) % 1000) as f32 / 1000.0)).collect();
    Tensor::F32(ndarray::ArrayD::from_shape_vec(shape.to_vec(), values).expect("the shape holds numel elements"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grid_point_is_a_program_that_compiles() {
        let plan = Plan::new();
        for (name, op) in plan.elementwise_ops() {
            let text = format!(
                "(saturate-graph 1)\n(input %x f32 [4])\n(input %y f32 [4])\n(output \"out\" {})\n",
                op.chain(2)
            );
            if let Err(e) = sexp::parse(&text, name, None) {
                panic!("{name}: {e}\n{text}");
            }
        }
        for kind in ROW_KINDS {
            let text = format!("(saturate-graph 1)\n(input %x f32 [4,16])\n(output \"out\" {})\n", row_text(kind, 16));
            sexp::parse(&text, kind, None).unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        for kind in CONVOLUTION_KINDS {
            let text =
                format!("(saturate-graph 1)\n(input %x f32 [1,4,7,7])\n(output \"out\" {})\n", kind.program(8, 4));
            let graph = sexp::parse(&text, kind.name(), None).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
            let exe = compile(&graph, &Options::threads(1)).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
            let winograd = exe.convolution_algorithms().iter().any(|(name, _)| name.starts_with("winograd"));
            assert_eq!(winograd, matches!(kind, ConvolutionKind::Winograd(_)), "{}", kind.name());
        }
        let text = format!("(saturate-graph 1)\n(input %x f32 [16])\n(output \"out\" {})\n", softmaxes(3));
        let graph = sexp::parse(&text, "softmaxes", None).unwrap();
        assert_eq!(compile(&graph, &Options::threads(1)).unwrap().steps(), 3, "the softmaxes must stay three kernels");
    }

    #[test]
    fn the_version_changes_with_the_sources() {
        // the build script hashes the sources: a fixed string would never invalidate
        assert!(KERNELS_VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{KERNELS_VERSION}");
        assert_eq!(KERNELS_VERSION.len(), env!("CARGO_PKG_VERSION").len() + 17, "{KERNELS_VERSION}");
    }
}
