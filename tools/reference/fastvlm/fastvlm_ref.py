"""FastVLM reference forward pass in PyTorch (fp32), written for glimpse parity tests.

Our own code, written from /work/shared/notes/fastvlm.md and checked against
apple/ml-fastvlm (mci.py, projector builder, llava_arch, mm_utils, conversation)
and transformers' modeling_qwen2.py.  Everything is functional: a model is a
config dict plus a state dict {hub tensor name -> fp32 torch tensor}, so the same
dict is what the safetensors writer stores and what the forward pass reads.

Pieces:
  vision_forward   FastViTHD in the released, re-parameterised form
  project          mlp2x_gelu projector
  Qwen2            decoder with a simple KV cache (prefill + step)
  preprocess       expand2square (black) + PIL bicubic resize + /255
  build_prompt     qwen_2 conversation template (predict.py)
  splice           embed ids, replace the -200 sentinel by the image rows
  random_state     random weights whose values are exact in BOTH bf16 and f16
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

VT = "model.vision_tower.vision_tower.model."
IMAGE_TOKEN_INDEX = -200
IM_END = 151645
ENDOFTEXT = 151643

# --------------------------------------------------------------------------
# configs

VISION_FULL = dict(
    image_size=1024,
    layers=[2, 12, 24, 4, 2],
    widths=[96, 192, 384, 768, 1536],
    mixers=["repmixer", "repmixer", "repmixer", "attention", "attention"],
    pos_embs=[False, False, False, True, True],  # RepCPE 7x7 before stage
    mlp_ratio=4.0,
    head_dim=32,
    cls_ratio=2.0,
    repmixer_kernel=3,
    cpe_kernel=7,
    down_kernel=7,
    se_ratio=0.0625,
    projection_dim=768,  # head.proj (stored, unused by the VLM)
)

# Same topology, narrow: every block type appears, attention keeps head_dim 32.
# 192 px input: stage maps 48,24,12,6,3 -> 3x3 = 9 tokens (odd sizes on purpose).
VISION_TINY = dict(VISION_FULL,
                   image_size=192,
                   layers=[1, 2, 1, 1, 1],
                   widths=[4, 8, 16, 32, 64],  # attention: 1 head, then 2 heads
                   projection_dim=16)

LLM_05B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
               num_key_value_heads=2, intermediate_size=4864, vocab_size=151936,
               rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
               max_position_embeddings=32768)

LLM_TINY = dict(LLM_05B, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, intermediate_size=128, vocab_size=256)

FULL = dict(name="fastvlm-0.5b-random", vision=VISION_FULL, llm=LLM_05B,
            mm_hidden_size=3072, tokenizer_len=151646)
TINY = dict(name="fastvlm-tiny-random", vision=VISION_TINY, llm=LLM_TINY,
            mm_hidden_size=128, tokenizer_len=256)


def network_plan(vc):
    """The FastViT.network ModuleList order: [CPE], stage, [PatchEmbed] per stage.
    Returns a list of (index, kind, stage) with kind in cpe/stage/down."""
    plan, idx, n = [], 0, len(vc["layers"])
    for i in range(n):
        if vc["pos_embs"][i]:
            plan.append((idx, "cpe", i)); idx += 1
        plan.append((idx, "stage", i)); idx += 1
        if i < n - 1:
            plan.append((idx, "down", i)); idx += 1
    return plan


# --------------------------------------------------------------------------
# tensor list (name -> shape), in checkpoint order

def vision_shapes(vc):
    w = vc["widths"]
    s = {}
    c0 = w[0]
    s["patch_embed.0.reparam_conv.weight"] = (c0, 3, 3, 3)
    s["patch_embed.0.reparam_conv.bias"] = (c0,)
    s["patch_embed.1.reparam_conv.weight"] = (c0, 1, 3, 3)
    s["patch_embed.1.reparam_conv.bias"] = (c0,)
    s["patch_embed.2.reparam_conv.weight"] = (c0, c0, 1, 1)
    s["patch_embed.2.reparam_conv.bias"] = (c0,)
    k, kc, kd = vc["repmixer_kernel"], vc["cpe_kernel"], vc["down_kernel"]
    for idx, kind, i in network_plan(vc):
        p = "network.%d." % idx
        c = w[i]
        if kind == "cpe":
            s[p + "reparam_conv.weight"] = (c, 1, kc, kc)
            s[p + "reparam_conv.bias"] = (c,)
        elif kind == "down":
            c2 = w[i + 1]
            s[p + "proj.0.lkb_reparam.weight"] = (c2, 1, kd, kd)
            s[p + "proj.0.lkb_reparam.bias"] = (c2,)
            s[p + "proj.1.reparam_conv.weight"] = (c2, c2, 1, 1)
            s[p + "proj.1.reparam_conv.bias"] = (c2,)
        else:
            hid = int(c * vc["mlp_ratio"])
            for b in range(vc["layers"][i]):
                q = p + "%d." % b
                if vc["mixers"][i] == "repmixer":
                    s[q + "token_mixer.reparam_conv.weight"] = (c, 1, k, k)
                    s[q + "token_mixer.reparam_conv.bias"] = (c,)
                    s[q + "layer_scale"] = (c, 1, 1)
                else:
                    s[q + "norm.weight"] = (c,)
                    s[q + "norm.bias"] = (c,)
                    s[q + "token_mixer.qkv.weight"] = (3 * c, c)
                    s[q + "token_mixer.proj.weight"] = (c, c)
                    s[q + "token_mixer.proj.bias"] = (c,)
                    s[q + "layer_scale_1"] = (c, 1, 1)
                    s[q + "layer_scale_2"] = (c, 1, 1)
                s[q + "convffn.conv.conv.weight"] = (c, 1, 7, 7)
                for t in ("weight", "bias", "running_mean", "running_var"):
                    s[q + "convffn.conv.bn." + t] = (c,)
                s[q + "convffn.conv.bn.num_batches_tracked"] = ()
                s[q + "convffn.fc1.weight"] = (hid, c, 1, 1)
                s[q + "convffn.fc1.bias"] = (hid,)
                s[q + "convffn.fc2.weight"] = (c, hid, 1, 1)
                s[q + "convffn.fc2.bias"] = (c,)
    cl = w[-1]
    ce = int(cl * vc["cls_ratio"])
    r = int(ce * vc["se_ratio"])
    s["conv_exp.reparam_conv.weight"] = (ce, 1, 3, 3)
    s["conv_exp.reparam_conv.bias"] = (ce,)
    s["conv_exp.se.reduce.weight"] = (r, ce, 1, 1)
    s["conv_exp.se.reduce.bias"] = (r,)
    s["conv_exp.se.expand.weight"] = (ce, r, 1, 1)
    s["conv_exp.se.expand.bias"] = (ce,)
    s["head.proj"] = (ce, vc["projection_dim"])
    return {VT + n: v for n, v in s.items()}


def llm_shapes(lc, store_lm_head=True):
    h, I, V = lc["hidden_size"], lc["intermediate_size"], lc["vocab_size"]
    hd = h // lc["num_attention_heads"]
    kv = lc["num_key_value_heads"] * hd
    s = {"model.embed_tokens.weight": (V, h)}
    for l in range(lc["num_hidden_layers"]):
        p = "model.layers.%d." % l
        s[p + "input_layernorm.weight"] = (h,)
        s[p + "self_attn.q_proj.weight"] = (h, h)
        s[p + "self_attn.q_proj.bias"] = (h,)
        s[p + "self_attn.k_proj.weight"] = (kv, h)
        s[p + "self_attn.k_proj.bias"] = (kv,)
        s[p + "self_attn.v_proj.weight"] = (kv, h)
        s[p + "self_attn.v_proj.bias"] = (kv,)
        s[p + "self_attn.o_proj.weight"] = (h, h)
        s[p + "post_attention_layernorm.weight"] = (h,)
        s[p + "mlp.gate_proj.weight"] = (I, h)
        s[p + "mlp.up_proj.weight"] = (I, h)
        s[p + "mlp.down_proj.weight"] = (h, I)
    s["model.norm.weight"] = (h,)
    if store_lm_head:
        s["lm_head.weight"] = (V, h)
    return s


def model_shapes(cfg):
    h = cfg["llm"]["hidden_size"]
    s = llm_shapes(cfg["llm"])
    s["model.mm_projector.0.weight"] = (h, cfg["mm_hidden_size"])
    s["model.mm_projector.0.bias"] = (h,)
    s["model.mm_projector.2.weight"] = (h, h)
    s["model.mm_projector.2.bias"] = (h,)
    s.update(vision_shapes(cfg["vision"]))
    return s


# --------------------------------------------------------------------------
# random weights

def exact16(t):
    """Round fp32 to a value that bf16 AND f16 both store exactly: bf16
    rounding (8 significant bits), then flush magnitudes below the f16 normal
    range (2^-14) to zero and clamp to f16 max.  One golden then serves the
    BF16 and the F16 checkpoint."""
    t = t.to(torch.bfloat16).to(torch.float32)
    t = torch.where(t.abs() < 2.0 ** -14, torch.zeros_like(t), t)
    return t.clamp(-65504.0, 65504.0)


PGAIN = 4.0  # projector gain: image rows big enough to steer the tiny decoder
VGAIN = 1.5  # vision weight gain: keeps GELU/attention away from their linear regime


def random_state(cfg, seed):
    """Random weights with scales chosen so activations stay O(1) through the
    random network (no saturated softmax / dead GELU), which keeps greedy
    argmax margins well above fp32 noise.  Folded kernels (RepMixer, RepCPE)
    get identity-at-centre + noise, like a real re-parameterised checkpoint."""
    g = torch.Generator().manual_seed(seed)
    shapes = model_shapes(cfg)
    sd = {}

    def rn(shape, std, mean=0.0):
        return torch.randn(shape, generator=g) * std + mean

    def ru(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    # residual branches shrink with stage depth (1/sqrt(depth)) so the 24-block
    # stage does not blow activations up (real layer scales are small too)
    stage_of = {idx: i for idx, kind, i in network_plan(cfg["vision"])}

    def depth_scale(short):
        parts = short.split(".")
        if parts[0] == "network" and stage_of.get(int(parts[1])) is not None and len(parts) > 3:
            return 1.0 / math.sqrt(cfg["vision"]["layers"][stage_of[int(parts[1])]])
        return 1.0

    for name, shape in shapes.items():
        short = name[len(VT):] if name.startswith(VT) else name
        if short.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(1000, dtype=torch.int64)
            continue
        if name.endswith("bn.running_var"):
            t = ru(shape, 0.5, 2.0)
        elif name.endswith("bn.running_mean"):
            t = rn(shape, 0.1)
        elif name.endswith("bn.weight") or short.startswith("network") and short.endswith("norm.weight"):
            t = rn(shape, 0.2, 1.0)
        elif "layer_scale" in name:
            t = ru(shape, 0.05, 0.5) * depth_scale(short)
        elif name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = rn(shape, 0.2, 1.0)
        elif name.endswith(".bias") and name.startswith(VT):
            t = rn(shape, 0.05)
        elif name.endswith(".bias"):
            t = rn(shape, 0.1)
        elif name == "model.embed_tokens.weight":
            t = rn(shape, 0.3)
        elif name == "lm_head.weight":
            t = None  # filled below
        elif short == "head.proj":
            t = rn(shape, shape[0] ** -0.5)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            t = rn(shape, VGAIN / math.sqrt(fan_in))
            if ("token_mixer.reparam_conv" in name or
                    (short.startswith("network") and short.count(".") == 3 and "reparam_conv" in name)):
                # folded identity: 1 at the kernel centre
                k = shape[2]
                t = t * 0.3 * depth_scale(short)
                t[:, 0, k // 2, k // 2] += 1.0
        elif len(shape) == 2:
            gain = VGAIN if name.startswith(VT) else PGAIN if "mm_projector" in name else 1.0
            t = rn(shape, gain / math.sqrt(shape[1]))
        else:
            raise ValueError(name)
        if t is not None:
            sd[name] = exact16(t)
    if "lm_head.weight" in shapes:
        # config says tied; the file stores a copy (like apple/FastVLM-0.5B)
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"].clone()
    return {n: sd[n] for n in shapes}


# --------------------------------------------------------------------------
# FastViTHD (inference form)

def gelu(x):
    return F.gelu(x)  # exact erf form, like nn.GELU()


def mobileone(sd, p, x, stride, pad, groups, se=False):
    """conv + bias -> SE (conv_exp only) -> GELU."""
    x = F.conv2d(x, sd[p + "reparam_conv.weight"], sd[p + "reparam_conv.bias"],
                 stride=stride, padding=pad, groups=groups)
    if se:
        s = x.mean(dim=(2, 3), keepdim=True)  # avg_pool2d over the whole map
        s = F.relu(F.conv2d(s, sd[p + "se.reduce.weight"], sd[p + "se.reduce.bias"]))
        s = torch.sigmoid(F.conv2d(s, sd[p + "se.expand.weight"], sd[p + "se.expand.bias"]))
        x = x * s
    return gelu(x)


def convffn(sd, p, x):
    c = x.shape[1]
    if p + "conv.bn.weight" in sd:
        u = F.conv2d(x, sd[p + "conv.conv.weight"], None, padding=3, groups=c)
        u = F.batch_norm(u, sd[p + "conv.bn.running_mean"], sd[p + "conv.bn.running_var"],
                         sd[p + "conv.bn.weight"], sd[p + "conv.bn.bias"], False, 0.0, 1e-5)
    else:  # folded by fold_bn()
        u = F.conv2d(x, sd[p + "conv.conv.weight"], sd[p + "conv.conv.bias"], padding=3, groups=c)
    u = gelu(F.conv2d(u, sd[p + "fc1.weight"], sd[p + "fc1.bias"]))
    return F.conv2d(u, sd[p + "fc2.weight"], sd[p + "fc2.bias"])


def fold_bn(sd, eps=1e-5):
    """What a loader does at load time: fold each ConvFFN BatchNorm into its
    bias-free 7x7 depthwise conv, W' = W*g/s, b' = beta - mean*g/s with
    s = sqrt(var + eps); drops the bn.* tensors."""
    out = {}
    for n, t in sd.items():
        if ".convffn.conv.bn." in n:
            continue
        if n.endswith(".convffn.conv.conv.weight"):
            p = n[:-len("conv.weight")]
            g, b = sd[p + "bn.weight"], sd[p + "bn.bias"]
            m, v = sd[p + "bn.running_mean"], sd[p + "bn.running_var"]
            sc = g / torch.sqrt(v + eps)
            out[n] = t * sc[:, None, None, None]
            out[p + "conv.bias"] = b - m * sc
            continue
        out[n] = t
    return out


def layernorm_channel(x, w, b, eps=1e-5):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + eps)
    return w[None, :, None, None] * x + b[None, :, None, None]


def mhsa(sd, p, x, head_dim):
    B, C, H, W = x.shape
    N, nh = H * W, C // head_dim
    t = x.flatten(2).transpose(1, 2)  # (B, N, C), token n = h*W + w
    qkv = F.linear(t, sd[p + "qkv.weight"]).reshape(B, N, 3, nh, head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    a = ((q * head_dim ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
    o = (a @ v).transpose(1, 2).reshape(B, N, C)
    o = F.linear(o, sd[p + "proj.weight"], sd[p + "proj.bias"])
    return o.transpose(1, 2).reshape(B, C, H, W)


def vision_forward(sd, vc, x, trace=None):
    """pixels [B,3,R,R] in [0,1] -> conv_exp map [B, 2*C_last, R/64, R/64].
    trace, if a list, receives (label, tensor) after every network entry."""
    sd = {n[len(VT):]: t for n, t in sd.items() if n.startswith(VT)}
    c0 = vc["widths"][0]
    x = mobileone(sd, "patch_embed.0.", x, 2, 1, 1)
    x = mobileone(sd, "patch_embed.1.", x, 2, 1, c0)
    x = mobileone(sd, "patch_embed.2.", x, 1, 0, 1)
    if trace is not None:
        trace.append(("patch_embed", x))
    for idx, kind, i in network_plan(vc):
        p = "network.%d." % idx
        c = x.shape[1]
        if kind == "cpe":
            k = vc["cpe_kernel"]
            # identity folded into the kernel: output replaces x
            x = F.conv2d(x, sd[p + "reparam_conv.weight"], sd[p + "reparam_conv.bias"],
                         padding=k // 2, groups=c)
        elif kind == "down":
            k = vc["down_kernel"]
            x = gelu(F.conv2d(x, sd[p + "proj.0.lkb_reparam.weight"], sd[p + "proj.0.lkb_reparam.bias"],
                              stride=2, padding=k // 2, groups=c))
            x = mobileone(sd, p + "proj.1.", x, 1, 0, 1)
        else:
            for b in range(vc["layers"][i]):
                q = p + "%d." % b
                if vc["mixers"][i] == "repmixer":
                    k = vc["repmixer_kernel"]
                    x = F.conv2d(x, sd[q + "token_mixer.reparam_conv.weight"],
                                 sd[q + "token_mixer.reparam_conv.bias"], padding=k // 2, groups=c)
                    x = x + sd[q + "layer_scale"] * convffn(sd, q + "convffn.", x)
                else:
                    y = layernorm_channel(x, sd[q + "norm.weight"], sd[q + "norm.bias"])
                    x = x + sd[q + "layer_scale_1"] * mhsa(sd, q + "token_mixer.", y, vc["head_dim"])
                    x = x + sd[q + "layer_scale_2"] * convffn(sd, q + "convffn.", x)
        if trace is not None:
            trace.append(("network.%d" % idx, x))
    x = mobileone(sd, "conv_exp.", x, 1, 1, x.shape[1], se=True)
    if trace is not None:
        trace.append(("conv_exp", x))
    return x


def image_features(sd, vc, pixels, trace=None):
    """[B,3,R,R] -> [B, (R/64)^2, 2*C_last] in row-major grid order."""
    m = vision_forward(sd, vc, pixels, trace)
    B, C, H, W = m.shape
    return m.reshape(B, C, H * W).transpose(1, 2)


def project(sd, feats):
    """mlp2x_gelu: Linear -> GELU(erf) -> Linear."""
    h = gelu(F.linear(feats, sd["model.mm_projector.0.weight"], sd["model.mm_projector.0.bias"]))
    return F.linear(h, sd["model.mm_projector.2.weight"], sd["model.mm_projector.2.bias"])


# --------------------------------------------------------------------------
# Qwen2 decoder

def rms_norm(x, w, eps):
    v = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(v + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Qwen2:
    """fp32 Qwen2 with a KV cache.  lm_head rule (notes §4, code: HF ties the
    output projection to embed_tokens when tie_word_embeddings is true, so the
    stored lm_head.weight is ignored then); untied -> lm_head.weight."""

    def __init__(self, sd, lc):
        self.sd, self.lc = sd, lc
        self.nh, self.nkv = lc["num_attention_heads"], lc["num_key_value_heads"]
        self.hd = lc["hidden_size"] // self.nh
        self.eps = lc["rms_norm_eps"]
        d = self.hd
        self.inv_freq = 1.0 / (lc["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        if lc["tie_word_embeddings"]:
            self.lm_head = sd["model.embed_tokens.weight"]
        else:
            self.lm_head = sd["lm_head.weight"]
        self.reset()

    def reset(self):
        self.k = [None] * self.lc["num_hidden_layers"]
        self.v = [None] * self.lc["num_hidden_layers"]
        self.pos = 0

    def embed(self, ids):
        return self.sd["model.embed_tokens.weight"][torch.as_tensor(ids, dtype=torch.long)]

    def forward(self, x):
        """x [T, H] embeddings appended at positions pos..pos+T-1 -> final
        hidden states [T, H] (after model.norm)."""
        sd, T = self.sd, x.shape[0]
        # RoPE tables in fp32 exactly as HF computes them, then cast to the
        # working dtype (fp64 in the golden generators)
        pos = torch.arange(self.pos, self.pos + T, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        rep = self.nh // self.nkv
        S = self.pos + T
        mask = torch.full((T, S), float("-inf"), dtype=x.dtype)
        mask = torch.triu(mask, diagonal=self.pos + 1)
        for l in range(self.lc["num_hidden_layers"]):
            p = "model.layers.%d." % l
            h = rms_norm(x, sd[p + "input_layernorm.weight"], self.eps)
            q = F.linear(h, sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.q_proj.bias"])
            k = F.linear(h, sd[p + "self_attn.k_proj.weight"], sd[p + "self_attn.k_proj.bias"])
            v = F.linear(h, sd[p + "self_attn.v_proj.weight"], sd[p + "self_attn.v_proj.bias"])
            q = q.view(T, self.nh, self.hd).transpose(0, 1)
            k = k.view(T, self.nkv, self.hd).transpose(0, 1)
            v = v.view(T, self.nkv, self.hd).transpose(0, 1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if self.k[l] is not None:
                k = torch.cat((self.k[l], k), dim=1)
                v = torch.cat((self.v[l], v), dim=1)
            self.k[l], self.v[l] = k, v
            kk = k.repeat_interleave(rep, dim=0)  # q head j uses kv head j // rep
            vv = v.repeat_interleave(rep, dim=0)
            a = (q @ kk.transpose(1, 2)) * self.hd ** -0.5 + mask
            a = a.softmax(-1)
            o = (a @ vv).transpose(0, 1).reshape(T, -1)
            x = x + F.linear(o, sd[p + "self_attn.o_proj.weight"])
            h = rms_norm(x, sd[p + "post_attention_layernorm.weight"], self.eps)
            m = F.silu(F.linear(h, sd[p + "mlp.gate_proj.weight"])) * F.linear(h, sd[p + "mlp.up_proj.weight"])
            x = x + F.linear(m, sd[p + "mlp.down_proj.weight"])
        self.pos = S
        return rms_norm(x, sd["model.norm.weight"], self.eps)

    def logits(self, hidden):
        return F.linear(hidden, self.lm_head)

    def greedy(self, embeds, n_new, n_active, stop=()):
        """Prefill embeds [L,H], then n_new greedy steps.  Logits of ids >=
        n_active are masked (the official loader resizes the vocabulary to
        len(tokenizer), notes §4).  Returns (tokens, first_logits, margins)."""
        self.reset()
        hid = self.forward(embeds)
        lg = self.logits(hid[-1:])[0]
        first = lg.clone()
        toks, margins = [], []
        for i in range(n_new):
            a = lg[:n_active]
            top2 = torch.topk(a, 2)
            t = int(top2.indices[0])
            toks.append(t)
            margins.append(float(top2.values[0] - top2.values[1]))
            if t in stop or i == n_new - 1:
                break
            hid = self.forward(self.embed([t]))
            lg = self.logits(hid)[0]
        return toks, first, margins


# --------------------------------------------------------------------------
# preprocessing, prompt, splice

def expand2square(img, fill=(0, 0, 0)):
    w, h = img.size
    if w == h:
        return img
    s = max(w, h)
    out = Image.new(img.mode, (s, s), fill)
    out.paste(img, ((s - w) // 2, (s - h) // 2))
    return out


def preprocess(img, size):
    """mm_utils.process_images with image_aspect_ratio 'pad' and the
    CLIPImageProcessor built by mobileclip_encoder.py: mean 0, std 1, so the
    pad colour is int(0*255) = black.  PIL bicubic on uint8 (transformers
    converts back to PIL for resize), centre crop is a no-op, rescale 1/255
    done in float64 then cast to float32.  Returns (uint8 HWC, [1,3,S,S] f32)."""
    img = img.convert("RGB")
    img = expand2square(img, (0, 0, 0))
    img = img.resize((size, size), resample=Image.BICUBIC)
    u8 = np.asarray(img, dtype=np.uint8)
    f = (u8.astype(np.float64) * (1.0 / 255.0)).astype(np.float32)
    return u8, torch.from_numpy(f.transpose(2, 0, 1).copy())[None]


def build_prompt(text):
    """conv_templates['qwen_2'] with '<image>\\n' + text as the user turn."""
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n<image>\n" + text + "<|im_end|>\n"
            "<|im_start|>assistant\n")


def to64(sd):
    """The golden generators run the reference in float64 on the exact 16-bit
    weight values and store float32: the expected outputs are then accurate to
    fp32 rounding and independent of the BLAS torch happens to link."""
    return {n: t.double() if t.is_floating_point() else t for n, t in sd.items()}


def splice(model, ids, img_rows):
    """ids with exactly one -200 -> [L-1+N, H] embeddings."""
    i = ids.index(IMAGE_TOKEN_INDEX)
    pre, post = ids[:i], ids[i + 1:]
    parts = []
    if pre:
        parts.append(model.embed(pre))
    parts.append(img_rows)
    if post:
        parts.append(model.embed(post))
    return torch.cat(parts, 0)
