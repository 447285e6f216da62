"""Cross-check our reference against the official OpenCLIP + timm code.

The official sources are NOT part of this repository: unpack them somewhere
outside it first, e.g.
  git --git-dir=<mirror of huggingface/pytorch-image-models> archive HEAD timm | tar -x -C /tmp/oc
  git --git-dir=<mirror of mlfoundations/open_clip> archive HEAD src/open_clip | tar -x -C /tmp/oc
  git --git-dir=<mirror of apple/ml-mobileclip> archive HEAD mobileclip | tar -x -C /tmp/oc   (v1 only)
then run
  /usr/bin/python3 tools/reference/mobileclip/crosscheck.py --src /tmp/oc [--full] [--name MobileCLIP2-S0]

It builds the model with open_clip.create_model (timm fastvit_mci* image tower),
loads our random state dict with strict=True (so tensor names and shapes must
match exactly), and compares image/text embeddings, also after timm's
reparameterize (branch folding). Debian's torch 1.13 lacks a few newer APIs that
the imports touch; tiny stand-ins are installed for those (torchvision, tqdm,
ftfy, torch.compiler, torch.amp.GradScaler) - none is on the compared path.
"""
import argparse
import os
import sys
import tempfile
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip  # noqa: E402

_TV = '''import sys, types
class _Meta(type):
    def __getattr__(cls, k):
        if k.startswith("__"): raise AttributeError(k)
        c = _Meta(k, (), {}); setattr(cls, k, c); return c
    def __hash__(cls): return id(cls)
class _Any(metaclass=_Meta):
    def __init__(self, *a, **k): pass
class _M(types.ModuleType):
    def __getattr__(self, k):
        if k.startswith("__"): raise AttributeError(k)
        return type(k, (_Any,), {})
for n in ["torchvision.transforms", "torchvision.transforms.functional", "torchvision.transforms.v2",
          "torchvision.transforms.v2.functional", "torchvision.datasets", "torchvision.io",
          "torchvision.ops.misc", "torchvision.utils"]:
    sys.modules[n] = _M(n)
'''


def install_stubs():
    d = tempfile.mkdtemp(prefix="mc_stubs_")
    for mod, src in {"torchvision": _TV, "torchvision/ops": "class StochasticDepth: pass\n", "tqdm": "def tqdm(x=None, *a, **k): return x\n",
                     "ftfy": "def fix_text(s): return s\n"}.items():
        os.makedirs(os.path.join(d, mod), exist_ok=True)
        with open(os.path.join(d, mod, "__init__.py"), "w") as f:
            f.write(src)
    sys.path.insert(0, d)
    if not hasattr(torch, "compiler"):
        torch.compiler = types.SimpleNamespace(disable=lambda f=None, **k: f if f is not None else (lambda g: g))
    if not hasattr(torch.amp, "GradScaler"):
        torch.amp.GradScaler = object


def patch_vit_base_mci():
    """Tiny B only: rebuild timm's vit_base_mci_224 with a conv stem sized from
    embed_dim (timm fixes it at 192/192/768), everything else as timm does it."""
    import torch.nn as nn
    from timm.models import _registry, vision_transformer_hybrid as vth

    def tiny(pretrained=False, **kw):
        w = kw.pop("embed_dim")
        stem = vth.ConvStem(channels=(w // 4, w // 4, w), stride=(4, 2, 2), kernel_size=(4, 2, 2),
                            padding=0, act_layer=nn.GELU)
        return vth._create_vision_transformer_hybrid(
            "vit_base_mci_224", backbone=stem, embed_args=dict(proj=False), pretrained=False,
            **dict(dict(embed_dim=w, depth=12, num_heads=12, no_embed_class=True), **kw))
    _registry._model_entrypoints["vit_base_mci_224"] = tiny


def check_v1(a):
    """MobileCLIP (v1) S0/S1/S2 against apple/ml-mobileclip's own CLIP class (unpack its
    mobileclip/ package into --src too)."""
    from functools import partial
    from timm.models import _registry
    import mobileclip.clip as aclip
    from mobileclip.models import mci as amci
    from mobileclip.modules.common.mobileone import reparameterize_model

    ours, cfg = clip.build_v1(tiny=not a.full, seed=a.seed, name=a.name)
    if "glimpse_tiny" in cfg and cfg["image_cfg"]["model_name"] == "vit_b16":
        from mobileclip.models import vit as avit
        g = cfg["glimpse_tiny"]

        def tiny_vit(pretrained=False, **kw):   # Apple's vit_b16 with tiny width/depth/heads
            return avit.VisionTransformer({"norm_layer": "layer_norm_fp32", "act_layer": "gelu",
                                           "embed_dim": g["width"], "n_transformer_layers": g["depth"],
                                           "n_attn_heads": g["heads"]}, **kw)
        _registry._model_entrypoints["vit_b16"] = tiny_vit
    elif "glimpse_tiny" in cfg:     # Apple's mci0/1/2 have fixed sizes: same FastViT, tiny dims
        g = cfg["glimpse_tiny"]

        def tiny(pretrained=False, **kw):
            return amci.FastViT(g["depths"], token_mixers=("repmixer",) * 3 + ("attention",),
                                embed_dims=g["widths"], mlp_ratios=[3] * 4, downsamples=[True] * 4,
                                se_downsamples=[False, False, True, True],
                                pos_embs=[None, None, None, partial(amci.RepCPE, spatial_shape=(7, 7))], **kw)
        _registry._model_entrypoints[cfg["image_cfg"]["model_name"]] = tiny
    ref = aclip.CLIP(cfg).eval()
    print("strict load:", ref.load_state_dict(ours.apple_state_dict(), strict=True))
    g = torch.Generator().manual_seed(1)
    s, V = cfg["image_cfg"]["image_size"], cfg["text_cfg"]["vocab_size"]
    x = torch.rand(2, 3, s, s, generator=g)
    ids = torch.zeros(2, 77, dtype=torch.long)
    ids[:, 0] = V - 2
    ids[0, 1:9] = torch.randint(1, V - 2, (8,), generator=g); ids[0, 9] = V - 1
    ids[1, 1:76] = torch.randint(1, V - 2, (75,), generator=g); ids[1, 76] = V - 1
    with torch.no_grad():
        oi, ot = ours.encode_image(x), ours.encode_text(ids)
        ri, rt = ref.encode_image(x), ref.encode_text(ids)
        print(f"image: max|ours-ref| = {(oi - ri).abs().max():.3g} (max|ref| {ri.abs().max():.3g})")
        print(f"text:  max|ours-ref| = {(ot - rt).abs().max():.3g} (max|ref| {rt.abs().max():.3g})")
        rp = reparameterize_model(ref)
        print(f"Apple reparameterized: image {(oi - rp.encode_image(x)).abs().max():.3g}, "
              f"text {(ot - rp.encode_text(ids)).abs().max():.3g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="dir holding timm/ and src/open_clip/")
    ap.add_argument("--name", default="MobileCLIP2-S0",
                    help="MobileCLIP2-{S0,S2,S3,S4,B,L-14} or MobileCLIP-{S0,S1,S2,B} (v1)")
    ap.add_argument("--full", action="store_true", help="full size (default: tiny config)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    install_stubs()
    sys.path[:0] = [a.src, os.path.join(a.src, "src")]
    import open_clip
    from open_clip import factory
    if a.name in ("MobileCLIP-S0", "MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B"):
        return check_v1(a)

    ours, mcfg = clip.build(a.name, tiny=not a.full, seed=a.seed)
    if a.name.endswith("-B") and not a.full:
        patch_vit_base_mci()
    key = a.name + ("" if a.full else "-glimpse-tiny")
    factory._MODEL_CONFIGS[key] = mcfg
    ref = open_clip.create_model(key).eval()
    missing = ref.load_state_dict(ours.state_dict(), strict=True)
    print("strict load:", missing)
    for m in ref.modules():            # torch 1.13 has no scaled_dot_product_attention
        if hasattr(m, "use_sdpa"):
            m.use_sdpa = False
        if hasattr(m, "fused_attn"):
            m.fused_attn = False

    g = torch.Generator().manual_seed(1)
    s, V = mcfg["vision_cfg"]["image_size"], mcfg["text_cfg"]["vocab_size"]
    x = torch.rand(2, 3, s, s, generator=g)
    ids = torch.zeros(2, 77, dtype=torch.long)
    ids[:, 0] = V - 2
    ids[0, 1:9] = torch.randint(1, V - 2, (8,), generator=g); ids[0, 9] = V - 1
    ids[1, 1:76] = torch.randint(1, V - 2, (75,), generator=g); ids[1, 76] = V - 1
    with torch.no_grad():
        oi, ot = ours.encode_image(x), ours.encode_text(ids)
        ri, rt = ref.encode_image(x), ref.encode_text(ids)
        print(f"image: max|ours-ref| = {(oi - ri).abs().max():.3g} (max|ref| {ri.abs().max():.3g})")
        print(f"text:  max|ours-ref| = {(ot - rt).abs().max():.3g} (max|ref| {rt.abs().max():.3g})")
        print(f"logit_scale equal: {bool(ours.logit_scale == ref.logit_scale)}")
        from timm.utils.model import reparameterize_model
        rp = reparameterize_model(ref.visual.trunk)
        fi = rp(x)
        print(f"image, timm reparameterized: max|ours-ref| = {(oi - fi).abs().max():.3g}")


if __name__ == "__main__":
    main()
