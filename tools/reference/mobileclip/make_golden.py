"""Write a random-weight MobileCLIP2 checkpoint in both released layouts plus
inputs and expected outputs (see README.md for the directory layout).

  # committed tiny goldens (tests/data/mobileclip/s0_tiny)
  /usr/bin/python3 tools/reference/mobileclip/make_golden.py
  # full-size random S0 for the documented parity command (not committed)
  /usr/bin/python3 tools/reference/mobileclip/make_golden.py --full --out /tmp/mobileclip/s0_full
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip  # noqa: E402
import safetensors_io  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def make_image(w, h, seed):
    """Deterministic RGB test image: gradients, a disc (sharp edge) and stripes."""
    r = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * r.uniform(0.3, 0.7), h * r.uniform(0.3, 0.7)
    disc = ((x - cx) ** 2 + (y - cy) ** 2 < (0.3 * min(w, h)) ** 2).astype(np.float32)
    img = np.stack([255 * x / max(w - 1, 1),
                    255 * y / max(h - 1, 1),
                    127 + 100 * np.sin(x * 0.7 + y * 0.3) * (1 - disc) + 90 * disc], axis=-1)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def make_tokens(vocab, full):
    """3 sequences of 77 ids: short, medium, and over-long (truncated: last id is EOT).
    SOT = vocab-2, EOT = vocab-1 (49406/49407 for the real vocabulary); pad = 0."""
    sot, eot = vocab - 2, vocab - 1
    r = np.random.RandomState(1234)
    if full:  # "a photo of a cat." / "a dog" in CLIP BPE ids (illustrative)
        bodies = [[320, 1125, 539, 320, 2368, 269], [320, 1929]]
    else:
        bodies = [list(r.randint(1, vocab - 2, 6)), list(r.randint(1, vocab - 2, 19))]
    bodies.append(list(r.randint(1, vocab - 2, 90)))
    out = np.zeros((3, 77), np.int64)
    for i, b in enumerate(bodies):
        s = ([sot] + [int(t) for t in b] + [eot])[:77]
        s[-1] = eot
        out[i, :len(s)] = s
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="MobileCLIP2-S0")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pt", action="store_true", help="skip the Apple .pt layout")
    a = ap.parse_args()
    short = ("v1_" if a.name.startswith("MobileCLIP-") else "") + a.name.split("-", 1)[1].lower().replace("-", "")
    out = a.out or os.path.join(ROOT, "tests", "data", "mobileclip", short + ("_full" if a.full else "_tiny"))
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    v1 = a.name.startswith("MobileCLIP-")     # v1 S0, S1, S2, B
    if v1:   # Apple v1 layout only (OpenCLIP cannot hold the MCt text tower)
        model, mcfg = clip.build_v1(tiny=not a.full, seed=a.seed, name=a.name)
        ptname = clip.write_apple_v1(model, mcfg, os.path.join(out, "apple"))
        pp = {"mean": [0.0] * 3, "std": [1.0] * 3, "interpolation": "bilinear", "resize_mode": "shortest"}
        vocab = mcfg["text_cfg"]["vocab_size"]
    else:
        model, mcfg = clip.build(a.name, tiny=not a.full, seed=a.seed)
        clip.write_openclip(model, mcfg, a.name, os.path.join(out, "openclip"))
        ptname = None if a.no_pt else clip.write_apple_pt(model, mcfg, a.name, os.path.join(out, "apple"))
        pp = clip.preprocess_config(a.name)
        vocab = mcfg["text_cfg"]["vocab_size"]
    size = model.image_size
    dims = [(131, 97), (80, 121)] if not a.full else [(341, 256), (300, 451)]
    u8 = []
    for i, (w, h) in enumerate(dims):
        im = make_image(w, h, 100 + i)
        im.save(os.path.join(out, f"img{i}.png"), optimize=True)
        rs = Image.BICUBIC if pp["interpolation"] == "bicubic" else Image.BILINEAR
        u8.append(clip.resize_crop(Image.open(os.path.join(out, f"img{i}.png")), size, rs))
    u8 = np.stack(u8)
    pix = np.stack([clip.to_pixels(x, pp["mean"], pp["std"]) for x in u8])
    ids = make_tokens(vocab, a.full)

    # pixels_u8 (resized + cropped, HWC) always; the float tensor it implies
    # exactly ((u8/255 - mean)/std in float32) only at full size, to keep the
    # committed fixtures small.
    exp = {"pixels_u8": u8, "tokens": ids}
    if a.full:
        exp["pixels"] = pix
    with torch.no_grad():
        taps, ttaps = {}, {}
        img = model.encode_image(torch.from_numpy(pix), taps)
        txt = model.encode_text(torch.from_numpy(ids), ttaps)
        img_n = img / img.norm(dim=-1, keepdim=True)
        txt_n = txt / txt.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * img_n @ txt_n.T
        exp.update({k: v.numpy() for k, v in taps.items()})
        exp.update(text_block0=ttaps["text_block0"].numpy(), text_pooled=ttaps["text_pooled"].numpy(),
                   image_embeds=img.numpy(), image_embeds_norm=img_n.numpy(),
                   text_embeds=txt.numpy(), text_embeds_norm=txt_n.numpy(),
                   logits_per_image=logits.numpy())

        # the files must reproduce the model: reload both layouts and rerun
        if v1:
            sd, ref = torch.load(os.path.join(out, "apple", ptname)), model.apple_state_dict()
            assert list(sd) == list(ref) and all(torch.equal(sd[k], ref[k]) for k in sd)
            files = []
            for k in [k for k in exp if k.startswith("stage") or k == "final_conv" or
                      (k == "stem" and "block0" not in exp)]:
                del exp[k]          # same MCi0 code as MobileCLIP2-S0: keep the fixture small
                                    # (v1 B keeps its stem: Apple's padded first conv)
        else:
            files = [safetensors_io.load(os.path.join(out, "openclip", "open_clip_model.safetensors"))]
            if ptname:
                files.append(torch.load(os.path.join(out, "apple", ptname)))
        for sd in files:
            m2 = clip.CLIP(mcfg).eval()
            m2.load_state_dict(sd, strict=True)
            assert torch.equal(m2.encode_image(torch.from_numpy(pix)), img)
            assert torch.equal(m2.encode_text(torch.from_numpy(ids)), txt)

    if not a.full and a.name not in ("MobileCLIP2-S0", "MobileCLIP-S0"):
        del exp["text_block0"]      # same text code as S0's: keep the fixtures small
    for k, v in exp.items():
        dt = {"tokens": np.int64, "pixels_u8": np.uint8}.get(k, np.float32)
        np.save(os.path.join(out, k + ".npy"), v.astype(dt))
    meta = {"model": a.name, "tiny": not a.full, "seed": a.seed, "image_size": size,
            "preprocess": pp, "images": [f"img{i}.png" for i in range(len(dims))],
            "image_dims_wh": dims, "apple_pt": ptname and "apple/" + ptname,
            "logit_scale": float(model.logit_scale),
            "arrays": {k: list(v.shape) for k, v in exp.items()}}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main()
