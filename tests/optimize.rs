//! The optimizer end to end: every model of the suite, optimized, computes what the
//! original computes (reference interpreter, random inputs); targets change what is
//! extracted; the extractors agree on correctness; the command line reports.

mod support;

use saturate_costmodels::{gpu, program_cost, CostModel, Roofline};
use saturate_egraph::Graph;
use saturate_extract::{optimize, ExtractorKind, OptimizeOptions};
use saturate_rewrites::Library;
use saturate_verify::compare::compare;
use saturate_verify::{conformance, load_model, run, suite};
use std::path::{Path, PathBuf};
use support::*;

/// A fixed CPU model, so tests do not depend on this machine's calibration.
fn cpu() -> Roofline {
    saturate_costmodels::cpu::reference()
}

/// What the optimizer must find on a model (with the fixed cpu model): ops that vanish,
/// ops held to at most a count, ops that appear, and rules whose results must be in the
/// program; and it must beat the input program (not keep it).
struct Expect {
    model: &'static str,
    gone: &'static [&'static str],
    at_most: &'static [(&'static str, usize)],
    appear: &'static [&'static str],
    rules: &'static [&'static str],
}

const EXPECTED: &[Expect] = &[
    Expect {
        model: "bert",
        gone: &["add"],
        at_most: &[],
        appear: &["matmul_bias_act"],
        rules: &["bias-plus-matmul-fuses"],
    },
    Expect {
        model: "nasrnn",
        gone: &[],
        at_most: &[("matmul", 40)],
        appear: &["concat"],
        rules: &["merge-matmuls-sharing-left"],
    },
    Expect {
        model: "resnext50",
        gone: &[],
        at_most: &[("relu", 20), ("conv", 20)],
        appear: &["conv_bias_act"],
        rules: &["relu-fuses-into-conv-epilogue"],
    },
    Expect {
        model: "nasnet_a",
        gone: &["relu"],
        at_most: &[],
        appear: &["matmul_bias_act"],
        rules: &["conv-1x1-as-matmul", "merge-convs-sharing-input"],
    },
    Expect {
        model: "inception_v3",
        gone: &["relu", "conv"],
        at_most: &[],
        appear: &["conv_bias_act"],
        rules: &["relu-fuses-into-conv-epilogue", "merge-convs-sharing-input"],
    },
    Expect {
        model: "light_bvlc_alexnet",
        gone: &[],
        at_most: &[("relu", 4)],
        appear: &["conv_bias_act"],
        rules: &["relu-fuses-into-conv-epilogue"],
    },
    Expect {
        model: "light_densenet121",
        gone: &[],
        at_most: &[("batch_norm", 30)],
        appear: &[],
        rules: &["batch-norm-of-conv-folds"],
    },
    Expect {
        model: "light_inception_v1",
        gone: &["relu"],
        at_most: &[],
        appear: &["conv_bias_act"],
        rules: &["merge-convs-sharing-input"],
    },
    Expect {
        model: "light_inception_v2",
        gone: &[],
        at_most: &[("batch_norm", 10), ("relu", 10)],
        appear: &["conv_bias_act"],
        rules: &["batch-norm-of-conv-folds", "relu-fuses-into-conv-epilogue"],
    },
    Expect {
        model: "light_resnet50",
        gone: &["batch_norm"],
        at_most: &[],
        appear: &[],
        rules: &["batch-norm-of-conv-folds"],
    },
    Expect {
        model: "light_shufflenet",
        gone: &["batch_norm"],
        at_most: &[],
        appear: &[],
        rules: &["batch-norm-of-conv-folds"],
    },
    Expect {
        model: "light_squeezenet",
        gone: &["relu"],
        at_most: &[],
        appear: &["conv_bias_act"],
        rules: &["relu-fuses-into-conv-epilogue"],
    },
    Expect {
        model: "light_vgg19",
        gone: &[],
        at_most: &[("relu", 4)],
        // Its 3x3 convolutions are priced cheaper as Winograd products than as direct ones.
        appear: &["winograd_conv", "winograd_weights"],
        rules: &["conv-3x3-by-winograd-4x4"],
    },
    Expect {
        model: "light_zfnet512",
        gone: &[],
        at_most: &[("relu", 4)],
        appear: &["conv_bias_act"],
        rules: &["relu-fuses-into-conv-epilogue"],
    },
    Expect {
        model: "model", // examples/transformer_layer
        gone: &["erf", "pow", "sqrt", "reduce_mean", "softmax"],
        at_most: &[],
        appear: &["layer_norm", "attention", "matmul_bias_act"],
        rules: &["layer-norm-from-decomposition", "attention-divided-scores", "gelu-fuses-into-matmul-epilogue"],
    },
];

/// Checks `report` against the expectation for `model`; every model has one.
fn found_what_it_must(model: &str, report: &saturate_extract::OptimizeReport) {
    let e = EXPECTED.iter().find(|e| e.model == model).unwrap_or_else(|| panic!("no expectation for {model}"));
    let count = |op: &str| report.ops_after.get(op).copied().unwrap_or(0);
    assert!(!report.kept_input, "{model}: nothing cheaper than the input was found");
    for op in e.gone {
        assert!(report.ops_before.contains_key(*op), "{model}: expects {op} to vanish, but has none");
        assert_eq!(count(op), 0, "{model}: {op} left in {:?}", report.ops_after);
    }
    for (op, most) in e.at_most {
        let before = report.ops_before.get(*op).copied().unwrap_or(0);
        assert!(
            count(op) <= *most && before > *most,
            "{model}: {op} {before} -> {}, expected at most {most}",
            count(op)
        );
    }
    for op in e.appear {
        assert!(
            count(op) > 0 && !report.ops_before.contains_key(*op),
            "{model}: no new {op} in {:?}",
            report.ops_after
        );
    }
    for rule in e.rules {
        assert!(report.rules_in_result.contains_key(*rule), "{model}: {rule} not in {:?}", report.rules_in_result);
    }
}

/// Optimizes `graph` and checks the result computes the same, returning the report.
fn optimized_matches(name: &str, graph: &Graph, model: &dyn CostModel) -> saturate_extract::OptimizeReport {
    let library = Library::builtin().unwrap();
    let (optimized, report) = optimize(graph, &library, model, &OptimizeOptions::default(), |_| {}).unwrap();
    let inputs = random_inputs(graph, 7);
    let (want, got) = (run(graph, &inputs).unwrap(), run(&optimized, &inputs).unwrap());
    assert_outputs_match(&format!("{name}, optimized"), &got, &want);
    report
}

fn light_models() -> Vec<PathBuf> {
    let dir = conformance::data_dir();
    conformance::require_data(&dir).expect("run scripts/fetch-onnx-data first");
    conformance::light_model_paths(&dir.join("light")).unwrap()
}

#[test]
fn tensat_suite_models_keep_their_outputs() {
    for m in suite::MODELS {
        let graph = (m.build)();
        let report = optimized_matches(m.name, &graph, &cpu());
        found_what_it_must(m.name, &report);
        println!(
            "{}: cost {:.3} → {:.3} ms, {:.2} s",
            m.name,
            report.cost_before * 1e3,
            report.cost_after * 1e3,
            report.total_seconds
        );
    }
}

#[test]
fn light_models_and_the_transformer_layer_keep_their_outputs() {
    let mut paths = light_models();
    paths.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx"));
    for path in paths {
        let graph = load_model(&path).unwrap();
        let report = optimized_matches(&path.display().to_string(), &graph, &cpu());
        found_what_it_must(&path.file_stem().unwrap().to_string_lossy(), &report);
        println!("{}: cost {:.3} → {:.3} ms", path.display(), report.cost_before * 1e3, report.cost_after * 1e3);
    }
}

#[test]
fn the_transformer_layer_gets_its_fused_ops() {
    let graph =
        load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx")).unwrap();
    let report = optimized_matches("transformer_layer", &graph, &cpu());
    for op in ["layer_norm", "attention", "matmul_bias_act"] {
        assert!(report.ops_after.get(op).copied().unwrap_or(0) >= 1, "no {op} in {:?}", report.ops_after);
    }
    assert_eq!(report.ops_after.get("layer_norm"), Some(&2));
    assert!(report.rules_in_result.contains_key("layer-norm-from-decomposition"), "{:?}", report.rules_in_result);
    assert!(report.cost_after < 0.6 * report.cost_before, "{report:?}");
}

/// Two products of one input with activations (not weights): a GPU, where a kernel
/// launch costs more than copying the small operands, takes one product of a
/// concatenation; a CPU, where launches are cheap and bandwidth scarce, keeps two.
fn concat_of_products() -> Graph {
    let text = "(saturate-graph 1)\n(input %x f32 [1,512])\n(input %b f32 [512,64])\n(input %c f32 [512,64])\n\
                (output \"y\" (concat 1 (matmul %x %b) (matmul %x %c)))\n";
    saturate_egraph::sexp::parse(text, "t", None).unwrap()
}

#[test]
fn cpu_and_gpu_extract_different_programs() {
    let library = Library::builtin().unwrap();
    let graph = concat_of_products();
    let run_for =
        |model: &dyn CostModel| optimize(&graph, &library, model, &OptimizeOptions::default(), |_| {}).unwrap();
    let (cpu_graph, _) = run_for(&cpu());
    let (gpu_graph, gpu_report) = run_for(&gpu::v100());
    assert_eq!(cpu_graph.op_histogram().get("matmul"), Some(&2), "{:?}", cpu_graph.op_histogram());
    assert_eq!(gpu_graph.op_histogram().get("matmul"), Some(&1), "{:?}", gpu_graph.op_histogram());
    assert!(gpu_report.cost_after < gpu_report.cost_before);
    // and both compute the same thing
    let inputs = random_inputs(&graph, 3);
    let (a, b) = (run(&cpu_graph, &inputs).unwrap(), run(&gpu_graph, &inputs).unwrap());
    compare(&a[0], &b[0], 1e-3, 1e-4).unwrap();
}

/// An RNN cell: two gates, each `act(x·Wᵢ + s·Uᵢ)`. Merging the two products of `x` and
/// the two of `s` halves the kernels, but only if both gates switch at once, which
/// single-class changes cannot do; the DAG extractor's sharing moves must.
#[test]
fn dag_extraction_merges_the_parallel_matmuls_of_a_recurrent_cell() {
    let text = "(saturate-graph 1)\n(input %x f32 [1,512])\n(input %s f32 [1,512])\n\
                (let $g0 (add (matmul %x (fill 0.01 [512,512])) (matmul %s (fill 0.02 [512,512]))))\n\
                (let $g1 (add (matmul %x (fill 0.03 [512,512])) (matmul %s (fill 0.04 [512,512]))))\n\
                (output \"y\" (mul (relu $g0) (tanh $g1)))\n";
    let graph = saturate_egraph::sexp::parse(text, "t", None).unwrap();
    let library = Library::builtin().unwrap();
    let products = |g: &Graph| {
        ["matmul", "gemm", "matmul_bias_act"]
            .iter()
            .map(|op| g.op_histogram().get(*op).copied().unwrap_or(0))
            .sum::<usize>()
    };
    let run_with = |extractor| {
        let opts = OptimizeOptions { extractor, ..Default::default() };
        optimize(&graph, &library, &gpu::v100(), &opts, |_| {}).unwrap()
    };
    let (tree, _) = run_with(ExtractorKind::Tree);
    let (dag, report) = run_with(ExtractorKind::Dag);
    assert_eq!(products(&tree), 4, "{:?}", tree.op_histogram());
    assert_eq!(products(&dag), 2, "{:?}", dag.op_histogram());
    assert!(report.cost_after < report.cost_before * 0.8, "{} -> {}", report.cost_before, report.cost_after);
    let inputs = random_inputs(&graph, 5);
    compare(&run(&dag, &inputs).unwrap()[0], &run(&graph, &inputs).unwrap()[0], 1e-3, 1e-4).unwrap();
}

#[test]
fn every_extractor_yields_a_valid_equivalent_program() {
    let graph =
        load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx")).unwrap();
    let library = Library::builtin().unwrap();
    let inputs = random_inputs(&graph, 11);
    let want = run(&graph, &inputs).unwrap();
    let mut costs = Vec::new();
    for extractor in [ExtractorKind::Tree, ExtractorKind::Dag, ExtractorKind::Ilp] {
        let opts =
            OptimizeOptions { extractor, ilp_time_limit: std::time::Duration::from_secs(20), ..Default::default() };
        let (g, report) = optimize(&graph, &library, &cpu(), &opts, |_| {}).unwrap();
        g.check().unwrap();
        let got = run(&g, &inputs).unwrap();
        compare(&got[0], &want[0], 1e-3, 1e-4).unwrap_or_else(|m| panic!("{extractor:?}: {m}"));
        costs.push((extractor, report.cost_after, report.ilp_status.clone()));
    }
    println!("{costs:?}");
    let (tree, dag, ilp) = (costs[0].1, costs[1].1, costs[2].1);
    assert!(dag <= tree * 1.0001, "DAG-aware extraction is never worse than tree: {costs:?}");
    assert!(ilp <= dag * 1.0001, "ILP starts from the DAG choice and only improves: {costs:?}");
}

#[test]
fn program_cost_counts_shared_work_once() {
    // y = relu(x·w) used twice: the product is computed once
    let text = "(saturate-graph 1)\n(input %x f32 [256,256])\n(input %w f32 [256,256])\n(let $1 (relu (matmul %x %w)))\n(output \"a\" (add $1 $1))\n";
    let shared = saturate_egraph::sexp::parse(text, "t", None).unwrap();
    let single = saturate_egraph::sexp::parse(
        "(saturate-graph 1)\n(input %x f32 [256,256])\n(input %w f32 [256,256])\n(output \"a\" (relu (matmul %x %w)))\n",
        "t",
        None,
    )
    .unwrap();
    let (a, b) = (program_cost(&cpu(), &shared).unwrap(), program_cost(&cpu(), &single).unwrap());
    assert!(a < 1.5 * b, "{a} vs {b}");
}

#[test]
fn optimize_command_reports_and_writes_the_program() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("opt.sexp");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx");
    let res =
        saturate(&["optimize", model.to_str().unwrap(), "--target", "gpu-v100", "-o", out.to_str().unwrap(), "--json"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    for key in [
        "rules_loaded",
        "iterations",
        "egraph_nodes",
        "stop_reason",
        "saturate_seconds",
        "extract_seconds",
        "cost_before",
        "cost_after",
    ] {
        assert!(!v[key].is_null(), "missing {key}: {v}");
    }
    assert!(v["rules_loaded"].as_u64().unwrap() >= 300);
    assert!(v["cost_after"].as_f64().unwrap() < v["cost_before"].as_f64().unwrap());
    let optimized = saturate_egraph::sexp::read_file(&out).unwrap();
    assert!(optimized.op_histogram().contains_key("attention"));

    let text = saturate(&["optimize", model.to_str().unwrap(), "--iter-limit", "3"]);
    let report = stdout(&text);
    for needle in [
        "iteration",
        "stopped:",
        "estimated cost",
        "ops before → after",
        "rules that fired most",
        "rules whose results are in the program",
    ] {
        assert!(report.contains(needle), "missing {needle}:\n{report}");
    }

    // run --optimize computes what the model computes
    let run_dir = d.path().join("out");
    let example = model.parent().unwrap();
    let res = saturate(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        example.join("input_0.pb").to_str().unwrap(),
        "--output-dir",
        run_dir.to_str().unwrap(),
        "--optimize",
        "--expected",
        example.to_str().unwrap(),
    ]);
    assert!(res.status.success(), "{}{}", stdout(&res), String::from_utf8_lossy(&res.stderr));
}

#[test]
fn rules_command_lists_every_directed_rule() {
    let res = saturate(&["rules", "--json"]);
    assert!(res.status.success());
    let rules: Vec<serde_json::Value> = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(rules.len(), Library::builtin().unwrap().len());
    for r in &rules {
        for key in ["name", "theme", "lhs", "rhs", "guards"] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
    }
    let guards = stdout(&saturate(&["rules", "--guards"]));
    assert!(guards.contains("non-negative") && guards.contains("is-const"));
    let functions = stdout(&saturate(&["rules", "--functions"]));
    assert!(functions.contains("compose-perm"));
}

#[test]
fn bad_optimizer_input_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("broken.rules");
    std::fs::write(&rules, "(rewrite x (relu ?a) (nope ?a))\n").unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx");
    let res = saturate(&["optimize", model.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
    assert_clean_failure(&res, &["broken.rules:1:", "rule `x`", "unknown op `nope`"]);
    let res = saturate(&["optimize", model.to_str().unwrap(), "--no-default-rules"]);
    assert_clean_failure(&res, &["no rules"]);
    let res = saturate(&["optimize", model.to_str().unwrap(), "--target", "tpu"]);
    assert!(!res.status.success());
    let res = saturate(&["optimize", "suite:nonesuch"]);
    assert_clean_failure(&res, &["no suite model `nonesuch`", "bert"]);
}

/// The clock decides between the input and the candidates, whatever the estimates say,
/// and the report describes the program kept.
#[test]
fn the_clock_overrules_the_estimates_both_ways() {
    let library = Library::builtin().unwrap();
    let graph = suite::bert();
    let optimize_bert = || optimize(&graph, &library, &cpu(), &OptimizeOptions::default(), |_| {}).unwrap();
    let (estimated, report) = optimize_bert();
    assert!(!report.kept_input && !report.candidates.is_empty(), "bert has candidates better than the input");
    assert!(report.candidates.windows(2).all(|w| w[0].estimate <= w[1].estimate), "best estimate first");
    assert_eq!(estimated.op_histogram(), report.candidates[0].ops);

    // a clock on which the input is the fastest: the input comes back, described as such
    let mut r = report.clone();
    let (kept, measured) = saturate_extract::choose_by_clock(&graph, &mut r, 2, |programs| {
        assert_eq!(programs.len(), 1 + 2.min(report.candidates.len()));
        assert!(programs.iter().all(|p| p.weights.len() == graph.weights.len()), "the programs carry their weights");
        (0..programs.len()).map(|i| Ok(1.0 + i as f64)).collect()
    });
    assert_eq!((measured.chosen, measured.estimated_best()), (0, 1));
    assert!(r.kept_input && r.rules_in_result.is_empty());
    assert_eq!(kept.op_histogram(), graph.op_histogram());
    assert_eq!(r.ops_after, r.ops_before);
    assert_eq!(r.cost_after, r.cost_before);

    // a clock on which the last candidate wins, twice, and one candidate could not be timed
    let mut r = report.clone();
    let mut calls = 0;
    let (kept, measured) = saturate_extract::choose_by_clock(&graph, &mut r, 8, |programs| {
        calls += 1;
        if calls == 2 {
            assert_eq!(programs.len(), 2, "the rematch is the input against the winner");
            return vec![Ok(10.0), Ok(7.0)];
        }
        (0..programs.len()).map(|i| if i == 1 { Err("did not compile".into()) } else { Ok(10.0 - i as f64) }).collect()
    });
    let last = measured.trials.len() - 1;
    assert_eq!(measured.chosen, last, "{:?}", measured.trials);
    assert_eq!(measured.trials[1].measured_ms, Err("did not compile".to_string()));
    assert_eq!((measured.input_ms(), measured.chosen_ms()), (Some(10.0), Some(7.0)), "the rematch's times");
    assert_eq!(kept.op_histogram(), r.ops_after);
    assert_eq!(r.cost_after, measured.trials[last].estimate);

    // a winner that loses its rematch is not kept
    let mut lost = report.clone();
    let mut calls = 0;
    let (input_again, m) = saturate_extract::choose_by_clock(&graph, &mut lost, 2, |programs| {
        calls += 1;
        if calls == 2 {
            return vec![Ok(5.0), Ok(6.0)];
        }
        (0..programs.len()).map(|i| Ok(10.0 - i as f64)).collect()
    });
    assert_eq!(m.chosen, 0);
    assert!(m.rematch.is_some_and(|r| !r.upheld && r.winner == 2));
    assert_eq!((m.input_ms(), m.chosen_ms()), (Some(5.0), Some(5.0)));
    assert!(lost.kept_input);
    assert_eq!(input_again.op_histogram(), graph.op_histogram());
    // the kept program carries its weights and computes what bert computes
    let inputs = random_inputs(&graph, 3);
    assert_outputs_match("bert, clock's choice", &run(&kept, &inputs).unwrap(), &run(&graph, &inputs).unwrap());
}

#[test]
fn optimize_measures_the_input_and_keeps_the_fastest() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("opt.sexp");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx");
    let model = model.to_str().unwrap();
    let args = ["optimize", model, "--measure", "3", "--measure-time", "0.1", "--threads", "1", "--json", "-o"];
    let res = saturate(&[&args[..], &[out.to_str().unwrap()]].concat());
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let m = &v["measured"];
    let programs = m["programs"].as_array().unwrap();
    assert_eq!(programs[0]["source"], "input");
    assert!(programs.len() >= 2, "{m}");
    let times: Vec<f64> = programs.iter().map(|p| p["median_ms"].as_f64().unwrap()).collect();
    assert!(times.iter().all(|&t| t > 0.0));
    let kept: Vec<usize> = (0..programs.len()).filter(|&i| programs[i]["kept"] == true).collect();
    assert_eq!(kept.len(), 1, "{m}");
    let fastest = (0..times.len()).min_by(|&a, &b| times[a].total_cmp(&times[b])).unwrap();
    match m["rematch"].as_object() {
        // the first round's winner is kept if it beat the input again, else the input
        Some(r) => {
            assert_eq!(r["winner"].as_u64(), Some(fastest as u64), "{m}");
            let upheld = r["upheld"].as_bool().unwrap();
            assert_eq!(kept[0], if upheld { fastest } else { 0 }, "{m}");
            assert_eq!(upheld, r["winner_ms"].as_f64() < r["input_ms"].as_f64(), "{m}");
        }
        None => assert_eq!((kept[0], fastest), (0, 0), "without a rematch the input won: {m}"),
    }
    let (before, after) = (m["input_ms"].as_f64().unwrap(), m["optimized_ms"].as_f64().unwrap());
    assert!(after <= before, "never slower by the clock: {m}");
    assert!((m["speedup"].as_f64().unwrap() - before / after).abs() < 1e-9);
    // what was written is what the report describes
    let written = saturate_egraph::sexp::read_file(&out).unwrap();
    let ops: serde_json::Value = serde_json::to_value(written.op_histogram()).unwrap();
    assert_eq!(ops, v["ops_after"]);

    let text = stdout(&saturate(&["optimize", model, "--measure-time", "0.1", "--threads", "1"]));
    for needle in ["measured on this CPU's JIT (1 thread(s)", "input", "← kept", "measured speedup:"] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    assert!(stdout(&saturate(&["optimize", model, "--measure", "0"])).contains("not measured (--measure 0)"));
    assert!(stdout(&saturate(&["optimize", model, "--target", "gpu-v100"]))
        .contains("not measured: the JIT runs on this CPU"));
}

#[test]
fn measuring_options_that_cannot_work_are_clear_errors() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transformer_layer/model.onnx");
    let model = model.to_str().unwrap();
    let res = saturate(&["optimize", model, "--target", "gpu-h100", "--measure", "2"]);
    assert_clean_failure(&res, &["--measure times programs on this CPU's JIT", "gpu-h100"]);
    let res = saturate(&["optimize", model, "--measure-time", "0"]);
    assert_clean_failure(&res, &["--measure-time must be a positive number"]);
    let res = saturate(&["optimize", model, "--compare", "tvm"]);
    assert_clean_failure(&res, &["--compare tvm", "onnxruntime, openvino"]);
    let res = saturate(&["optimize", model, "--compare", "onnxruntime", "--measure", "0"]);
    assert_clean_failure(&res, &["--compare", "--measure of 1 or more"]);
}

/// `saturate calibrate` measures the backend's kernels into a cache keyed by host and
/// kernel version; `optimize` uses that cache, and measures again when the version in
/// it is not this build's.
#[test]
fn the_measured_model_is_calibrated_once_and_again_when_the_kernels_change() {
    let cache = tempfile::tempdir().unwrap();
    let model = "examples/transformer_layer/model.onnx";
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_saturate"))
            .args(args)
            .env("SATURATE_CACHE_DIR", cache.path())
            .output()
            .expect("saturate runs")
    };
    let calibrated = run(&["calibrate", "--json"]);
    assert!(calibrated.status.success(), "{}", String::from_utf8_lossy(&calibrated.stderr));
    let table: saturate_costmodels::Table = serde_json::from_slice(&calibrated.stdout).expect("the table as JSON");
    assert!(table.is_complete() && table.points() > 200, "{} points", table.points());
    assert!(table.calibration_seconds < 60.0, "calibration took {:.1} s", table.calibration_seconds);
    // a GEMV runs below the products' best rate: the grid sees what a roofline cannot
    let best = table.products.seconds.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(table.products.at(&[1.0, 1024.0, 1024.0]) > 1.5 * best, "GEMV as fast as the best product?");
    let path = cache.path().join("cpu-kernels.json");
    assert!(path.exists());

    let message = "timing this backend's kernels";
    let cached = run(&["optimize", model, "--measure", "0"]);
    assert!(cached.status.success(), "{}", String::from_utf8_lossy(&cached.stderr));
    assert!(!String::from_utf8_lossy(&cached.stderr).contains(message), "calibrated again with a fresh cache");

    let stale = serde_json::to_string(&saturate_costmodels::Table { kernels: "0.0.0-older".into(), ..table }).unwrap();
    std::fs::write(&path, stale).unwrap();
    let again = run(&["optimize", model, "--measure", "0"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains(message), "a stale cache was used");
    let table: saturate_costmodels::Table = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(table.kernels, "0.0.0-older", "the new calibration replaces the stale one");
}

/// `optimize --plot` draws its report; `saturate plot` draws saved reports, and refuses
/// what is not a report, a picture name that is not `.svg`, and an existing picture.
#[test]
fn reports_are_drawn_as_svg_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("small.onnx");
    small_model().write(&model);
    let (svg, report) = (dir.path().join("small.svg"), dir.path().join("small.json"));
    let out = saturate(&[
        "optimize",
        model.to_str().unwrap(),
        "--measure",
        "1",
        "--measure-time",
        "0.05",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&report, &out.stdout).unwrap();
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg") && picture.contains("e-graph growth"),
        "{}",
        &picture[..200.min(picture.len())]
    );
    // the input and the candidate, and two legend marks
    assert!(picture.matches("<circle").count() >= 3, "no measured programs drawn");

    let suite = dir.path().join("suite.svg");
    let drawn = saturate(&["plot", report.to_str().unwrap(), report.to_str().unwrap(), "-o", suite.to_str().unwrap()]);
    assert!(drawn.status.success(), "{}", String::from_utf8_lossy(&drawn.stderr));
    assert!(stdout(&drawn).contains("2 reports"), "{}", stdout(&drawn));
    let again = saturate(&["plot", report.to_str().unwrap(), "-o", suite.to_str().unwrap()]);
    assert_clean_failure(&again, &["already exists", "--force"]);
    let not_svg = saturate(&["plot", report.to_str().unwrap(), "-o", dir.path().join("x.png").to_str().unwrap()]);
    assert_clean_failure(&not_svg, &["SVG"]);
    let not_report = dir.path().join("other.json");
    std::fs::write(&not_report, "{\"a\": 1}").unwrap();
    let wrong = saturate(&["plot", not_report.to_str().unwrap(), "-o", dir.path().join("y.svg").to_str().unwrap()]);
    assert_clean_failure(&wrong, &["not an optimize --json report"]);
}
