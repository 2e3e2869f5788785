//! The rule library: every built-in rule passes the rule checker, known-unsound rules are
//! rejected, and the library meets its size by theme.

mod support;

use saturate_rewrites::Library;
use saturate_verify::rulecheck::{check_rules, CheckOptions, Verdict};
use support::*;

#[test]
fn every_builtin_rule_agrees_with_the_interpreter() {
    let library = Library::builtin().expect("the built-in rules parse");
    // two seeds: different shapes, attributes and values for every rule
    for seed in [0x5A7, 2026] {
        let opts = CheckOptions { seed, ..Default::default() };
        let verdicts = check_rules(&library.rules, &opts);
        let problems: Vec<String> = library
            .rules
            .iter()
            .zip(&verdicts)
            .filter_map(|(rule, v)| match v {
                Verdict::Agrees { instances, .. } if *instances >= 5 => None,
                Verdict::Agrees { instances, .. } => Some(format!("{}: only {instances} instances", rule.name)),
                Verdict::Disagrees(cx) => Some(format!("{} disagrees: {}\n{}", rule.name, cx.reason, cx.graph)),
                Verdict::Unchecked { instances, reason } => {
                    Some(format!("{}: unchecked ({instances} instances): {reason}", rule.name))
                }
            })
            .collect();
        assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    }
}

#[test]
fn known_unsound_rules_are_rejected_by_name() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/unsound.rules");
    let mut library = Library::default();
    library.add_file(&path).unwrap();
    assert!(library.len() >= 13);
    let verdicts = check_rules(&library.rules, &CheckOptions::default());
    for (rule, verdict) in library.rules.iter().zip(&verdicts) {
        assert!(matches!(verdict, Verdict::Disagrees(_)), "{} was not rejected: {verdict:?}", rule.name);
    }

    let out = saturate(&["check-rules", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = stdout(&out);
    for rule in &library.rules {
        assert!(text.contains(&format!("UNSOUND {} ", rule.name)), "{} not reported:\n{text}", rule.name);
    }
    assert!(text.contains("counterexample:") && text.contains("(output \"lhs_0\""), "{text}");
}

#[test]
fn the_library_has_the_rules_each_theme_needs() {
    let library = Library::builtin().unwrap();
    let mut by_category = std::collections::BTreeMap::new();
    for (theme, n) in library.count_by_theme() {
        let category = theme.split('-').next().unwrap().to_string();
        *by_category.entry(category).or_insert(0) += n;
    }
    let need = [("algebra", 100), ("layout", 40), ("linalg", 50), ("conv", 40), ("fusion", 40), ("multi", 10)];
    for (category, minimum) in need {
        let have = by_category.get(category).copied().unwrap_or(0);
        assert!(have >= minimum, "{category}: {have} rules, need {minimum}");
    }
    assert!(library.len() >= 300, "{} directed rules", library.len());
    let multi = library.rules.iter().filter(|r| r.is_multi()).count();
    assert!(multi >= 10, "{multi} multi-pattern rules");
}

#[test]
fn rule_file_errors_name_file_line_and_rule() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("mine.rules");
    std::fs::write(&path, "(rewrite ok (relu (relu ?x)) (relu ?x))\n\n(rewrite broken (relu ?x) (frobnicate ?x))\n")
        .unwrap();
    let out = saturate(&["check-rules", path.to_str().unwrap()]);
    assert_clean_failure(&out, &["mine.rules:3:", "rule `broken`", "unknown op `frobnicate`"]);

    std::fs::write(&path, "(rewrite relu-relu (relu (relu ?x)) (relu ?x))\n").unwrap();
    let mut library = Library::builtin().unwrap();
    let err = library.add_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("mine.rules:1: rule `relu-relu`: a rule of this name is already defined at rewrites/rules/"),
        "{err}"
    );
}
