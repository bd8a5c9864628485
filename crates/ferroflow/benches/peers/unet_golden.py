"""Golden velocities of a small random U-Net from the PyTorch twin (unet_torch.py), for the Rust
test `torch_unet_weights_give_torch_velocities` (crates/ferroflow/tests/it/unet.rs).

Writes one safetensors file holding
  - the U-Net's parameters under torch's state-dict names (the names ferroflow's checkpoints use),
    every one drawn at random (GroupNorm scales and the zero-initialised output conv included, so
    every layer matters), metadata `ferroflow.model` = the config JSON;
  - `golden.x` [B, H·W], `golden.t` [B], `golden.labels` [B] (as float; 10 is the null class) and
    `golden.v` [B, H·W]: torch's velocities, computed in float64 from the float32 weights.

    ~/peers-venv/bin/python crates/ferroflow/benches/peers/unet_golden.py \
        crates/ferroflow/tests/fixtures/unet_torch_golden.safetensors
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_torch import UNet, unet_config  # noqa: E402

CONFIG = {
    "channels": 1,
    "height": 8,
    "width": 8,
    "base_channels": 8,
    "channel_mult": [1, 2],
    "res_blocks": 1,
    "groups": 4,
    "n_classes": 10,
    "attention": True,
}


def main(out):
    torch.manual_seed(20261201)
    cfg = unet_config(CONFIG)
    model = UNet(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn_like(p))
    state = {k: v.detach().contiguous().float() for k, v in model.state_dict().items()}
    b, d = 5, cfg["height"] * cfg["width"]
    x = torch.randn(b, d)
    t = torch.tensor([0.0, 0.13, 0.5, 0.87, 1.0])
    labels = torch.tensor([0, 3, 9, 10, 7])
    m64 = model.double()
    with torch.no_grad():
        v = m64(x.double(), t.double(), labels)
    tensors = dict(state)
    tensors["golden.x"] = x
    tensors["golden.t"] = t
    tensors["golden.labels"] = labels.float()
    tensors["golden.v"] = v.float()
    # float64 velocities too (split as hi + lo float32 so the file stays float32-only).
    hi = v.float()
    tensors["golden.v_lo"] = (v - hi.double()).float()
    meta = {
        "ferroflow.model": json.dumps(cfg),
        "source": "crates/ferroflow/benches/peers/unet_golden.py (torch " + torch.__version__ + ")",
    }
    save_file(tensors, out, metadata=meta)
    print(json.dumps({"out": out, "tensors": len(state), "v_abs_max": float(v.abs().max())}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "unet_torch_golden.safetensors")
