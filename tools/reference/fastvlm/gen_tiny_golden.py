"""Generate the committed tiny FastVLM goldens into tests/data/fastvlm/tiny/.

    /usr/bin/python3 tools/reference/fastvlm/gen_tiny_golden.py [outdir]

Random weights (seed 20261127) for the TINY config in fastvlm_ref.py, written
as hub-layout checkpoints (BF16 and F16; values are exact in both, so one set
of expected outputs serves both files), three deterministic input images, and
per image x prompt the expected intermediate tensors and 32 greedy tokens.
Prompt ids come from tests/data/fastvlm/prompt_ids.json (transformers.js run,
see tokenize_prompts.mjs).  See tools/reference/fastvlm/NOTES.md for the file
list and the tiny-vocabulary id mapping.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fastvlm_ref as R  # noqa: E402
import hub_io  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SEED = 20261127
N_NEW = 32


def make_images():
    """Three small deterministic images covering: upscale after padding a wide
    image, downscale (anti-aliased path) after padding a tall one with an odd
    offset, and a grayscale 'L' image (convert('RGB')) padded by one row."""
    ims = []
    # 1: wide RGB 160x96, smooth gradient + shapes; pad to 160, upscale to 192
    w, h = 160, 96
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (w + h - 2)], -1).astype(np.uint8)
    im = Image.fromarray(a, "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse((20, 10, 70, 60), fill=(250, 20, 30))
    d.rectangle((90, 30, 150, 80), outline=(10, 240, 10), width=3)
    d.line((0, 95, 159, 0), fill=(255, 255, 255), width=1)
    ims.append(("img0", im))
    # 2: tall RGB 120x300 with stripes (high frequency); pad to 300 (x offset
    # 90), downscale 300 -> 192
    w, h = 120, 300
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([((xx // 3) % 2) * 200 + 30, (yy * 255 // (h - 1)), ((yy // 7) % 2) * 180 + 40], -1).astype(np.uint8)
    im = Image.fromarray(a, "RGB")
    d = ImageDraw.Draw(im)
    d.polygon([(10, 250), (60, 150), (110, 250)], fill=(0, 0, 255))
    d.text((15, 20), "STOP", fill=(255, 255, 0))
    ims.append(("img1", im))
    # 3: grayscale 257x255 checker + circle; pad by one row, downscale 257 -> 192
    w, h = 257, 255
    yy, xx = np.mgrid[0:h, 0:w]
    a = (((xx // 16 + yy // 16) % 2) * 120 + (xx * 100 // (w - 1))).astype(np.uint8)
    im = Image.fromarray(a, "L")
    d = ImageDraw.Draw(im)
    d.ellipse((60, 60, 200, 200), outline=255, width=5)
    ims.append(("img2", im))
    return ims


def stats(t):
    t = t.detach().double()
    return {"shape": list(t.shape), "mean": float(t.mean()), "std": float(t.std()),
            "abs_sum": float(t.abs().sum()), "first": [float(v) for v in t.flatten()[:6]]}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "fastvlm", "tiny")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cfg = R.TINY
    vc, lc = cfg["vision"], cfg["llm"]
    V = lc["vocab_size"]
    sd = R.random_state(cfg, SEED)

    # checkpoints: BF16 single file; F16 in two shards + index (both layouts
    # and both dtypes with two copies, to keep the fixtures small)
    for sub, dt, shards in (("ckpt_bf16", "BF16", 1), ("ckpt_f16_sharded", "F16", 2)):
        hub_io.write_hub_folder(os.path.join(out, sub), cfg, sd, dt, shards=shards, tokenizer=False)
    # the reference runs on what the file holds: read it back
    back = hub_io.read_safetensors(os.path.join(out, "ckpt_bf16", "model.safetensors"))
    back16 = {}
    for i in (1, 2):
        back16.update(hub_io.read_safetensors(os.path.join(
            out, "ckpt_f16_sharded", "model-%05d-of-00002.safetensors" % i)))
    for n in sd:
        assert torch.equal(back[n], sd[n]) and torch.equal(back16[n], sd[n]), n

    pid = json.load(open(os.path.join(ROOT, "tests", "data", "fastvlm", "prompt_ids.json")))
    sd = R.to64(sd)
    model = R.Qwen2(sd, lc)
    golden = {
        "about": "FastVLM tiny random-weight golden; reference computed in float64, "
                 "stored float32; see tools/reference/fastvlm/NOTES.md",
        "seed": SEED,
        "vision": vc, "llm": lc, "mm_hidden_size": cfg["mm_hidden_size"],
        "id_map": "tiny ids = real Qwen2 id %% vocab_size (%d); -200 sentinel kept" % V,
        "n_new": N_NEW, "n_active_vocab": V, "stop_ids": [],
        "pixels": "imgK_pixels_u8.npy is the padded+resized uint8 HWC image; "
                  "model input = float32(uint8 * (1/255) in float64), NCHW",
        "images": [], "runs": [],
    }
    feats_all = {}
    for name, im in make_images():
        im.save(os.path.join(out, name + ".png"), optimize=True)
        im = Image.open(os.path.join(out, name + ".png"))
        u8, px = R.preprocess(im, vc["image_size"])
        np.save(os.path.join(out, name + "_pixels_u8.npy"), u8)
        trace = []
        with torch.no_grad():
            f = R.image_features(sd, vc, px.double(), trace)[0]
            e = R.project(sd, f)
        np.save(os.path.join(out, name + "_features.npy"), f.numpy().astype(np.float32))
        np.save(os.path.join(out, name + "_embeds.npy"), e.numpy().astype(np.float32))
        feats_all[name] = e
        golden["images"].append({
            "name": name, "file": name + ".png", "mode": im.mode, "size": list(im.size),
            "features": name + "_features.npy", "embeds": name + "_embeds.npy",
            "trace": [dict(stats(t), label=l) for l, t in trace],
        })

    for pi, p in enumerate(pid["prompts"]):
        assert p["prompt"] == R.build_prompt(p["text"]), "prompt template mismatch"
        real = p["input_ids"]
        ids = [i % V if i >= 0 else i for i in real]
        for name, e in feats_all.items():
            with torch.no_grad():
                emb = R.splice(model, ids, e)
                toks, first, margins = model.greedy(emb, N_NEW, V)
            tag = "%s_p%d" % (name, pi)
            np.save(os.path.join(out, tag + "_inputs_embeds.npy"), emb.numpy().astype(np.float32))
            np.save(os.path.join(out, tag + "_first_logits.npy"), first.numpy().astype(np.float32))
            golden["runs"].append({
                "image": name, "prompt_index": pi, "text": p["text"],
                "input_ids_real": real, "input_ids": ids,
                "image_pos": ids.index(R.IMAGE_TOKEN_INDEX), "seq_len": emb.shape[0],
                "inputs_embeds": tag + "_inputs_embeds.npy",
                "first_logits": tag + "_first_logits.npy",
                "tokens": toks, "margins": [round(m, 6) for m in margins],
                "min_margin": min(margins),
            })
            print(tag, "L=%d" % emb.shape[0], toks[:8], "min margin %.4f" % min(margins))
    with open(os.path.join(out, "golden.json"), "w") as fh:
        json.dump(golden, fh, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main()
