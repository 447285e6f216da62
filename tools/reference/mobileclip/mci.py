"""MCi image towers (MobileCLIP / MobileCLIP2), training form, in plain PyTorch.

Our own code, written from /work/shared/notes/mobileclip2.md section 2 and
checked against timm's fastvit.py (fastvit_mci0..4). Module attribute names are
chosen so that state_dict() keys equal timm's names exactly (the OpenCLIP
checkpoint prefixes them with "visual.trunk."). Only eval-mode inference is
modelled: BatchNorm uses running statistics, no dropout or drop-path.

Shapes are NCHW. Every conv uses zero padding k//2 (timm's symmetric padding
((s-1)+(k-1))//2 equals k//2 for the odd kernels used here).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v, divisor):
    # timm make_divisible with round_limit=0: round to nearest multiple, min divisor.
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class ConvBN(nn.Module):
    """conv (no bias) followed by BatchNorm2d; names .conv / .bn like timm ConvNormAct."""

    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class SE(nn.Module):
    """Squeeze-excite: mean over HxW -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid gate."""

    def __init__(self, c, rd):
        super().__init__()
        self.fc1 = nn.Conv2d(c, rd, 1)
        self.fc2 = nn.Conv2d(rd, c, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class MobileOne(nn.Module):
    """MobileOne block: act(se(sum of branches)). Branches: kxk conv+BN, optional
    1x1 conv+BN ("scale", only if k > 1), optional bare BN ("identity", only if
    cin == cout and stride 1)."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True, se=False,
                 scale=True, conv=True):
        super().__init__()
        self.identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.conv_kxk = nn.ModuleList([ConvBN(cin, cout, k, stride, groups)]) if conv else None
        self.conv_scale = ConvBN(cin, cout, 1, stride, groups) if k > 1 and scale else None
        self.se = SE(cout, make_divisible(cout / 16, 1)) if se else None
        self.use_act = act

    def forward(self, x):
        y = 0
        if self.identity is not None:
            y = self.identity(x)
        if self.conv_scale is not None:
            y = y + self.conv_scale(x)
        if self.conv_kxk is not None:
            for b in self.conv_kxk:
                y = y + b(x)
        if self.se is not None:
            y = self.se(y)
        return F.gelu(y) if self.use_act else y


class LargeKernelConv(nn.Module):
    """ReparamLargeKernelConv: 7x7 conv+BN plus 3x3 conv+BN, stride 2, groups=cin
    (cout = 2*cin, so each group maps 1 input channel to 2 outputs); then SE
    (rd = cout/4 rounded to 8) and GELU (MCi sets lkc_use_act)."""

    def __init__(self, cin, cout, se):
        super().__init__()
        self.large_conv = ConvBN(cin, cout, 7, 2, cin)
        self.small_conv = ConvBN(cin, cout, 3, 2, cin)
        self.se = SE(cout, make_divisible(cout * 0.25, 8)) if se else None

    def forward(self, x):
        y = self.large_conv(x) + self.small_conv(x)
        if self.se is not None:
            y = self.se(y)
        return F.gelu(y)


class PatchEmbed(nn.Module):
    def __init__(self, cin, cout, se):
        super().__init__()
        self.proj = nn.Sequential(LargeKernelConv(cin, cout, se), MobileOne(cout, cout, 1))

    def forward(self, x):
        return self.proj(x)


class LayerScale(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-5))

    def forward(self, x):
        return x * self.gamma


class RepMixer(nn.Module):
    """x + gamma * (mixer(x) - norm(x)); mixer = depthwise 3x3 MobileOne without act,
    norm = MobileOne with only the identity BN branch."""

    def __init__(self, c):
        super().__init__()
        self.norm = MobileOne(c, c, 3, groups=c, act=False, scale=False, conv=False)
        self.mixer = MobileOne(c, c, 3, groups=c, act=False)
        self.layer_scale = LayerScale(c)

    def forward(self, x):
        return x + self.layer_scale(self.mixer(x) - self.norm(x))


class ConvMlp(nn.Module):
    """depthwise 7x7 conv+BN -> 1x1 (bias) -> GELU -> 1x1 (bias)."""

    def __init__(self, c, hidden):
        super().__init__()
        self.conv = ConvBN(c, c, 7, 1, c)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.conv(x))))


class RepMixerBlock(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.token_mixer = RepMixer(c)
        self.mlp = ConvMlp(c, hidden)
        self.layer_scale = LayerScale(c)

    def forward(self, x):
        x = self.token_mixer(x)
        return x + self.layer_scale(self.mlp(x))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels at each pixel (MCi3/4 attention norm), eps 1e-5."""

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight,
                            self.bias, self.eps).permute(0, 3, 1, 2)


class Attention(nn.Module):
    """MHSA over the H*W pixels (row-major), head_dim 32, qkv without bias."""

    def __init__(self, c, head_dim=32):
        super().__init__()
        self.heads, self.hd = c // head_dim, head_dim
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.proj = nn.Linear(c, c)

    def forward(self, x):
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)                           # B, N, C
        q, k, v = self.qkv(t).reshape(B, H * W, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4).unbind(0)
        a = torch.softmax((q * self.hd ** -0.5) @ k.transpose(-2, -1), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, H * W, C)
        return self.proj(o).transpose(1, 2).reshape(B, C, H, W)


class AttentionBlock(nn.Module):
    def __init__(self, c, hidden, layernorm):
        super().__init__()
        self.norm = LayerNorm2d(c, eps=1e-5) if layernorm else nn.BatchNorm2d(c)
        self.token_mixer = Attention(c)
        self.layer_scale_1 = LayerScale(c)
        self.mlp = ConvMlp(c, hidden)
        self.layer_scale_2 = LayerScale(c)

    def forward(self, x):
        x = x + self.layer_scale_1(self.token_mixer(self.norm(x)))
        return x + self.layer_scale_2(self.mlp(x))


class RepCPE(nn.Module):
    """x + depthwise 7x7 conv (with bias)."""

    def __init__(self, c):
        super().__init__()
        self.pos_enc = nn.Conv2d(c, c, 7, 1, 3, groups=c, bias=True)

    def forward(self, x):
        return x + self.pos_enc(x)


class Stage(nn.Module):
    def __init__(self, cin, cout, depth, mixer, mlp_ratio, se_down, cpe, layernorm, down):
        super().__init__()
        # timm: every stage but the first starts with a stride-2 PatchEmbed
        self.downsample = PatchEmbed(cin, cout, se_down) if down else nn.Identity()
        self.pos_emb = RepCPE(cout) if cpe else nn.Identity()
        hid = int(cout * mlp_ratio)
        self.blocks = nn.Sequential(*[
            RepMixerBlock(cout, hid) if mixer == "repmixer" else AttentionBlock(cout, hid, layernorm)
            for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.pos_emb(self.downsample(x)))


class Head(nn.Module):
    def __init__(self, c, embed):
        super().__init__()
        self.fc = nn.Linear(c, embed)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


class MCi(nn.Module):
    """cfg keys: widths, depths, mixers ('repmixer'/'attention' per stage),
    mlp_ratio, se_down (per stage), cpe (per stage), layernorm (attention norm),
    stem_scale (1x1 branches in stem), embed_dim."""

    def __init__(self, cfg):
        super().__init__()
        w, sc = cfg["widths"], cfg["stem_scale"]
        self.stem = nn.Sequential(
            MobileOne(3, w[0], 3, 2, 1, scale=sc),
            MobileOne(w[0], w[0], 3, 2, w[0], scale=sc),
            MobileOne(w[0], w[0], 1, 1, 1, scale=sc))
        prev, stages = w[0], []
        for i, c in enumerate(w):
            stages.append(Stage(prev, c, cfg["depths"][i], cfg["mixers"][i], cfg["mlp_ratio"],
                                cfg["se_down"][i], cfg["cpe"][i], cfg["layernorm"], i > 0 or prev != c))
            prev = c
        self.stages = nn.Sequential(*stages)
        self.final_conv = MobileOne(prev, 2 * prev, 3, 1, prev, se=True)
        self.head = Head(2 * prev, cfg["embed_dim"])

    def forward(self, x, taps=None):
        """taps: optional dict filled with named intermediate outputs."""
        x = self.stem(x)
        if taps is not None:
            taps["stem"] = x
        for i, s in enumerate(self.stages):
            x = s(x)
            if taps is not None:
                taps[f"stage{i}"] = x
        x = self.final_conv(x)
        p = x.mean((2, 3))
        y = self.head.fc(p)
        if taps is not None:
            taps["final_conv"], taps["pooled"], taps["projected"] = x, p, y
        return y
