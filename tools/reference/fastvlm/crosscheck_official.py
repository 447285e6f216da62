"""Cross-check fastvlm_ref.py against apple/ml-fastvlm run from a local copy.

    /usr/bin/python3 tools/reference/fastvlm/crosscheck_official.py /tmp/mlfv [--full]

/tmp/mlfv is an extract of apple/ml-fastvlm (outside this repository; never
commit it).  timm and transformers are not installed, so the few names mci.py
and mm_utils.py import from them are stubbed; none of the stubbed names is used
by the inference-mode forward pass.  Checks:
  * FastViTHD: official FastViT (inference_mode=True, as fastvithd() builds it)
    with our random state dict loaded strictly, vs vision_forward
    (tiny config; the full 1024^2 config with --full);
  * projector: official build_vision_projector('mlp2x_gelu') vs project;
  * prompt: official conv_templates['qwen_2'] + predict.py's message vs build_prompt;
  * expand2square: official vs ours on odd sizes.
Prints max abs differences.
"""
import importlib.util
import os
import sys
import types

import torch
import torch.nn as nn
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fastvlm_ref as R  # noqa: E402


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def stub_timm():
    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    models.register_model = lambda f: f
    data = types.ModuleType("timm.data")
    data.IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
    data.IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
    layers = types.ModuleType("timm.layers")
    layers.DropPath = nn.Identity  # only built when drop_path > 0
    layers.SqueezeExcite = None    # only used with use_se in ReparamLargeKernelConv
    for m in (timm, models, data, layers):
        sys.modules[m.__name__] = m


def stub_llava(root):
    tr = types.ModuleType("transformers")
    tr.StoppingCriteria = object
    sys.modules["transformers"] = tr
    pkg = types.ModuleType("llava")
    pkg.__path__ = [os.path.join(root, "llava")]
    sys.modules["llava"] = pkg
    load(os.path.join(root, "llava", "constants.py"), "llava.constants")


def check_vision(mci, vc, seed, size_note):
    sd = R.random_state(dict(R.TINY if vc is R.VISION_TINY else R.FULL), seed)
    vsd = {n[len(R.VT):]: t for n, t in sd.items() if n.startswith(R.VT)}
    pos = [None if not p else (lambda c1, c2, inference_mode=False: mci.RepCPE(c1, c2, spatial_shape=(7, 7), inference_mode=inference_mode)) for p in vc["pos_embs"]]
    model = mci.FastViT(vc["layers"], token_mixers=tuple(vc["mixers"]), embed_dims=vc["widths"],
                        pos_embs=pos, mlp_ratios=[vc["mlp_ratio"]] * 5, downsamples=[True] * 5,
                        norm_layer=mci.LayerNormChannel, stem_scale_branch=False,
                        inference_mode=True, cls_ratio=vc["cls_ratio"])
    ce = int(vc["widths"][-1] * vc["cls_ratio"])
    model.head = mci.GlobalPool2D(in_dim=ce, out_dim=vc["projection_dim"])  # what MCi does
    missing, unexpected = model.load_state_dict(vsd, strict=True), None
    model.eval()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, vc["image_size"], vc["image_size"], generator=g)
    with torch.no_grad():
        off = model(x, return_image_embeddings=True)["image_embeddings"]
        ours = R.vision_forward(sd, vc, x)
    d = (off - ours).abs().max().item()
    print("vision %-6s %s: out %s max|diff| %.3e (max|ref| %.3e)" % (
        size_note, vc["image_size"], tuple(ours.shape), d, off.abs().max().item()))
    return sd, d


def main():
    root = sys.argv[1]
    full = "--full" in sys.argv
    stub_timm()
    stub_llava(root)
    mci = load(os.path.join(root, "llava/model/multimodal_encoder/mobileclip/mci.py"), "mci_official")
    worst = 0.0
    sd, d = check_vision(mci, R.VISION_TINY, 20261127, "tiny")
    worst = max(worst, d)
    x = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        d = (R.vision_forward(sd, R.VISION_TINY, x) - R.vision_forward(R.fold_bn(sd), R.VISION_TINY, x)).abs().max().item()
    print("BN folded at load vs unfolded (tiny): max|diff| %.3e" % d)

    builder = load(os.path.join(root, "llava/model/multimodal_projector/builder.py"), "proj_official")
    ns = types.SimpleNamespace(mm_projector_type="mlp2x_gelu", mm_hidden_size=R.TINY["mm_hidden_size"],
                               hidden_size=R.TINY["llm"]["hidden_size"])
    proj = builder.build_vision_projector(ns)
    proj.load_state_dict({k[len("model.mm_projector."):]: v for k, v in sd.items() if k.startswith("model.mm_projector.")})
    f = torch.randn(9, R.TINY["mm_hidden_size"])
    with torch.no_grad():
        d = (proj(f) - R.project(sd, f)).abs().max().item()
    print("projector: max|diff| %.3e" % d)
    worst = max(worst, d)

    conv = load(os.path.join(root, "llava/conversation.py"), "llava.conversation")
    for text in ("Describe the image.", "What is written on the sign? Answer in one word."):
        c = conv.conv_templates["qwen_2"].copy()
        c.append_message(c.roles[0], "<image>" + "\n" + text)  # predict.py, mm_use_im_start_end false
        c.append_message(c.roles[1], None)
        ok = c.get_prompt() == R.build_prompt(text)
        print("prompt %-50r identical: %s" % (text, ok))
        assert ok

    mm = load(os.path.join(root, "llava/mm_utils.py"), "llava.mm_utils")
    for (w, h) in ((160, 96), (120, 300), (257, 255), (5, 8), (64, 64)):
        im = Image.frombytes("RGB", (w, h), bytes((i * 7) % 251 for i in range(w * h * 3)))
        a = mm.expand2square(im, (0, 0, 0))
        b = R.expand2square(im)
        assert a.size == b.size and a.tobytes() == b.tobytes(), (w, h)
    print("expand2square: identical on 5 sizes")
    ids = mm.tokenizer_image_token(R.build_prompt("x"), FakeTok(), R.IMAGE_TOKEN_INDEX)
    print("tokenizer_image_token chunking (fake tokenizer):", ids.count(R.IMAGE_TOKEN_INDEX), "sentinel")

    if full:
        _, d = check_vision(mci, R.VISION_FULL, 7, "full")
        worst = max(worst, d)
    print("worst max|diff| %.3e" % worst)


class FakeTok:
    """Stands in for the HF tokenizer: one id per character (chunking check only)."""
    bos_token_id = None

    def __call__(self, s):
        return types.SimpleNamespace(input_ids=[ord(c) for c in s])


if __name__ == "__main__":
    main()
