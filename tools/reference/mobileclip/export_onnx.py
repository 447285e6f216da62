"""Export the image and text towers of a random-weight MobileCLIP2 model to ONNX
(opset 17), for later ONNX Runtime comparisons. Same seed => same weights as
make_golden.py, so its expected outputs apply to these graphs.

  /usr/bin/python3 tools/reference/mobileclip/export_onnx.py --out /tmp/mobileclip/s0_onnx

Writes image.onnx (pixels f32 [N,3,S,S] -> image_embeds f32 [N,E], not
normalised) and text.onnx (tokens i64 [N,77] -> text_embeds f32 [N,E]).
The graphs hold the training form (all branches, BatchNorm in eval mode).
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip  # noqa: E402


class Image(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixels):
        return self.m.encode_image(pixels)


class Text(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, tokens):
        return self.m.encode_text(tokens)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="MobileCLIP2-S0")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/mobileclip/s0_onnx")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model, mcfg = clip.build(a.name, tiny=a.tiny, seed=a.seed)
    s, V = model.image_size, mcfg["text_cfg"]["vocab_size"]
    px = torch.rand(1, 3, s, s)
    ids = torch.zeros(1, 77, dtype=torch.long)
    ids[0, :4] = torch.tensor([V - 2, 5, 7, V - 1])
    with torch.no_grad():
        torch.onnx.export(Image(model), (px,), os.path.join(a.out, "image.onnx"), opset_version=17,
                          input_names=["pixels"], output_names=["image_embeds"],
                          dynamic_axes={"pixels": {0: "batch"}, "image_embeds": {0: "batch"}})
        torch.onnx.export(Text(model), (ids,), os.path.join(a.out, "text.onnx"), opset_version=17,
                          input_names=["tokens"], output_names=["text_embeds"],
                          dynamic_axes={"tokens": {0: "batch"}, "text_embeds": {0: "batch"}})
    for f in ("image.onnx", "text.onnx"):
        print(f, os.path.getsize(os.path.join(a.out, f)), "bytes")


if __name__ == "__main__":
    main()
