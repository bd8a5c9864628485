"""Peer for `engine_bf16_euler100_points_nfe_per_s` (`ferroflow bench w2d`): PyTorch's Euler
sampler on the W2D network (3->256->256->256->2 SiLU, untrained, as ferroflow's bench) over
10,000 points and 100 steps, in f32 and under `torch.autocast("cpu", dtype=torch.bfloat16)`
(oneDNN's bf16 matmuls where the CPU has AVX512-BF16), both at the thread count given.

    ~/peers-venv/bin/python crates/ferroflow/benches/peers/euler_bf16.py [threads, default 2] [rounds, default 3]

Prints JSON: the medians of `rounds` runs in point·NFE/s, and the largest difference between
the f32 and bf16 end points relative to the f32 end points' largest coordinate.
"""
import json
import sys
import time

import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
torch.set_num_threads(threads)
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(3, 256), torch.nn.SiLU(),
    torch.nn.Linear(256, 256), torch.nn.SiLU(),
    torch.nn.Linear(256, 256), torch.nn.SiLU(),
    torch.nn.Linear(256, 2))
x0 = torch.randn(10_000, 2)


def euler(bf16):
    x = x0.clone()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for k in range(100):
            t = torch.full((x.shape[0], 1), k / 100.0)
            x = x + 0.01 * net(torch.cat([x, t], dim=-1)).float()
    return x


out = {"torch": torch.__version__, "threads": threads}
ends = {}
for name, bf16 in [("f32", False), ("bf16", True)]:
    euler(bf16)  # warm-up
    runs = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ends[name] = euler(bf16)
        runs.append(10_000 * 100 / (time.perf_counter() - t0))
    out[f"torch_{name}_euler100_points_nfe_per_s"] = sorted(runs)[len(runs) // 2]
scale = ends["f32"].abs().max().item()
out["bf16_end_max_rel_diff"] = (ends["bf16"] - ends["f32"]).abs().max().item() / scale
print(json.dumps(out, indent=1))
