/* glimpse-gen — writes random-weight models in the exact layouts users download, at real or
 * tiny sizes: for benchmarks (real shapes) and end-to-end tests (tiny shapes with the real
 * vocabularies). The weights are random: outputs are meaningless, speeds and plumbing are real.
 *
 *   glimpse-gen mobileclip2-s0|s2|s3|s4|tiny OUTDIR [--clip-vocab bpe_simple_vocab_16e6.txt.gz]
 *   glimpse-gen fastvlm-0.5b|fastvlm-tiny OUTDIR --tokenizer QWEN2_DIR [--dtype bf16|f16|f32]
 *
 * MobileCLIP folders: open_clip_config.json + open_clip_model.safetensors (OpenCLIP names, the
 * image tower in timm's re-parameterised form). FastVLM folders: config.json + model.safetensors
 * (hub names, FastViTHD in Apple's inference form) + the tokenizer files copied from QWEN2_DIR. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fp16.h"
#include "io/safetensors_write.h"

typedef enum { I_UNIFORM, I_RANGE, I_DWID, I_CONST, I_I64 } init_kind;
typedef struct { init_kind k; float a, b; } init_t;

typedef struct gen {
    io_st_writer *w;
    init_t *init;
    size_t cap;
    gl_dtype dt;   /* floating tensors */
    uint64_t seed;
    int failed;
} gen;

static void add(gen *g, init_t in, gl_dtype dt, const char *fmt, int ndim, const int64_t *shape, ...) {
    char name[256];
    va_list ap;
    va_start(ap, shape);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    long i = io_st_writer_add(g->w, name, dt, ndim, shape);
    if (i < 0) { g->failed = 1; return; }
    if ((size_t)i >= g->cap) {
        g->cap = g->cap ? 2 * g->cap : 1024;
        g->init = realloc(g->init, g->cap * sizeof *g->init);
    }
    g->init[i] = in;
}

#define SH(...) (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})
/* weight with fan-in scaling, gain g */
static init_t W(double fan_in, double gain) { return (init_t){I_UNIFORM, (float)(gain * sqrt(3.0 / fan_in)), 0}; }
static init_t R(float a, float b) { return (init_t){I_RANGE, a, b}; }
static init_t DWI(int k) { return (init_t){I_DWID, 0.3f, (float)k}; } /* identity-at-centre + noise */
static init_t C(float v) { return (init_t){I_CONST, v, 0}; }

static void t(gen *g, init_t in, const char *name, int ndim, const int64_t *shape) {
    add(g, in, g->dt, "%s", ndim, shape, name);
}
#define T(g, in, shape_nd, ...) do { char nm_[256]; snprintf(nm_, sizeof nm_, __VA_ARGS__); t(g, in, nm_, shape_nd); } while (0)

static void bn(gen *g, const char *p, int64_t c) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", p); t(g, R(0.5f, 1.5f), n, SH(c));
    snprintf(n, sizeof n, "%s.bias", p); t(g, R(-0.1f, 0.1f), n, SH(c));
    snprintf(n, sizeof n, "%s.running_mean", p); t(g, R(-0.1f, 0.1f), n, SH(c));
    snprintf(n, sizeof n, "%s.running_var", p); t(g, R(0.5f, 2.0f), n, SH(c));
    add(g, (init_t){I_I64, 1000, 0}, GL_I64, "%s.num_batches_tracked", 0, NULL, p);
}

/* ---- MCi / FastViTHD (inference form) ---- */
typedef struct mci_spec {
    int n_stages, widths[5], depths[5], attn_from, mlp_ratio, cpe[5], se_down[5], ln_attn, embed;
} mci_spec;

/* names: 0 = timm (stem, stages.s.blocks, downsample, pos_emb, mlp, final_conv, se.fc1, head.fc)
 *        1 = Apple (patch_embed, network.N, proj, convffn, conv_exp, se.reduce, head.proj) */
static void gen_mci(gen *g, const char *P, const mci_spec *s, int apple) {
    int64_t c0 = s->widths[0];
    const char *stem = apple ? "patch_embed" : "stem";
    T(g, W(27, 1.5), SH(c0, 3, 3, 3), "%s%s.0.reparam_conv.weight", P, stem);
    T(g, R(-0.1f, 0.1f), SH(c0), "%s%s.0.reparam_conv.bias", P, stem);
    T(g, W(9, 1.5), SH(c0, 1, 3, 3), "%s%s.1.reparam_conv.weight", P, stem);
    T(g, R(-0.1f, 0.1f), SH(c0), "%s%s.1.reparam_conv.bias", P, stem);
    T(g, W(c0, 1.5), SH(c0, c0, 1, 1), "%s%s.2.reparam_conv.weight", P, stem);
    T(g, R(-0.1f, 0.1f), SH(c0), "%s%s.2.reparam_conv.bias", P, stem);
    int net = 0;
    for (int st = 0; st < s->n_stages; st++) {
        int64_t c = s->widths[st], h = c * s->mlp_ratio;
        char b[200];
        if (st > 0) {
            if (apple) snprintf(b, sizeof b, "%snetwork.%d.proj", P, net++);
            else snprintf(b, sizeof b, "%sstages.%d.downsample.proj", P, st);
            T(g, W(49, 1.5), SH(c, 1, 7, 7), apple ? "%s.0.lkb_reparam.weight" : "%s.0.reparam_conv.weight", b);
            T(g, R(-0.1f, 0.1f), SH(c), apple ? "%s.0.lkb_reparam.bias" : "%s.0.reparam_conv.bias", b);
            if (s->se_down[st]) {
                int64_t r = ((c / 4 + 7) / 8) * 8;
                T(g, W(c, 1), SH(r, c, 1, 1), apple ? "%s.0.se.reduce.weight" : "%s.0.se.fc1.weight", b);
                T(g, R(-0.1f, 0.1f), SH(r), apple ? "%s.0.se.reduce.bias" : "%s.0.se.fc1.bias", b);
                T(g, W(r, 1), SH(c, r, 1, 1), apple ? "%s.0.se.expand.weight" : "%s.0.se.fc2.weight", b);
                T(g, R(-0.1f, 0.1f), SH(c), apple ? "%s.0.se.expand.bias" : "%s.0.se.fc2.bias", b);
            }
            T(g, W(c, 1.5), SH(c, c, 1, 1), "%s.1.reparam_conv.weight", b);
            T(g, R(-0.1f, 0.1f), SH(c), "%s.1.reparam_conv.bias", b);
        }
        if (s->cpe[st]) {
            if (apple) snprintf(b, sizeof b, "%snetwork.%d", P, net++);
            else snprintf(b, sizeof b, "%sstages.%d.pos_emb", P, st);
            T(g, DWI(7), SH(c, 1, 7, 7), "%s.reparam_conv.weight", b);
            T(g, R(-0.1f, 0.1f), SH(c), "%s.reparam_conv.bias", b);
        }
        for (int k = 0; k < s->depths[st]; k++) {
            if (apple) snprintf(b, sizeof b, "%snetwork.%d.%d", P, net, k);
            else snprintf(b, sizeof b, "%sstages.%d.blocks.%d", P, st, k);
            const char *mlp = apple ? "convffn" : "mlp";
            if (st >= s->attn_from) {
                char nb[240];
                snprintf(nb, sizeof nb, "%s.norm", b);
                if (s->ln_attn) {
                    T(g, R(0.5f, 1.5f), SH(c), "%s.weight", nb);
                    T(g, R(-0.1f, 0.1f), SH(c), "%s.bias", nb);
                } else {
                    bn(g, nb, c);
                }
                T(g, W(c, 1), SH(3 * c, c), "%s.token_mixer.qkv.weight", b);
                T(g, W(c, 1), SH(c, c), "%s.token_mixer.proj.weight", b);
                T(g, R(-0.1f, 0.1f), SH(c), "%s.token_mixer.proj.bias", b);
                T(g, R(0.05f, 0.5f), SH(c, 1, 1), apple ? "%s.layer_scale_1" : "%s.layer_scale_1.gamma", b);
                T(g, R(0.05f, 0.5f), SH(c, 1, 1), apple ? "%s.layer_scale_2" : "%s.layer_scale_2.gamma", b);
            } else {
                T(g, DWI(3), SH(c, 1, 3, 3), "%s.token_mixer.reparam_conv.weight", b);
                T(g, R(-0.1f, 0.1f), SH(c), "%s.token_mixer.reparam_conv.bias", b);
                T(g, R(0.05f, 0.5f), SH(c, 1, 1), apple ? "%s.layer_scale" : "%s.layer_scale.gamma", b);
            }
            T(g, W(49, 1), SH(c, 1, 7, 7), "%s.%s.conv.conv.weight", b, mlp);
            char bb[260];
            snprintf(bb, sizeof bb, "%s.%s.conv.bn", b, mlp);
            bn(g, bb, c);
            T(g, W(c, 1.5), SH(h, c, 1, 1), "%s.%s.fc1.weight", b, mlp);
            T(g, R(-0.1f, 0.1f), SH(h), "%s.%s.fc1.bias", b, mlp);
            T(g, W(h, 1), SH(c, h, 1, 1), "%s.%s.fc2.weight", b, mlp);
            T(g, R(-0.1f, 0.1f), SH(c), "%s.%s.fc2.bias", b, mlp);
        }
        if (apple) net++;
    }
    int64_t cl = s->widths[s->n_stages - 1], f = 2 * cl, r = f / 16;
    const char *fc = apple ? "conv_exp" : "final_conv";
    T(g, W(9, 1.5), SH(f, 1, 3, 3), "%s%s.reparam_conv.weight", P, fc);
    T(g, R(-0.1f, 0.1f), SH(f), "%s%s.reparam_conv.bias", P, fc);
    T(g, W(f, 1), SH(r, f, 1, 1), apple ? "%s%s.se.reduce.weight" : "%s%s.se.fc1.weight", P, fc);
    T(g, R(-0.1f, 0.1f), SH(r), apple ? "%s%s.se.reduce.bias" : "%s%s.se.fc1.bias", P, fc);
    T(g, W(r, 1), SH(f, r, 1, 1), apple ? "%s%s.se.expand.weight" : "%s%s.se.fc2.weight", P, fc);
    T(g, R(-0.1f, 0.1f), SH(f), apple ? "%s%s.se.expand.bias" : "%s%s.se.fc2.bias", P, fc);
    if (apple) {
        T(g, W(f, 1), SH(f, s->embed), "%shead.proj", P);
    } else {
        T(g, W(f, 1), SH(s->embed, f), "%shead.fc.weight", P);
        T(g, R(-0.1f, 0.1f), SH(s->embed), "%shead.fc.bias", P);
    }
}

static void gen_clip_text(gen *g, int64_t w, int layers, int64_t vocab, int64_t embed) {
    T(g, R(-0.5f, 0.5f), SH(vocab, w), "text.token_embedding.weight");
    T(g, R(-0.1f, 0.1f), SH(77, w), "text.positional_embedding");
    for (int i = 0; i < layers; i++) {
        const char *r = "text.transformer.resblocks";
        T(g, R(0.8f, 1.2f), SH(w), "%s.%d.ln_1.weight", r, i);
        T(g, R(-0.1f, 0.1f), SH(w), "%s.%d.ln_1.bias", r, i);
        T(g, W(w, 1), SH(3 * w, w), "%s.%d.attn.in_proj_weight", r, i);
        T(g, R(-0.1f, 0.1f), SH(3 * w), "%s.%d.attn.in_proj_bias", r, i);
        T(g, W(w, 0.5), SH(w, w), "%s.%d.attn.out_proj.weight", r, i);
        T(g, R(-0.1f, 0.1f), SH(w), "%s.%d.attn.out_proj.bias", r, i);
        T(g, R(0.8f, 1.2f), SH(w), "%s.%d.ln_2.weight", r, i);
        T(g, R(-0.1f, 0.1f), SH(w), "%s.%d.ln_2.bias", r, i);
        T(g, W(w, 1), SH(4 * w, w), "%s.%d.mlp.c_fc.weight", r, i);
        T(g, R(-0.1f, 0.1f), SH(4 * w), "%s.%d.mlp.c_fc.bias", r, i);
        T(g, W(4 * w, 0.5), SH(w, 4 * w), "%s.%d.mlp.c_proj.weight", r, i);
        T(g, R(-0.1f, 0.1f), SH(w), "%s.%d.mlp.c_proj.bias", r, i);
    }
    T(g, R(0.8f, 1.2f), SH(w), "text.ln_final.weight");
    T(g, R(-0.1f, 0.1f), SH(w), "text.ln_final.bias");
    T(g, W(w, 1), SH(w, embed), "text.text_projection");
    t(g, C(4.6052f), "logit_scale", 0, NULL); /* ln(100) */
}

/* ---- ViT towers of MobileCLIP2-B (conv stem 4/2/2, pos-embed on patches) and L-14 (14x14
 * patch conv, pos-embed incl. class token, norm_pre), timm names ---- */
typedef struct vit_spec { int conv_stem; int64_t width, depth, patch, image, embed; } vit_spec;

static void gen_vit(gen *g, const vit_spec *v) {
    const char *P = "visual.trunk.";
    int64_t w = v->width, grid = v->image / (v->conv_stem ? 16 : v->patch), n = grid * grid;
    if (v->conv_stem) {
        int64_t c = w / 4;
        T(g, W(3 * 16, 1), SH(c, 3, 4, 4), "%spatch_embed.backbone.0.conv.weight", P);
        char b[128];
        snprintf(b, sizeof b, "%spatch_embed.backbone.0.bn", P); bn(g, b, c);
        T(g, W(c * 4, 1), SH(c, c, 2, 2), "%spatch_embed.backbone.1.conv.weight", P);
        snprintf(b, sizeof b, "%spatch_embed.backbone.1.bn", P); bn(g, b, c);
        T(g, W(c * 4, 1), SH(w, c, 2, 2), "%spatch_embed.backbone.2.conv.weight", P);
        T(g, R(-0.1f, 0.1f), SH(w), "%spatch_embed.backbone.2.conv.bias", P);
        T(g, R(-0.1f, 0.1f), SH(1, n, w), "%spos_embed", P);
    } else {
        T(g, W(3 * v->patch * v->patch, 1), SH(w, 3, v->patch, v->patch), "%spatch_embed.proj.weight", P);
        T(g, R(-0.1f, 0.1f), SH(1, n + 1, w), "%spos_embed", P);
        T(g, R(0.8f, 1.2f), SH(w), "%snorm_pre.weight", P);
        T(g, R(-0.1f, 0.1f), SH(w), "%snorm_pre.bias", P);
    }
    T(g, R(-0.1f, 0.1f), SH(1, 1, w), "%scls_token", P);
    for (int64_t i = 0; i < v->depth; i++) {
        T(g, R(0.8f, 1.2f), SH(w), "%sblocks.%lld.norm1.weight", P, (long long)i);
        T(g, R(-0.1f, 0.1f), SH(w), "%sblocks.%lld.norm1.bias", P, (long long)i);
        T(g, W(w, 1), SH(3 * w, w), "%sblocks.%lld.attn.qkv.weight", P, (long long)i);
        T(g, R(-0.1f, 0.1f), SH(3 * w), "%sblocks.%lld.attn.qkv.bias", P, (long long)i);
        T(g, W(w, 0.5), SH(w, w), "%sblocks.%lld.attn.proj.weight", P, (long long)i);
        T(g, R(-0.1f, 0.1f), SH(w), "%sblocks.%lld.attn.proj.bias", P, (long long)i);
        T(g, R(0.8f, 1.2f), SH(w), "%sblocks.%lld.norm2.weight", P, (long long)i);
        T(g, R(-0.1f, 0.1f), SH(w), "%sblocks.%lld.norm2.bias", P, (long long)i);
        T(g, W(w, 1), SH(4 * w, w), "%sblocks.%lld.mlp.fc1.weight", P, (long long)i);
        T(g, R(-0.1f, 0.1f), SH(4 * w), "%sblocks.%lld.mlp.fc1.bias", P, (long long)i);
        T(g, W(4 * w, 0.5), SH(w, 4 * w), "%sblocks.%lld.mlp.fc2.weight", P, (long long)i);
        T(g, R(-0.1f, 0.1f), SH(w), "%sblocks.%lld.mlp.fc2.bias", P, (long long)i);
    }
    T(g, R(0.8f, 1.2f), SH(w), "%snorm.weight", P);
    T(g, R(-0.1f, 0.1f), SH(w), "%snorm.bias", P);
    T(g, W(w, 1), SH(v->embed, w), "%shead.weight", P);
    T(g, R(-0.1f, 0.1f), SH(v->embed), "%shead.bias", P);
}

typedef struct qwen_spec { int64_t hidden, layers, heads, kv, inter, vocab; } qwen_spec;

static void gen_qwen2(gen *g, const qwen_spec *q, int64_t feat) {
    int64_t H = q->hidden, hd = H / q->heads, kd = q->kv * hd, I = q->inter;
    T(g, R(-0.3f, 0.3f), SH(q->vocab, H), "model.embed_tokens.weight");
    for (int i = 0; i < q->layers; i++) {
        const char *p = "model.layers";
        T(g, R(0.8f, 1.2f), SH(H), "%s.%d.input_layernorm.weight", p, i);
        T(g, W(H, 1), SH(H, H), "%s.%d.self_attn.q_proj.weight", p, i);
        T(g, R(-0.1f, 0.1f), SH(H), "%s.%d.self_attn.q_proj.bias", p, i);
        T(g, W(H, 1), SH(kd, H), "%s.%d.self_attn.k_proj.weight", p, i);
        T(g, R(-0.1f, 0.1f), SH(kd), "%s.%d.self_attn.k_proj.bias", p, i);
        T(g, W(H, 1), SH(kd, H), "%s.%d.self_attn.v_proj.weight", p, i);
        T(g, R(-0.1f, 0.1f), SH(kd), "%s.%d.self_attn.v_proj.bias", p, i);
        T(g, W(H, 0.5), SH(H, H), "%s.%d.self_attn.o_proj.weight", p, i);
        T(g, R(0.8f, 1.2f), SH(H), "%s.%d.post_attention_layernorm.weight", p, i);
        T(g, W(H, 1), SH(I, H), "%s.%d.mlp.gate_proj.weight", p, i);
        T(g, W(H, 1), SH(I, H), "%s.%d.mlp.up_proj.weight", p, i);
        T(g, W(I, 0.5), SH(H, I), "%s.%d.mlp.down_proj.weight", p, i);
    }
    T(g, R(0.8f, 1.2f), SH(H), "model.norm.weight");
    T(g, R(-0.3f, 0.3f), SH(q->vocab, H), "lm_head.weight");
    T(g, W(feat, 2), SH(H, feat), "model.mm_projector.0.weight");
    T(g, R(-0.1f, 0.1f), SH(H), "model.mm_projector.0.bias");
    T(g, W(H, 2), SH(H, H), "model.mm_projector.2.weight");
    T(g, R(-0.1f, 0.1f), SH(H), "model.mm_projector.2.bias");
}

/* ---- data ---- */
static uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static int fill(void *user, size_t i, void *buf, size_t nbytes) {
    gen *g = user;
    init_t in = g->init[i];
    if (in.k == I_I64) {
        int64_t v = (int64_t)in.a;
        memcpy(buf, &v, 8);
        return 0;
    }
    size_t es = g->dt == GL_F32 ? 4 : 2, n = nbytes / es;
    uint64_t s = mix(g->seed * 1315423911u + i + 1);
    for (size_t j = 0; j < n; j++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((s >> 40) * (1.0 / 16777216.0)); /* [0,1) */
        float v;
        switch (in.k) {
        case I_UNIFORM: v = (2 * u - 1) * in.a; break;
        case I_RANGE: v = in.a + u * (in.b - in.a); break;
        case I_CONST: v = in.a; break;
        default: v = (2 * u - 1) * in.a; break;
        }
        if (es == 4) memcpy((char *)buf + 4 * j, &v, 4);
        else {
            uint16_t h = g->dt == GL_BF16 ? gl_f32_to_bf16(v) : gl_f32_to_f16(v);
            memcpy((char *)buf + 2 * j, &h, 2);
        }
    }
    if (in.k == I_DWID) { /* add 1 at the centre tap of each depthwise kernel ([C,1,k,k]) */
        size_t kk = (size_t)in.b * (size_t)in.b;
        for (size_t c = 0; kk && c < n / kk; c++) {
            size_t j = c * kk + kk / 2;
            float v;
            if (es == 4) { memcpy(&v, (char *)buf + 4 * j, 4); v += 1; memcpy((char *)buf + 4 * j, &v, 4); }
            else {
                uint16_t h;
                memcpy(&h, (char *)buf + 2 * j, 2);
                v = (g->dt == GL_BF16 ? gl_bf16_to_f32(h) : gl_f16_to_f32(h)) + 1;
                h = g->dt == GL_BF16 ? gl_f32_to_bf16(v) : gl_f32_to_f16(v);
                memcpy((char *)buf + 2 * j, &h, 2);
            }
        }
    }
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return fprintf(stderr, "glimpse-gen: %s: %s\n", p, strerror(errno)), 1;
    fputs(text, f);
    return fclose(f) != 0;
}

static int copy_file(const char *src, const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *a = fopen(src, "rb");
    if (!a) return 0; /* optional files */
    FILE *b = fopen(p, "wb");
    if (!b) { fclose(a); return fprintf(stderr, "glimpse-gen: %s: %s\n", p, strerror(errno)), 1; }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    return fclose(b) != 0;
}

static int usage(FILE *f) {
    fprintf(f, "usage: glimpse-gen MODEL OUTDIR [--seed N] [--dtype f32|f16|bf16] [--clip-vocab FILE.gz] [--tokenizer DIR]\n"
               "MODEL: mobileclip2-s0 | mobileclip2-s2 | mobileclip2-s3 | mobileclip2-s4 | mobileclip2-tiny |\n"
               "       mobileclip2-b | mobileclip2-l14 | mobileclip2-b-tiny | mobileclip2-l14-tiny |\n"
               "       fastvlm-0.5b | fastvlm-1.5b | fastvlm-7b | fastvlm-tiny\n"
               "Random weights in the downloaded layout: for benchmarks and tests, not for use.\n");
    return f == stdout ? 0 : 2;
}

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) return usage(stdout);
    if (argc < 3) return usage(stderr);
    const char *model = argv[1], *out = argv[2], *vocab = NULL, *tokdir = NULL, *dts = NULL;
    gen g = {0};
    g.seed = 1;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) return usage(stderr);
        if (!strcmp(argv[i], "--seed")) g.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dtype")) dts = argv[++i];
        else if (!strcmp(argv[i], "--clip-vocab")) vocab = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer")) tokdir = argv[++i];
        else return usage(stderr);
    }
    mkdir(out, 0755);
    g.w = io_st_writer_new();
    int vlm = !strncmp(model, "fastvlm", 7);
    g.dt = vlm ? GL_BF16 : GL_F32;
    if (dts) g.dt = !strcmp(dts, "f32") ? GL_F32 : !strcmp(dts, "f16") ? GL_F16 : GL_BF16;
    char path[1024], cfg[4096];
    if (!vlm) {
        mci_spec s = {4, {64, 128, 256, 512}, {2, 6, 10, 2}, 3, 3, {0, 0, 0, 1}, {0, 0, 1, 1}, 0, 512};
        int64_t tw = 512, layers = 12, vocab_n = 49408, image = 256;
        const char *mean = "0.0, 0.0, 0.0", *std = "1.0, 1.0, 1.0", *timm = "fastvit_mci0", *interp = "bilinear";
        int vit = 0;
        int64_t vit_heads = 0;
        int causal = 0;
        if (!strcmp(model, "mobileclip2-s2")) {
            mci_spec s2 = {4, {80, 160, 320, 640}, {4, 12, 24, 4}, 3, 3, {0, 0, 0, 1}, {0, 0, 1, 1}, 0, 512};
            s = s2, timm = "fastvit_mci2";
        } else if (!strcmp(model, "mobileclip2-s3") || !strcmp(model, "mobileclip2-s4")) {
            int s4 = model[13] == '4';
            mci_spec s3 = {5, {96, 192, 384, 768, 1536}, {2, 12, 24, 4, 2}, 3, 4, {0, 0, 0, 1, 1}, {0}, 1, 768};
            if (s4) {
                int w4[5] = {128, 256, 512, 1024, 2048}, d4[5] = {2, 12, 24, 4, 4};
                memcpy(s3.widths, w4, sizeof w4);
                memcpy(s3.depths, d4, sizeof d4);
            }
            s = s3, tw = 768, timm = s4 ? "fastvit_mci4" : "fastvit_mci3";
            mean = "0.48145466, 0.4578275, 0.40821073", std = "0.26862954, 0.26130258, 0.27577711";
        } else if (!strcmp(model, "mobileclip2-tiny")) {
            mci_spec st = {4, {8, 16, 32, 64}, {1, 1, 1, 1}, 3, 3, {0, 0, 0, 1}, {0, 0, 1, 1}, 0, 32};
            s = st, tw = 64, layers = 2, image = 64;
        } else if (!strncmp(model, "mobileclip2-b", 13) || !strncmp(model, "mobileclip2-l14", 15)) {
            int l14 = model[12] == 'l', tiny = strstr(model, "-tiny") != NULL;
            if (strcmp(model + (l14 ? 15 : 13), tiny ? "-tiny" : "")) return usage(stderr);
            vit_spec v = l14 ? (vit_spec){0, 1024, 24, 14, 224, 768} : (vit_spec){1, 768, 12, 16, 224, 512};
            if (tiny) v.width = 64, v.depth = 2, v.image = l14 ? 42 : 64, v.embed = 32, tw = 64, layers = 2;
            else tw = l14 ? 768 : 512;
            vit = 1;
            timm = l14 ? "vit_large_patch14_clip_224" : "vit_base_mci_224";
            image = v.image, s.embed = (int)v.embed, vit_heads = v.width / 64;
            causal = !l14;
            if (l14) {
                mean = "0.48145466, 0.4578275, 0.40821073", std = "0.26862954, 0.26130258, 0.27577711";
                interp = "bicubic";
            }
            gen_vit(&g, &v);
        } else if (strcmp(model, "mobileclip2-s0")) {
            return usage(stderr);
        }
        if (!vit) gen_mci(&g, "visual.trunk.", &s, 0);
        char kw[64] = "";
        if (vit) snprintf(kw, sizeof kw, ", \"timm_model_kwargs\": {\"num_heads\": %lld}", (long long)vit_heads);
        gen_clip_text(&g, tw, (int)layers, vocab_n, s.embed);
        snprintf(cfg, sizeof cfg,
                 "{\n  \"model_cfg\": {\n    \"embed_dim\": %d,\n    \"vision_cfg\": {\"timm_model_name\": \"%s\", "
                 "\"timm_model_pretrained\": false, \"timm_pool\": \"%s\", \"timm_proj\": null, \"image_size\": %lld%s},\n"
                 "    \"text_cfg\": {\"context_length\": 77, \"vocab_size\": %lld, \"width\": %lld, \"heads\": %lld, "
                 "\"layers\": %lld, \"no_causal_mask\": %s},\n    \"custom_text\": true\n  },\n"
                 "  \"preprocess_cfg\": {\"mean\": [%s], \"std\": [%s], \"interpolation\": \"%s\", "
                 "\"resize_mode\": \"shortest\"},\n  \"glimpse_random_weights\": true\n}\n",
                 s.embed, timm, vit ? "token" : "avg", (long long)image, kw, (long long)vocab_n,
                 (long long)tw, (long long)(tw / 64 ? tw / 64 : 1), (long long)layers, causal ? "false" : "true", mean,
                 std, interp);
        if (write_text(out, "open_clip_config.json", cfg)) return 1;
        if (vocab && copy_file(vocab, out, "bpe_simple_vocab_16e6.txt.gz")) return 1;
        snprintf(path, sizeof path, "%s/open_clip_model.safetensors", out);
    } else {
        int tiny = !strcmp(model, "fastvlm-tiny");
        int big = !strcmp(model, "fastvlm-1.5b") ? 1 : !strcmp(model, "fastvlm-7b") ? 2 : 0;
        if (!tiny && !big && strcmp(model, "fastvlm-0.5b")) return usage(stderr);
        mci_spec hd = {5, {96, 192, 384, 768, 1536}, {2, 12, 24, 4, 2}, 3, 4, {0, 0, 0, 1, 1}, {0}, 1, 768};
        qwen_spec q = {896, 24, 14, 2, 4864, 151936};
        int image = 1024, tied = 1;
        if (big == 1) q = (qwen_spec){1536, 28, 12, 2, 8960, 151936};
        if (big == 2) q = (qwen_spec){3584, 28, 28, 4, 18944, 152064}, tied = 0; /* Qwen2-7B: untied head */
        if (tiny) {
            mci_spec t2 = {5, {8, 16, 32, 32, 64}, {1, 1, 1, 1, 1}, 3, 4, {0, 0, 0, 1, 1}, {0}, 1, 16};
            qwen_spec q2 = {64, 2, 4, 2, 128, 151936};
            hd = t2, q = q2, image = 128;
        }
        if (!tokdir) return fprintf(stderr, "glimpse-gen: FastVLM needs --tokenizer DIR (Qwen2 vocab.json, merges.txt, ...)\n"), 2;
        gen_mci(&g, "model.vision_tower.vision_tower.model.", &hd, 1);
        gen_qwen2(&g, &q, 2 * hd.widths[4]);
        snprintf(cfg, sizeof cfg,
                 "{\n  \"architectures\": [\"LlavaQwen2ForCausalLM\"],\n  \"model_type\": \"llava_qwen2\",\n"
                 "  \"bos_token_id\": 151643,\n  \"eos_token_id\": 151645,\n  \"hidden_act\": \"silu\",\n"
                 "  \"hidden_size\": %lld,\n  \"intermediate_size\": %lld,\n  \"image_aspect_ratio\": \"pad\",\n"
                 "  \"max_position_embeddings\": 32768,\n  \"mm_hidden_size\": %d,\n  \"mm_patch_merge_type\": \"flat\",\n"
                 "  \"mm_projector_type\": \"mlp2x_gelu\",\n  \"mm_use_im_start_end\": false,\n"
                 "  \"mm_vision_select_feature\": \"patch\",\n  \"mm_vision_select_layer\": -2,\n"
                 "  \"mm_vision_tower\": \"mobileclip_l_%d\",\n  \"num_attention_heads\": %lld,\n"
                 "  \"num_hidden_layers\": %lld,\n  \"num_key_value_heads\": %lld,\n  \"rms_norm_eps\": 1e-06,\n"
                 "  \"rope_theta\": 1000000.0,\n  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"bfloat16\",\n"
                 "  \"use_sliding_window\": false,\n  \"vocab_size\": %lld,\n  \"glimpse_random_weights\": true\n}\n",
                 (long long)q.hidden, (long long)q.inter, 2 * hd.widths[4], image, (long long)q.heads,
                 (long long)q.layers, (long long)q.kv, tied ? "true" : "false", (long long)q.vocab);
        if (write_text(out, "config.json", cfg)) return 1;
        static const char *const tf[] = {"vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json",
                                         "special_tokens_map.json", "tokenizer.json"};
        for (size_t i = 0; i < sizeof tf / sizeof *tf; i++) {
            char src[1024];
            snprintf(src, sizeof src, "%s/%s", tokdir, tf[i]);
            if (copy_file(src, out, tf[i])) return 1;
        }
        snprintf(path, sizeof path, "%s/model.safetensors", out);
    }
    if (g.failed) return fprintf(stderr, "glimpse-gen: bad tensor spec\n"), 1;
    gl_err err = {0};
    if (io_st_writer_write(g.w, path, fill, &g, &err)) return fprintf(stderr, "glimpse-gen: %s\n", err.msg), 1;
    printf("%s: %zu tensors\n", path, io_st_writer_count(g.w));
    io_st_writer_free(g.w);
    free(g.init);
    return 0;
}
