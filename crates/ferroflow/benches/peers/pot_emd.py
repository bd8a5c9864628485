"""Peer timing for benches/coupling.rs: POT's exact OT (`ot.emd`, network simplex).

Run right after the criterion bench, on the same machine:
    python3 crates/ferroflow/benches/peers/pot_emd.py [--rounds 15]
(needs numpy and POT: `python3 -m venv /tmp/pot-venv && /tmp/pot-venv/bin/pip install pot`).

Same point families and sizes as the bench (x0, x1 independent draws, n points each):
uniform U([0,1]^2); clustered: 8 gaussians, centres 4(cos 2πk/8, sin 2πk/8), std 0.1;
duplicated: n/4 uniform points each repeated 4 times. Prints JSON: for each (family, n), the
median and best over rounds of `ot.emd(a, b, M)` with M = squared Euclidean costs computed
beforehand (not timed, as ferroflow's figure includes its own cost matrix), plus the median of
`ot.dist` alone, and the optimal mean cost (of the first draw).

With `--instances K` (and `--sizes`), each (family, n) is timed on K draws (seeds n, n + 1, …,
as `cargo run --release -p ferroflow --example ot_tune 400 256 uniform,clustered,duplicated K`
spreads its plans) and the figures are the median over the draws of each draw's median: one
draw can be an easy or a hard instance, for either solver.
"""
import argparse
import json
import platform
import time

import numpy as np
import ot


def family(kind, n, rng):
    if kind == "uniform":
        return rng.random((n, 2)).astype(np.float32)
    if kind == "clustered":
        k = rng.integers(0, 8, n)
        a = k * np.pi / 4
        c = np.stack([4 * np.cos(a), 4 * np.sin(a)], 1)
        return (c + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)
    if kind == "duplicated":
        base = rng.random((n // 4, 2)).astype(np.float32)
        return base[np.arange(n) % (n // 4)]
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--sizes", default="256,1024")
    args = ap.parse_args()
    out = {"peer": f"POT {ot.__version__} ot.emd", "numpy": np.__version__,
           "python": platform.python_version(), "results": []}
    for n in (int(x) for x in args.sizes.split(",")):
        for kind in ("uniform", "clustered", "duplicated"):
            per = []
            for seed in range(n, n + args.instances):
                rng = np.random.default_rng(seed)
                x0 = family(kind, n, rng).astype(np.float64)
                x1 = family(kind, n, rng).astype(np.float64)
                w = np.full(n, 1.0 / n)
                t_emd, t_dist = [], []
                ot.emd(w, w, ot.dist(x0, x1))  # warm-up
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    M = ot.dist(x0, x1)  # squared Euclidean
                    t_dist.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    G = ot.emd(w, w, M)
                    t_emd.append(time.perf_counter() - t)
                per.append((np.median(t_emd), np.min(t_emd), np.median(t_dist), float((G * M).sum())))
            per = np.array(per)
            out["results"].append({
                "family": kind, "n": n, "instances": args.instances,
                "emd_median_ms": 1e3 * float(np.median(per[:, 0])),
                "emd_best_ms": 1e3 * float(np.median(per[:, 1])),
                "dist_median_ms": 1e3 * float(np.median(per[:, 2])),
                "mean_cost": float(per[0, 3]),
            })
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
