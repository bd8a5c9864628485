"""Evaluates a saved digits model in PyTorch without training: a ferroflow checkpoint (its EMA
weights, read by unet_torch.load_ferroflow) or one written by mnist_peer.py.

Two uses:
  - the cross-framework check: torch samples from ferroflow's weights with the same x0, labels
    and sampler as mnist_peer.py, scored by ferroflow's classifier; the figures must match what
    `ferroflow sample` gives from the same checkpoint;
  - test-set NLL in bits/dim with mnist_peer.py's convention (same dequantisation, same solver
    and divergence options as `ferroflow nll --mnist`), on either framework's checkpoint.

    ~/peers-venv/bin/python crates/ferroflow/benches/peers/peer_eval.py --ckpt run/model.safetensors \
        --data ../shared/data/mnist --samplers euler:10 --w 0 --nll 100 --nll-hutchinson 1 --out /tmp/eval

Writes samples_{sampler}_w{w}.npy and labels.npy under --out, and prints one JSON object.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_peer import floats, load_mnist, parse_sampler, sample, test_nll, to_uint8  # noqa: E402
from unet_torch import load_ferroflow  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", default=os.environ.get("FERROFLOW_DATA", "../shared/data/mnist"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samplers", type=lambda s: [v for v in s.split(",") if v], default=[])
    p.add_argument("--w", type=floats, default=[0.0])
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--sample-seed", type=int, default=1234)
    p.add_argument("--sample-batch", type=int, default=500)
    p.add_argument("--dopri-tol", type=float, default=1e-5)
    p.add_argument("--nll", type=int, default=0)
    p.add_argument("--nll-solver", default="dopri5")
    p.add_argument("--nll-tol", type=float, default=1e-5)
    p.add_argument("--nll-hutchinson", type=int, default=0)
    p.add_argument("--nll-batch", type=int, default=100)
    p.add_argument("--nll-conditional", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    for s in args.samplers:
        parse_sampler(s)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model, cfg, meta = load_ferroflow(args.ckpt)
    size = cfg.get("height", None) or int(round(cfg["d_input"] ** 0.5))
    d, n_classes = size * size, cfg.get("n_classes") or 10
    os.makedirs(args.out, exist_ok=True)
    res = {"ckpt": args.ckpt, "step": meta.get("ferroflow.step"), "size": size, "threads": args.threads,
           "torch": torch.__version__, "samples": []}
    if args.samplers:
        n = args.per_class * 10
        labels = torch.arange(n) % 10
        x0 = torch.randn(n, d, generator=torch.Generator().manual_seed(args.sample_seed))
        np.save(os.path.join(args.out, "labels.npy"), labels.numpy().astype(np.uint8))
        for sampler in args.samplers:
            for w in args.w:
                x, nfes, secs = sample(model, x0, labels, w, sampler, n_classes, args.sample_batch, args.dopri_tol)
                tag = sampler.replace(":", "")
                np.save(os.path.join(args.out, f"samples_{tag}_w{w:g}.npy"), to_uint8(x, size))
                res["samples"].append({"sampler": sampler, "w": w, "n": n, "seconds": secs,
                                       "file": f"samples_{tag}_w{w:g}.npy"})
    if args.nll:
        _, pixels, labels = load_mnist(args.data, "test", size)
        res["nll"] = test_nll(model, pixels[: args.nll], labels[: args.nll], args, d, size)
    print(json.dumps(res))


if __name__ == "__main__":
    with torch.no_grad():
        main()
