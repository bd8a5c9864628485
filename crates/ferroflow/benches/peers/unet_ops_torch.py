"""PyTorch's side of `cargo bench -p ferroflow --bench unet`: the same U-Net (unet_torch.py, default
16×16 config) forward and training step at batch 128, and the same per-op breakdown on a
[128, 64, 8, 8] map (GroupNorm(8, 64) + SiLU, 3×3 conv 64 → 64, nearest ×2 upsampling), each
forward (`fwd`) and forward + backward of the sum (`fwd_bwd`). Medians; prints one JSON object
per line in the Rust bench's format, so the two can be read side by side.

    ~/peers-venv/bin/python crates/ferroflow/benches/peers/unet_ops_torch.py [--threads 2]
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_torch import UNet  # noqa: E402

BATCH = 128


def timed(f, min_reps=5, budget_s=3.0):
    f()
    times, t_end = [], time.perf_counter() + budget_s
    while len(times) < min_reps or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def emit(what, ms, batch=BATCH):
    print(json.dumps({"what": what, "batch": batch, "median_ms": round(ms, 3),
                      "images_per_s": round(1e3 * batch / ms, 1)}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = UNet({"height": 16, "width": 16})
    nn.init.normal_(model.out_conv.weight, std=0.02)
    x, t, y = torch.randn(BATCH, 256), torch.rand(BATCH), torch.randint(0, 11, (BATCH,))
    with torch.no_grad():
        emit("forward", timed(lambda: float(model(x, t, y).sum())))
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)

    def step():
        x0 = torch.randn(BATCH, 256)
        xt = t[:, None] * x + (1 - t[:, None]) * x0
        loss = ((model(xt, t, y) - (x - x0)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    emit("train_step", timed(step))
    h = torch.randn(BATCH, 64, 8, 8)
    gn, conv = nn.GroupNorm(8, 64), nn.Conv2d(64, 64, 3, padding=1)
    ops = {
        "op/groupnorm_silu": lambda a: F.silu(gn(a)),
        "op/conv3x3": lambda a: conv(a),
        "op/upsample2": lambda a: F.interpolate(a, scale_factor=2, mode="nearest"),
    }
    for name, f in ops.items():
        with torch.no_grad():
            emit(name + "/fwd", timed(lambda: float(f(h).sum()), 20, 1.0))
        hg = h.clone().requires_grad_(True)

        def fb():
            s = f(hg).sum()
            s.backward()
            return float(s)

        emit(name + "/fwd_bwd", timed(fb, 20, 1.0))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
