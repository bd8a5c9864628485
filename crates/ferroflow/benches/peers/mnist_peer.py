"""PyTorch peer of `ferroflow train --data mnist`: the same U-Net / MLP field, recipe and data, so
that quality and speed figures can be read side by side on one machine (issue 13).

Recipe (UNET_SPEC.md): MNIST from the IDX files, 28×28 → 16×16 by F.adaptive_avg_pool2d on the
float [0, 255] image, then x/127.5 − 1; CondOT (σ_min = 0), independent coupling, t ~ U[0, 1],
loss = mean over batch and pixels of (v − (x1 − x0))²; batch 128; Adam (0.9, 0.999, 1e-8), lr
5e-4 (U-Net) / 1e-3 (MLP), linear warm-up over 100 steps (lr_k = lr·(k+1)/100 for k < 100, as
ferroflow's TrainConfig::lr_at), then constant; gradient-norm clip 1.0 (grads × c/‖g‖ when
‖g‖ > c, no ε, as ferroflow); EMA 0.999 ramped: after the k-th step (k = 1, 2, …)
ema ← d·ema + (1 − d)·θ with d = min(0.999, (1 + k)/(10 + k)), starting from the initial θ;
label dropout 0.1 (label → the null class n_classes). Sampling from the EMA weights from one
fixed x0 ~ N(0, I) (seed --sample-seed) for every sampler and guidance w, with
v = (1 + w)·v(x|c) − w·v(x|∅), labels 0..9 repeated; images clamp((x + 1)·127.5, 0, 255) rounded.

Reproduce (from the repository root; threads 2 = the issue's 2-core CPU target):

    py=~/peers-venv/bin/python; p=crates/ferroflow/benches/peers
    # the issue's 30-minute U-Net figures, with the 6-minute checkpoint evaluated on the way:
    $py $p/mnist_peer.py --model unet --minutes 30 --eval-at 6,30 --threads 2 --out /tmp/peer-unet
    # the MLP field, same budget:
    $py $p/mnist_peer.py --model mlp --minutes 30 --eval-at 6,30 --threads 2 --out /tmp/peer-mlp
    # recipe parity at equal steps (N = ferroflow's step count):
    $py $p/mnist_peer.py --model unet --steps N --threads 2 --out /tmp/peer-unet-N
    # speed only (no sampling), and a quick smoke run:
    $py $p/mnist_peer.py --model unet --steps 200 --no-sample --out /tmp/peer-speed
    $py $p/mnist_peer.py --model unet --steps 100 --per-class 10 --w 0,2 \
        --samplers euler:10,dopri5 --out /tmp/peer-smoke
    # test-set NLL of 100 digits (exact divergence: D = 256 tangent passes per evaluation, slow;
    # --nll-hutchinson K for K Rademacher probes):
    $py $p/mnist_peer.py --model unet --steps N --no-sample --nll 100 --out /tmp/peer-nll

Output under --out DIR (with --eval-at, one sub-folder `min{M}` per checkpoint, plus `final`
when the run ends at a later step; DIR/run.json lists them all):
  samples_{sampler}_w{w}.npy  uint8 [N, H, W] (sampler as given, ':' → '', e.g. euler50)
  labels.npy                  uint8 [N], the requested digits
  grid_euler50_w0.npy         uint8 [100, H, W], the timed 100-digit grid (rows = digits 0–9)
  model.safetensors           the EMA weights under torch's state_dict names; metadata
                              `ferroflow.model` = the model config JSON (unet_torch.load_ferroflow reads it)
  run.json (eval.json in sub-folders)  steps, wall seconds, images/s, NFE and seconds per
                              sampler and w, the grid time, NLL (if asked), thread count, load.
Progress goes to stderr as JSON lines.

Data: --data DIR (default $FERROFLOW_DATA, else ../shared/data/mnist) with the four standard
files, gzipped or not. The FD/accuracy scoring is ferroflow's (its classifier), run on the .npy.
"""
import argparse
import copy
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_torch import MlpField, UNet, mlp_mnist_config, num_params, unet_config  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Data


def read_idx(path):
    """An IDX file (gzipped if it ends in .gz) as a numpy uint8 array; checks magic and length."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"MNIST file not found: {path}")
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated header")
    magic = struct.unpack(">I", data[:4])[0]
    if magic not in (2049, 2051):
        raise ValueError(f"{path}: magic number {magic}, expected 2049 (labels) or 2051 (images)")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    n = int(np.prod(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size < n:
        raise ValueError(f"{path}: truncated: {body.size} bytes of data, header says {n}")
    return body[:n].reshape(dims)


def find(dirname, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{dirname}: neither {stem}.gz nor {stem}")


def load_mnist(dirname, split, size):
    """(images float32 [N, size*size] in [−1, 1], the float [0, 255] pixels after resizing, labels int64 [N])."""
    stem = "train" if split == "train" else "t10k"
    images = read_idx(find(dirname, f"{stem}-images-idx3-ubyte"))
    labels = read_idx(find(dirname, f"{stem}-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    x = torch.from_numpy(images.astype(np.float32))[:, None]  # [N, 1, 28, 28], float [0, 255]
    if size != 28:
        x = F.adaptive_avg_pool2d(x, size)
    pixels = x.reshape(x.shape[0], -1)
    return pixels / 127.5 - 1.0, pixels, torch.from_numpy(labels.astype(np.int64))


# ----------------------------------------------------------------------------------------------
# Sampling


def guided(model, x, t, labels, w, null):
    """v = (1 + w)·v(x|c) − w·v(x|∅); one batched call for both terms when w ≠ 0."""
    tt = torch.full((x.shape[0],), float(t), dtype=x.dtype) if not torch.is_tensor(t) or t.dim() == 0 else t
    if w == 0:
        return model(x, tt, labels)
    both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([labels, torch.full_like(labels, null)]))
    vc, vu = both.chunk(2)
    return (1 + w) * vc - w * vu


def parse_sampler(s):
    name, _, steps = s.partition(":")
    if name not in ("euler", "midpoint", "rk4", "dopri5"):
        raise ValueError(f"unknown sampler {s!r}: euler:N, midpoint:N, rk4:N or dopri5")
    if name != "dopri5" and not steps:
        raise ValueError(f"sampler {s!r} needs a step count, e.g. {name}:50")
    return name, int(steps) if steps else None


def solve(f, x0, name, steps, t0=0.0, t1=1.0, tol=1e-5):
    """Integrates dx/dt = f(x, t) from t0 to t1; returns (x(t1), NFE)."""
    nfe = 0
    if name == "dopri5":
        from torchdiffeq import odeint

        def rhs(t, x):
            nonlocal nfe
            nfe += 1
            return f(x, t)

        ts = torch.tensor([t0, t1], dtype=x0.dtype)
        return odeint(rhs, x0, ts, method="dopri5", rtol=tol, atol=tol)[-1], nfe
    h = (t1 - t0) / steps
    x = x0
    for i in range(steps):
        t = t0 + i * h
        if name == "euler":
            x = x + h * f(x, t)
            nfe += 1
        elif name == "midpoint":
            x = x + h * f(x + 0.5 * h * f(x, t), t + 0.5 * h)
            nfe += 2
        elif name == "rk4":
            k1 = f(x, t)
            k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = f(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            nfe += 4
    return x, nfe


def to_uint8(x, size):
    return ((x + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).reshape(-1, size, size).numpy()


def sample(model, x0, labels, w, sampler, null, batch, tol):
    """Samples in chunks of `batch`; returns (x1, NFE per chunk, seconds)."""
    name, steps = parse_sampler(sampler)
    out, nfes = [], []
    t_start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, x0.shape[0], batch):
            lab = labels[i : i + batch]
            x, nfe = solve(lambda x, t, lab=lab: guided(model, x, t, lab, w, null), x0[i : i + batch], name, steps, tol=tol)
            out.append(x)
            nfes.append(nfe)
    return torch.cat(out), nfes, time.perf_counter() - t_start


# ----------------------------------------------------------------------------------------------
# Likelihood
#
# Dequantisation and bits/dim, the convention of ferroflow's likelihood::loglik::Dequantization
# (levels 256, range [−1, 1]): a pixel k ∈ {0…255} is stored as x = 2k/255 − 1 (the training
# scaling); it is dequantised to y = 2(k + u)/256 − 1, u ~ U(0, 1). (The 16×16 pixels are averages,
# not integers: as ferroflow does, k = round((x + 1)/2 · 255) clamped to 0…255 first.) Each bin has
# width 2/256 = 1/128 in y, so the discrete model P(k) = ∫_bin p(y) dy satisfies
#     −log P(k) ≤ E_u[−log p(y)] − D·ln(1/128) = nll + D·ln 128,
#     bits/dim = (nll + D·ln 128)/(D·ln 2) = nll/(D·ln 2) + 7,
# nll in nats per image (Ho et al. 2019 §3.1; Song et al. 2021's offset 7 for [−1, 1] data).
# log p1(y) = log p0(x(0)) − ∫₀¹ ∇·v(x(t), t) dt by the instantaneous change of variables, solved
# as the augmented ODE [x, ℓ] from t = 1 (x = y, ℓ = 0) back to t = 0: dℓ/dt = ∇·v, so
# log p1(y) = log N(x(0); 0, I) + ℓ(0), the same sign convention as ferroflow's loglik.rs.


def divergence_fn(model, labels, hutchinson, gen, n, d, max_rows=4096):
    """f(z, t) for the augmented state z = [x, ℓ] [n, d + 1]: returns [v, ∇·v].
    Exact: the Jacobian's diagonal from one-hot tangents, k directions a pass on the batch tiled
    k times (forward-mode, torch.func.jvp). Hutchinson: K Rademacher probes fixed for the solve."""
    from torch.func import jvp

    probes = None
    if hutchinson:
        probes = (torch.randint(0, 2, (hutchinson * n, d), generator=gen) * 2 - 1).float()

    def field(x, t, lab):
        return model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype), lab)

    def tile(lab, k):
        return None if lab is None else lab.repeat(k)

    def f(z, t):
        x = z[:, :d]
        with torch.no_grad():
            if probes is not None:
                k = hutchinson
                v, ju = jvp(lambda xx: field(xx, t, tile(labels, k)), (x.repeat(k, 1),), (probes,))
                div = (probes * ju).sum(-1).reshape(k, n).mean(0)
                v = v[:n]
            else:
                per = max(1, min(d, max_rows // n))
                div = torch.zeros(n, dtype=x.dtype)
                v = None
                for i0 in range(0, d, per):
                    k = min(per, d - i0)
                    u = torch.zeros(k, n, d, dtype=x.dtype)
                    u[torch.arange(k), :, i0 + torch.arange(k)] = 1.0
                    vv, ju = jvp(lambda xx: field(xx, t, tile(labels, k)), (x.repeat(k, 1),), (u.reshape(k * n, d),))
                    ju = ju.reshape(k, n, d)
                    div += ju[torch.arange(k), :, i0 + torch.arange(k)].sum(0)
                    if v is None:
                        v = vv[:n]
        return torch.cat([v, div[:, None]], dim=1)

    return f


def test_nll(model, pixels, labels, args, d, size):
    gen = torch.Generator().manual_seed(args.seed ^ 0xDE9)
    k = pixels.round().clamp(0, 255)  # the level k = round((x + 1)/2 · 255) (see the comment above)
    y = 2 * (k + torch.rand(k.shape, generator=gen)) / 256 - 1
    name, steps = parse_sampler(args.nll_solver)
    nll, nfes = [], []
    t0 = time.perf_counter()
    for i in range(0, y.shape[0], args.nll_batch):
        yb = y[i : i + args.nll_batch]
        lab = labels[i : i + args.nll_batch] if args.nll_conditional else None
        f = divergence_fn(model, lab, args.nll_hutchinson, gen, yb.shape[0], d)
        z0 = torch.cat([yb, torch.zeros(yb.shape[0], 1)], dim=1)
        z, nfe = solve(f, z0, name, steps, t0=1.0, t1=0.0, tol=args.nll_tol)
        x, ell = z[:, :d], z[:, d]
        log_p0 = -0.5 * (x.double() ** 2).sum(-1) - 0.5 * d * math.log(2 * math.pi)
        nll.append(-(log_p0 + ell.double()))
        nfes.append(nfe)
    nll = torch.cat(nll)
    n = nll.shape[0]
    bpd = nll / (d * math.log(2)) + 7.0
    return {
        "n": n,
        "nll_nats": float(nll.mean()),
        "nll_se": float(nll.std() / math.sqrt(n)) if n > 1 else None,
        "bits_per_dim": float(bpd.mean()),
        "bits_per_dim_se": float(bpd.std() / math.sqrt(n)) if n > 1 else None,
        "nfe_per_batch": nfes,
        "solver": args.nll_solver,
        "tol": args.nll_tol,
        "divergence": f"hutchinson:{args.nll_hutchinson} rademacher" if args.nll_hutchinson else "exact",
        "conditional": bool(args.nll_conditional),
        "dequantization": "uniform, 256 levels, [-1, 1]; bpd = nll/(D ln 2) + 7",
        "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------------------------
# Evaluation of one checkpoint (EMA weights)


def evaluate(ema, model_cfg, args, out_dir, size, n_classes, test, step, train_s):
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    ema.eval()
    d = size * size
    res = {"step": step, "train_seconds": train_s}
    state = {k: v.detach().contiguous().clone() for k, v in ema.state_dict().items()}
    save_file(state, os.path.join(out_dir, "model.safetensors"),
              metadata={"ferroflow.model": json.dumps(model_cfg), "ferroflow.step": str(step),
                        "peer": "benches/peers/mnist_peer.py (EMA weights, torch names)"})
    # The timed 100-digit grid: Euler 50, w = 0, rows = digits 0–9.
    g = torch.Generator().manual_seed(args.sample_seed + 1)
    grid_x0 = torch.randn(100, d, generator=g)
    grid_labels = torch.arange(10).repeat_interleave(10)
    with torch.no_grad():
        guided(ema, grid_x0[:2], 0.0, grid_labels[:2], 0.0, n_classes)  # warm the allocator
    x, _, secs = sample(ema, grid_x0, grid_labels, 0.0, "euler:50", n_classes, 100, args.dopri_tol)
    np.save(os.path.join(out_dir, "grid_euler50_w0.npy"), to_uint8(x, size))
    res["grid_100_euler50_w0_seconds"] = secs
    if not args.no_sample:
        n = args.per_class * 10
        labels = torch.arange(n) % 10
        x0 = torch.randn(n, d, generator=torch.Generator().manual_seed(args.sample_seed))
        np.save(os.path.join(out_dir, "labels.npy"), labels.numpy().astype(np.uint8))
        res["samples"] = []
        for sampler in args.samplers:
            for w in args.w:
                x, nfes, secs = sample(ema, x0, labels, w, sampler, n_classes, args.sample_batch, args.dopri_tol)
                tag = sampler.replace(":", "")
                np.save(os.path.join(out_dir, f"samples_{tag}_w{w:g}.npy"), to_uint8(x, size))
                entry = {"sampler": sampler, "w": w, "n": n, "nfe": nfes[0] if len(set(nfes)) == 1 else nfes,
                         "seconds": secs, "file": f"samples_{tag}_w{w:g}.npy"}
                res["samples"].append(entry)
                log(dict(eval_step=step, **entry))
    if args.nll:
        _, pixels, labels = test
        res["nll"] = test_nll(ema, pixels[: args.nll], labels[: args.nll], args, d, size)
        log({"eval_step": step, "nll": res["nll"]})
    return res


def log(obj):
    print(json.dumps(obj), file=sys.stderr, flush=True)


def floats(s):
    return [float(v) for v in s.split(",") if v.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["unet", "mlp"], default="unet")
    p.add_argument("--data", default=os.environ.get("FERROFLOW_DATA", "../shared/data/mnist"))
    p.add_argument("--size", type=int, choices=[16, 28], default=16)
    p.add_argument("--steps", type=int, default=None, help="stop after N steps (and/or --minutes, whichever first)")
    p.add_argument("--minutes", type=float, default=None, help="training-time budget (evaluations not counted)")
    p.add_argument("--eval-at", type=floats, default=[], help="minutes of training time at which to evaluate, e.g. 6,30")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="default 5e-4 (unet), 1e-3 (mlp)")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--label-dropout", type=float, default=0.1)
    p.add_argument("--unet", type=json.loads, default={}, help='U-Net config overrides as JSON, e.g. \'{"base_channels": 64}\'')
    p.add_argument("--mlp-time-dim", type=int, default=128, help="sinusoidal time features of the MLP field")
    p.add_argument("--w", type=floats, default=[0.0, 0.5, 1.0, 2.0])
    p.add_argument("--samplers", type=lambda s: s.split(","), default="euler:10,euler:50,euler:100,midpoint:25,dopri5".split(","))
    p.add_argument("--dopri-tol", type=float, default=1e-5, help="rtol = atol of dopri5 sampling")
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--sample-seed", type=int, default=1234)
    p.add_argument("--sample-batch", type=int, default=500)
    p.add_argument("--no-sample", action="store_true", help="skip the 2,000-digit sampling (grid timing still runs)")
    p.add_argument("--nll", type=int, default=0, help="test-set NLL (bits/dim) of the first N test digits")
    p.add_argument("--nll-solver", default="dopri5", help="dopri5 or rk4:N (t from 1 to 0)")
    p.add_argument("--nll-tol", type=float, default=1e-5)
    p.add_argument("--nll-hutchinson", type=int, default=0, help="K Rademacher probes (0: exact divergence)")
    p.add_argument("--nll-batch", type=int, default=100)
    p.add_argument("--nll-conditional", action="store_true", help="score log p(x | true label) (default: null class)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.steps is None and args.minutes is None:
        p.error("give --steps or --minutes (or both)")
    for s in args.samplers:
        parse_sampler(s)
    parse_sampler(args.nll_solver)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    size, d, n_classes = args.size, args.size * args.size, 10
    if args.model == "unet":
        model_cfg = unet_config(args.unet, height=size, width=size, n_classes=n_classes)
        model = UNet(model_cfg)
        lr = args.lr or 5e-4
    else:
        model_cfg = mlp_mnist_config(d_input=d, time_dim=args.mlp_time_dim, n_classes=n_classes)
        model = MlpField(model_cfg)
        lr = args.lr or 1e-3
    ema = copy.deepcopy(model).requires_grad_(False)
    params = list(model.parameters())
    ema_params = list(ema.parameters())
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)

    t_load = time.perf_counter()
    x_train, _, y_train = load_mnist(args.data, "train", size)
    test = load_mnist(args.data, "test", size) if args.nll else None
    load_s = time.perf_counter() - t_load
    n_train = x_train.shape[0]
    os.makedirs(args.out, exist_ok=True)
    info = {
        "peer": "benches/peers/mnist_peer.py", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "model": args.model, "model_config": model_cfg, "params": num_params(model), "size": size,
        "recipe": {"batch": args.batch, "lr": lr, "warmup": args.warmup, "clip": args.clip, "ema": args.ema,
                   "label_dropout": args.label_dropout, "seed": args.seed, "path": "cond_ot sigma_min=0",
                   "coupling": "independent", "time": "uniform"},
        "data_load_seconds": load_s, "loadavg_start": os.getloadavg(),
    }
    log({"start": info})

    gen = torch.Generator().manual_seed(args.seed)
    perm, pos = torch.randperm(n_train, generator=gen), 0
    budget_s = args.minutes * 60 if args.minutes is not None else math.inf
    evals_at = sorted(m * 60 for m in args.eval_at)
    evals, step, train_s = [], 0, 0.0
    window_loss, window_n, window_t = 0.0, 0, 0.0
    steady_t, steady_steps = 0.0, 0  # excluding the first 5 steps (allocator warm-up)
    losses = []
    while (args.steps is None or step < args.steps) and train_s < budget_s:
        t_step = time.perf_counter()
        if pos + args.batch > n_train:
            perm, pos = torch.randperm(n_train, generator=gen), 0
        idx = perm[pos : pos + args.batch]
        pos += args.batch
        x1, labels = x_train[idx], y_train[idx].clone()
        b = x1.shape[0]
        x0 = torch.randn(b, d, generator=gen)
        t = torch.rand(b, generator=gen)
        drop = torch.rand(b, generator=gen) < args.label_dropout
        labels[drop] = n_classes
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        ut = x1 - x0
        loss = ((model(xt, t, labels) - ut) ** 2).mean()
        if not torch.isfinite(loss):
            raise SystemExit(f"non-finite loss {loss.item()} at step {step + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.grad) for g in params]))
            if norm > args.clip:
                torch._foreach_mul_([q.grad for q in params], float(args.clip / norm))
        opt.param_groups[0]["lr"] = lr * (step + 1) / args.warmup if step < args.warmup else lr
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        lv = loss.item()
        dt = time.perf_counter() - t_step
        train_s += dt
        if step > 5:
            steady_t += dt
            steady_steps += 1
        losses.append(lv)
        window_loss, window_n, window_t = window_loss + lv, window_n + 1, window_t + dt
        if step % args.log_every == 0:
            log({"step": step, "loss": window_loss / window_n, "steps_per_s": window_n / window_t,
                 "images_per_s": window_n * args.batch / window_t, "train_s": round(train_s, 1)})
            window_loss, window_n, window_t = 0.0, 0, 0.0
        while evals_at and train_s >= evals_at[0]:
            m = evals_at.pop(0) / 60
            r = evaluate(ema, model_cfg, args, os.path.join(args.out, f"min{m:g}"), size, n_classes, test, step, train_s)
            r["minutes"] = m
            evals.append(r)
            with open(os.path.join(args.out, f"min{m:g}", "eval.json"), "w") as f:
                json.dump(r, f, indent=1)

    info.update({
        "steps": step, "train_seconds": train_s, "steps_per_s": step / train_s,
        "images_per_s": step * args.batch / train_s,
        "images_per_s_steady": steady_steps * args.batch / steady_t if steady_t > 0 else None,
        "loss_first_10": float(np.mean(losses[:10])), "loss_last_10": float(np.mean(losses[-10:])),
        "loadavg_end_training": os.getloadavg(),
    })
    if not args.eval_at:
        info.update(evaluate(ema, model_cfg, args, args.out, size, n_classes, test, step, train_s))
    elif not evals or evals[-1]["step"] != step:
        r = evaluate(ema, model_cfg, args, os.path.join(args.out, "final"), size, n_classes, test, step, train_s)
        with open(os.path.join(args.out, "final", "eval.json"), "w") as f:
            json.dump(r, f, indent=1)
        evals.append(dict(r, minutes="final"))
    if evals:
        info["evaluations"] = evals
    info["loadavg_end"] = os.getloadavg()
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: info[k] for k in ("model", "params", "steps", "train_seconds", "images_per_s",
                                            "images_per_s_steady", "loss_first_10", "loss_last_10")}))


if __name__ == "__main__":
    main()
