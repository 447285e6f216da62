"""MobileCLIP2-S0 peers for bench/clip_peers.sh: the random-weight model in the released
layout, its ONNX export, and PyTorch timings (test tooling; the product is C).

  clip_peers.py prepare DIR          DIR/openclip/ (safetensors, training form: what glimpse
                                     reads), DIR/image.onnx, DIR/text.onnx (inference form)
  clip_peers.py torch DIR [--form reparam|train] [--reps R] [--batch B] [--threads T]

Inference form = the image tower after the official re-parameterisation (timm
`reparameterize_model`, Apple's "for inference/model exporting purposes, please reparameterize
first"): every MobileOne block, large-kernel conv, RepMixer and RepCPE becomes one conv with
bias. timm keeps the BatchNorm after the ConvMlp depthwise conv and the attention BatchNorm, and
so does this (they stay BatchNorm modules in eval mode). The training form is what OpenCLIP
builds when it loads the released checkpoint (no re-parameterisation unless the user calls it).
The fold is checked against the training form on every `prepare`.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "tools", "reference", "mobileclip")
sys.path.insert(0, REF)
import clip  # noqa: E402
import mci  # noqa: E402
import safetensors_io  # noqa: E402

NAME = "MobileCLIP2-S0"


# ---- re-parameterisation (our own, from the folding rules in shared/notes/mobileclip2.md) ----

def _bn_fold(bn):
    t = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return t, bn.bias - bn.running_mean * t


def _convbn_kernel(cb, k):
    """ConvBN as (weight padded to k x k at the centre, bias)."""
    t, b = _bn_fold(cb.bn)
    w = cb.conv.weight * t.reshape(-1, 1, 1, 1)
    p = (k - w.shape[-1]) // 2
    return F.pad(w, (p, p, p, p)), b


def _identity_kernel(bn, cout, cig, k):
    t, b = _bn_fold(bn)
    w = torch.zeros(cout, cig, k, k)
    for o in range(cout):
        w[o, o % cig, k // 2, k // 2] = t[o]
    return w, b


class _Folded(nn.Module):
    """One conv (with bias), then the block's SE and GELU if it had them."""

    def __init__(self, w, b, stride, groups, se=None, act=False):
        super().__init__()
        k = w.shape[-1]
        self.conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], k, stride, k // 2, groups=groups)
        self.conv.weight.data.copy_(w)
        self.conv.bias.data.copy_(b)
        self.se, self.act = se, act

    def forward(self, x):
        y = self.conv(x)
        if self.se is not None:
            y = self.se(y)
        return F.gelu(y) if self.act else y


def _fold_mobileone(m, x_channels):
    ref = m.conv_kxk[0].conv if m.conv_kxk is not None else None
    groups = ref.groups if ref is not None else x_channels
    k = ref.kernel_size[0] if ref is not None else 3
    stride = ref.stride[0] if ref is not None else 1
    cout = ref.out_channels if ref is not None else x_channels
    w, b = torch.zeros(cout, x_channels // groups, k, k), torch.zeros(cout)
    for br in (m.conv_kxk or []):
        dw, db = _convbn_kernel(br, k)
        w, b = w + dw, b + db
    if m.conv_scale is not None:
        dw, db = _convbn_kernel(m.conv_scale, k)
        w, b = w + dw, b + db
    if m.identity is not None:
        dw, db = _identity_kernel(m.identity, cout, x_channels // groups, k)
        w, b = w + dw, b + db
    return w, b, stride, groups


@torch.no_grad()
def reparameterize(model):
    """In place: the image tower of model (clip.CLIP) in inference form."""
    t = model.visual.trunk
    c_in = 3
    for i, blk in enumerate(t.stem):
        w, b, s, g = _fold_mobileone(blk, c_in)
        t.stem[i] = _Folded(w, b, s, g, blk.se, blk.use_act)
        c_in = w.shape[0]
    for st in t.stages:
        if isinstance(st.downsample, mci.PatchEmbed):
            lk, pw = st.downsample.proj
            w1, b1 = _convbn_kernel(lk.large_conv, 7)
            w2, b2 = _convbn_kernel(lk.small_conv, 7)
            st.downsample.proj[0] = _Folded(w1 + w2, b1 + b2, 2, lk.large_conv.conv.groups, lk.se, True)
            w, b, s, g = _fold_mobileone(pw, w1.shape[0])
            st.downsample.proj[1] = _Folded(w, b, s, g, pw.se, pw.use_act)
        if isinstance(st.pos_emb, mci.RepCPE):
            pe = st.pos_emb.pos_enc
            w = pe.weight.clone()
            w[:, 0, 3, 3] += 1.0
            st.pos_emb = _Folded(w, pe.bias, 1, pe.groups)
        for blk in st.blocks:
            if isinstance(blk, mci.RepMixerBlock):
                rm = blk.token_mixer
                c = rm.layer_scale.gamma.shape[0]
                wm, bm, _, _ = _fold_mobileone(rm.mixer, c)
                wn, bn, _, _ = _fold_mobileone(rm.norm, c)
                g = rm.layer_scale.gamma.reshape(-1, 1, 1, 1)
                w = g * (wm - wn)
                w[:, 0, 1, 1] += 1.0
                blk.token_mixer = _Folded(w, g.flatten() * (bm - bn), 1, c)
    w, b, s, g = _fold_mobileone(t.final_conv, t.final_conv.conv_kxk[0].conv.in_channels)
    t.final_conv = _Folded(w, b, s, g, t.final_conv.se, t.final_conv.use_act)
    return model


def load(d, form):
    mcfg = clip.model_config(NAME)
    m = clip.CLIP(mcfg).eval()
    m.load_state_dict(safetensors_io.load(os.path.join(d, "openclip", "open_clip_model.safetensors")), strict=True)
    return reparameterize(m) if form == "reparam" else m


class _Image(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixels):
        return self.m.encode_image(pixels)


class _Text(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, tokens):
        return self.m.encode_text(tokens)


def tokens(batch, vocab):
    """SOT, a few words, EOT, zero padding (as bench_clip)."""
    ids = torch.zeros(batch, 77, dtype=torch.long)
    for s in range(batch):
        ids[s, :4] = torch.tensor([vocab - 2, 320 % vocab, (1125 + s) % vocab, vocab - 1])
    return ids


@torch.no_grad()
def prepare(d):
    os.makedirs(d, exist_ok=True)
    model, mcfg = clip.build(NAME, tiny=False, seed=0)
    clip.write_openclip(model, mcfg, NAME, os.path.join(d, "openclip"))
    px = torch.rand(2, 3, 256, 256)
    ref = model.encode_image(px)
    rep = reparameterize(model)
    got = rep.encode_image(px)
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    print(f"re-parameterised image tower vs training form: max |diff| / max |ref| = {err:.2e}")
    assert err < 1e-4, "re-parameterisation does not reproduce the training form"
    ids = tokens(1, mcfg["text_cfg"]["vocab_size"])
    torch.onnx.export(_Image(rep), (px[:1],), os.path.join(d, "image.onnx"), opset_version=17,
                      input_names=["pixels"], output_names=["image_embeds"],
                      dynamic_axes={"pixels": {0: "batch"}, "image_embeds": {0: "batch"}})
    torch.onnx.export(_Text(rep), (ids,), os.path.join(d, "text.onnx"), opset_version=17,
                      input_names=["tokens"], output_names=["text_embeds"],
                      dynamic_axes={"tokens": {0: "batch"}, "text_embeds": {0: "batch"}})
    print("wrote", d)


@torch.no_grad()
def bench_torch(d, form, reps, batch, threads):
    torch.set_num_threads(threads)
    m = load(d, form)
    vocab = clip.model_config(NAME)["text_cfg"]["vocab_size"]
    tag = f"torch-{form}"
    sizes = (1, batch) if batch > 1 else (1,)
    for what, b in [(w, b) for w in ("image", "text") for b in sizes]:
        x = torch.rand(b, 3, 256, 256) * 2 - 1 if what == "image" else tokens(b, vocab)
        f = m.encode_image if what == "image" else m.encode_text
        f(x)  # warm-up
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f(x)
            ts.append(time.perf_counter() - t0)
        med = statistics.median(ts)
        print(f"{tag} {what:<5} b{b:<2} median {med * 1e3:8.2f} ms  best {min(ts) * 1e3:8.2f} ms  {b / med:7.2f} /s",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["prepare", "torch"])
    ap.add_argument("dir")
    ap.add_argument("--form", choices=["reparam", "train"], default="reparam")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.dir)
    else:
        bench_torch(a.dir, a.form, a.reps, a.batch, a.threads)


if __name__ == "__main__":
    main()
