"""PyTorch twin of `cargo bench -p ferroflow --bench derivatives`: the cost of the flow's
derivatives per solver step, on the same MLP and batch, in the same JSON lines.

    python derivatives_peer.py [--batch 64] [--threads 1] [--quick]

The MLP matches the Rust bench: input cat([x, t]) (raw time), width 256, 3 hidden layers,
SiLU, f32, batch 64, D = 2, 256 (16×16) and 784 (28×28). It times one evaluation of
- `velocity`: v(x, t) under `torch.no_grad()`;
- `exact_div`: v and the exact divergence, D forward-mode JVPs with one-hot tangents batched
  by `torch.func.vmap(jvp)` (the same algorithm as ferroflow's: one batched JVP pass);
- `hutchinson_1`: v and Hutchinson's estimate uᵀ(∂v/∂x)u with one Rademacher probe (one JVP);
- `exact_div_vjp`: the exact divergence the way most PyTorch code computes it (D reverse-mode
  passes over the rows of the Jacobian, `torch.func.jacrev` + vmap), for reference;
- `guidance_exact`: v and ∇ₓ(∇·v) of the exact divergence (`vmap(grad(trace ∘ jacrev))`), the
  twin of the Rust bench's `guidance_exact` / `guidance_exact_fused`.

Each figure is the median of repeated runs after one warm-up (≥ 3 runs; until 0.5 s in
`--quick` mode, 3 s otherwise); every output is reduced to a Python float before the clock
stops. `--threads` sets `torch.set_num_threads` (1 by default, as the Rust bench's engine).
Prints one JSON object per line: {"peer", "dim", "what", "median_ms", "ratio_to_velocity"}.
"""
import argparse, json, statistics, time

import torch
from torch.func import grad, jacrev, jvp, vmap

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--quick", action="store_true")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
min_reps, budget = (3, 0.5) if args.quick else (5, 3.0)


def timed(f):
    f()
    samples, start = [], time.perf_counter()
    while len(samples) < min_reps or (time.perf_counter() - start < budget and len(samples) < 200):
        t0 = time.perf_counter()
        f()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


for dim in (2, 256, 784):
    net = torch.nn.Sequential(
        torch.nn.Linear(dim + 1, 256), torch.nn.SiLU(),
        torch.nn.Linear(256, 256), torch.nn.SiLU(),
        torch.nn.Linear(256, 256), torch.nn.SiLU(),
        torch.nn.Linear(256, dim),
    ).eval()
    for q in net.parameters():
        q.requires_grad_(False)
    x = torch.randn(args.batch, dim)
    t = torch.full((args.batch, 1), 0.5)

    def v_of(xx):
        return net(torch.cat([xx, t], -1))

    def velocity():
        with torch.no_grad():
            return v_of(x).sum().item()

    def exact_div():
        eye = torch.eye(dim).unsqueeze(1).expand(dim, args.batch, dim)
        v, jv = vmap(lambda e: jvp(v_of, (x,), (e,)))(eye)  # jv[i] = J e_i per point
        div = torch.einsum("ibi->b", jv)
        return v[0].sum().item() + div.sum().item()

    def hutchinson_1():
        u = torch.randint(0, 2, x.shape).float() * 2 - 1
        v, ju = jvp(v_of, (x,), (u,))
        return v.sum().item() + (u * ju).sum().item()

    def per_point(xi):
        return net(torch.cat([xi, t[0]], -1))

    def exact_div_vjp():
        jac = vmap(jacrev(per_point))(x)  # [batch, dim, dim]
        return jac.diagonal(dim1=1, dim2=2).sum().item()

    def div_of_point(xi):
        return torch.trace(jacrev(per_point)(xi))

    def guidance_exact():
        g = vmap(grad(div_of_point))(x)  # ∇ₓ(∇·v) per point
        return velocity() + g.sum().item()

    rows = [("velocity", velocity), ("exact_div", exact_div), ("hutchinson_1", hutchinson_1),
            ("guidance_exact", guidance_exact)]
    if dim <= 256 or not args.quick:
        rows.append(("exact_div_vjp", exact_div_vjp))
    base = None
    for what, f in rows:
        ms = timed(f)
        base = base or ms
        print(json.dumps({"peer": f"torch {torch.__version__}", "dim": dim, "what": what,
                          "median_ms": round(ms, 4), "ratio_to_velocity": round(ms / base, 2)}), flush=True)
