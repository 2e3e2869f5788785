//! `saturate info`: what a model is made of.

use anyhow::Result;
use saturate_egraph::onnx::Dims;
use saturate_egraph::stats::stats;
use std::path::Path;
use std::process::ExitCode;

pub fn info(model: &Path, dims: &Dims, json: bool) -> Result<ExitCode> {
    let graph = saturate_verify::load_model_with_dims(model, dims)?;
    let metas = graph.check()?;
    let s = stats(&graph)?;
    let ports = |ports: &[saturate_egraph::Port]| -> Vec<(String, String)> {
        ports.iter().map(|p| (p.name.clone(), graph.tensor_type(&metas, p.id).to_string())).collect()
    };
    let (inputs, outputs) = (ports(&graph.inputs), ports(&graph.outputs));
    let histogram = graph.op_histogram();
    if json {
        let obj = serde_json::json!({
            "model": model.display().to_string(),
            "inputs": inputs.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "outputs": outputs.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "ops": histogram,
            "op_count": s.ops,
            "weight_parameters": s.weight_params,
            "splat_parameters": s.fill_params,
            "flops": s.flops,
        });
        println!("{}", serde_json::to_string_pretty(&obj)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("model   {}", model.display());
    for (n, t) in &inputs {
        println!("input   {n}: {t}");
    }
    for (n, t) in &outputs {
        println!("output  {n}: {t}");
    }
    println!(
        "params  {} ({} in weights, {} in splat constants)",
        group_digits(s.weight_params + s.fill_params),
        group_digits(s.weight_params),
        group_digits(s.fill_params)
    );
    println!("flops   {} per run ({:.3} GFLOP)", group_digits(s.flops as usize), s.flops as f64 / 1e9);
    println!("ops     {} nodes", s.ops);
    let width = histogram.keys().map(String::len).max().unwrap_or(0);
    let mut by_count: Vec<_> = histogram.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (op, n) in by_count {
        println!("  {op:<width$}  {n}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
