"""Export FastViTHD + mlp2x_gelu projector (reference implementation, random
weights) to ONNX, opset 17, for later comparisons (onnxruntime is not
installed here; nothing runs the graph).

    /usr/bin/python3 tools/reference/fastvlm/export_onnx.py [--tiny] [--out PATH]
        [--weights DIR]   # load a hub folder written by gen_full.py instead of regenerating

Graph: input  pixel_values   float32 [1,3,R,R] in [0,1] (R = 1024 full, 192 tiny)
       output image_features float32 [1,(R/64)^2, 3072]  (conv_exp map, row-major tokens)
              image_embeds   float32 [1,(R/64)^2, H]     (after the projector)
Weights are graph initializers (fp32, ~505 MB for the full model).  Exact GELU
is exported as its Erf decomposition (no Gelu op before opset 20).  A
reference output for a fixed random input is saved next to the model
(<out>.input.npy / <out>.features.npy / <out>.embeds.npy).
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fastvlm_ref as R  # noqa: E402
import hub_io  # noqa: E402


class VisionProj(torch.nn.Module):
    def __init__(self, sd, vc):
        super().__init__()
        self.vc = vc
        self.names = [n for n in sd if n.startswith(R.VT) or n.startswith("model.mm_projector.")]
        for i, n in enumerate(self.names):  # buffers -> named ONNX initializers
            self.register_buffer("w%d" % i, sd[n].float() if sd[n].is_floating_point() else sd[n])

    def forward(self, x):
        sd = {n: getattr(self, "w%d" % i) for i, n in enumerate(self.names)}
        f = R.image_features(sd, self.vc, x)
        return f, R.project(sd, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--weights", default=None)
    a = ap.parse_args()
    cfg = R.TINY if a.tiny else R.FULL
    out = a.out or ("/tmp/glimpse-fastvlm/fastvithd_proj_%s.onnx" % ("tiny" if a.tiny else "0.5b"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if a.weights:
        sd = {}
        for fn in sorted(os.listdir(a.weights)):
            if fn.endswith(".safetensors"):
                sd.update(hub_io.read_safetensors(
                    os.path.join(a.weights, fn),
                    keep=lambda n: n.startswith(R.VT) or n.startswith("model.mm_projector.")))
    else:
        sd = R.random_state(cfg, 20261127 if a.tiny else 5120)
        sd = {n: t for n, t in sd.items() if n.startswith(R.VT) or n.startswith("model.mm_projector.")}
    m = VisionProj(sd, cfg["vision"]).eval()
    rr = cfg["vision"]["image_size"]
    x = torch.rand(1, 3, rr, rr, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        f, e = m(x)
        torch.onnx.export(m, (x,), out, opset_version=17, input_names=["pixel_values"],
                          output_names=["image_features", "image_embeds"], do_constant_folding=False)
    base = out[:-len(".onnx")]
    np.save(base + ".input.npy", x.numpy())
    np.save(base + ".features.npy", f.numpy())
    np.save(base + ".embeds.npy", e.numpy())
    print("wrote %s (%.1f MB)" % (out, os.path.getsize(out) / 1e6))


if __name__ == "__main__":
    main()
