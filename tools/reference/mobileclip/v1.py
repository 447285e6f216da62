"""MobileCLIP (v1) S0/S1/S2: MCi0/1/2 image tower + "MCt" (S0) or "base" (S1, S2)
text tower, in Apple's naming (apple/MobileCLIP-S0 mobileclip_s0.pt, ...).

Our own code, written from /work/shared/notes/mobileclip2.md sections 3.2 and
7.4 and checked against apple/ml-mobileclip (mobileclip/text_encoder.py,
modules/text/repmixer.py, modules/common/{transformer,mobileone}.py,
models/mci.py, modules/image/image_projection.py).

Image: the same math as MCi0 (mci.py) except the head, a bias-free
x @ head.proj with proj [2C, embed]; the state dict is renamed to Apple's module
names by apple_image_names(). Text ("mct"): embedding, learned positional
embedding [1,1,77,w], RepMixerBlock, 4 pre-LN transformer layers
(bidirectional), RepMixerBlock, final LN, EOT argmax pooling, @ projection.
Text ("base", text_encoder.py variant "base"): the same without the two
RepMixerBlocks (12 layers; causal mask only when causal_masking, i.e. B).
The text RepMixer treats the sequence as a 1 x L image with w channels: mixer =
depthwise 1x11 conv+BN plus identity BN (no 1x1 scale branch: Apple's check
looks at the first kernel dimension, 1), norm = identity BN.
"""
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from mci import MCi


class ConvBN(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv = nn.Conv2d(c, c, (1, k), 1, (0, k // 2), groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.conv(x))


class MobileOne1xK(nn.Module):
    """Apple MobileOneBlock, depthwise 1xK, no activation: rbr_skip + rbr_conv."""

    def __init__(self, c, k, conv):
        super().__init__()
        self.rbr_skip = nn.BatchNorm2d(c)
        self.rbr_conv = nn.ModuleList([ConvBN(c, k)]) if conv else None

    def forward(self, x):
        y = self.rbr_skip(x)
        if self.rbr_conv is not None:
            y = y + self.rbr_conv[0](x)
        return y


class TextRepMixer(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.norm = MobileOne1xK(c, k, conv=False)
        self.mixer = MobileOne1xK(c, k, conv=True)
        self.layer_scale = nn.Parameter(torch.full((c, 1, 1), 1e-5))

    def forward(self, x):
        return x + self.layer_scale * (self.mixer(x) - self.norm(x))


class ConvFFN(nn.Module):
    def __init__(self, c, hidden, k):
        super().__init__()
        self.conv = ConvBN(c, k)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.conv(x))))


class TextRepMixerBlock(nn.Module):
    def __init__(self, c, k=11):
        super().__init__()
        self.token_mixer = TextRepMixer(c, k)
        self.convffn = ConvFFN(c, 4 * c, k)
        self.layer_scale = nn.Parameter(torch.full((c, 1, 1), 1e-5))

    def forward(self, x):                       # x [B, L, C] -> [B, C, 1, L] and back
        x = x.permute(0, 2, 1).unsqueeze(2)
        x = self.token_mixer(x)
        x = x + self.layer_scale * self.convffn(x)
        return x.squeeze(2).permute(0, 2, 1)


class MHA(nn.Module):
    def __init__(self, w, heads, causal=False):
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.qkv_proj = nn.Linear(w, 3 * w)
        self.out_proj = nn.Linear(w, w)

    def forward(self, x):
        B, L, C = x.shape
        hd = C // self.heads
        q, k, v = self.qkv_proj(x).reshape(B, L, 3, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        s = (q * hd ** -0.5) @ k.transpose(-2, -1)
        if self.causal:
            s = s + torch.full((L, L), float("-inf")).triu(1)
        a = torch.softmax(s, dim=-1)
        return self.out_proj((a @ v).transpose(1, 2).reshape(B, L, C))


class TransformerEncoder(nn.Module):
    """pre_norm_mha = [LN, MHA, Dropout]; pre_norm_ffn = [LN, Linear, GELU, Dropout, Linear, Dropout]."""

    def __init__(self, w, heads, ffn, causal=False):
        super().__init__()
        self.pre_norm_mha = nn.Sequential(nn.LayerNorm(w), MHA(w, heads, causal), nn.Identity())
        self.pre_norm_ffn = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, ffn), nn.GELU(), nn.Identity(),
                                          nn.Linear(ffn, w), nn.Identity())

    def forward(self, x):
        x = x + self.pre_norm_mha(x)
        return x + self.pre_norm_ffn(x)


class PosEmbed(nn.Module):
    def __init__(self, L, w):
        super().__init__()
        self.pos_embed = nn.Module()
        self.pos_embed.pos_embed = nn.Parameter(torch.zeros(1, 1, L, w))


class MCt(nn.Module):
    """cfg keys: vocab_size, context_length, dim, n_heads, n_transformer_layers, embed_dim,
    variant ("mct", default, or "base": no RepMixerBlocks), causal (default False)."""

    def __init__(self, cfg):
        super().__init__()
        w = cfg["dim"]
        ffn = int(math.ceil(w * 4.0 / 16.0) * 16)
        self.embedding_layer = nn.Embedding(cfg["vocab_size"], w)
        self.positional_embedding = PosEmbed(cfg["context_length"], w)
        mct = cfg.get("variant", "mct") == "mct"
        self.transformer = nn.ModuleList(
            ([TextRepMixerBlock(w)] if mct else []) +
            [TransformerEncoder(w, cfg["n_heads"], ffn, cfg.get("causal", False))
             for _ in range(cfg["n_transformer_layers"])] +
            ([TextRepMixerBlock(w)] if mct else []))
        self.final_layer_norm = nn.LayerNorm(w)
        self.projection_layer = nn.Parameter(torch.zeros(w, cfg["embed_dim"]))

    def forward(self, ids, taps=None):
        L = ids.shape[1]
        x = self.embedding_layer(ids) + self.positional_embedding.pos_embed.pos_embed.reshape(1, L, -1)
        for i, layer in enumerate(self.transformer):
            x = layer(x)
            if taps is not None and i == 0:
                taps["text_block0"] = x
        x = self.final_layer_norm(x)
        eot = ids.to(torch.int32).argmax(dim=-1)
        pooled = x.gather(1, eot[:, None, None].expand(-1, 1, x.shape[2])).squeeze(1)
        if taps is not None:
            taps["text_pooled"] = pooled
        return pooled @ self.projection_layer


class CLIPv1(nn.Module):
    """Our MCi (timm names) or ViT-B/16 with a bias-free head + MCt or base text.
    state_dict() is timm-named for the image; apple_state_dict() gives the
    released naming."""

    def __init__(self, image_cfg, text_cfg):
        super().__init__()
        self.image_encoder = nn.Module()
        if image_cfg.get("kind") == "mci":        # vit.py config (MobileCLIP-B)
            from vit import ViT
            self.image_encoder.model = ViT(image_cfg)
        else:
            self.image_encoder.model = MCi(image_cfg)
        self.text_encoder = MCt(text_cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.image_size = 256

    def encode_image(self, x, taps=None):
        return self.image_encoder.model(x, taps)

    def encode_text(self, ids, taps=None):
        return self.text_encoder(ids, taps)

    def apple_state_dict(self):
        out = {}
        for k, v in self.state_dict().items():
            if k.startswith("image_encoder.model."):
                rename = apple_image_name if isinstance(self.image_encoder.model, MCi) else apple_vit_name
                k, v = rename(k[len("image_encoder.model."):], v, self.image_encoder.model)
                if k is None:
                    continue
                k = "image_encoder.model." + k
            out[k] = v
        return out


def _network_index(model):
    """timm stage part -> Apple flat network index: per stage [pe], blocks, then
    the next stage's downsample."""
    idx, n = {}, 0
    for s, st in enumerate(model.stages):
        if s > 0:
            idx[(s, "downsample")] = n
            n += 1
        if not isinstance(st.pos_emb, nn.Identity):
            idx[(s, "pos_emb")] = n
            n += 1
        idx[(s, "blocks")] = n
        n += 1
    return idx


def apple_image_name(k, v, model):
    """Inverse of timm's fastvit checkpoint_filter_fn for MobileCLIP v1 names."""
    if k == "head.fc.bias":
        return None, None                     # Apple's projection has no bias (ours is 0)
    if k == "head.fc.weight":
        return "head.proj", v.t().contiguous()
    m = re.match(r"stages\.(\d+)\.(downsample|pos_emb|blocks)\.(.*)", k)
    if m:
        s, part, rest = int(m.group(1)), m.group(2), m.group(3)
        n = _network_index(model)[(s, part)]
        if part == "pos_emb":
            rest = rest.replace("pos_enc.", "pe.", 1)
        k = f"network.{n}.{rest}"
    k = re.sub(r"^stem\.", "patch_embed.", k)
    k = k.replace("conv_kxk", "rbr_conv").replace("conv_scale", "rbr_scale").replace("identity", "rbr_skip")
    k = k.replace("large_conv", "lkb_origin").replace(".mlp.", ".convffn.")
    k = re.sub(r"^final_conv\.", "conv_exp.", k)
    if k.startswith("conv_exp.se."):
        k = k.replace("se.fc1", "se.reduce").replace("se.fc2", "se.expand")
    k = re.sub(r"(layer_scale(_\d)?)\.gamma$", r"\1", k)
    return k, v


def apple_vit_name(k, v, model):
    """timm vit_base_mci_224 names -> Apple's mobileclip/models/vit.py (v1 B, B-LT)."""
    if k == "head.bias":
        return None, None                     # SimpleImageProjectionHead: x @ proj, no bias
    if k == "head.weight":
        return "classifier.proj", v.t().contiguous()
    if k == "pos_embed":                      # [1, N, W] -> LearnablePositionalEmbedding [1, 1, N, W]
        return "pos_embed.pos_embed.pos_embed", v.unsqueeze(0).contiguous()
    m = re.match(r"patch_embed\.backbone\.(\d)\.(conv|bn)\.(.*)", k)
    if m:
        return f"patch_emb.{m.group(1)}.block.{'conv' if m.group(2) == 'conv' else 'norm'}.{m.group(3)}", v
    m = re.match(r"blocks\.(\d+)\.(.*)", k)
    if m:
        i, rest = m.group(1), m.group(2)
        for a, b in (("norm1.", "pre_norm_mha.0."), ("attn.qkv.", "pre_norm_mha.1.qkv_proj."),
                     ("attn.proj.", "pre_norm_mha.1.out_proj."), ("norm2.", "pre_norm_ffn.0."),
                     ("mlp.fc1.", "pre_norm_ffn.1."), ("mlp.fc2.", "pre_norm_ffn.4.")):
            if rest.startswith(a):
                return f"transformer.{i}.{b}{rest[len(a):]}", v
    if k.startswith("norm."):
        return "post_transformer_norm." + k[5:], v
    return k, v                               # cls_token
