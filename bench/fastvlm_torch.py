#!/usr/bin/python3
"""FastVLM in PyTorch f32 (our reference, tools/reference/fastvlm/fastvlm_ref.py), timed like
bench_fastvlm: preprocess, vision tower + projector, prefill of the spliced prompt, decode.

    /usr/bin/python3 bench/fastvlm_torch.py MODEL_DIR [IMAGE] [--threads 2] [--tokens 16] [--reps 1]

MODEL_DIR is a hub folder (e.g. from tools/reference/fastvlm/gen_full.py or glimpse-gen
fastvlm-0.5b); its 16-bit weights are read into f32 tensors (the official code runs the
released checkpoint in fp16 on GPU; on CPU, f32 is what PyTorch users get). The reference is
the official computation written out in plain torch ops (unfolded BatchNorm, eager attention
with a KV cache grown by torch.cat, as transformers' eager Qwen2 does); transformers itself is
not installed here. Prompt: "Describe the image." ids from tests/data/fastvlm/prompt_ids.json.
Without IMAGE, the same 640x400 synthetic image as bench_fastvlm.

Debian's torch links the generic libblas.so.3 (netlib reference BLAS here, ~0.2 GFLOP/s for
Linear layers): run with OpenBLAS on the loader path, as bench/fastvlm_compare.sh does.
Prints one JSON line per repeat."""
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference", "fastvlm"))
import fastvlm_ref as R  # noqa: E402
import hub_io  # noqa: E402


def synthetic():
    w, h = 640, 400
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // 639, yy * 255 // 399, ((xx // 9 + yy // 13) % 2) * 150 + 50], -1).astype(np.uint8)
    return Image.fromarray(a, "RGB")


def main():
    args = sys.argv[1:]

    def opt(name, default):
        if name in args:
            i = args.index(name)
            v = args[i + 1]
            del args[i:i + 2]
            return type(default)(v)
        return default

    threads, n_tok, reps = opt("--threads", 2), opt("--tokens", 16), opt("--reps", 1)
    d = args[0]
    img = Image.open(args[1]) if len(args) > 1 else synthetic()
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    cfg = json.load(open(os.path.join(d, "config.json")))
    size = int(cfg["mm_vision_tower"].split("_")[-1])
    vc = dict(R.FULL["vision"], image_size=size)
    lc = dict(R.FULL["llm"], num_attention_heads=cfg["num_attention_heads"],
              num_key_value_heads=cfg["num_key_value_heads"], rope_theta=cfg["rope_theta"],
              rms_norm_eps=cfg["rms_norm_eps"], tie_word_embeddings=cfg["tie_word_embeddings"],
              num_hidden_layers=cfg["num_hidden_layers"], hidden_size=cfg["hidden_size"])
    sd = {}
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".safetensors"):
            sd.update(hub_io.read_safetensors(os.path.join(d, fn)))
    pid = json.load(open(os.path.join(ROOT, "tests", "data", "fastvlm", "prompt_ids.json")))
    ids = pid["prompts"][0]["input_ids"]
    n_active = R.FULL["tokenizer_len"]  # len(tokenizer): the official loader masks the rest
    for r in range(reps):
        t0 = time.time()
        _, px = R.preprocess(img, size)
        t1 = time.time()
        e = R.project(sd, R.image_features(sd, vc, px)[0])
        t2 = time.time()
        model = R.Qwen2(sd, lc)
        emb = R.splice(model, ids, e)
        hid = model.forward(emb)
        lg = model.logits(hid[-1:])[0]
        tok = int(torch.argmax(lg[:n_active]))
        t3 = time.time()
        for _ in range(n_tok - 1):
            lg = model.logits(model.forward(model.embed([tok])))[0]
            tok = int(torch.argmax(lg[:n_active]))
        t4 = time.time()
        print(json.dumps({"threads": threads, "image_size": size, "prompt_tokens": int(emb.shape[0]),
                          "generated": n_tok, "preprocess_ms": 1e3 * (t1 - t0), "vision_ms": 1e3 * (t2 - t1),
                          "prefill_ms": 1e3 * (t3 - t2), "ttft_ms": 1e3 * (t3 - t0),
                          "decode_tok_s": (n_tok - 1) / (t4 - t3)}), flush=True)


if __name__ == "__main__":
    main()
