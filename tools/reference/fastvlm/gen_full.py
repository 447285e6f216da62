"""Full-size (FastVLM-0.5B shaped) random checkpoints + expected outputs, in /tmp.

    /usr/bin/python3 tools/reference/fastvlm/gen_full.py [--out /tmp/glimpse-fastvlm]
        [--variants bf16,f16,sharded] [--tokens 8] [--no-ref]

Writes, under OUT:
  0.5b-bf16/            model.safetensors (BF16, ~1.52 GB) + config.json + tokenizer files
  0.5b-f16/             same in F16
  0.5b-bf16-sharded/    model-00001-of-00002.safetensors, ...-00002..., model.safetensors.index.json
  expected/             image.png, pixels_u8.npy [1024,1024,3], features.npy [256,3072],
                        embeds.npy [256,896], inputs_embeds.npy [L,896],
                        first_logits.npy [151936], expected.json (ids, greedy tokens,
                        margins, per-stage stats)
All variants hold identical values (weights are exact in bf16 and f16), so one
expected/ folder serves all three.  Needs ~8 GB RAM and ~5 GB disk; the fp32
reference takes a few minutes on 2 cores.

Speed: Debian's torch links the generic libblas.so.3; if that is the netlib
reference BLAS (0.2 GFLOP/s) the fp32 reference takes hours.  Point the
loader at OpenBLAS without touching the system, e.g.
    apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/oblas
    LD_LIBRARY_PATH=/tmp/oblas/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3 ...
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fastvlm_ref as R  # noqa: E402
import hub_io  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SEED = 5120


def make_image():
    """640x400 synthetic RGB (gradients, shapes, stripes, text): exercises the
    pad (offset 120 rows) and a 640 -> 1024 bicubic upscale."""
    w, h = 640, 400
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), ((xx // 9 + yy // 13) % 2) * 150 + 50], -1).astype(np.uint8)
    im = Image.fromarray(a, "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse((40, 40, 260, 260), fill=(230, 30, 40))
    d.rectangle((320, 80, 600, 360), outline=(20, 230, 20), width=7)
    d.text((340, 200), "glimpse FastVLM", fill=(255, 255, 255))
    return im


def stats(t):
    t = t.detach().double()
    return {"shape": list(t.shape), "mean": float(t.mean()), "std": float(t.std()),
            "abs_sum": float(t.abs().sum()), "first": [float(v) for v in t.flatten()[:6]]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/glimpse-fastvlm")
    ap.add_argument("--variants", default="bf16,f16,sharded")
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--no-ref", action="store_true")
    ap.add_argument("--from", dest="src", default=None,
                    help="read the weights from a folder written earlier instead of regenerating")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    cfg = R.FULL
    t0 = time.time()
    if a.src:
        sd = {}
        for fn in sorted(os.listdir(a.src)):
            if fn.endswith(".safetensors"):
                sd.update(hub_io.read_safetensors(os.path.join(a.src, fn)))
        sd = {n: sd[n] for n in R.model_shapes(cfg)}
    else:
        sd = R.random_state(cfg, SEED)
    print("weights %.1fs, %d tensors" % (time.time() - t0, len(sd)), flush=True)
    for v in a.variants.split(","):
        if not v:
            continue
        t0 = time.time()
        sub, dt, shards = {"bf16": ("0.5b-bf16", "BF16", 1), "f16": ("0.5b-f16", "F16", 1),
                           "sharded": ("0.5b-bf16-sharded", "BF16", 2)}[v]
        hub_io.write_hub_folder(os.path.join(a.out, sub), cfg, sd, dt, shards=shards)
        print("wrote %s %.1fs" % (sub, time.time() - t0), flush=True)
    if a.no_ref:
        return

    ex = os.path.join(a.out, "expected")
    os.makedirs(ex, exist_ok=True)
    vc, lc = cfg["vision"], cfg["llm"]
    im = make_image()
    im.save(os.path.join(ex, "image.png"))
    im = Image.open(os.path.join(ex, "image.png"))
    u8, px = R.preprocess(im, vc["image_size"])
    np.save(os.path.join(ex, "pixels_u8.npy"), u8)
    sd = R.to64(sd)  # float64 reference, float32 files
    px = px.double()
    t0 = time.time()
    trace = []
    f = R.image_features(sd, vc, px, trace)[0]
    e = R.project(sd, f)
    t_vis = time.time() - t0
    print("vision + projector %.1fs" % t_vis, flush=True)
    np.save(os.path.join(ex, "features.npy"), f.numpy().astype(np.float32))
    np.save(os.path.join(ex, "embeds.npy"), e.numpy().astype(np.float32))

    pid = json.load(open(os.path.join(ROOT, "tests", "data", "fastvlm", "prompt_ids.json")))
    p = pid["prompts"][0]
    assert p["prompt"] == R.build_prompt(p["text"])
    ids = p["input_ids"]
    model = R.Qwen2(sd, lc)
    emb = R.splice(model, ids, e)
    np.save(os.path.join(ex, "inputs_embeds.npy"), emb.numpy().astype(np.float32))
    t0 = time.time()
    toks, first, margins = model.greedy(emb, a.tokens, cfg["tokenizer_len"], stop=(R.IM_END, R.ENDOFTEXT))
    t_llm = time.time() - t0
    print("prefill %d + %d tokens %.1fs: %s" % (emb.shape[0], len(toks), t_llm, toks), flush=True)
    np.save(os.path.join(ex, "first_logits.npy"), first.numpy().astype(np.float32))
    top = torch.topk(first[:cfg["tokenizer_len"]], 5)
    out = {
        "about": "FastVLM-0.5B-shaped random weights (seed %d); float64 reference (stored float32) from "
                 "tools/reference/fastvlm/fastvlm_ref.py" % SEED,
        "prompt": p["prompt"], "text": p["text"], "input_ids": ids,
        "image_pos": ids.index(R.IMAGE_TOKEN_INDEX), "seq_len": emb.shape[0],
        "n_active_vocab": cfg["tokenizer_len"], "stop_ids": [R.IM_END, R.ENDOFTEXT],
        "tokens": toks, "margins": margins,
        "first_logits_top5": {"ids": top.indices.tolist(), "values": top.values.tolist()},
        "pixels": "pixels_u8.npy: padded + resized uint8 HWC; model input float32(u8*(1/255))",
        "trace": [dict(stats(t), label=l) for l, t in trace],
        "seconds": {"vision_projector_fp32": t_vis, "llm_fp32": t_llm},
    }
    with open(os.path.join(ex, "expected.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote", ex)


if __name__ == "__main__":
    main()
