"""Peer check of `ferroflow nll`: the same checkpoint's negative log-likelihood computed by
flow_matching's `ODESolver.compute_likelihood` (exact divergence, torchdiffeq dopri5, float64).

    ferroflow train --world moons --steps 3000 -o /tmp/nllpeer
    python nll_peer.py /tmp/nllpeer/model.safetensors [path/to/ferroflow] [--n 1000] [--tol 1e-7]

Both sides use the same time convention: t = 0 the source N(0, σ₀² I), t = 1 the data, and
integrate the augmented ODE [x, ℓ] from t = 1 back to t = 0 with Dopri5, so that
log p₁(x₁) = log p₀(x(0)) − ∫₀¹ ∇·v dt (flow_matching: `time_grid = [1, 0]`, the default;
`log_p0` is the source log-density at t = 0). The MLP is loaded as in torch_interop.py
(PyTorch nn.Linear layout `net.{2i}.weight/bias`, input cat([x, e(t)])).

The points are the `moons` world's distribution (scikit-learn moons, noise 0.1, then ×3 − 1)
drawn by numpy with seed 0; any points work, as both sides score the same file. Prints one JSON line per side and
the per-point and mean differences; exits 1 if the mean NLLs differ by more than 1e-3 nats.
"""
import argparse, json, math, os, subprocess, sys, tempfile, time
import numpy as np
import torch
from flow_matching.solver import ODESolver
from flow_matching.utils import ModelWrapper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferroflow_torch import load  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("ckpt")
p.add_argument("exe", nargs="?", default="ferroflow")
p.add_argument("--n", type=int, default=1000)
p.add_argument("--tol", type=float, default=1e-7, help="atol = rtol of both Dopri5 solvers")
args = p.parse_args()

# float64: the peer's own rounding stays far below the 1e-3 nats being compared.
net, freqs, model_cfg, train_cfg = load(args.ckpt, torch.float64)

# σ₀ of the source, the scheduler's σ at t = 0: 1 for cond_ot, polynomial and cosine, σ_max
# for ve (vp's σ₀ is 1 − O(e^{−β}); not handled here).
sched = train_cfg["scheduler"]
if sched["kind"] == "vp":
    raise SystemExit("vp checkpoints: compute σ₀ from the scheduler first")
source_std = sched["sigma_max"] if sched["kind"] == "ve" else 1.0
dim = model_cfg["d_input"]


class Field(ModelWrapper):
    def forward(self, x, t, **extras):
        tt = t.reshape(1, 1).expand(x.shape[0], 1).to(x.dtype)
        e = tt if freqs is None else torch.cat([torch.cos(tt * freqs), torch.sin(tt * freqs)], -1)
        return self.model(torch.cat([x, e], -1))


def log_p0(x):
    return -0.5 * (x**2).sum(-1) / source_std**2 - 0.5 * dim * math.log(2 * math.pi * source_std**2)


rng = np.random.default_rng(0)
n = args.n
a = rng.uniform(0, math.pi, n)
upper = np.arange(n) % 2 == 0
pts = np.where(upper[:, None], np.stack([np.cos(a), np.sin(a)], 1), np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1))
pts = (3 * (pts + 0.1 * rng.standard_normal((n, 2))) - 1).astype(np.float32)

solver = ODESolver(velocity_model=Field(net))
x1 = torch.from_numpy(pts).double()
t0 = time.perf_counter()
_, log_p = solver.compute_likelihood(
    x_1=x1, log_p0=log_p0, step_size=None, method="dopri5", atol=args.tol, rtol=args.tol, exact_divergence=True
)
peer_s = time.perf_counter() - t0
peer = -log_p.detach().numpy()
peer_mean, peer_se = float(peer.mean()), float(peer.std(ddof=1) / math.sqrt(n))

with tempfile.TemporaryDirectory() as d:
    np.savetxt(os.path.join(d, "pts.csv"), pts, delimiter=",", fmt="%.9g")
    t0 = time.perf_counter()
    out = subprocess.run(
        [args.exe, "nll", "--ckpt", args.ckpt, "--data", os.path.join(d, "pts.csv"), "--json",
         "--atol", str(args.tol), "--rtol", str(args.tol)],
        check=True, capture_output=True, text=True,
    ).stdout
    ours_s = time.perf_counter() - t0
ours = json.loads(out)
diff = ours["nll"] - peer_mean
print(json.dumps({"side": "ferroflow nll (f32, dopri5)", "nll": ours["nll"], "nll_se": ours["nll_se"],
                  "nfe": ours["nfe"], "seconds": round(ours_s, 2)}))
print(json.dumps({"side": "flow_matching compute_likelihood (f64, torchdiffeq dopri5)", "nll": peer_mean,
                  "nll_se": peer_se, "seconds": round(peer_s, 2)}))
print(json.dumps({"n": n, "tol": args.tol, "mean_nll_diff": diff}))
if abs(diff) > 1e-3:
    raise SystemExit(f"mean NLLs differ by {diff:.2e} nats (> 1e-3)")
print("ok: ferroflow nll matches flow_matching compute_likelihood to 1e-3 nats")
