//! Conformance with the ONNX backend test data (onnx==1.22.0): every node test and the
//! nine light models through the reference interpreter. The data must be there
//! (`scripts/fetch-onnx-data`, which the test command runs); these tests fail, never
//! skip, without it.

use saturate_verify::conformance::{self, Outcome};

/// Node tests of supported ops that passed when this was last raised. The count may
/// only go up: lowering it means a supported feature broke.
const SUPPORTED_PASSED_AT_LEAST: usize = 1148;

fn data() -> std::path::PathBuf {
    let dir = conformance::data_dir();
    if let Err(why) = conformance::require_data(&dir) {
        panic!("{why}");
    }
    dir
}

#[test]
fn node_tests_pass_or_are_reported_unsupported() {
    let results = conformance::run_node_tests(&data().join("node"), &conformance::interpreter, |_| {}).unwrap();
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
    assert!(
        passed >= SUPPORTED_PASSED_AT_LEAST,
        "only {passed} node tests of supported ops passed, expected at least {SUPPORTED_PASSED_AT_LEAST}"
    );
}

/// Supported ops whose node tests all use element types saturate does not support;
/// tests/ops.rs checks their semantics instead.
const TESTED_IN_OPS_RS: &[&str] = &[];

#[test]
fn every_supported_op_passes_a_node_test() {
    // an op that is imported but never exercised by a passing test is not proven
    let results = conformance::run_node_tests(&data().join("node"), &conformance::interpreter, |_| {}).unwrap();
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
        let m = conformance::run_light_model(&path, &conformance::interpreter);
        println!("{:<14} load {:.2} s, run {:.2} s: {:?}", m.name, m.load_seconds, m.run_seconds, m.outcome);
        if m.outcome != Outcome::Passed {
            mismatches.push(format!("{}: {:?}", m.name, m.outcome));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn exported_node_test_models_import_back_unchanged() {
    // every node test model saturate imports, written back as ONNX and imported again,
    // is the same graph (or, where export decomposes a fused op, computes the same)
    use prost::Message;
    use saturate_egraph::{onnx, TensorLang};
    use std::collections::HashMap;
    let mut checked = 0;
    for dir in conformance::node_test_dirs(&data().join("node")).unwrap() {
        let set = dir.join("test_data_set_0");
        let inputs: Vec<_> = (0..)
            .map(|i| set.join(format!("input_{i}.pb")))
            .take_while(|p| p.exists())
            .map(|p| onnx::read_tensor_file(&p).map(|(_, t)| t))
            .collect();
        let Ok(inputs) = inputs.into_iter().collect::<Result<Vec<_>, _>>() else { continue };
        let Ok((graph, inputs)) =
            saturate_verify::load_for_inputs(&dir.join("model.onnx"), inputs, &Default::default())
        else {
            continue;
        };
        let bytes = onnx::export_model(&graph).unwrap().encode_to_vec();
        let proto = onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
        let back = onnx::import_model(&proto, None, &saturate_verify::Interpreter, &HashMap::new())
            .unwrap_or_else(|e| panic!("{}: exported model does not import: {e}", dir.display()));
        // export decomposes the fused ops (opset 19 has no Gelu, no RMSNormalization), and
        // writes layer norm's broadcast scale and bias out to the normalized shape
        // (instance and group norm import as a layer norm with scalar ones): those compute
        // the same, as different graphs
        let fused = graph.expr.as_ref().iter().any(|n| n.desc().fused() || matches!(n, TensorLang::LayerNorm(_)));
        if fused {
            let (a, b) =
                (saturate_verify::run(&graph, &inputs).unwrap(), saturate_verify::run(&back, &inputs).unwrap());
            for (x, y) in a.iter().zip(&b) {
                saturate_verify::compare::compare(y, x, 1e-3, 1e-4)
                    .unwrap_or_else(|m| panic!("{}: {m}", dir.display()));
            }
        } else {
            assert!(back == graph, "{}: the exported model imports as a different graph", dir.display());
        }
        checked += 1;
    }
    assert!(checked >= 1002, "only {checked} node test models were exported");
}
