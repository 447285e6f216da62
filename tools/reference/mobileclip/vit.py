"""ViT image towers of MobileCLIP2-B (timm vit_base_mci_224) and MobileCLIP2-L-14
(timm vit_large_patch14_clip_224), in plain PyTorch.

Our own code, written from /work/shared/notes/mobileclip2.md section 2.5 and
checked against timm vision_transformer.py / vision_transformer_hybrid.py.
Attribute names give timm's state_dict keys.

B:    conv stem (4x4 s4 -> BN -> GELU -> 2x2 s2 -> BN -> GELU -> 2x2 s2 with bias),
      tokens + pos_embed (patches only), then prepend cls; LayerNorm eps 1e-6.
L-14: 14x14 s14 conv without bias, prepend cls, + pos_embed (cls included),
      norm_pre; LayerNorm eps 1e-5.
Both: pre-LN blocks (qkv with bias, exact GELU MLP), final norm, cls token,
Linear head with bias.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, pad=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, k, pad, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.gelu(self.bn(self.conv(x)))


class LastConv(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, k, 0, bias=True)

    def forward(self, x):
        return self.conv(x)


class ConvStemEmbed(nn.Module):
    """patch_embed.backbone.{0,1,2}: stride 4, 2, 2 (total 16)."""

    def __init__(self, width, stem=None, pad0=0):
        super().__init__()
        c = stem or width // 4
        self.backbone = nn.Sequential(ConvBN(3, c, 4, pad0), ConvBN(c, c, 2), LastConv(c, width, 2))

    def forward(self, x):
        return self.backbone(x).flatten(2).transpose(1, 2)


class PatchEmbed(nn.Module):
    def __init__(self, width, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch, patch, 0, bias=False)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(w, 3 * w)
        self.proj = nn.Linear(w, w)

    def forward(self, x):
        B, N, C = x.shape
        hd = C // self.heads
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        a = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, w, h):
        super().__init__()
        self.fc1 = nn.Linear(w, h)
        self.fc2 = nn.Linear(h, w)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, w, heads, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(w, eps=eps)
        self.attn = Attention(w, heads)
        self.norm2 = nn.LayerNorm(w, eps=eps)
        self.mlp = Mlp(w, 4 * w)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """cfg keys: kind ('mci' conv stem | 'clip' patch conv), width, depth, heads,
    patch (clip only), image_size, embed_dim; optional eps (LayerNorm) and stem
    (conv-stem width), stem_pad (padding of the 4x4 stride-4 stem conv). MobileCLIP
    v1 B (Apple's vit.py ConvNormAct: padding (k-1)//2) uses stem max(32, width // 4),
    stem_pad 1 and eps 1e-5; timm's vit_base_mci_224 (MobileCLIP2-B) pads 0.
    pos_rows (v1 B): the position table always has this many rows (Apple: 196 =
    (224/16)^2) and is interpolated linearly along the flattened sequence to the
    patch count of other input sizes (Apple's LearnablePositionalEmbedding:
    F.interpolate(bilinear, align_corners=False) of the [1,1,rows,W] table)."""

    def __init__(self, cfg):
        super().__init__()
        w, self.kind = cfg["width"], cfg["kind"]
        n = (cfg["image_size"] // (16 if self.kind == "mci" else cfg["patch"])) ** 2
        eps = cfg.get("eps", 1e-6 if self.kind == "mci" else 1e-5)
        if self.kind == "mci":
            self.patch_embed = ConvStemEmbed(w, cfg.get("stem"), cfg.get("stem_pad", 0))
        else:
            self.patch_embed = PatchEmbed(w, cfg["patch"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, w))
        self.pos_rows = cfg.get("pos_rows")
        rows = self.pos_rows or (n if self.kind == "mci" else n + 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, rows, w))
        self.norm_pre = nn.LayerNorm(w, eps=eps) if self.kind == "clip" else None
        self.blocks = nn.Sequential(*[Block(w, cfg["heads"], eps) for _ in range(cfg["depth"])])
        self.norm = nn.LayerNorm(w, eps=eps)
        self.head = nn.Linear(w, cfg["embed_dim"])

    def forward(self, x, taps=None):
        t = self.patch_embed(x)
        if taps is not None:
            taps["stem"] = t
        cls = self.cls_token.expand(t.shape[0], -1, -1)
        if self.kind == "mci":      # pos embed on patches only, then prepend cls
            pos = self.pos_embed
            if pos.shape[1] != t.shape[1]:
                pos = F.interpolate(pos.unsqueeze(0), size=(t.shape[1], pos.shape[2]), mode="bilinear",
                                    align_corners=False).squeeze(0)
            t = torch.cat([cls, t + pos], dim=1)
        else:                       # prepend cls, then pos embed over all, then norm_pre
            t = self.norm_pre(torch.cat([cls, t], dim=1) + self.pos_embed)
        for i, b in enumerate(self.blocks):
            t = b(t)
            if taps is not None and i == 0:
                taps["block0"] = t
        t = self.norm(t)
        p = t[:, 0]
        y = self.head(p)
        if taps is not None:
            taps["final_norm"], taps["pooled"], taps["projected"] = t, p, y
        return y
