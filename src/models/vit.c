/* vit.c — ViT image towers of MobileCLIP2-B and -L-14.
 *
 * Reference: timm vision_transformer.py (VisionTransformer, Block, Attention, Mlp),
 * vision_transformer_hybrid.py (vit_base_mci_224's conv stem) and
 * ../shared/notes/mobileclip2.md §2.5; our PyTorch twin is tools/reference/mobileclip/vit.py.
 *
 * Every stem conv has stride == kernel (B: 4x4/s4, 2x2/s2, 2x2/s2; L-14: 14x14/s14), so each
 * is a patchify (gather k x k patches into rows) followed by one Linear over all patches of
 * all images: the stem runs on the GEMM like the blocks, in token layout, with the stem
 * BatchNorms folded into the conv weights at load. Only MobileCLIP v1 B pads (its first conv,
 * 1 pixel: Apple's ConvNormAct pads (k-1)/2), which shifts every patch one pixel up-left with
 * the same grid; the patchify reads zeros outside the image.
 *
 * What the weights cannot tell: LayerNorm eps. timm builds vit_base_mci_224 with its default
 * 1e-6 and the CLIP ViTs with 1e-5; we key it on the stem type (conv stem = B). Apple's v1 B
 * uses 1e-5 (layer_norm_fp32). */
#include "vit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define VIT_MAX_STEM 4
#define VIT_DEFAULT_HEAD_DIM 64
#define BN_EPS 1e-5
#define EPS_MCI 1e-6f  /* timm vit_base_mci_224 (LayerNorm default eps) */
#define EPS_CLIP 1e-5f /* timm vit_*_clip_* */

typedef struct vit_stem {
    float *w, *b;      /* [cout, cin*k*k] (BN folded), [cout] or NULL */
    int cin, cout, k, pad;
    kn_act act;
} vit_stem;

typedef struct vit_block {
    float *n1_w, *n1_b, *n2_w, *n2_b;
    wl_mat qkv_w, proj_w, fc1_w, fc2_w; /* [3w,w], [w,w], [h,w], [w,h] */
    float *qkv_b, *proj_b, *fc1_b, *fc2_b;
} vit_block;

struct vit_model {
    int conv_stem, n_stem, stride;
    vit_stem stem[VIT_MAX_STEM];
    int width, depth, n_head, head_dim, hidden, embed;
    int grid, n_patch, size;   /* grid x grid patches at size x size pixels */
    int pos_cls;               /* pos_embed covers the class token too (L-14) */
    float eps;
    float *cls, *pos;          /* [w], [n_patch (+1), w] */
    float *pre_w, *pre_b;      /* norm_pre (L-14) or NULL */
    vit_block *blocks;
    float *norm_w, *norm_b;
    wl_mat head_w;             /* [embed, w] */
    float *head_b;
    gl_blobs blobs;
};

/* One stem conv: weight [cout, cin, k, k] (+ BN -> folded, GELU) or (+ bias, no activation). */
static int load_stem_conv(wl *l, const char *p, int cin, vit_stem *s) {
    const gl_tensor *tw = wl_need(l, "%s.weight", p);
    if (!tw) return l->err->code;
    if (tw->ndim != 4 || tw->shape[1] != cin || tw->shape[2] != tw->shape[3] || tw->shape[2] < 1)
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: stem tensor '%s' must be [out, %d, k, k]", l->file, tw->name,
                          cin);
    s->cin = cin;
    s->cout = (int)tw->shape[0];
    s->k = (int)tw->shape[2];
    int64_t kk = (int64_t)cin * s->k * s->k;
    if (!(s->w = wl_f32(l, tw, s->cout * kk))) return l->err->code;
    const gl_tensor *tb = wl_find(l, "%s.bias", p);
    if (tb && !(s->b = wl_f32(l, tb, s->cout))) return l->err->code;
    return 0;
}

/* BN after a bias-free conv: w' = w * scale[o], b' = shift[o]; then GELU. */
static int fold_stem_bn(wl *l, const char *bn, vit_stem *s) {
    wl_bn v;
    if (wl_load_bn(l, bn, s->cout, BN_EPS, &v)) return l->err->code;
    if (!s->b && !(s->b = gl_blobs_alloc(l->blobs, sizeof(float) * (size_t)s->cout))) {
        wl_bn_free(&v);
        return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    }
    size_t kk = (size_t)s->cin * s->k * s->k;
    for (int o = 0; o < s->cout; o++) {
        for (size_t i = 0; i < kk; i++) s->w[o * kk + i] = (float)(s->w[o * kk + i] * v.scale[o]);
        s->b[o] = (float)(s->b[o] * v.scale[o] + v.shift[o]);
    }
    wl_bn_free(&v);
    s->act = KN_ACT_GELU;
    return 0;
}

/* timm names -> Apple's mobileclip/models/vit.py names (MobileCLIP v1 B, B-LT). */
static void apple_rename(const wl *l, const char *in, char *out, size_t n) {
    (void)l;
    static const char *const blk[][2] = {
        {"norm1.", "pre_norm_mha.0."},   {"attn.qkv.", "pre_norm_mha.1.qkv_proj."},
        {"attn.proj.", "pre_norm_mha.1.out_proj."}, {"norm2.", "pre_norm_ffn.0."},
        {"mlp.fc1.", "pre_norm_ffn.1."}, {"mlp.fc2.", "pre_norm_ffn.4."},
    };
    int i, off = 0;
    if (sscanf(in, "patch_embed.backbone.%d.%n", &i, &off) == 1 && off > 0) {
        const char *r = in + off; /* conv.* keeps its name, bn.* becomes norm.* */
        if (!strncmp(r, "bn.", 3)) snprintf(out, n, "patch_emb.%d.block.norm.%s", i, r + 3);
        else snprintf(out, n, "patch_emb.%d.block.%s", i, r);
        return;
    }
    if (sscanf(in, "blocks.%d.%n", &i, &off) == 1 && off > 0) {
        const char *r = in + off;
        for (size_t j = 0; j < GL_ARRAY_LEN(blk); j++) {
            size_t k = strlen(blk[j][0]);
            if (!strncmp(r, blk[j][0], k)) {
                snprintf(out, n, "transformer.%d.%s%s", i, blk[j][1], r + k);
                return;
            }
        }
        snprintf(out, n, "transformer.%d.%s", i, r); /* ls1 / q_norm: absent in Apple's files */
        return;
    }
    if (!strncmp(in, "norm.", 5)) snprintf(out, n, "post_transformer_norm.%s", in + 5);
    else if (!strcmp(in, "pos_embed")) snprintf(out, n, "pos_embed.pos_embed.pos_embed");
    else if (!strcmp(in, "head.weight")) snprintf(out, n, "classifier.proj"); /* [W, E], x @ P */
    else if (!strcmp(in, "head.bias")) snprintf(out, n, "classifier.bias");   /* never stored */
    else snprintf(out, n, "%s", in);
}

static int load_stem(wl *l, vit_model *m) {
    char p[96];
    int cin = 3;
    if (wl_find(l, "patch_embed.backbone.0.conv.weight")) {
        m->conv_stem = 1;
        while (m->n_stem < VIT_MAX_STEM && wl_find(l, "patch_embed.backbone.%d.conv.weight", m->n_stem)) {
            vit_stem *s = &m->stem[m->n_stem];
            snprintf(p, sizeof p, "patch_embed.backbone.%d.conv", m->n_stem);
            if (load_stem_conv(l, p, cin, s)) return l->err->code;
            snprintf(p, sizeof p, "patch_embed.backbone.%d.bn", m->n_stem);
            if (wl_find(l, "%s.running_mean", p) && fold_stem_bn(l, p, s)) return l->err->code;
            cin = s->cout;
            m->n_stem++;
        }
    } else {
        if (load_stem_conv(l, "patch_embed.proj", 3, &m->stem[0])) return l->err->code;
        m->n_stem = 1;
    }
    if (l->rename == apple_rename) /* ConvNormAct's default padding: 1 for the 4x4 conv, 0 for 2x2 */
        for (int i = 0; i < m->n_stem; i++) m->stem[i].pad = (m->stem[i].k - 1) / 2;
    m->stride = 1;
    for (int i = 0; i < m->n_stem; i++) m->stride *= m->stem[i].k;
    m->width = m->stem[m->n_stem - 1].cout;
    return 0;
}

static int isqrt_exact(int64_t v) {
    int64_t r = (int64_t)llround(sqrt((double)v));
    return r * r == v ? (int)r : -1;
}

static int load_block(wl *l, int i, vit_block *b, int W, int Hd) {
    const char *r = "blocks";
    if (wl_find(l, "%s.%d.ls1.gamma", r, i) || wl_find(l, "%s.%d.attn.q_norm.weight", r, i))
        return gl_err_set(l->err, GLIMPSE_ERR_UNSUPPORTED, "%s: ViT block %d has layer scale / qk-norm (not a MobileCLIP2 "
                                                           "tower)", l->file, i);
    b->n1_w = wl_f32(l, wl_need(l, "%s.%d.norm1.weight", r, i), W);
    b->n1_b = wl_f32(l, wl_need(l, "%s.%d.norm1.bias", r, i), W);
    b->n2_w = wl_f32(l, wl_need(l, "%s.%d.norm2.weight", r, i), W);
    b->n2_b = wl_f32(l, wl_need(l, "%s.%d.norm2.bias", r, i), W);
    b->proj_b = wl_f32(l, wl_need(l, "%s.%d.attn.proj.bias", r, i), W);
    b->fc1_b = wl_f32(l, wl_need(l, "%s.%d.mlp.fc1.bias", r, i), Hd);
    b->fc2_b = wl_f32(l, wl_need(l, "%s.%d.mlp.fc2.bias", r, i), W);
    if (!b->n1_w || !b->n1_b || !b->n2_w || !b->n2_b || !b->proj_b || !b->fc1_b || !b->fc2_b) return l->err->code;
    const gl_tensor *tqb = wl_find(l, "%s.%d.attn.qkv.bias", r, i); /* qkv_bias=True in both towers */
    if (tqb && !(b->qkv_b = wl_f32(l, tqb, 3 * W))) return l->err->code;
    if (wl_matrix(l, wl_need(l, "%s.%d.attn.qkv.weight", r, i), 3 * W, W, &b->qkv_w) ||
        wl_matrix(l, wl_need(l, "%s.%d.attn.proj.weight", r, i), W, W, &b->proj_w) ||
        wl_matrix(l, wl_need(l, "%s.%d.mlp.fc1.weight", r, i), Hd, W, &b->fc1_w) ||
        wl_matrix(l, wl_need(l, "%s.%d.mlp.fc2.weight", r, i), W, Hd, &b->fc2_w))
        return l->err->code;
    return 0;
}

/* Apple's LearnablePositionalEmbedding at another patch count: F.interpolate(bilinear,
 * align_corners=False) of the [1, 1, R, W] table to [1, 1, n, W], i.e. linear along the
 * flattened sequence (not over the 2-D grid), with PyTorch's source index (i + 0.5) R/n - 0.5
 * clamped at 0, in float like PyTorch's CPU kernel. */
static void resample_rows(const float *src, int R, int W, int n, float *dst) {
    float scale = (float)R / (float)n;
    for (int i = 0; i < n; i++) {
        float x = scale * ((float)i + 0.5f) - 0.5f;
        if (x < 0) x = 0;
        int i0 = (int)x, i1 = i0 + (i0 < R - 1);
        float l1 = x - (float)i0, l0 = 1.0f - l1;
        for (int c = 0; c < W; c++) dst[(size_t)i * W + c] = l0 * src[(size_t)i0 * W + c] + l1 * src[(size_t)i1 * W + c];
    }
}

/* Apple's head: classifier.proj [W, E] used as x @ P -> [E, W] rows for op_linear. */
static int load_apple_head(wl *l, vit_model *m, const gl_tensor *t) {
    int W = m->width;
    if (t->ndim != 2 || t->shape[0] != W || t->shape[1] < 1) {
        char s[96];
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: '%s' has shape %s; expected [%d, embed]", l->file, t->name,
                          gl_tensor_shape_str(t, s, sizeof s), W);
    }
    m->embed = (int)t->shape[1];
    float *p = wl_f32(l, t, (int64_t)W * m->embed), *q = gl_blobs_alloc(l->blobs, sizeof(float) * (size_t)W * m->embed);
    if (!p) return l->err->code;
    if (!q) return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    for (int c = 0; c < W; c++)
        for (int e = 0; e < m->embed; e++) q[(size_t)e * W + c] = p[(size_t)c * m->embed + e];
    m->head_w = (wl_mat){.data = q, .type = GL_F32, .rows = m->embed, .cols = W};
    return 0;
}

int vit_load(const gl_weights *w, const char *prefix, const char *file, int n_head, vit_model **out, gl_err *err) {
    return vit_load_ex(w, prefix, file, VIT_NAMES_TIMM, n_head, 0, out, err);
}

int vit_load_ex(const gl_weights *w, const char *prefix, const char *file, int names, int n_head, int image_size,
                vit_model **out, gl_err *err) {
    vit_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    wl l = {.w = w, .blobs = &m->blobs, .err = err, .file = file ? file : "model"};
    snprintf(l.prefix, sizeof l.prefix, "%s", prefix);
    int apple = names == VIT_NAMES_APPLE;
    if (apple) l.rename = apple_rename;
    if (load_stem(&l, m)) goto fail;
    if (apple && !m->conv_stem) {
        wl_need(&l, "patch_embed.backbone.0.conv.weight");
        goto fail;
    }
    int W = m->width;
    m->eps = apple ? EPS_CLIP : m->conv_stem ? EPS_MCI : EPS_CLIP;
    const gl_tensor *tc = wl_need(&l, "cls_token"), *tp = wl_need(&l, "pos_embed");
    if (!tc || !tp) goto fail;
    int64_t L = tp->ndim == 3 && tp->shape[0] == 1 && tp->shape[2] == W ? tp->shape[1] : -1;
    if (apple) /* [1, 1, R, W], patches only */
        L = tp->ndim == 4 && tp->shape[0] == 1 && tp->shape[1] == 1 && tp->shape[3] == W ? tp->shape[2] : -1;
    if (apple && L > 0 && image_size <= 0 && isqrt_exact(L) > 0) {
        m->grid = isqrt_exact(L); /* the table's own grid (14x14 released) */
    } else if (apple && L > 0 && image_size > 0) {
        m->grid = image_size / m->stride;
        if (m->grid < 1 || image_size % m->stride) {
            gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image size %d is not a multiple of the ViT stride %d", l.file,
                       image_size, m->stride);
            goto fail;
        }
    } else if (!apple && L > 0 && isqrt_exact(L) > 0) {
        /* pos_embed rows: grid² (patches only: B) or grid² + 1 (class token included: L-14) */
        m->grid = isqrt_exact(L);
    } else if (!apple && L > 1 && isqrt_exact(L - 1) > 0) {
        m->grid = isqrt_exact(L - 1);
        m->pos_cls = 1;
    } else {
        char s[96];
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: '%s' has shape %s; expected %s%d]", l.file, tp->name,
                   gl_tensor_shape_str(tp, s, sizeof s), apple ? "[1, 1, rows, " : "[1, grid² (+1), ", W);
        goto fail;
    }
    m->n_patch = m->grid * m->grid;
    m->size = m->grid * m->stride;
    if (!apple && image_size > 0 && image_size != m->size) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image size %d does not fit pos_embed (%d px)", l.file, image_size,
                   m->size);
        goto fail;
    }
    if (!(m->cls = wl_f32(&l, tc, W)) || !(m->pos = wl_f32(&l, tp, L * W))) goto fail;
    if (apple && L != m->n_patch) {
        float *p = gl_blobs_alloc(&m->blobs, sizeof(float) * (size_t)m->n_patch * W);
        if (!p) goto oom;
        resample_rows(m->pos, (int)L, W, m->n_patch, p);
        m->pos = p;
    }
    if (wl_find(&l, "norm_pre.weight")) {
        m->pre_w = wl_f32(&l, wl_need(&l, "norm_pre.weight"), W);
        m->pre_b = wl_f32(&l, wl_need(&l, "norm_pre.bias"), W);
        if (!m->pre_w || !m->pre_b) goto fail;
    }
    while (wl_find(&l, "blocks.%d.norm1.weight", m->depth)) m->depth++;
    if (!m->depth) {
        wl_need(&l, "blocks.0.norm1.weight");
        goto fail;
    }
    const gl_tensor *tf = wl_need(&l, "blocks.0.mlp.fc1.weight");
    if (!tf) goto fail;
    m->hidden = (int)tf->shape[0];
    m->n_head = n_head > 0 ? n_head : W / VIT_DEFAULT_HEAD_DIM;
    if (m->n_head < 1 || W % m->n_head) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: ViT width %d does not split into %d heads", l.file, W, m->n_head);
        goto fail;
    }
    m->head_dim = W / m->n_head;
    if (!(m->blocks = gl_blobs_alloc(&m->blobs, sizeof(vit_block) * (size_t)m->depth))) goto oom;
    for (int i = 0; i < m->depth; i++)
        if (load_block(&l, i, &m->blocks[i], W, m->hidden)) goto fail;
    m->norm_w = wl_f32(&l, wl_need(&l, "norm.weight"), W);
    m->norm_b = wl_f32(&l, wl_need(&l, "norm.bias"), W);
    const gl_tensor *th = wl_need(&l, "head.weight");
    if (!m->norm_w || !m->norm_b || !th) goto fail;
    if (apple) { /* bias-free x @ P */
        if (load_apple_head(&l, m, th)) goto fail;
        *out = m;
        return 0;
    }
    m->embed = (int)th->shape[0];
    if (wl_matrix(&l, th, m->embed, W, &m->head_w)) goto fail;
    if (!(m->head_b = wl_f32(&l, wl_need(&l, "head.bias"), m->embed))) goto fail;
    *out = m;
    return 0;
oom:
    gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
fail:
    vit_free(m);
    return err->code ? err->code : GLIMPSE_ERR_INTERNAL;
}

void vit_free(vit_model *m) {
    if (!m) return;
    gl_blobs_free(&m->blobs);
    gl_free(m);
}

int vit_embed_dim(const vit_model *m) { return m->embed; }
int vit_image_size(const vit_model *m) { return m->size; }
int vit_has_conv_stem(const vit_model *m) { return m->conv_stem; }
int vit_width(const vit_model *m) { return m->width; }
int vit_n_head(const vit_model *m) { return m->n_head; }
int vit_n_patch(const vit_model *m) { return m->n_patch; }

void vit_describe(const vit_model *m, char *buf, size_t n) {
    snprintf(buf, n, "ViT (%s, stride %d): %d blocks, width %d, %d heads, MLP %d, %dx%d patches at %d px, embed %d",
             m->conv_stem ? "conv stem" : "patch conv", m->stride, m->depth, m->width, m->n_head, m->hidden, m->grid,
             m->grid, m->size, m->embed);
}

/* ---- forward ---- */

/* Gather/stem buffer sizes for n images: the patch rows (A) and the stem outputs (B). */
static void stem_sizes(const vit_model *m, int n, size_t *a, size_t *b) {
    size_t g = (size_t)m->size;
    *a = *b = 0;
    for (int i = 0; i < m->n_stem; i++) {
        const vit_stem *s = &m->stem[i];
        *a = GL_MAX(*a, (size_t)n * s->cin * g * g); /* (g/k)² rows of cin·k² */
        g /= (size_t)s->k;
        *b = GL_MAX(*b, (size_t)n * s->cout * g * g);
    }
}

size_t vit_ws_floats(const vit_model *m, int n_img) {
    size_t T = (size_t)n_img * (m->n_patch + 1), W = (size_t)m->width, a, b;
    stem_sizes(m, n_img, &a, &b);
    /* x | h | qkv | mlp hidden; the stem (run first) reuses everything after x */
    return T * W + GL_MAX(T * (4 * W + (size_t)m->hidden), a + b) + 64;
}

/* Rows of k x k patches: element (c, y, x) of image i is src[i*is + c*cs + y*rs + x*ps]; the
 * output has (g/k)² rows per image (row-major patch grid), columns ordered (c, ky, kx) like a
 * PyTorch conv weight [out, c, ky, kx]. pad > 0 shifts the patches pad pixels up-left, reading
 * zeros outside the image (a stride-k conv with padding pad; the grid stays g/k as long as
 * 2 pad < k, which the callers ensure). */
static void patchify(const float *src, int n, size_t is, size_t cs, size_t rs, size_t ps, int C, int g, int k, int pad,
                     float *dst) {
    int go = g / k;
    for (int i = 0; i < n; i++)
        for (int py = 0; py < go; py++)
            for (int px = 0; px < go; px++)
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < k; ky++) {
                        int y = py * k + ky - pad, x0 = px * k - pad;
                        if (y < 0 || y >= g) {
                            for (int kx = 0; kx < k; kx++) *dst++ = 0.0f;
                            continue;
                        }
                        const float *s = src + i * is + c * cs + (size_t)y * rs;
                        for (int kx = 0; kx < k; kx++) {
                            int x = x0 + kx;
                            *dst++ = x >= 0 && x < g ? s[(size_t)x * ps] : 0.0f;
                        }
                    }
}

/* Stem of n images into tok [n * n_patch, W]. a: patch-row scratch. */
static void run_stem(const vit_model *m, const kn_env *env, const float *x, int n, float *a, float *tok) {
    int g = m->size;
    const float *src = x;
    size_t is = 3 * (size_t)g * g, cs = (size_t)g * g, rs = (size_t)g, ps = 1; /* CHW pixels */
    for (int i = 0; i < m->n_stem; i++) {
        const vit_stem *s = &m->stem[i];
        patchify(src, n, is, cs, rs, ps, s->cin, g, s->k, s->pad, a);
        g /= s->k;
        int rows = n * g * g, K = s->cin * s->k * s->k;
        op_linear(env, a, rows, K, s->w, GL_F32, s->b, s->cout, tok, s->act, 0);
        /* the output is a token grid (HWC) per image */
        src = tok;
        is = (size_t)g * g * s->cout, cs = 1, rs = (size_t)g * s->cout, ps = (size_t)s->cout;
    }
}

int vit_forward(const vit_model *m, const kn_env *env, const float *x, int n_img, float *emb, float *ws,
                const vit_taps *taps, gl_err *err) {
    if (n_img < 1) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "ViT: batch of %d images", n_img);
    const int W = m->width, N = m->n_patch, T = N + 1, nT = n_img * T;
    float *xs = ws, *h = xs + (size_t)nT * W, *qkv = h + (size_t)nT * W, *big = qkv + (size_t)nT * 3 * W;
    size_t sa, sb;
    stem_sizes(m, n_img, &sa, &sb);
    float *tok = h + sa; /* stem scratch: patch rows at h, tokens after them */
    run_stem(m, env, x, n_img, h, tok);
    if (taps && taps->stem) memcpy(taps->stem, tok, sizeof(float) * (size_t)n_img * N * W);
    /* [cls, patches] + pos: B adds pos to the patches only, L-14 to the class token too */
    const float *pp = m->pos + (m->pos_cls ? W : 0);
    for (int i = 0; i < n_img; i++) {
        float *xi = xs + (size_t)i * T * W;
        for (int c = 0; c < W; c++) xi[c] = m->cls[c] + (m->pos_cls ? m->pos[c] : 0.0f);
        for (int t = 0; t < N; t++) {
            const float *s = tok + ((size_t)i * N + t) * W, *p = pp + (size_t)t * W;
            float *d = xi + (size_t)(t + 1) * W;
            for (int c = 0; c < W; c++) d[c] = s[c] + p[c];
        }
    }
    if (m->pre_w) op_layernorm(env, xs, nT, W, m->pre_w, m->pre_b, m->eps, xs);
    for (int bi = 0; bi < m->depth; bi++) {
        const vit_block *b = &m->blocks[bi];
        op_layernorm(env, xs, nT, W, b->n1_w, b->n1_b, m->eps, h);
        op_linear(env, h, nT, W, b->qkv_w.data, b->qkv_w.type, b->qkv_b, 3 * W, qkv, KN_ACT_NONE, 0);
        for (int i = 0; i < n_img; i++) {
            int rc = op_attention(env, qkv + (size_t)i * T * 3 * W, T, m->n_head, m->head_dim, 0, h + (size_t)i * T * W);
            if (rc) return gl_err_set(err, rc, "ViT: attention failed (%d tokens)", T);
        }
        op_linear(env, h, nT, W, b->proj_w.data, b->proj_w.type, b->proj_b, W, xs, KN_ACT_NONE, 1);
        op_layernorm(env, xs, nT, W, b->n2_w, b->n2_b, m->eps, h);
        op_linear(env, h, nT, W, b->fc1_w.data, b->fc1_w.type, b->fc1_b, m->hidden, big, KN_ACT_GELU, 0);
        op_linear(env, big, nT, m->hidden, b->fc2_w.data, b->fc2_w.type, b->fc2_b, W, xs, KN_ACT_NONE, 1);
        if (bi == 0 && taps && taps->block0) memcpy(taps->block0, xs, sizeof(float) * (size_t)nT * W);
    }
    if (taps && taps->final_norm) op_layernorm(env, xs, nT, W, m->norm_w, m->norm_b, m->eps, taps->final_norm);
    /* only the class tokens are pooled: normalise just those rows */
    for (int i = 0; i < n_img; i++)
        op_layernorm(env, xs + (size_t)i * T * W, 1, W, m->norm_w, m->norm_b, m->eps, h + (size_t)i * W);
    op_linear(env, h, n_img, W, m->head_w.data, m->head_w.type, m->head_b, m->embed, emb, KN_ACT_NONE, 0);
    return 0;
}
