"""MobileCLIP2 CLIP model (image tower + text tower + logit_scale), configs,
random init, preprocessing and checkpoint writers.

Our own code; see README.md for the file layouts and NOTES.md for where the
official code differs from /work/shared/notes/mobileclip2.md.
"""
import copy
import json
import math
import os
import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from mci import MCi
from vit import ViT
from text import TextTower
import safetensors_io

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

R, A = "repmixer", "attention"
_MCI = {  # timm fastvit_mci0..4 model args
    "fastvit_mci0": dict(widths=[64, 128, 256, 512], depths=[2, 6, 10, 2], mlp_ratio=3.0),
    "fastvit_mci1": dict(widths=[64, 128, 256, 512], depths=[4, 12, 20, 4], mlp_ratio=3.0),
    "fastvit_mci2": dict(widths=[80, 160, 320, 640], depths=[4, 12, 24, 4], mlp_ratio=3.0),
    "fastvit_mci3": dict(widths=[96, 192, 384, 768, 1536], depths=[2, 12, 24, 4, 2], mlp_ratio=4.0),
    "fastvit_mci4": dict(widths=[128, 256, 512, 1024, 2048], depths=[2, 12, 24, 4, 4], mlp_ratio=4.0),
}


def mci_cfg(name, embed_dim, widths=None, depths=None):
    c = copy.deepcopy(_MCI[name])
    if widths:
        c["widths"] = list(widths)
    if depths:
        c["depths"] = list(depths)
    five = len(_MCI[name]["widths"]) == 5
    c.update(embed_dim=embed_dim, layernorm=five, stem_scale=not five,
             mixers=[R, R, R, A, A] if five else [R, R, R, A],
             se_down=[False] * 5 if five else [False, False, True, True],
             cpe=[False, False, False, True, True] if five else [False, False, False, True])
    return c


# name -> (timm model, embed, text width, text heads, image size, mean/std kind)
_FAMILY = {
    "MobileCLIP2-S0": ("fastvit_mci0", 512, 512, 8, 256, "identity"),
    "MobileCLIP2-S2": ("fastvit_mci2", 512, 512, 8, 256, "identity"),
    "MobileCLIP2-S3": ("fastvit_mci3", 768, 768, 12, 256, "openai"),
    "MobileCLIP2-S4": ("fastvit_mci4", 768, 768, 12, 256, "openai"),
    "MobileCLIP2-B": ("vit_base_mci_224", 512, 512, 8, 224, "identity"),
    "MobileCLIP2-L-14": ("vit_large_patch14_clip_224", 768, 768, 12, 224, "openai"),
}
_VIT = {  # timm model args
    "vit_base_mci_224": dict(kind="mci", width=768, depth=12, heads=12),
    "vit_large_patch14_clip_224": dict(kind="clip", width=1024, depth=24, heads=16, patch=14),
}

# Reduced configs for committed goldens: the same structure as the full model
# (channel-multiplier-2 grouped convs, SE wherever the full model has it, every
# branch) at small widths. Attention head_dim is fixed at 32 in timm, so the
# image tower's last stage (width 32) has a single head; the text tower keeps 2.
# 80 px input gives odd grids (5x5 -> 3x3) in the last downsample.
TINY = {
    "MobileCLIP2-S0": dict(widths=[4, 8, 16, 32], depths=[1, 2, 2, 1], image_size=80,
                           text=dict(vocab_size=64, width=16, heads=2, layers=2), embed_dim=16),
    # 5 stages, LayerNorm attention norm, no stem scale branches, no downsample
    # SE, MLP ratio 4; attention widths 32 (1 head) and 64 (2 heads); 80 px input
    # gives grids 20, 10, 5, 3, 2.
    "MobileCLIP2-S3": dict(widths=[4, 8, 16, 32, 64], depths=[1, 1, 1, 1, 1], image_size=80,
                           text=dict(vocab_size=64, width=16, heads=2, layers=2), embed_dim=16),
    # ViT-L/14 shrunk through timm kwargs: 42 px -> 3x3 patches + cls.
    "MobileCLIP2-L-14": dict(vit=dict(embed_dim=32, depth=2, num_heads=2, img_size=42), image_size=42,
                             text=dict(vocab_size=64, width=16, heads=2, layers=2), embed_dim=16),
    # B: timm hard-codes the conv stem widths (192, 192, 768), so this tiny form
    # (stem widths width/4, width/4, width) is NOT loadable by stock timm; the
    # cross-check swaps in a stem built from embed_dim. Causal text mask.
    # 64 px -> 4x4 tokens + cls.
    "MobileCLIP2-B": dict(vit=dict(embed_dim=32, depth=2, num_heads=2, img_size=64), image_size=64,
                          text=dict(vocab_size=64, width=16, heads=2, layers=2), embed_dim=16),
}


def model_config(name, tiny=False):
    """OpenCLIP-style model cfg dict (as in open_clip_config.json "model_cfg")."""
    timm_name, embed, tw, th, size, _ = _FAMILY[name]
    vit = timm_name in _VIT
    vision = {"timm_model_name": timm_name, "timm_model_pretrained": False,
              "timm_pool": "token" if vit else "avg", "timm_proj": None, "timm_drop": 0.0,
              "timm_drop_path": 0.1 if name.endswith("L-14") else 0.0, "image_size": size}
    text = {"context_length": 77, "vocab_size": 49408, "width": tw, "heads": th, "layers": 12,
            "no_causal_mask": not name.endswith("-B")}
    if tiny:
        t = TINY[name]
        embed = t["embed_dim"]
        vision["image_size"] = t["image_size"]
        vision["timm_model_kwargs"] = t.get("vit") or {"layers": t["depths"], "embed_dims": t["widths"]}
        text.update(t["text"])
    return {"embed_dim": embed, "vision_cfg": vision, "text_cfg": text, "custom_text": True}


def preprocess_config(name):
    kind = _FAMILY[name][5]
    mean, std = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) if kind == "identity" else (OPENAI_MEAN, OPENAI_STD)
    interp = "bicubic" if name.endswith("L-14") else "bilinear"
    return {"mean": list(mean), "std": list(std), "interpolation": interp, "resize_mode": "shortest"}


class CLIP(nn.Module):
    """state_dict() keys: visual.trunk.*, text.*, logit_scale (OpenCLIP CustomTextCLIP)."""

    def __init__(self, mcfg):
        super().__init__()
        v, t = mcfg["vision_cfg"], mcfg["text_cfg"]
        kw = v.get("timm_model_kwargs") or {}
        self.visual = nn.Module()
        name = v["timm_model_name"]
        if name in _VIT:
            c = dict(_VIT[name], image_size=v["image_size"], embed_dim=mcfg["embed_dim"])
            c.update({k2: kw[k1] for k1, k2 in (("embed_dim", "width"), ("depth", "depth"),
                                                ("num_heads", "heads")) if k1 in kw})
            self.visual.trunk = ViT(c)
        else:
            self.visual.trunk = MCi(mci_cfg(name, mcfg["embed_dim"], kw.get("embed_dims"), kw.get("layers")))
        self.text = TextTower(dict(vocab_size=t["vocab_size"], context_length=t["context_length"],
                                   width=t["width"], heads=t["heads"], layers=t["layers"],
                                   mlp_ratio=t.get("mlp_ratio", 4.0), embed_dim=mcfg["embed_dim"],
                                   causal=not t.get("no_causal_mask", False)))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.image_size = v["image_size"]

    def encode_image(self, x, taps=None):
        return self.visual.trunk(x, taps)

    def encode_text(self, ids, taps=None):
        return self.text(ids, taps)


@torch.no_grad()
def randomize(model, seed):
    """Random weights that make every branch matter: BN running var in [0.5, 2],
    non-zero BN/conv/linear biases, layer scales ~0.1-0.5, fan-in scaled weights
    (activations stay O(1) through all blocks)."""
    g = torch.Generator().manual_seed(seed)

    def u(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    def n(shape, std):
        return torch.randn(shape, generator=g) * std

    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.copy_(u(c, 0.5, 1.5)); m.bias.copy_(u(c, -0.3, 0.3))
            m.running_mean.copy_(u(c, -0.3, 0.3)); m.running_var.copy_(u(c, 0.5, 2.0))
            m.num_batches_tracked.fill_(int(torch.randint(1, 1 << 20, (1,), generator=g)))
        elif isinstance(m, nn.LayerNorm):
            m.weight.copy_(u(m.weight.shape, 0.5, 1.5)); m.bias.copy_(u(m.bias.shape, -0.2, 0.2))
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(n(m.weight.shape, 1.0 / math.sqrt(fan_in)))
            if m.bias is not None:
                m.bias.copy_(u(m.bias.shape, -0.2, 0.2))
    for name, p in model.named_parameters():
        if name.endswith("gamma") or name.endswith("layer_scale"):
            p.copy_(u(p.shape, 0.1, 0.5))
        elif name.endswith("in_proj_weight"):
            p.copy_(n(p.shape, 1.0 / math.sqrt(p.shape[1])))
        elif name.endswith("in_proj_bias"):
            p.copy_(u(p.shape, -0.2, 0.2))
        elif name.endswith("token_embedding.weight") or name.endswith("embedding_layer.weight"):
            p.copy_(n(p.shape, 1.0))
        elif name.endswith("positional_embedding"):
            p.copy_(n(p.shape, 0.3))
        elif name.endswith("text_projection") or name.endswith("projection_layer"):
            p.copy_(n(p.shape, 1.0 / math.sqrt(p.shape[0])))
        elif name == "logit_scale":
            p.fill_(float(u((), 4.0, 4.6)))
        elif name.endswith("cls_token"):
            p.copy_(n(p.shape, 0.5))
        elif name.endswith("pos_embed"):
            p.copy_(n(p.shape, 0.3))
        elif name.endswith("pos_enc.weight"):
            p.copy_(n(p.shape, 0.1))
    # deep MCi stages (S2 has 24 RepMixer blocks in a row) would otherwise grow
    # activations ~100x: shrink their layer scales by sqrt(2 / depth)
    for m in model.modules():
        blocks = getattr(m, "blocks", None)
        if isinstance(blocks, nn.Sequential) and len(blocks) > 2:
            for name, p in blocks.named_parameters():
                if name.endswith("gamma"):
                    p.mul_(math.sqrt(2.0 / len(blocks)))
    return model


def build(name, tiny=False, seed=0):
    mcfg = model_config(name, tiny)
    return randomize(CLIP(mcfg).eval(), seed), mcfg


# ---------------------------------------------------------------- MobileCLIP v1 S0, S1, S2

V1_TINY = dict(widths=[4, 8, 16, 32], depths=[1, 2, 2, 1], image_size=80,
               text=dict(vocab_size=64, dim=16, n_heads=2, n_transformer_layers=2), embed_dim=16)
# S1/S2 shape: the same tiny MCi with two attention blocks, and the base text tower
V1_TINY_BASE = dict(widths=[4, 8, 16, 32], depths=[1, 1, 1, 2], image_size=80,
                    text=dict(vocab_size=64, dim=16, n_heads=2, n_transformer_layers=2), embed_dim=16)
# B: Apple's ViT-B/16 always stores a 196-row (14x14) position table and
# interpolates it linearly along the flattened sequence at other sizes; the tiny B
# runs at 64 px (16 patches: interpolated, as Apple's code does, and the same
# pixels as MobileCLIP2-B tiny), width 32 with Apple's stem rule max(32, width // 4).
V1_TINY_B = dict(vit=dict(width=32, depth=2, heads=2), image_size=64,
                 text=dict(vocab_size=64, dim=16, n_heads=2, n_transformer_layers=2), embed_dim=16)
# name -> (Apple image model, timm twin, text variant, transformer layers)
_V1 = {"MobileCLIP-S0": ("mci0", "fastvit_mci0", "mct", 4),
       "MobileCLIP-S1": ("mci1", "fastvit_mci1", "base", 12),
       "MobileCLIP-S2": ("mci2", "fastvit_mci2", "base", 12),
       "MobileCLIP-B": ("vit_b16", "vit_base_mci_224", "base", 12)}


def v1_config(tiny=False, name="MobileCLIP-S0"):
    """Apple mobileclip/configs/mobileclip_s{0,1,2}.json (tiny: plus "glimpse_tiny")."""
    img, _, variant, layers = _V1[name]
    vit = img == "vit_b16"
    cfg = {"embed_dim": 512, "image_cfg": {"image_size": 224 if vit else 256, "model_name": img},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "dim": 512,
                        "ffn_multiplier_per_layer": 4.0, "n_heads_per_layer": 8,
                        "n_transformer_layers": layers, "norm_layer": "layer_norm_fp32",
                        "causal_masking": vit, "model_name": variant}}
    if tiny:
        t = V1_TINY_B if vit else V1_TINY if variant == "mct" else V1_TINY_BASE
        cfg["embed_dim"] = t["embed_dim"]
        cfg["image_cfg"]["image_size"] = t["image_size"]
        cfg["text_cfg"].update(vocab_size=t["text"]["vocab_size"], dim=t["text"]["dim"],
                               n_heads_per_layer=t["text"]["n_heads"],
                               n_transformer_layers=t["text"]["n_transformer_layers"])
        cfg["glimpse_tiny"] = dict(t["vit"]) if vit else {"widths": t["widths"], "depths": t["depths"]}
    return cfg


def build_v1(tiny=False, seed=0, name="MobileCLIP-S0"):
    import v1
    cfg = v1_config(tiny, name)
    g = cfg.get("glimpse_tiny", {})
    t = cfg["text_cfg"]
    if _V1[name][0] == "vit_b16":
        w = g.get("width", 768)
        icfg = dict(kind="mci", width=w, depth=g.get("depth", 12), heads=g.get("heads", 12),
                    image_size=cfg["image_cfg"]["image_size"], embed_dim=cfg["embed_dim"],
                    eps=1e-5, stem=max(32, w // 4), stem_pad=1, pos_rows=(224 // 16) ** 2)
    else:
        icfg = mci_cfg(_V1[name][1], cfg["embed_dim"], g.get("widths"), g.get("depths"))
    model = v1.CLIPv1(icfg,
                      dict(vocab_size=t["vocab_size"], context_length=t["context_length"], dim=t["dim"],
                           n_heads=t["n_heads_per_layer"], n_transformer_layers=t["n_transformer_layers"],
                           embed_dim=cfg["embed_dim"], variant=t["model_name"],
                           causal=t["causal_masking"])).eval()
    randomize(model, seed)
    with torch.no_grad():   # Apple's head.proj / classifier.proj have no bias
        head = model.image_encoder.model.head
        (head.fc.bias if hasattr(head, "fc") else head.bias).zero_()
    model.image_size = cfg["image_cfg"]["image_size"]
    return model, cfg


def write_apple_v1(model, cfg, outdir):
    """apple/MobileCLIP-S* layout: mobileclip_s<k>.pt = torch.save(Apple-named state dict)."""
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=4)
    from collections import OrderedDict
    img = cfg["image_cfg"]["model_name"]
    fname = "mobileclip_b.pt" if img == "vit_b16" else "mobileclip_s%s.pt" % img[-1]
    torch.save(OrderedDict(model.apple_state_dict()), os.path.join(outdir, fname))
    return fname


# ---------------------------------------------------------------- preprocessing

def resize_crop(img, size, resample=Image.BILINEAR):
    """OpenCLIP eval transform up to ToTensor, resize_mode 'shortest'
    (torchvision semantics): shorter side -> size (longer side truncated, no-op if
    already equal), PIL resample (antialiased when downscaling), center crop with
    round-half-even offsets. Returns uint8 [size, size, 3] (HWC, RGB)."""
    img = img.convert("RGB")
    w, h = img.size
    if min(w, h) != size:
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        img = img.resize((nw, nh), resample)
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def to_pixels(u8, mean=(0, 0, 0), std=(1, 1, 1)):
    """ToTensor + Normalize, all in float32: (u8 / 255 - mean) / std, CHW."""
    x = u8.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    return ((x - m) / s).astype(np.float32)


def preprocess(img, size, mean=(0, 0, 0), std=(1, 1, 1), resample=Image.BILINEAR):
    """float32 [3, size, size] model input."""
    return to_pixels(resize_crop(img, size, resample), mean, std)


# ---------------------------------------------------------------- writers

def write_openclip(model, mcfg, name, outdir):
    """timm/<name>-OpenCLIP layout: open_clip_config.json + open_clip_model.safetensors."""
    os.makedirs(outdir, exist_ok=True)
    mc = copy.deepcopy(mcfg)
    mc["text_cfg"]["hf_tokenizer_name"] = f"timm/{name}-OpenCLIP"
    with open(os.path.join(outdir, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": mc, "preprocess_cfg": preprocess_config(name)}, f, indent=2)
    safetensors_io.save(model.state_dict(), os.path.join(outdir, "open_clip_model.safetensors"))


def write_apple_pt(model, mcfg, name, outdir):
    """apple/<name> layout: config.json (= OpenCLIP model cfg) + <file>.pt holding
    torch.save of the bare OpenCLIP-named training-form state dict."""
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(mcfg, f, indent=4)
    fn = name.lower().replace("mobileclip2-", "mobileclip2_").replace("-", "") + ".pt"
    # model.state_dict() itself: an OrderedDict carrying a _metadata attribute,
    # pickled (protocol 2) inside torch's zip container "<stem>/data.pkl".
    torch.save(model.state_dict(), os.path.join(outdir, fn))
    return fn
