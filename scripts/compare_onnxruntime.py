"""Runs models through `saturate run` and onnxruntime on the same random inputs and
compares the outputs (|a - b| <= atol + rtol*|b|, rtol 1e-3, atol 1e-4).

The ONNX model saturate exports (`saturate convert -o x.onnx`) is run in onnxruntime too
and must agree with the original.

Each model is checked twice: as shipped, and with its constant weights replaced by
random ones. The ONNX "light" zoo generates every weight as ConstantOfShape(0.02), which
makes every channel identical and the output nearly uniform; random weights make the
comparison meaningful, and the logits (the input of the last Softmax) are compared too.

Usage: compare_onnxruntime.py --saturate BIN MODEL.onnx [MODEL.onnx ...]
Exits 1 if any output differs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

RTOL, ATOL = 1e-3, 1e-4


def runtime_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def random_inputs(model, rng):
    feeds = {}
    for vi in runtime_inputs(model):
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    return feeds


def randomize_weights(model, rng):
    """Replaces each ConstantOfShape weight with a random initializer of the same shape:
    fan-in scaled normals for matrices and kernels, values in [0.5, 1.5) for vectors
    (positive, so they are valid batch-norm variances too)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    shapes = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            shape = tuple(int(d) for d in shapes[node.input[0]])
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[1:]))
                value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=shape)
            else:
                value = rng.uniform(0.5, 1.5, size=shape)
            model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    # compare the logits as well: a softmax output can hide differences
    softmaxes = [n for n in model.graph.node if n.op_type == "Softmax"]
    if softmaxes:
        logits = softmaxes[-1].input[0]
        model.graph.output.append(onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
    used = {i for n in model.graph.node for i in n.input}
    unused = [i for i in model.graph.initializer if i.name not in used]
    for i in unused:
        model.graph.initializer.remove(i)
        for j, vi in enumerate(model.graph.input):
            if vi.name == i.name:
                del model.graph.input[j]
                break
    return model


def compare(name, got, want):
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, expected {want.shape}", np.inf
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = err > ATOL + RTOL * np.abs(want.astype(np.float64))
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
        return f"{name}: {bad.sum()} of {err.size} differ, worst at {i}: {got[i]} vs {want[i]}", float(err.max())
    return None, float(err.max()) if err.size else 0.0


def check(saturate, model_path, model, label, rng, work):
    feeds = random_inputs(model, rng)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    expected = session.run(None, feeds)
    ort_ms = (time.perf_counter() - start) * 1e3

    if model_path is None:
        model_path = os.path.join(work, f"{label}.onnx")
        onnx.save(model, model_path)
    args = [saturate, "run", model_path, "--output-dir", os.path.join(work, label, "out"), "--force"]
    for i, (name, value) in enumerate(feeds.items()):
        path = os.path.join(work, label, f"input_{i}.pb")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(value, name).SerializeToString())
        args += ["--input", path]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    saturate_s = time.perf_counter() - start
    if proc.returncode != 0:
        return False, f"saturate failed: {proc.stderr.strip()}", ort_ms, saturate_s, np.inf

    worst, problems = 0.0, []
    for i, want in enumerate(expected):
        got = numpy_helper.to_array(onnx.load_tensor(os.path.join(work, label, "out", f"output_{i}.pb")))
        problem, err = compare(f"output {i}", got, want)
        worst = max(worst, err)
        if problem:
            problems.append(problem)

    # the graph saturate exports must compute the same in onnxruntime
    exported = os.path.join(work, label, "exported.onnx")
    proc = subprocess.run([saturate, "convert", model_path, "-o", exported, "--force"], capture_output=True, text=True)
    if proc.returncode != 0:
        problems.append(f"export failed: {proc.stderr.strip()}")
    else:
        session = ort.InferenceSession(exported, options, providers=["CPUExecutionProvider"])
        for i, (got, want) in enumerate(zip(session.run(None, feeds), expected)):
            problem, err = compare(f"exported output {i}", got, want)
            if problem:
                problems.append(problem)
    return not problems, "; ".join(problems), ort_ms, saturate_s, worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saturate", required=True, help="path of the saturate binary")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ort.set_default_logger_severity(3)  # unused-initializer warnings are noise here

    print(f"onnxruntime {ort.__version__}; tolerance rtol {RTOL}, atol {ATOL}")
    print(f"{'model':<28}{'weights':<10}{'max |err|':>12}{'ort ms':>10}{'saturate s':>12}  result")
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for path in args.models:
            name = os.path.splitext(os.path.basename(path))[0]
            if name == "model":  # examples/<name>/model.onnx
                name = os.path.basename(os.path.dirname(os.path.abspath(path)))
            model = onnx.load(path)
            for weights in ("shipped", "random"):
                if weights == "shipped":
                    ok, why, ort_ms, sat_s, err = check(args.saturate, path, model, f"{name}", rng, work)
                else:
                    varied = randomize_weights(model, rng)
                    if len(varied.graph.node) == len(model.graph.node):
                        continue  # no generated weights to vary
                    ok, why, ort_ms, sat_s, err = check(args.saturate, None, varied, f"{name}_random", rng, work)
                failures += not ok
                result = "match" if ok else f"MISMATCH {why}"
                print(f"{name:<28}{weights:<10}{err:>12.2e}{ort_ms:>10.1f}{sat_s:>12.2f}  {result}", flush=True)
    if failures:
        print(f"{failures} comparison(s) failed")
        sys.exit(1)
    print("all outputs match onnxruntime")


if __name__ == "__main__":
    main()
