"""Load a ferroflow MLP checkpoint (safetensors) into torch.nn.Sequential.

The checkpoint stores the MLP as PyTorch's nn.Linear tensors: `net.{2i}.weight` [d_out, d_in]
and `net.{2i}.bias` [d_out] (the EMA copies under `ema.` when EMA was on; sampling uses them);
the network input is cat([x, e(t)], -1) with e(t) = t for the raw time embedding, or
[cos(t·ω), sin(t·ω)] with ω = `time_embedding.freqs` [1, dim/2]. Shared by torch_interop.py and
nll_peer.py.
"""
import json

import torch
from safetensors import safe_open

ACTIVATIONS = {"silu": torch.nn.SiLU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}


def load(ckpt, dtype=torch.float32):
    """Returns (net, freqs or None, model_cfg, train_cfg)."""
    with safe_open(ckpt, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model_cfg = json.loads(meta["ferroflow.model"])
    train_cfg = json.loads(meta["ferroflow.train"])
    prefix = "ema." if train_cfg.get("ema_decay") else ""  # 0 or null: no EMA
    layers = []
    n_linear = model_cfg["n_hidden"] + 1
    for i in range(n_linear):
        w, b = tensors[f"{prefix}net.{2 * i}.weight"], tensors[f"{prefix}net.{2 * i}.bias"]
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data.copy_(w)
        lin.bias.data.copy_(b)
        layers.append(lin)
        if i < n_linear - 1:
            layers.append(ACTIVATIONS[model_cfg["activation"]]())
    net = torch.nn.Sequential(*layers).to(dtype).eval()
    freqs = tensors.get("time_embedding.freqs")
    return net, (None if freqs is None else freqs.to(dtype)), model_cfg, train_cfg


def velocity(net, freqs, x, t):
    """v(x, t) for a batch x [n, d] at one time t (float)."""
    tt = torch.full((x.shape[0], 1), float(t), dtype=x.dtype)
    e = tt if freqs is None else torch.cat([torch.cos(tt * freqs), torch.sin(tt * freqs)], -1)
    return net(torch.cat([x, e], -1))
