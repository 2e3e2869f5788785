//! Saturation benchmark: for each of Tensat's seven graphs, saturate + extract time and
//! the estimated speedup on the cpu and gpu-v100 models, next to Tensat's published
//! search times and (measured, V100) speedups. Medians of several runs.
//!
//! Speedup is as Tensat reports it, `before / after - 1`, here on the cost model's
//! estimates; the cost reduction `1 - after / before` is printed too.
//!
//! Run: `cargo bench --bench saturation` (add `-- --runs N` for more runs).

use saturate_costmodels::{gpu, CostModel};
use saturate_egraph::Graph;
use saturate_extract::{optimize, OptimizeOptions};
use saturate_rewrites::Library;
use saturate_verify::{conformance, load_model, suite};

/// Tensat (MLSys'21), GPU: search seconds and speedup over the original graph.
const TENSAT: &[(&str, f64, f64)] = &[
    ("bert", 1.4, 9.2),
    ("nasrnn", 0.5, 68.9),
    ("resnext50", 0.7, 8.8),
    ("nasnet_a", 10.6, 7.3),
    ("inception_v3", 5.1, 10.0),
    ("squeezenet", 0.3, 24.5),
    ("vgg19", 0.4, 8.9),
];

/// Tensat's rule count: 124 single-pattern and 15 multi-pattern rules.
const TENSAT_RULES: usize = 139;

fn model(name: &str) -> Graph {
    match name {
        "squeezenet" | "vgg19" => {
            let dir = conformance::data_dir();
            conformance::require_data(&dir).expect("run scripts/fetch-onnx-data first");
            load_model(&dir.join("light").join(format!("light_{name}.onnx"))).unwrap()
        }
        other => suite::load(other).unwrap(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args().skip_while(|a| a != "--runs").nth(1).and_then(|n| n.parse().ok()).unwrap_or(3);
    let library = Library::builtin().expect("built-in rules");
    let cpu_model = saturate_backend::calibrate::host_model(&mut |_| {}).expect("cpu calibration");
    let models: [(&str, Box<dyn CostModel>); 2] = [("cpu", Box::new(cpu_model)), ("gpu-v100", Box::new(gpu::v100()))];
    println!(
        "saturate: {} directed rules ({} multi-pattern); Tensat: {TENSAT_RULES} ({:.1}× as many here)",
        library.len(),
        library.rules.iter().filter(|r| r.is_multi()).count(),
        library.len() as f64 / TENSAT_RULES as f64
    );
    println!("median of {runs} runs; speedup = before / after - 1 of the models' estimated cost (cost reduction in brackets)\n");
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8} {:>16} {:>16} {:>9} {:>9}",
        "graph", "e-nodes", "classes", "cpu s", "gpu s", "cpu speedup", "gpu speedup", "Tensat s", "Tensat %"
    );
    let mut faster_everywhere = true;
    for &(name, tensat_s, tensat_pct) in TENSAT {
        let graph = model(name);
        let mut row = Vec::new();
        let mut size = (0, 0);
        for (_, m) in &models {
            let mut times = Vec::new();
            let mut ratio = 1.0;
            for _ in 0..runs {
                let (_, report) =
                    optimize(&graph, &library, m.as_ref(), &OptimizeOptions::default(), |_| {}).expect("optimize");
                times.push(report.saturate_seconds + report.extract_seconds);
                ratio = report.cost_before / report.cost_after;
                size = (report.saturation.nodes, report.saturation.classes);
            }
            row.push((median(times), ratio));
        }
        faster_everywhere &= row.iter().all(|(t, _)| *t < tensat_s);
        let speedup = |ratio: f64| format!("{:.1}% ({:.1}%)", 100.0 * (ratio - 1.0), 100.0 * (1.0 - 1.0 / ratio));
        println!(
            "{:<14} {:>8} {:>8} {:>8.3} {:>8.3} {:>16} {:>16} {:>9.1} {:>8.1}%",
            name,
            size.0,
            size.1,
            row[0].0,
            row[1].0,
            speedup(row[0].1),
            speedup(row[1].1),
            tensat_s,
            tensat_pct
        );
    }
    println!(
        "\nsearch faster than Tensat's on every graph (both targets): {}",
        if faster_everywhere { "yes" } else { "no" }
    );
}
