"""Times one ONNX model in onnxruntime (all graph optimizations on) and prints JSON.

Usage: onnxruntime_time.py MODEL.onnx THREADS MIN_SECONDS [INPUT.pb ...]
The inputs given (TensorProto files, one per model input in order), else standard-normal
f32 inputs (seed 1); 3 warm-up runs, then at least 10 runs and
MIN_SECONDS of measuring; reports the median and quartiles in milliseconds.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    path, threads, min_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    if len(sys.argv) > 4:
        import onnx
        from onnx import numpy_helper
        tensors = [numpy_helper.to_array(onnx.load_tensor(p)) for p in sys.argv[4:]]
        feeds = {i.name: t for i, t in zip(session.get_inputs(), tensors)}
    else:
        feeds = {i.name: rng.standard_normal(list(i.shape)).astype(np.float32) for i in session.get_inputs()}
    for _ in range(3):
        session.run(None, feeds)
    samples = []
    start = time.perf_counter()
    while len(samples) < 10 or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        session.run(None, feeds)
        samples.append((time.perf_counter() - t) * 1e3)
    q = np.percentile(samples, [25, 50, 75])
    print(json.dumps({"runs": len(samples), "median_ms": q[1], "p25_ms": q[0], "p75_ms": q[2],
                      "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
