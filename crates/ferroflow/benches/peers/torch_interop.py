"""Loads a ferroflow MLP checkpoint into torch.nn.Sequential and checks that its velocities
equal ferroflow's to 1e-5 on the same inputs.

    ferroflow train --world moons --steps 2000 -o runs/interop
    python torch_interop.py runs/interop/model.safetensors [path/to/ferroflow]

The checkpoint stores the MLP as PyTorch's nn.Linear tensors: `net.{2i}.weight` [d_out, d_in]
and `net.{2i}.bias` [d_out]; the network input is cat([x, e(t)], -1) where e(t) = t for the raw
time embedding, or [cos(t·ω), sin(t·ω)] with ω = `time_embedding.freqs` [1, dim/2].
ferroflow's velocities are read back through `ferroflow sample --solver euler --steps K`
from given source points: every Euler step is x ← x + h·v(x, t), so matching end points over
K steps checks v at K times along the path.
"""
import json, os, subprocess, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferroflow_torch import load, velocity as torch_velocity  # noqa: E402

ckpt = sys.argv[1]
exe = sys.argv[2] if len(sys.argv) > 2 else "ferroflow"
net, freqs, model_cfg, train_cfg = load(ckpt)


def velocity(x, t):
    return torch_velocity(net, freqs, x, t)


rng = np.random.default_rng(0)
x0 = rng.standard_normal((256, model_cfg["d_input"])).astype(np.float32)
worst = 0.0
with tempfile.TemporaryDirectory() as d:
    np.savetxt(os.path.join(d, "x0.csv"), x0, delimiter=",", fmt="%.9g")
    for k in (1, 10):
        out = os.path.join(d, f"x{k}.csv")
        subprocess.run([exe, "sample", "--ckpt", ckpt, "--x0", os.path.join(d, "x0.csv"), "--solver", "euler",
                        "--steps", str(k), "-o", out], check=True, capture_output=True)
        ours = np.loadtxt(out, delimiter=",", comments="#", ndmin=2)
        x = torch.from_numpy(x0)
        with torch.no_grad():
            for i in range(k):
                x = x + (1.0 / k) * velocity(x, i / k)
        err = float(np.abs(ours - x.numpy()).max())
        scale = float(np.abs(x.numpy()).max())
        print(json.dumps({"euler_steps": k, "max_abs_diff": err, "max_abs_value": scale}))
        worst = max(worst, err / max(1.0, scale) if k > 1 else err)
assert worst < 1e-5, f"ferroflow and torch disagree: {worst}"
print("ok: torch.nn.Sequential reproduces ferroflow's velocities to 1e-5")
