"""MobileCLIP2 text tower (OpenCLIP TextTransformer, "base" 12-layer form).

Our own code, written from /work/shared/notes/mobileclip2.md section 3.1 and
checked against open_clip src/open_clip/transformer.py (TextTransformer,
ResidualAttentionBlock, Attention). Attribute names make state_dict() keys equal
OpenCLIP's (the CLIP checkpoint prefixes them with "text.").

Forward for ids t [B, L]: x = tok_emb[t] + pos_emb; pre-LN blocks
(x += out_proj(MHA(ln_1 x)); x += c_proj(gelu(c_fc(ln_2 x)))); ln_final on all
positions; pool the row at argmax(t) (EOT has the largest id); @ text_projection.
No padding mask; a causal mask only when cfg["causal"] (MobileCLIP2-B).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MHA(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * w, w))   # rows: q, k, v
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * w))
        self.out_proj = nn.Linear(w, w)

    def forward(self, x, mask):
        B, L, C = x.shape
        hd = C // self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(B, L, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        a = (q * hd ** -0.5) @ k.transpose(-2, -1)
        if mask is not None:
            a = a + mask
        o = torch.softmax(a, dim=-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(B, L, C))


class Block(nn.Module):
    def __init__(self, w, heads, mlp_ratio):
        super().__init__()
        self.ln_1 = nn.LayerNorm(w)
        self.attn = MHA(w, heads)
        self.ln_2 = nn.LayerNorm(w)
        h = int(w * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(w, h))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(h, w))

    def forward(self, x, mask):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, w, layers, heads, mlp_ratio):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(w, heads, mlp_ratio) for _ in range(layers)])


class TextTower(nn.Module):
    """cfg keys: vocab_size, context_length, width, heads, layers, mlp_ratio,
    embed_dim, causal."""

    def __init__(self, cfg):
        super().__init__()
        w, L = cfg["width"], cfg["context_length"]
        self.token_embedding = nn.Embedding(cfg["vocab_size"], w)
        self.positional_embedding = nn.Parameter(torch.zeros(L, w))
        self.transformer = Transformer(w, cfg["layers"], cfg["heads"], cfg.get("mlp_ratio", 4.0))
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.zeros(w, cfg["embed_dim"]))
        mask = torch.full((L, L), float("-inf")).triu(1) if cfg["causal"] else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, ids, taps=None):
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        mask = None if self.attn_mask is None else self.attn_mask[: ids.shape[1], : ids.shape[1]]
        for i, b in enumerate(self.transformer.resblocks):
            x = b(x, mask)
            if taps is not None and i == 0:
                taps["text_block0"] = x
        x = self.ln_final(x)
        # argmax in int32: same index, and exports to an ONNX ArgMax that every
        # runtime supports (int64 ArgMax is missing in some ONNX Runtime builds)
        eot = ids.to(torch.int32).argmax(dim=-1)
        pooled = x.gather(1, eot[:, None, None].expand(-1, 1, x.shape[2])).squeeze(1)
        if taps is not None:
            taps["text_pooled"] = pooled
        return pooled @ self.text_projection
