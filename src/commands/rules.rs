//! `saturate rules`: the loaded rules, guards and functions.

use super::optimize::OptimizeArgs;
use anyhow::Result;
use saturate_rewrites::{functions::FUNCTIONS, guards::GUARDS};
use serde_json::json;
use std::process::ExitCode;

pub fn rules(args: &OptimizeArgs, json_out: bool, guards: bool, functions: bool) -> Result<ExitCode> {
    if guards || functions {
        if guards {
            println!("guards (for :when):");
            for g in GUARDS {
                println!("  {:<22} {}", g.name, g.doc);
            }
        }
        if functions {
            println!("functions (for :let):");
            for f in FUNCTIONS {
                println!("  {:<26} {}", f.name, f.doc);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let library = args.library()?;
    if json_out {
        let rules: Vec<_> = library
            .rules
            .iter()
            .map(|r| {
                json!({
                    "name": r.name, "theme": r.theme, "file": r.file, "line": r.line,
                    "lhs": r.lhs_text(), "rhs": r.rhs_text(), "multi": r.is_multi(),
                    "guards": r.guards.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
                    "lets": r.lets.iter().map(|(v, c)| format!("{v} = {c}")).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rules)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &library.rules {
        let mut line = format!("{:<24} {:<44} {}  →  {}", r.theme, r.name, r.lhs_text(), r.rhs_text());
        for (v, c) in &r.lets {
            line.push_str(&format!("  :let {v} {c}"));
        }
        for g in &r.guards {
            line.push_str(&format!("  :when {g}"));
        }
        println!("{line}");
    }
    println!("\n{} directed rules:", library.len());
    for (theme, n) in library.count_by_theme() {
        println!("  {theme:<24} {n}");
    }
    Ok(ExitCode::SUCCESS)
}
