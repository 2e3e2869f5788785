//! Conformance with the ONNX backend test data (onnx==1.22.0): every node test and the
//! nine light models through the reference interpreter. The data must be there
//! (`scripts/fetch-onnx-data`, which the test command runs); these tests fail, never
//! skip, without it.

use saturate_verify::conformance::{self, Outcome};

/// Node tests of supported ops that passed when this was last raised. The count may
/// only go up: lowering it means a supported feature broke.
const SUPPORTED_PASSED_AT_LEAST: usize = 432;

fn data() -> std::path::PathBuf {
    let dir = conformance::data_dir();
    if let Err(why) = conformance::require_data(&dir) {
        panic!("{why}");
    }
    dir
}

#[test]
fn node_tests_pass_or_are_reported_unsupported() {
    let results = conformance::run_node_tests(&data().join("node"), |_| {}).unwrap();
    println!("{}", conformance::render_table(&results));
    assert_eq!(results.len(), 1765, "the pinned release has 1765 node tests");
    let failures: Vec<String> = results
        .iter()
        .filter_map(|t| match &t.outcome {
            Outcome::Failed(why) => Some(format!("{} ({}): {why}", t.name, t.op)),
            _ => None,
        })
        .collect();
    assert!(failures.is_empty(), "{} node tests failed:\n{}", failures.len(), failures.join("\n"));
    let passed = results.iter().filter(|t| conformance::is_supported(&t.op) && t.outcome == Outcome::Passed).count();
    assert!(passed >= SUPPORTED_PASSED_AT_LEAST, "only {passed} node tests of supported ops passed, expected at least {SUPPORTED_PASSED_AT_LEAST}");
}

/// Supported ops whose node tests all use element types saturate does not support;
/// tests/ops.rs checks their semantics on f32, i64 and bool instead.
const TESTED_IN_OPS_RS: &[&str] = &["Cast", "CastLike", "Equal"];

#[test]
fn every_supported_op_passes_a_node_test() {
    // an op that is imported but never exercised by a passing test is not proven
    let results = conformance::run_node_tests(&data().join("node"), |_| {}).unwrap();
    let table = conformance::tally(&results);
    let untested: Vec<&str> = saturate_egraph::onnx::SUPPORTED_OPS
        .iter()
        .copied()
        .filter(|op| !TESTED_IN_OPS_RS.contains(op) && table.get(*op).is_none_or(|t| t.passed == 0))
        .collect();
    assert!(untested.is_empty(), "supported ops without a passing node test: {untested:?}");
}

#[test]
fn light_models_match_their_expected_outputs() {
    let paths = conformance::light_model_paths(&data().join("light")).unwrap();
    assert_eq!(paths.len(), 9, "the pinned release ships nine light models");
    let mut mismatches = Vec::new();
    for path in paths {
        let m = conformance::run_light_model(&path);
        println!("{:<14} load {:.2} s, run {:.2} s: {:?}", m.name, m.load_seconds, m.run_seconds, m.outcome);
        if m.outcome != Outcome::Passed {
            mismatches.push(format!("{}: {:?}", m.name, m.outcome));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
