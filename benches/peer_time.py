"""Times one ONNX model in a peer engine and prints JSON: onnxruntime (CPU, all graph
optimizations on) or OpenVINO (CPU, f32, latency hint).

Usage: peer_time.py onnxruntime|openvino MODEL.onnx THREADS MIN_SECONDS [INPUT.pb ...]

The inputs given (TensorProto files, one per model input in order), else standard-normal
f32 inputs (seed 1). Outputs are bound once and reused, as saturate's `run_into` does
(onnxruntime's I/O binding, OpenVINO's shared outputs). 3 warm-up runs, then at least 10
runs and MIN_SECONDS of measuring; reports the median and quartiles in milliseconds and
the engine's version.
"""
import json
import sys
import time

import numpy as np


def feeds_for(names_and_shapes, arrays):
    """The given arrays by input name, else standard-normal f32 inputs (seed 1)."""
    if arrays:
        return {name: a for (name, _), a in zip(names_and_shapes, arrays)}
    rng = np.random.default_rng(1)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in names_and_shapes}


def onnxruntime_runner(path, threads, arrays):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = feeds_for([(i.name, list(i.shape)) for i in session.get_inputs()], arrays)
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, value)
    for o in session.get_outputs():
        binding.bind_output(o.name)
    return (lambda: session.run_with_iobinding(binding)), ort.__version__


def openvino_runner(path, threads, arrays):
    import openvino as ov
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(path, "CPU", config)
    inputs = [(i.get_any_name(), list(i.get_shape())) for i in compiled.inputs]
    feeds = feeds_for(inputs, arrays)
    ordered = {k: feeds[name] for k, (name, _) in enumerate(inputs)}
    request = compiled.create_infer_request()
    return (lambda: request.infer(ordered, share_inputs=True, share_outputs=True)), ov.__version__


RUNNERS = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner}


def samples(run, min_seconds):
    """3 warm-up runs, then the times (ms) of at least 10 runs and `min_seconds`."""
    for _ in range(3):
        run()
    times = []
    start = time.perf_counter()
    while len(times) < 10 or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def main():
    engine, path, threads, min_seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if engine not in RUNNERS:
        sys.exit(f"unknown engine {engine!r}: onnxruntime or openvino")
    arrays = None
    if len(sys.argv) > 5:
        import onnx
        from onnx import numpy_helper
        arrays = [numpy_helper.to_array(onnx.load_tensor(p)) for p in sys.argv[5:]]
    run, version = RUNNERS[engine](path, threads, arrays)
    times = samples(run, min_seconds)
    q = np.percentile(times, [25, 50, 75])
    print(json.dumps({"engine": engine, "runs": len(times), "median_ms": q[1], "p25_ms": q[0],
                      "p75_ms": q[2], "version": version}))


if __name__ == "__main__":
    main()
