//! `saturate ops`: the op table — every op of the language, and the ONNX ops that import.

use anyhow::Result;
use saturate_egraph::ops::{Desc, Kind};
use saturate_egraph::{desc_of, OPS};
use serde_json::json;
use std::process::ExitCode;

fn kind_name(d: Desc) -> &'static str {
    match d.kind() {
        Some(Kind::Source) => "source",
        Some(Kind::Elementwise) => "elementwise",
        Some(Kind::Reduction) => "reduction",
        Some(Kind::Normalization) => "normalization",
        Some(Kind::Window) => "window",
        Some(Kind::Layout) => "layout",
        Some(Kind::LinearAlgebra) => "linear algebra",
        None => "attribute",
    }
}

pub fn ops(json_out: bool) -> Result<ExitCode> {
    let rows: Vec<(&str, Desc)> = OPS.iter().map(|op| (*op, desc_of(op).expect("every op has a row"))).collect();
    if json_out {
        let ops: Vec<_> = rows
            .iter()
            .map(|(name, d)| {
                json!({"name": name, "kind": kind_name(*d), "onnx": d.onnx(), "fused": d.fused(), "children": d.roles().len()})
            })
            .collect();
        let out = json!({
            "ops": ops,
            "onnx_supported": *saturate_egraph::onnx::SUPPORTED_OPS,
            "onnx_import_only": saturate_egraph::onnx::IMPORT_ONLY,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} ops in the language (sources first):", rows.len());
    for (name, d) in &rows {
        let onnx = if d.onnx().is_empty() { "-".to_string() } else { d.onnx().join(", ") };
        let fused = if d.fused() { "  (fused: rewrite rules introduce it)" } else { "" };
        println!("  {name:<18} {:<15} ONNX: {onnx}{fused}", kind_name(*d));
    }
    println!(
        "\nONNX ops that import ({}): {}",
        saturate_egraph::onnx::SUPPORTED_OPS.len(),
        saturate_egraph::onnx::SUPPORTED_OPS.join(", ")
    );
    println!("of which import to several ops or to constants: {}", saturate_egraph::onnx::IMPORT_ONLY.join(", "));
    Ok(ExitCode::SUCCESS)
}
