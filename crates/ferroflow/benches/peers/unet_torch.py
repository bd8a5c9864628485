"""PyTorch twins of ferroflow's image velocity fields: the U-Net of UNET_SPEC and the MLP field.

Both take flattened images and return flattened velocities:

    forward(x [B, C*H*W], t [B], labels [B] (int64) or None) -> [B, C*H*W]

with t = 0 the noise and t = 1 the data; label `n_classes` (or `labels=None`) is the null class
of classifier-free guidance. Module names are the state_dict names ferroflow's checkpoints use,
so `model.load_state_dict(tensors)` takes a ferroflow checkpoint as it is (torch layout:
Linear weight [out, in], Conv2d weight [out, in, kh, kw]).

    python unet_torch.py              # self-check: parameter counts, v == 0 at init, shapes
    python unet_torch.py CKPT         # loads a ferroflow checkpoint and prints its model

U-Net (UNetConfig, defaults): channels 1, height 16, width 16, base_channels 32,
channel_mult [1, 2, 2], res_blocks 1, groups 8, n_classes 10, attention true.
- e = sinusoidal(1000 t, ch) = cat(cos(1000 t f), sin(1000 t f)), f_k = exp(-ln(10000) k / (ch/2))
  (computed, not stored: no `time_embedding.freqs` tensor; a checkpoint that has one is accepted);
- emb = time_mlp.2(SiLU(time_mlp.0(e))) + class_embed(label);
- conv_in, down.{i}.res.{j}, down.{i}.downsample (stride-2 conv), mid.res1, mid.attn, mid.res2,
  up.{i}.res.{j} (j < res_blocks + 1, input cat[h, skip]), up.{i}.upsample (nearest x2 then this
  conv: the conv's tensors are `up.{i}.upsample.weight/bias`), out_norm, SiLU, out_conv.
- ResBlock: norm1, SiLU, conv1, + emb_proj(SiLU(emb)), norm2, SiLU, conv2, + skip(x) (1x1 conv
  if in != out);  AttnBlock: norm, qkv (q, k, v in that order), softmax(q^T k / sqrt c), proj.
Init: PyTorch's defaults (Conv2d/Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
Embedding N(0, 1), GroupNorm 1/0), then out_conv = 0 so v = 0 at init.

MLP field (ferroflow's MlpFieldConfig JSON, crates/ferroflow/src/model/mlp.rs): the network
`net` = Sequential(Linear, act, ..., Linear) on cat([x, e(t), c]); `net.{2i}.weight/bias`,
`time_embedding.freqs` [1, dim/2] (angular frequencies, e(t) = [cos(t w), sin(t w)], so the
sinusoidal embedding's `scale` is folded into w), `class_embedding.weight` [n_classes + 1, d]
(last row = null class). Its last layer is not zeroed (ferroflow's init does not zero it).
"""
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

# ----------------------------------------------------------------------------------------------
# U-Net

UNET_DEFAULTS = {
    "channels": 1,
    "height": 16,
    "width": 16,
    "base_channels": 32,
    "channel_mult": [1, 2, 2],
    "res_blocks": 1,
    "groups": 8,
    "n_classes": 10,
    "attention": True,
}


def unet_config(cfg=None, **overrides):
    """The full U-Net config: the defaults updated by `cfg` (a dict; unknown keys are an error,
    a `kind` key is ignored) and by keyword overrides. Checks divisibility like UNetConfig."""
    c = dict(UNET_DEFAULTS)
    for k, v in dict(cfg or {}, **overrides).items():
        if k == "kind":
            continue
        if k not in c:
            raise ValueError(f"unknown U-Net config key {k!r} (known: {', '.join(c)})")
        c[k] = v
    levels = len(c["channel_mult"])
    if levels == 0:
        raise ValueError("channel_mult is empty")
    f = 2 ** (levels - 1)
    if c["height"] % f or c["width"] % f:
        raise ValueError(f"height {c['height']} and width {c['width']} must be divisible by 2^(levels-1) = {f}")
    for m in c["channel_mult"]:
        if (c["base_channels"] * m) % c["groups"]:
            raise ValueError(f"channels {c['base_channels'] * m} not divisible by groups {c['groups']}")
    if c["base_channels"] % 2:
        raise ValueError("base_channels must be even (sinusoidal embedding of dim ch)")
    return c


def timestep_embedding(t, dim, scale=1000.0, max_period=10000.0):
    """cat(cos(scale t f), sin(scale t f)), f_k = exp(-ln(max_period) k / (dim/2)), k < dim/2
    (guided-diffusion's order: cos first). t [B] -> [B, dim]."""
    half = dim // 2
    f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half).to(t.dtype)
    theta = scale * t[:, None] * f[None, :]
    return torch.cat([torch.cos(theta), torch.sin(theta)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, c_in, c_out, emb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=1e-5)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=1e-5)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x, emb_act):
        """x [B, c_in, H, W], emb_act = SiLU(emb) [B, 4ch] -> [B, c_out, H, W]."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(emb_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class AttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-5)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * c, hh * ww).split(c, dim=1)  # each [B, c, HW]
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)  # [B, HW(query), HW(key)]
        h = torch.bmm(v, a.transpose(1, 2))  # [B, c, HW]
        return x + self.proj(h.reshape(b, c, hh, ww))


class Upsample(nn.Conv2d):
    """Nearest x2 then a 3x3 conv; subclass of the conv so its tensors are `<name>.weight/bias`."""

    def __init__(self, c):
        super().__init__(c, c, 3, padding=1)

    def forward(self, x):
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


class Level(nn.Module):
    pass


class Mid(nn.Module):
    pass


class UNet(nn.Module):
    """The U-Net velocity field of UNET_SPEC. `config`: dict (see UNET_DEFAULTS)."""

    def __init__(self, config=None):
        super().__init__()
        self.config = c = unet_config(config)
        ch, groups, mult = c["base_channels"], c["groups"], c["channel_mult"]
        emb_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embed = nn.Embedding(c["n_classes"] + 1, emb_dim) if c["n_classes"] is not None else None
        self.conv_in = nn.Conv2d(c["channels"], ch, 3, padding=1)
        levels = len(mult)
        hs = [ch]
        cur = ch
        self.down = nn.ModuleList()
        for i in range(levels):
            lv = Level()
            c_out = ch * mult[i]
            lv.res = nn.ModuleList()
            for _ in range(c["res_blocks"]):
                lv.res.append(ResBlock(cur, c_out, emb_dim, groups))
                cur = c_out
                hs.append(cur)
            if i < levels - 1:
                lv.downsample = nn.Conv2d(cur, cur, 3, stride=2, padding=1)
                hs.append(cur)
            self.down.append(lv)
        self.mid = Mid()
        self.mid.res1 = ResBlock(cur, cur, emb_dim, groups)
        self.mid.attn = AttnBlock(cur, groups) if c["attention"] else None
        self.mid.res2 = ResBlock(cur, cur, emb_dim, groups)
        up = [None] * levels
        for i in reversed(range(levels)):
            lv = Level()
            c_out = ch * mult[i]
            lv.res = nn.ModuleList()
            for _ in range(c["res_blocks"] + 1):
                lv.res.append(ResBlock(cur + hs.pop(), c_out, emb_dim, groups))
                cur = c_out
            if i > 0:
                lv.upsample = Upsample(cur)
            up[i] = lv
        assert not hs
        self.up = nn.ModuleList(up)  # up[i] is level i; forward runs them L-1 .. 0
        self.out_norm = nn.GroupNorm(groups, ch, eps=1e-5)
        self.out_conv = nn.Conv2d(ch, c["channels"], 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    @property
    def dim(self):
        c = self.config
        return c["channels"] * c["height"] * c["width"]

    def embedding(self, t, labels):
        c = self.config
        emb = self.time_mlp(timestep_embedding(t, c["base_channels"]))
        if self.class_embed is not None:
            if labels is None:
                labels = torch.full((t.shape[0],), c["n_classes"], dtype=torch.long, device=t.device)
            emb = emb + self.class_embed(labels)
        return emb

    def forward(self, x, t, labels=None):
        c = self.config
        b = x.shape[0]
        t = t.to(x.dtype).expand(b) if t.dim() == 0 else t.to(x.dtype)
        emb_act = F.silu(self.embedding(t, labels))
        h = self.conv_in(x.reshape(b, c["channels"], c["height"], c["width"]))
        hs = [h]
        for lv in self.down:
            for blk in lv.res:
                h = blk(h, emb_act)
                hs.append(h)
            if hasattr(lv, "downsample"):
                h = lv.downsample(h)
                hs.append(h)
        h = self.mid.res1(h, emb_act)
        if self.mid.attn is not None:
            h = self.mid.attn(h)
        h = self.mid.res2(h, emb_act)
        for lv in reversed(self.up):
            for blk in lv.res:
                h = blk(torch.cat([h, hs.pop()], dim=1), emb_act)
            if hasattr(lv, "upsample"):
                h = lv.upsample(h)
        h = self.out_conv(F.silu(self.out_norm(h)))
        return h.reshape(b, -1)


# ----------------------------------------------------------------------------------------------
# MLP field

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def mlp_mnist_config(d_input=256, d_hidden=1024, n_hidden=4, time_dim=128, d_embed=64, n_classes=10):
    """The MLP field of the MNIST recipe as ferroflow's MlpFieldConfig JSON. The time embedding's
    size is not fixed by the spec: dim 128, max_period 10000, scale 1000 (the U-Net's 1000 t)."""
    return {
        "d_input": d_input,
        "d_hidden": d_hidden,
        "n_hidden": n_hidden,
        "activation": "silu",
        "time_embedding": {"kind": "sinusoidal", "dim": time_dim, "max_period": 10000.0, "scale": 1000.0},
        "condition": {"kind": "class", "n_classes": n_classes, "d_embed": d_embed},
    }


class TimeEmbedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        kind = cfg.get("kind", "raw")
        if kind == "raw":
            self.freqs = None
            self.d_output = 1
        elif kind == "sinusoidal":
            h = cfg["dim"] // 2
            k = torch.arange(h, dtype=torch.float64)
            w = cfg["scale"] * torch.exp(-math.log(cfg["max_period"]) * k / h)
            self.register_buffer("freqs", w.float().reshape(1, h))
            self.d_output = cfg["dim"]
        elif kind == "fourier":
            # Frequencies are drawn by ferroflow and stored in the checkpoint: placeholder here.
            self.register_buffer("freqs", torch.zeros(1, cfg["dim"] // 2))
            self.d_output = cfg["dim"]
        else:
            raise ValueError(f"unknown time embedding {kind!r}")

    def forward(self, t):
        t = t[:, None]
        if self.freqs is None:
            return t
        theta = t * self.freqs
        return torch.cat([torch.cos(theta), torch.sin(theta)], dim=-1)


class MlpField(nn.Module):
    """ferroflow's MlpField: net(cat([x, e(t), class_embedding[label]])). `config`: MlpFieldConfig JSON."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.time_embedding = TimeEmbedding(config.get("time_embedding", {"kind": "raw"}))
        cond = config.get("condition", {"kind": "none"})
        self.n_classes = None
        self.class_embedding = None
        d_cond = 0
        if cond["kind"] == "class":
            self.n_classes = cond["n_classes"]
            self.class_embedding = nn.Parameter(torch.randn(cond["n_classes"] + 1, cond["d_embed"]))
            d_cond = cond["d_embed"]
        elif cond["kind"] == "vector":
            raise ValueError("vector conditions are not supported by this peer")
        d_in = config["d_input"] + self.time_embedding.d_output + d_cond
        layers = []
        for i in range(config["n_hidden"] + 1):
            d_out = config["d_input"] if i == config["n_hidden"] else config["d_hidden"]
            layers.append(nn.Linear(d_in, d_out))
            if i < config["n_hidden"]:
                layers.append(ACTIVATIONS[config.get("activation", "silu")]())
            d_in = d_out
        self.net = nn.Sequential(*layers)

    @property
    def dim(self):
        return self.config["d_input"]

    def forward(self, x, t, labels=None):
        b = x.shape[0]
        t = t.to(x.dtype).expand(b) if t.dim() == 0 else t.to(x.dtype)
        parts = [x, self.time_embedding(t)]
        if self.class_embedding is not None:
            if labels is None:
                parts.append(self.class_embedding[self.n_classes].expand(b, -1))
            else:
                parts.append(self.class_embedding[labels])
        return self.net(torch.cat(parts, dim=-1))


# ----------------------------------------------------------------------------------------------
# Building from checkpoints


def is_unet_config(cfg):
    return "base_channels" in cfg or "channel_mult" in cfg or cfg.get("kind") == "unet"


def build(cfg):
    """A fresh module from a config dict (U-Net if it has U-Net keys, else an MLP field)."""
    return UNet(cfg) if is_unet_config(cfg) else MlpField(cfg)


def from_state_dict(state, cfg, ema=True, dtype=torch.float32):
    """Builds the module of `cfg` and loads `state` (name -> tensor, torch layout). With `ema`,
    tensors under `ema.` are used where present (ferroflow stores the EMA weights there; the
    constant `time_embedding.freqs` is stored once, unprefixed). Strict: a missing or unexpected
    trained tensor is an error."""
    model = build(cfg)
    own = model.state_dict()
    picked = {}
    for name in own:
        if ema and f"ema.{name}" in state:
            picked[name] = state[f"ema.{name}"]
        elif name in state:
            picked[name] = state[name]
    missing = [n for n in own if n not in picked]
    if missing:
        raise KeyError(f"checkpoint lacks {missing[:5]}{' …' if len(missing) > 5 else ''}")
    plain = {k[4:] if k.startswith("ema.") else k for k in state}
    ignorable = {"time_embedding.freqs"}  # the U-Net computes its embedding
    unexpected = sorted(k for k in plain - set(own) - ignorable if not k.startswith("optim."))
    if unexpected:
        raise KeyError(f"checkpoint has tensors the model lacks: {unexpected[:5]}")
    for name, t in picked.items():
        if tuple(t.shape) != tuple(own[name].shape):
            raise ValueError(f"{name}: checkpoint shape {tuple(t.shape)}, model {tuple(own[name].shape)}")
    model.load_state_dict(picked)
    return model.to(dtype).eval()


def unwrap_model_config(meta_model):
    """`ferroflow.model` may be the config itself or wrapped ({"kind": "unet", ...},
    {"unet": {...}}, {"mlp": {...}}): returns the inner dict."""
    if isinstance(meta_model, dict) and len(meta_model) == 1:
        (k, v), = meta_model.items()
        if k in ("unet", "mlp", "UNet", "Mlp") and isinstance(v, dict):
            return v
    return meta_model


def load_ferroflow(path, ema=True, dtype=torch.float32):
    """(model, model_config, metadata) from a ferroflow .safetensors checkpoint."""
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    if "ferroflow.model" not in meta:
        raise KeyError(f"{path}: no `ferroflow.model` metadata")
    cfg = unwrap_model_config(json.loads(meta["ferroflow.model"]))
    return from_state_dict(state, cfg, ema=ema, dtype=dtype), cfg, meta


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def _self_check():
    torch.manual_seed(0)
    out = {}
    for name, size in (("unet16", 16), ("unet28", 28)):
        m = UNet({"height": size, "width": size})
        d = m.dim
        x, t, y = torch.randn(4, d), torch.rand(4), torch.tensor([0, 3, 9, 10])
        with torch.no_grad():
            v = m(x, t, y)
            v_null = m(x, t, None)
        assert v.shape == (4, d) and float(v.abs().max()) == 0.0 and float(v_null.abs().max()) == 0.0
        # Non-zero out_conv: the output depends on x, t and the label.
        nn.init.normal_(m.out_conv.weight, std=0.1)
        with torch.no_grad():
            v1, v2, v3 = m(x, t, y), m(x, 1 - t, y), m(x, t, torch.tensor([1, 1, 1, 1]))
        assert float((v1 - v2).abs().max()) > 0 and float((v1 - v3).abs().max()) > 0
        out[name] = {"params": num_params(m), "v_at_init_max_abs": 0.0, "dim": d}
    mlp = MlpField(mlp_mnist_config())
    with torch.no_grad():
        v = mlp(torch.randn(3, 256), torch.rand(3), None)
    assert v.shape == (3, 256)
    out["mlp16"] = {"params": num_params(mlp), "dim": 256, "config": mlp_mnist_config()}
    # State dict round trip through from_state_dict (EMA prefix picked).
    m = UNet()
    sd = {f"ema.{k}": v.clone() for k, v in m.state_dict().items()}
    sd.update({k: torch.zeros_like(v) for k, v in m.state_dict().items()})
    m2 = from_state_dict(sd, m.config)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    out["unet16_state_dict_names_first"] = list(m.state_dict())[:6]
    out["unet16_tensors"] = len(m.state_dict())
    print(json.dumps(out, indent=1))
    print("ok: U-Net v == 0 at init, shapes, EMA-prefixed state dict round trip")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        model, cfg, meta = load_ferroflow(sys.argv[1])
        print(json.dumps({"config": cfg, "params": num_params(model), "step": meta.get("ferroflow.step")}))
    else:
        _self_check()
