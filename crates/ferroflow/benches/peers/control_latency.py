"""Batch-1 latency of 10 Euler steps of a control-style velocity field in PyTorch eager, the
peer of the `control_*` keys of `cargo bench -p ferroflow --bench engine`.

Field: MLP([x ⊕ t ⊕ c]) with x an action chunk of 16 × 7 = 112 values, t raw, c a 256-d
observation vector; 3 hidden layers of 512, SiLU; 112 outputs.

    ~/peers-venv/bin/python control_latency.py
"""
import json, time
import torch

torch.manual_seed(0)
d_x, d_c, w = 112, 256, 512
net = torch.nn.Sequential(
    torch.nn.Linear(d_x + 1 + d_c, w), torch.nn.SiLU(), torch.nn.Linear(w, w), torch.nn.SiLU(),
    torch.nn.Linear(w, w), torch.nn.SiLU(), torch.nn.Linear(w, d_x)).eval()
x, c = torch.randn(1, d_x), torch.randn(1, d_c)
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
with torch.inference_mode():
    for _ in range(20):
        net(torch.cat([x, torch.zeros(1, 1), c], -1))
    lat = []
    for _ in range(7):
        reps = 50
        t0 = time.perf_counter()
        for _ in range(reps):
            z = x.clone()
            for k in range(10):
                t = torch.full((1, 1), k / 10)
                z = z + 0.1 * net(torch.cat([z, t, c], -1))
        lat.append((time.perf_counter() - t0) / reps * 1e6)
lat.sort()
out["control_euler10_latency_us_batch1"] = lat[len(lat) // 2]
print(json.dumps(out, indent=1))
