"""The report of benches/fidelity: Kendall's τ between the cpu cost model's estimates and
the JIT's measurements, and the measured gains of optimizing.

Usage: fidelity.py OUT_DIR "THREADS…"

OUT_DIR holds one `saturate optimize --measure K --json` report per model and thread
count, named SUITE.NAME.THREADS.json, SUITE one of exporter-style, pytorch, kernel.
"""
import glob
import json
import math
import os
import sys

from models import TENSAT_SPEEDUP


def kendall_tau(xs, ys):
    """Kendall's τ-b of two equally long sequences (ties in either count as neither
    concordant nor discordant, and shrink the denominator); None below 2 points or when
    one side is constant."""
    n = len(xs)
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else None


def geomean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def load(out):
    reports = {}
    for path in sorted(glob.glob(os.path.join(out, "*.json"))):
        suite, rest = os.path.basename(path).split(".", 1)
        name, threads, _ = rest.rsplit(".", 2)
        report = json.load(open(path))
        if report.get("measured"):
            reports[(suite, name, threads)] = report["measured"]
    return reports


def timed(m):
    """(estimate, measured) of each program that was timed."""
    return [(p["estimate_seconds"], p["median_ms"]) for p in m["programs"] if p["median_ms"] is not None]


def fmt(x, spec=".2f", width=6):
    return f"{x:>{width}{spec}}" if x is not None else f"{'–':>{width}}"


def main():
    out, threads = sys.argv[1], sys.argv[2].split()
    reports = load(out)
    for t in threads:
        print(f"\n{t} thread(s): models (input and the candidates `optimize --measure` timed)")
        print(f"{'suite':<15} {'model':<22} {'progs':>5} {'τ':>6} {'input ms':>10} {'kept ms':>10} "
              f"{'gain':>7} {'est.gain':>8} {'Tensat':>7}  overruled")
        pooled_est, pooled_ms, per_model = [], [], []
        gains = {"exporter-style": [], "pytorch": []}
        for (suite, name, th), m in sorted(reports.items()):
            if th != t or suite == "kernel":
                continue
            points = timed(m)
            if not points or m["input_ms"] is None:
                continue
            est0, ms0 = m["programs"][0]["estimate_seconds"], m["input_ms"]
            tau = kendall_tau(*zip(*points)) if len(points) >= 3 else None
            if tau is not None:
                per_model.append(tau)
            for est, ms in points:
                pooled_est.append(est / est0)
                pooled_ms.append(ms / ms0)
            gain = m["input_ms"] / m["optimized_ms"]
            est_gain = est0 / m["programs"][m["estimates_pick"]]["estimate_seconds"]
            gains[suite].append(gain)
            tensat = f"{TENSAT_SPEEDUP[name]:>6.1f}%" if suite == "exporter-style" and name in TENSAT_SPEEDUP else f"{'':>7}"
            overruled = "yes" if not m["programs"][m["estimates_pick"]]["kept"] else ""
            print(f"{suite:<15} {name:<22} {len(points):>5} {fmt(tau)} {ms0:>10.3f} {m['optimized_ms']:>10.3f} "
                  f"{100 * (gain - 1):>6.1f}% {100 * (est_gain - 1):>7.1f}% {tensat}  {overruled}")
        tau_pooled = kendall_tau(pooled_est, pooled_ms)
        print(f"\nKendall's τ, estimate against measurement, {t} thread(s):")
        print(f"  pooled over {len(pooled_est)} programs of {len(gains['exporter-style']) + len(gains['pytorch'])} "
              f"models (each relative to its model's input): {fmt(tau_pooled, '.3f', 0)}")
        if per_model:
            print(f"  per model, over the {len(per_model)} models with 3 or more programs: median "
                  f"{sorted(per_model)[len(per_model) // 2]:.2f}, mean {sum(per_model) / len(per_model):.2f}, "
                  f"lowest {min(per_model):.2f}")
        rows = [(m["programs"][0]["estimate_seconds"], m["input_ms"]) for (s, _, th), m in reports.items()
                if s == "kernel" and th == t and m["input_ms"] is not None]
        if rows:
            print(f"  over the {len(rows)} kernel-benchmark rows (their input programs): "
                  f"{fmt(kendall_tau(*zip(*rows)), '.3f', 0)}")
        for suite, g in gains.items():
            if g:
                print(f"measured gain of optimizing, geomean over the {len(g)} {suite} models: "
                      f"{100 * (geomean(g) - 1):+.1f} % (none slower: the input is always a candidate)")
    print("\nTensat's gains are its published ones, measured on a V100 (TASO's cuDNN backend); ours are on this "
          "CPU's JIT, random inputs, the median of interleaved rounds")


if __name__ == "__main__":
    main()
