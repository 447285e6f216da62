"""Compares a `glimpse caption --json --dump DUMP` run of a full-size folder with gen_full.py's
expected outputs; prints the figures and exits non-zero when a tolerance is missed.

    /usr/bin/python3 tools/reference/fastvlm/compare_full.py EXPECTED_DIR DUMP_DIR RUN.json

Tolerances (the issue's): vision features and image embeddings cosine >= 0.9999 (each row's
cosine too, reported as the minimum), first-position logits max |diff| <= 1e-3 x max |logit|,
greedy tokens identical (compared over the expected tokens; a mismatch at a step whose
reference margin is below the logits error would be a near-tie, reported as such)."""
import json
import os
import sys

import numpy as np


def cos(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def row_cos_min(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.min())


def main():
    ex, dump, run = sys.argv[1:4]
    exp = json.load(open(os.path.join(ex, "expected.json")))
    got = json.load(open(run))
    ok = True
    res = {}
    # pixels: ours are float32 [3,S,S] = u8 * (1/255)
    u8 = np.load(os.path.join(ex, "pixels_u8.npy"))
    px = np.load(os.path.join(dump, "pixels.npy"))
    want = (u8.astype(np.float64) * (1.0 / 255.0)).astype(np.float32).transpose(2, 0, 1)
    res["pixels"] = {"u8_mismatches": int((np.rint(px.astype(np.float64) * 255) != u8.transpose(2, 0, 1)).sum()),
                     "max_abs_diff": float(np.abs(px - want).max())}
    ok &= res["pixels"]["u8_mismatches"] == 0
    for name, ef, df in (("vision_features", "features.npy", "vision_features.npy"),
                         ("image_embeds", "embeds.npy", "image_embeds.npy")):
        e, d = np.load(os.path.join(ex, ef)), np.load(os.path.join(dump, df))
        assert e.shape == d.shape, (name, e.shape, d.shape)
        res[name] = {"cosine": cos(e, d), "min_row_cosine": row_cos_min(e, d),
                     "max_abs_diff": float(np.abs(e - d).max()), "max_abs": float(np.abs(e).max())}
        ok &= res[name]["cosine"] >= 0.9999
    e, d = np.load(os.path.join(ex, "first_logits.npy")), np.load(os.path.join(dump, "logits.npy"))
    diff, big = float(np.abs(e - d).max()), float(np.abs(e).max())
    res["first_logits"] = {"max_abs_diff": diff, "max_abs": big, "ratio": diff / big, "cosine": cos(e, d),
                           "argmax_expected": int(e[:exp["n_active_vocab"]].argmax()),
                           "argmax_got": int(d[:exp["n_active_vocab"]].argmax())}
    ok &= diff <= 1e-3 * big
    want_t, got_t = exp["tokens"], got["tokens"]
    n = min(len(want_t), len(got_t))
    same = want_t[:n] == got_t[:n] and (len(got_t) >= len(want_t) or want_t[len(got_t)] in exp["stop_ids"])
    res["tokens"] = {"expected": want_t, "got": got_t, "identical": same, "min_margin": min(exp["margins"])}
    ok &= same
    res["prompt_tokens"] = {"expected": exp["seq_len"], "got": got["prompt_tokens"]}
    ok &= exp["seq_len"] == got["prompt_tokens"]
    res["pass"] = bool(ok)
    with open(os.path.join(dump, "compare.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    f, e, l = res["vision_features"], res["image_embeds"], res["first_logits"]
    print("%s: pixels %d u8 mismatches; features 1-cos %.2e (worst row %.2e, max|d| %.3g of max %.3g); "
          "embeds 1-cos %.2e (worst row %.2e); first logits max|d| %.3g = %.2e x max|logit| %.3g (argmax %d/%d); "
          "tokens %s (%d, min ref margin %.3f) [details: %s/compare.json]"
          % ("PASS" if ok else "FAIL", res["pixels"]["u8_mismatches"], 1 - f["cosine"], 1 - f["min_row_cosine"],
             f["max_abs_diff"], f["max_abs"], 1 - e["cosine"], 1 - e["min_row_cosine"], l["max_abs_diff"], l["ratio"],
             l["max_abs"], l["argmax_got"], l["argmax_expected"], "identical" if same else "DIFFER", len(want_t),
             res["tokens"]["min_margin"], dump))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
