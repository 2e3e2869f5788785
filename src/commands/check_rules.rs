//! `saturate check-rules`: the rule checker over rule files or the built-in library.

use anyhow::Result;
use saturate_rewrites::Library;
use saturate_verify::rulecheck;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

pub fn check_rules(files: &[PathBuf], instances: usize, seed: u64, only: Option<&str>, show: bool) -> Result<ExitCode> {
    let mut library = Library::default();
    if files.is_empty() {
        library = Library::builtin()?;
    }
    for f in files {
        library.add_file(f)?;
    }
    let rules: Vec<_> = library.rules.iter().filter(|r| only.is_none_or(|o| r.name.contains(o))).cloned().collect();
    let opts = rulecheck::CheckOptions { instances, seed, ..Default::default() };
    let start = Instant::now();
    let verdicts = rulecheck::check_rules(&rules, &opts);
    let (mut ok, mut bad, mut unchecked) = (0, 0, 0);
    for (rule, verdict) in rules.iter().zip(&verdicts) {
        match verdict {
            rulecheck::Verdict::Agrees { example, .. } => {
                ok += 1;
                if show {
                    println!("ok {} ({}:{}), for instance:\n{example}", rule.name, rule.file, rule.line);
                }
            }
            rulecheck::Verdict::Disagrees(cx) => {
                bad += 1;
                println!(
                    "UNSOUND {} ({}:{}): {}\ncounterexample:\n{}",
                    rule.name, rule.file, rule.line, cx.reason, cx.graph
                );
            }
            rulecheck::Verdict::Unchecked { instances, reason } => {
                unchecked += 1;
                println!(
                    "UNCHECKED {} ({}:{}): only {instances} instance(s) where it applies; last reason: {reason}",
                    rule.name, rule.file, rule.line
                );
            }
        }
    }
    println!(
        "{} rules: {ok} agree on ≥ {instances} instances, {bad} disagree, {unchecked} unchecked ({:.1} s)",
        rules.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(if bad + unchecked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
