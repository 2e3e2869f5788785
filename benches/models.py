"""Helpers of benches/models.

  models.py randomize LIGHT.onnx OUT.onnx
      the light-zoo model with random weights in place of its ConstantOfShape(0.02) ones
      (scripts/compare_onnxruntime.py's randomize_weights, fixed seed), outputs as shipped
  models.py report OUT ROUNDS "THREADS" "ENGINES" BIN MODEL...
      the table of the figures benches/models measured
"""
import json
import math
import os
import statistics
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))

TENSAT_SPEEDUP = {"bert": 9.2, "nasrnn": 68.9, "resnext50": 8.8, "nasnet_a": 7.3, "inception_v3": 10.0}


def randomize(source, target):
    from compare_onnxruntime import randomize_weights
    model = onnx.load(source)
    outputs = len(model.graph.output)
    varied = randomize_weights(model, np.random.default_rng(7))
    del varied.graph.output[outputs:]  # randomize_weights adds the logits for its comparison
    onnx.save(varied, target)


def report(out, rounds, threads, engines, binary, models):
    def figure(m, e, t):
        runs = [json.load(open(f"{out}/{m}.{e}.{t}.{r}.json")) for r in range(1, rounds + 1)]
        if any(run.get("failed") for run in runs):
            return None
        return statistics.median(run["median_ms"] for run in runs)

    def version(e):
        for name in os.listdir(out):
            if f".{e}." in name:
                data = json.load(open(os.path.join(out, name)))
                if "version" in data:
                    return data["version"]
        return "?"

    geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")
    cell = lambda x: f"{x:>9.2f}" if x is not None else f"{'failed':>9}"
    saturate = "optimized" if "optimized" in engines else "plain"
    print(f"saturate: {binary}; latency, median ms over {rounds} round(s); ratio = saturate {saturate} / the faster "
          f"of onnxruntime and OpenVINO (below 1: saturate is faster); 2T/1T = saturate's time at 2 threads / at 1\n")
    head = f"{'model':<13} {'threads':>7} {'onnxrt':>9} {'OpenVINO':>9} {'saturate':>9}"
    if "optimized" in engines:
        head += f" {'optimized':>9} {'opt. gain':>9} {'Tensat':>7}"
    print(head + f" {'ratio':>6} {'2T/1T':>6}")
    ratios = {t: [] for t in threads}
    slower = []
    for m in models:
        first = None
        for t in threads:
            f = {e: figure(m, e, t) for e in engines}
            peer = min([x for x in (f["onnxruntime"], f["openvino"]) if x is not None], default=None)
            ours = f[saturate]
            ratio = ours / peer if ours and peer else None
            if ratio:
                ratios[t].append(ratio)
            line = f"{m:<13} {t:>7} {cell(f['onnxruntime'])} {cell(f['openvino'])} {cell(f['plain'])}"
            if "optimized" in engines:
                gain = 100 * (f["plain"] / f["optimized"] - 1) if f["plain"] and f["optimized"] else float("nan")
                tensat = f"{TENSAT_SPEEDUP[m]:>6.1f}%" if m in TENSAT_SPEEDUP else f"{'':>7}"
                line += f" {cell(f['optimized'])} {gain:>8.1f}% {tensat}"
            scaling = ours / first if first and ours else None
            if scaling and scaling > 1:
                slower.append(f"{m} ({scaling:.2f})")
            line += f" {ratio if ratio else float('nan'):>6.2f} {scaling if scaling else float('nan'):>6.2f}" if first else \
                f" {ratio if ratio else float('nan'):>6.2f}"
            first = first or ours
            print(line)
    for t in threads:
        if ratios[t]:
            print(f"\ngeomean ratio at {t} thread(s): {geo(ratios[t]):.2f} over {len(ratios[t])} models "
                  f"(best {min(ratios[t]):.2f}, worst {max(ratios[t]):.2f})")
    if len(threads) > 1:
        print(f"slower at {threads[-1]} threads than at {threads[0]}: {', '.join(slower) if slower else 'none'}")
    print(f"\nhow saturate {saturate} ran them: its convolutions' algorithms (all in NCHW) and matrix product calls")
    for m in models:
        path = f"{out}/{m}.{saturate}.{threads[0]}.1.json"
        run = json.load(open(path)) if os.path.exists(path) else {}
        if "convolutions" not in run:
            print(f"  {m:<13} (not reported by this build)")
            continue
        convs = ", ".join(f"{n} {name}" for name, n in sorted(run["convolutions"].items(), key=lambda x: -x[1]))
        print(f"  {m:<13} {convs or 'no convolutions'}; products: {run['products_packed']} on packed weights, "
              f"{run['products_gemm_crate']} through the GEMM crate")
    print(f"\nonnxruntime {version('onnxruntime')}, OpenVINO {version('openvino')}; Tensat's speedups are measured on "
          f"a V100 (TASO's cuDNN backend); the light zoo runs with random weights")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "randomize":
        randomize(sys.argv[2], sys.argv[3])
    elif command == "report":
        report(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5].split(), sys.argv[6], sys.argv[7:])
    else:
        sys.exit(f"unknown command {command}")
