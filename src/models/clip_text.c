/* clip_text.c — CLIP text tower. Reference: open_clip transformer.py (TextTransformer,
 * ResidualAttentionBlock) and ../shared/notes/mobileclip2.md §3.1. All positions are computed
 * (no padding mask: bidirectional models attend to the 0-padding too). */
#include "clip_text.h"

#include "kernels/nn.h"
#include "kernels/qgemm.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define LN_EPS 1e-5f
#define DEFAULT_HEAD_DIM 64 /* open_clip: heads = width // 64 unless configured */

typedef struct clipt_layer {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    wl_mat in_w, out_w, fc_w, proj_w;   /* [3w,w], [w,w], [4w,w], [w,4w] */
    /* The same packed for the GEMM, once (see pack_state; p == NULL: quantized or not packed,
     * used as stored). With 77 rows per sequence, packing on every call costs ~8% of the time. */
    kn_packed_b in_p, out_p, fc_p, proj_p;
    kn_qpacked in_q, out_q, fc_q, proj_q; /* Q8_0/Q4_0 matrices packed for the AVX512-VNNI GEMM */
    float *in_b, *out_b, *fc_b, *proj_b;
} clipt_layer;

struct clipt_model {
    int width, n_layer, n_head, head_dim, ctx, vocab, hidden, embed, causal;
    wl_mat tok;                 /* [vocab, w] */
    float *pos;                 /* [ctx, w] */
    clipt_layer *layers;
    float *lnf_w, *lnf_b;
    float *proj;                /* [w, embed], used as x·P */
    gl_blobs blobs;
    /* Weights are packed at the second forward, not at load: packing is ~150 MB of fresh memory
     * for S0 in f32, whose page clearing costs a one-shot CLI query (one text, then exit) more
     * (~+160 ms measured) than packing per call does. The model is shared read-only by
     * contexts, so: the call that moves pack_state from 1 to 2 packs while others keep using
     * the stored matrices, and the *_p fields are read only after seeing 3 (acquire). */
    atomic_int pack_state;      /* 0 never run, 1 run once, 2 packing, 3 packed (or given up) */
};

/* ---- Apple's MobileCLIP v1 names (mobileclip/text_encoder.py, modules/common/transformer.py) ----
 * The loader asks for OpenCLIP names; this maps them. pre_norm_mha = [LN, MHA, Dropout] and
 * pre_norm_ffn = [LN, Linear, GELU, Dropout, Linear, Dropout], hence the indices 0, 1 and 0, 1, 4. */
static void apple_rename(const wl *l, const char *in, char *out, size_t n) {
    static const char *const rules[][2] = {
        {"ln_1.", "pre_norm_mha.0."},           {"attn.in_proj_weight", "pre_norm_mha.1.qkv_proj.weight"},
        {"attn.in_proj_bias", "pre_norm_mha.1.qkv_proj.bias"}, {"attn.out_proj.", "pre_norm_mha.1.out_proj."},
        {"ln_2.", "pre_norm_ffn.0."},           {"mlp.c_fc.", "pre_norm_ffn.1."},
        {"mlp.c_proj.", "pre_norm_ffn.4."},
    };
    int first = *(const int *)l->rename_ctx, i, off = 0;
    if (sscanf(in, "transformer.resblocks.%d.%n", &i, &off) == 1 && off > 0) {
        const char *r = in + off;
        for (size_t k = 0; k < GL_ARRAY_LEN(rules); k++) {
            size_t fl = strlen(rules[k][0]);
            if (!strncmp(r, rules[k][0], fl)) {
                snprintf(out, n, "transformer.%d.%s%s", first + i, rules[k][1], r + fl);
                return;
            }
        }
        snprintf(out, n, "transformer.%d.%s", first + i, r);
    } else if (!strcmp(in, "token_embedding.weight")) {
        snprintf(out, n, "embedding_layer.weight");
    } else if (!strcmp(in, "positional_embedding")) {
        snprintf(out, n, "positional_embedding.pos_embed.pos_embed");
    } else if (!strncmp(in, "ln_final.", 9)) {
        snprintf(out, n, "final_layer_norm.%s", in + 9);
    } else if (!strcmp(in, "text_projection")) {
        snprintf(out, n, "projection_layer");
    } else {
        snprintf(out, n, "%s", in);
    }
}

int clipt_load(const gl_weights *w, const char *prefix, const char *file, int causal, int n_head, clipt_model **out,
               gl_err *err) {
    return clipt_load_ex(w, prefix, file, CLIPT_NAMES_OPENCLIP, 0, causal, n_head, out, err);
}

int clipt_load_ex(const gl_weights *w, const char *prefix, const char *file, int names, int first, int causal,
                  int n_head, clipt_model **out, gl_err *err) {
    clipt_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    wl l = {.w = w, .blobs = &m->blobs, .err = err, .file = file ? file : "model"};
    snprintf(l.prefix, sizeof l.prefix, "%s", prefix);
    if (names == CLIPT_NAMES_APPLE) {
        l.rename = apple_rename;
        l.rename_ctx = &first;
    }
    m->causal = causal;
    atomic_init(&m->pack_state, 0);
    const gl_tensor *te = wl_need(&l, "token_embedding.weight"), *tp = wl_need(&l, "positional_embedding");
    if (!te || !tp) goto fail;
    /* OpenCLIP stores [ctx, w]; Apple [1, 1, ctx, w] */
    int pos_ok = tp->ndim >= 2 && te->ndim == 2 && tp->shape[tp->ndim - 1] == te->shape[1];
    for (int d = 0; pos_ok && d + 2 < tp->ndim; d++) pos_ok = tp->shape[d] == 1;
    if (!pos_ok) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: token/positional embedding shapes disagree", l.file);
        goto fail;
    }
    m->vocab = (int)te->shape[0];
    m->width = (int)te->shape[1];
    m->ctx = (int)tp->shape[tp->ndim - 2];
    m->n_head = n_head > 0 ? n_head : m->width / DEFAULT_HEAD_DIM;
    if (m->n_head < 1 || m->width % m->n_head) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: text width %d does not split into %d heads", l.file, m->width, m->n_head);
        goto fail;
    }
    m->head_dim = m->width / m->n_head;
    if (wl_matrix(&l, te, m->vocab, m->width, &m->tok)) goto fail;
    if (!(m->pos = wl_f32(&l, tp, (int64_t)m->ctx * m->width))) goto fail;
    while (wl_find(&l, "transformer.resblocks.%d.ln_1.weight", m->n_layer)) m->n_layer++;
    if (!m->n_layer) {
        wl_need(&l, "transformer.resblocks.0.ln_1.weight");
        goto fail;
    }
    const gl_tensor *tfc = wl_need(&l, "transformer.resblocks.0.mlp.c_fc.weight");
    if (!tfc) goto fail;
    m->hidden = (int)tfc->shape[0];
    m->layers = gl_blobs_alloc(&m->blobs, sizeof(clipt_layer) * (size_t)m->n_layer);
    if (!m->layers) goto oom;
    int W = m->width, Hd = m->hidden;
    for (int i = 0; i < m->n_layer; i++) {
        clipt_layer *L = &m->layers[i];
        const char *r = "transformer.resblocks";
        L->ln1_w = wl_f32(&l, wl_need(&l, "%s.%d.ln_1.weight", r, i), W);
        L->ln1_b = wl_f32(&l, wl_need(&l, "%s.%d.ln_1.bias", r, i), W);
        L->ln2_w = wl_f32(&l, wl_need(&l, "%s.%d.ln_2.weight", r, i), W);
        L->ln2_b = wl_f32(&l, wl_need(&l, "%s.%d.ln_2.bias", r, i), W);
        L->in_b = wl_f32(&l, wl_need(&l, "%s.%d.attn.in_proj_bias", r, i), 3 * W);
        L->out_b = wl_f32(&l, wl_need(&l, "%s.%d.attn.out_proj.bias", r, i), W);
        L->fc_b = wl_f32(&l, wl_need(&l, "%s.%d.mlp.c_fc.bias", r, i), Hd);
        L->proj_b = wl_f32(&l, wl_need(&l, "%s.%d.mlp.c_proj.bias", r, i), W);
        if (!L->ln1_w || !L->ln1_b || !L->ln2_w || !L->ln2_b || !L->in_b || !L->out_b || !L->fc_b || !L->proj_b) goto fail;
        if (wl_matrix(&l, wl_need(&l, "%s.%d.attn.in_proj_weight", r, i), 3 * W, W, &L->in_w) ||
            wl_matrix(&l, wl_need(&l, "%s.%d.attn.out_proj.weight", r, i), W, W, &L->out_w) ||
            wl_matrix(&l, wl_need(&l, "%s.%d.mlp.c_fc.weight", r, i), Hd, W, &L->fc_w) ||
            wl_matrix(&l, wl_need(&l, "%s.%d.mlp.c_proj.weight", r, i), W, Hd, &L->proj_w))
            goto fail;
    }
    m->lnf_w = wl_f32(&l, wl_need(&l, "ln_final.weight"), W);
    m->lnf_b = wl_f32(&l, wl_need(&l, "ln_final.bias"), W);
    const gl_tensor *tpr = wl_need(&l, "text_projection");
    if (!m->lnf_w || !m->lnf_b || !tpr) goto fail;
    if (tpr->ndim != 2 || tpr->shape[0] != W) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: text_projection must be [%d, embed]", l.file, W);
        goto fail;
    }
    m->embed = (int)tpr->shape[1];
    if (!(m->proj = wl_f32(&l, tpr, (int64_t)W * m->embed))) goto fail;
    *out = m;
    return 0;
oom:
    gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
fail:
    clipt_free(m);
    return err->code ? err->code : GLIMPSE_ERR_INTERNAL;
}

void clipt_free(clipt_model *m) {
    if (!m) return;
    gl_blobs_free(&m->blobs);
    gl_free(m);
}

int clipt_embed_dim(const clipt_model *m) { return m->embed; }
int clipt_width(const clipt_model *m) { return m->width; }
int clipt_n_layer(const clipt_model *m) { return m->n_layer; }
int clipt_context(const clipt_model *m) { return m->ctx; }
int clipt_n_head(const clipt_model *m) { return m->n_head; }
int clipt_causal(const clipt_model *m) { return m->causal; }
int clipt_vocab(const clipt_model *m) { return m->vocab; }

/* Per-thread scratch floats of the fused layers for T positions: one head's attention, the LN
 * row statistics [T][2], kn_qpanel's accumulators [T][32]; multiples of 16 (64-byte aligned). */
static size_t fused_per(const clipt_model *m, int T) {
    return (kn_attention_ws_floats_max(m->ctx, m->head_dim, 1) + 15) / 16 * 16 + (size_t)T * 34;
}

size_t clipt_ws_floats(const clipt_model *m, int n_seq, int n_threads) {
    size_t T = (size_t)n_seq * m->ctx;
    /* + alignment slack and the fused layers' per-thread scratch (fused_per) */
    return T * (size_t)(5 * m->width + GL_MAX(m->hidden, m->width)) + (size_t)m->width + 64 + 256 +
           (size_t)GL_MAX(n_threads, 1) * fused_per(m, (int)T);
}

static void embed_rows(const clipt_model *m, const int32_t *ids, int T, float *x) {
    const gl_tensor tv = {.dtype = m->tok.type, .ndim = 2, .shape = {m->vocab, m->width}, .data = m->tok.data};
    gl_err e = {0};
    gl_tensor_rows_to_f32(&tv, ids, T, x, &e); /* types wl_matrix accepted: cannot fail */
    for (int t = 0; t < T; t++) {
        const float *p = m->pos + (size_t)(t % m->ctx) * m->width;
        for (int i = 0; i < m->width; i++) x[(size_t)t * m->width + i] += p[i];
    }
}

int clipt_embed(const clipt_model *m, const int32_t *ids, int n_seq, float *ws, gl_err *err) {
    int T = n_seq * m->ctx;
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->vocab)
            return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "token id %d out of range [0, %d)", ids[t], m->vocab);
    embed_rows(m, ids, T, ws);
    return 0;
}

/* ---- packing the Linear weights (see clipt_model.pack_state) ---- */

typedef struct pack_job { /* (on the heap: ~8 KB) */
    const wl_mat *src[4 * 64];
    kn_packed_b *dst[4 * 64];
    kn_qpacked *dstq[4 * 64]; /* set instead of dst for quantized matrices */
    void *buf[4 * 64];
    int n;
    kn_env env; /* the forward's ISA, without its pool */
    atomic_int next;
} pack_job;

static void pack_task(void *v, int ith, int nth) {
    pack_job *j = v;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        const wl_mat *w = j->src[i];
#if defined(__x86_64__)
        if (j->dstq[i]) {
            kn_qpack_avx512vnni(w->data, w->type, w->rows, w->cols, 0, j->buf[i], j->dstq[i]);
            continue;
        }
#endif
        kn_gemm_args a = {0};
        a.K = w->cols, a.N = w->rows, a.B = w->data, a.ldb = a.K;
        a.b_type = w->type, a.trans_b = 1;
        kn_gemm_pack_b(&j->env, &a, j->buf[i], j->dst[i]);
    }
    (void)ith, (void)nth;
}

/* F32/F16/BF16 matrices packed for env's f32 GEMM, Q8_0/Q4_0 ones for its AVX512-VNNI int8
 * GEMM (other ISAs read them as stored), on env's threads (the buffers are allocated first:
 * the blob list is not thread-safe). Out of memory: the rest stays unpacked. */
static void pack_weights(clipt_model *m, const kn_env *env) {
    pack_job *jp = gl_calloc(1, sizeof *jp);
    if (!jp) return;
    jp->env = *env;
    jp->env.pool = NULL;
    int vnni = 0;
#if defined(__x86_64__)
    vnni = gl_cpu_has_avx512vnni(&env->cpu);
#endif
    for (int i = 0; i < m->n_layer; i++) {
        clipt_layer *L = &m->layers[i];
        const wl_mat *w[4] = {&L->in_w, &L->out_w, &L->fc_w, &L->proj_w};
        kn_packed_b *p[4] = {&L->in_p, &L->out_p, &L->fc_p, &L->proj_p};
        kn_qpacked *q[4] = {&L->in_q, &L->out_q, &L->fc_q, &L->proj_q};
        for (int k = 0; k < 4; k++) {
            int quant = w[k]->type == GL_Q8_0 || w[k]->type == GL_Q4_0;
            if (quant ? !vnni : w[k]->type != GL_F32 && w[k]->type != GL_F16 && w[k]->type != GL_BF16) continue;
            if (jp->n == (int)GL_ARRAY_LEN(jp->src)) break;
            size_t bytes = quant ? 0 : kn_gemm_packed_b_floats(&jp->env, w[k]->cols, w[k]->rows) * sizeof(float);
#if defined(__x86_64__)
            if (quant) bytes = kn_qpacked_bytes(w[k]->rows, w[k]->cols, 0);
#endif
            void *d = gl_blobs_alloc_raw(&m->blobs, bytes);
            if (!d) goto run;
            jp->src[jp->n] = w[k], jp->buf[jp->n] = d;
            if (quant) jp->dstq[jp->n] = q[k];
            else jp->dst[jp->n] = p[k];
            jp->n++;
        }
    }
run:
    atomic_init(&jp->next, 0);
    gl_pool_run(env->pool, pack_task, jp);
    gl_free(jp);
}

/* 1: the layers' *_p may be used. The second call packs. */
static int use_packed(const clipt_model *cm, const kn_env *env) {
    clipt_model *m = (clipt_model *)cm; /* pack_state is the model's only mutable field */
    int st = atomic_load_explicit(&m->pack_state, memory_order_acquire);
    if (st == 3) return 1;
    if (st == 0) {
        int z = 0;
        atomic_compare_exchange_strong(&m->pack_state, &z, 1);
        return 0;
    }
    int one = 1;
    if (st != 1 || !atomic_compare_exchange_strong(&m->pack_state, &one, 2)) return 0;
    pack_weights(m, env);
    atomic_store_explicit(&m->pack_state, 3, memory_order_release);
    return 1;
}

/* y (+)= act(x · W^T + b) through the packed copy when there is one (the GEMV path for a few
 * rows streams the stored matrix instead). */
static void linear(const kn_env *env, const float *x, int T, const wl_mat *w, const kn_packed_b *wp,
                   const kn_qpacked *wq, int packed, const float *b, float *y, kn_act act, int accumulate) {
    if (packed && wp->p && T > KN_GEMV_MAX_M) op_linear_p(env, x, T, wp, b, y, act, accumulate);
    else op_linear_q(env, x, T, (int)w->cols, w->data, w->type, packed ? wq : NULL, b, (int)w->rows, y, act, accumulate);
}

/* One layer on all T positions: x [T, W] in place; h [T, W], qkv [T, 3W], big [T, hidden]
 * scratch (the workspace's first regions). */
/* Attention of one layer on all T positions: h = attn(ln1(x)) per sequence (qkv as scratch). */
static void attend(const clipt_model *m, const clipt_layer *L, const kn_env *env, int n_seq, int pk, float *x, float *h,
                   float *qkv) {
    int W = m->width, T = n_seq * m->ctx;
    op_layernorm(env, x, T, W, L->ln1_w, L->ln1_b, LN_EPS, h);
    linear(env, h, T, &L->in_w, &L->in_p, &L->in_q, pk, L->in_b, qkv, KN_ACT_NONE, 0);
    for (int s = 0; s < n_seq; s++)
        op_attention(env, qkv + (size_t)s * m->ctx * 3 * W, m->ctx, m->n_head, m->head_dim, m->causal,
                     h + (size_t)s * m->ctx * W);
}

static void layer_all(const clipt_model *m, const clipt_layer *L, const kn_env *env, int n_seq, int pk, float *ws) {
    int W = m->width, T = n_seq * m->ctx;
    float *x = ws, *h = x + (size_t)T * W, *qkv = h + (size_t)T * W, *big = qkv + (size_t)T * 3 * W;
    attend(m, L, env, n_seq, pk, x, h, qkv);
    linear(env, h, T, &L->out_w, &L->out_p, &L->out_q, pk, L->out_b, x, KN_ACT_NONE, 1);
    op_layernorm(env, x, T, W, L->ln2_w, L->ln2_b, LN_EPS, h);
    linear(env, h, T, &L->fc_w, &L->fc_p, &L->fc_q, pk, L->fc_b, big, KN_ACT_GELU, 0);
    linear(env, big, T, &L->proj_w, &L->proj_p, &L->proj_q, pk, L->proj_b, x, KN_ACT_NONE, 1);
}

/* ---- fused layers (AVX512-VNNI, Q8_0/Q4_0 weights packed) ----
 * The layer as 6 pool runs in which each thread keeps to its own columns: the output panels
 * of the residual-stream products (out, proj) and the LN blocks after them are owned by
 * column, those of the q/k/v product and attention by head, and a product's outputs are
 * quantized for the next one, and LayerNorm partials taken, by the thread that computed them
 * (kn_qpanel_avx512vnni). On the build VM a cache line moving between the two cores costs
 * ~260 ns; the unfused layer moved ~1 MB per layer that way (every op re-split the rows or
 * columns), this one ~140 KB of int8 activations. Threads still help each other when one
 * falls behind (gl_owned). */
#if defined(__x86_64__)
enum { F_STATS, F_LN1, F_LN2, F_QKV, F_OUT, F_FC, F_PROJ };

typedef struct fjob {
    const clipt_model *m;
    const clipt_layer *L;
    gl_cpu cpu;
    int n_seq, T, phase;
    float *x, *h, *qkv;          /* residual stream, attention output, q/k/v: f32 */
    uint8_t *au, *bu, *cu;       /* q8 rows: LN output [T, W], attention output [T, W], MLP hidden [T, 4W] */
    float *ad, *bd, *cd;         /* their scales, by block: [K/32][T] */
    float *st;                   /* LN partials of x, by block: [W/32][T][2] */
    float *per;                  /* per task, fused_per floats: attention scratch, then mr, acc */
    size_t n_per, attn_per;
    gl_owned own;
} fjob;

static uint8_t *carve(uint8_t **p, size_t bytes) {
    uint8_t *r = (uint8_t *)(((uintptr_t)*p + 63) & ~(uintptr_t)63);
    *p = r + bytes;
    return r;
}

/* Item i of the q/k/v product -> its panel, head-major: a head's q, k and v panels are one
 * owner's (the one that runs the head's attention). */
static int64_t qkv_panel(const clipt_model *m, int64_t i) {
    const int64_t hp = m->head_dim / GL_QK, wp = m->width / GL_QK, g = i / (3 * hp), r = i % (3 * hp);
    return r / hp * wp + g * hp + r % hp;
}

static void head_attention(const fjob *j, int64_t g, float *ws) {
    const clipt_model *m = j->m;
    const int W = m->width, hd = m->head_dim;
    const kn_env e1 = {NULL, j->cpu, NULL};
    for (int s = 0; s < j->n_seq; s++) {
        const float *q = j->qkv + (size_t)s * m->ctx * 3 * W + g * hd;
        kn_attn_args a = {0};
        a.n_q = a.n_kv = m->ctx;
        a.n_heads = a.n_kv_heads = 1;
        a.head_dim = hd;
        a.scale = 1.0f / sqrtf((float)hd);
        a.causal = m->causal;
        a.q = q, a.q_stride = 3 * W;
        a.k = q + W, a.k_stride = 3 * W;
        a.v = q + 2 * W, a.v_stride = 3 * W;
        a.out = j->h + (size_t)s * m->ctx * W + g * hd, a.o_stride = W;
        kn_attention(&e1, &a, ws, j->attn_per); /* shapes valid by construction */
    }
    for (int64_t c = g * hd / GL_QK; c < (g + 1) * hd / GL_QK; c++)
        kn_q8_block_avx512(j->h + c * GL_QK, W, j->T, NULL, NULL, NULL, j->bu + c * GL_QK, W, j->bd + c * j->T);
}

/* Asks for [p, p + bytes) in this core's cache now, all lines at once: what the other core
 * wrote arrives with as many transfers in flight as the core allows, instead of one
 * ~260 ns wait after another as the kernels reach each line. */
static void prefetch(const void *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

static void fused_task(void *v, int ith, int nth) {
    fjob *j = v;
    const clipt_model *m = j->m;
    const clipt_layer *L = j->L;
    const int64_t W = m->width, nbo = W / GL_QK, T = j->T;
    float *mine = j->per + (size_t)ith * j->n_per, *mr = mine + j->attn_per, *acc = mr + 2 * T; /* mr [T][2]: mean, 1/std */
    const float *lw = NULL, *lb = NULL;
    switch (j->phase) { /* the inputs the other threads wrote */
    case F_LN1: case F_LN2: prefetch(j->st, (size_t)T * nbo * 8); break;
    case F_QKV: case F_FC: prefetch(j->au, (size_t)T * W), prefetch(j->ad, (size_t)T * nbo * 4); break;
    case F_OUT: prefetch(j->bu, (size_t)T * W), prefetch(j->bd, (size_t)T * nbo * 4); break;
    case F_PROJ: prefetch(j->cu, (size_t)T * m->hidden), prefetch(j->cd, (size_t)T * m->hidden / GL_QK * 4); break;
    default: break;
    }
    if (j->phase == F_LN1 || j->phase == F_LN2) {
        kn_ln_merge(j->st, j->T, nbo, GL_QK, LN_EPS, mr);
        lw = j->phase == F_LN1 ? L->ln1_w : L->ln2_w, lb = j->phase == F_LN1 ? L->ln1_b : L->ln2_b;
    }
    kn_qpanel_args a = {0};
    a.M = j->T, a.acc = acc;
    a.next = -1; /* below: the item after this one, which its owner runs next */
    for (int64_t i; (i = gl_owned_next(&j->own, ith)) >= 0;) {
        switch (j->phase) {
        case F_STATS: kn_ln_block_stats_avx512(j->x + i * GL_QK, W, T, j->st + 2 * i * T); break;
        case F_LN1:
        case F_LN2:
            kn_q8_block_avx512(j->x + i * GL_QK, W, T, mr, lw ? lw + i * GL_QK : NULL, lb ? lb + i * GL_QK : NULL,
                               j->au + i * GL_QK, W, j->ad + i * T);
            break;
        case F_QKV: { /* a head: its q, k, v panels, then its attention */
            const int64_t hp3 = 3 * (m->head_dim / GL_QK);
            a.B = &L->in_q, a.xu = j->au, a.xd = j->ad, a.bias = L->in_b, a.C = j->qkv, a.ldc = 3 * W;
            for (int64_t k = i * hp3; k < (i + 1) * hp3; k++) {
                a.next = k + 1 < 3 * nbo ? qkv_panel(m, k + 1) : -1;
                kn_qpanel_avx512vnni(&a, qkv_panel(m, k));
            }
            head_attention(j, i, mine);
            break;
        }
        case F_OUT:
        case F_PROJ: {
            const int out = j->phase == F_OUT;
            a.B = out ? &L->out_q : &L->proj_q, a.bias = out ? L->out_b : L->proj_b;
            a.xu = out ? j->bu : j->cu, a.xd = out ? j->bd : j->cd;
            a.C = j->x, a.ldc = W, a.accumulate = 1, a.stats = j->st, a.next = i + 1;
            kn_qpanel_avx512vnni(&a, i);
            break;
        }
        case F_FC:
            a.B = &L->fc_q, a.xu = j->au, a.xd = j->ad, a.bias = L->fc_b, a.act = KN_ACT_GELU;
            a.qu = j->cu, a.qd = j->cd, a.next = i + 1;
            kn_qpanel_avx512vnni(&a, i);
            break;
        default: break;
        }
    }
    (void)nth;
}

static void fused_run(fjob *j, const kn_env *env, int phase, int64_t items) {
    j->phase = phase;
    gl_owned_init(&j->own, items, gl_pool_size(env->pool));
    gl_pool_run(env->pool, fused_task, j);
}

static int fusable(const clipt_model *m, const kn_env *env, int pk) {
    const int W = m->width;
    if (!pk || !gl_cpu_has_avx512vnni(&env->cpu) || gl_pool_size(env->pool) > GL_OWNED_MAX || W % GL_QK ||
        m->hidden % GL_QK || m->head_dim % GL_QK || m->head_dim * m->n_head != W)
        return 0;
    for (int i = 0; i < m->n_layer; i++) {
        const clipt_layer *L = &m->layers[i];
        if (!L->in_q.p || !L->out_q.p || !L->fc_q.p || !L->proj_q.p) return 0;
    }
    return 1;
}

/* Layers [l0, l1) fused when possible, then (then_attend) layer l1's attention half, leaving its
 * output in the attention region as attend() does: 1, else 0 and nothing done. */
static int fused_layers(const clipt_model *m, const kn_env *env, int n_seq, int pk, int l0, int l1, int then_attend,
                        float *ws) {
    const int W = m->width, hid = m->hidden;
    if (!fusable(m, env, pk)) return 0;
    fjob *j = gl_calloc(1, sizeof *j); /* ~2 KB of per-part counters */
    if (!j) return 0;
    const int T = n_seq * m->ctx;
    j->m = m, j->cpu = env->cpu, j->n_seq = n_seq, j->T = T;
    j->x = ws, j->h = ws + (size_t)T * W, j->qkv = j->h + (size_t)T * W;
    uint8_t *p = (uint8_t *)(j->qkv + (size_t)T * 3 * W); /* the unfused layer's MLP hidden [T, max(4W, W)] */
    j->au = carve(&p, (size_t)T * W), j->ad = (float *)carve(&p, (size_t)T * W / GL_QK * 4);
    j->bu = carve(&p, (size_t)T * W), j->bd = (float *)carve(&p, (size_t)T * W / GL_QK * 4);
    j->cu = carve(&p, (size_t)T * hid), j->cd = (float *)carve(&p, (size_t)T * hid / GL_QK * 4);
    j->st = (float *)carve(&p, (size_t)T * W / GL_QK * 8); /* (all within T·max(4W, W) floats) */
    j->per = ws + (size_t)T * (5 * W + GL_MAX(hid, W)) + W + 64 + 256; /* after clipt_pool's row */
    j->n_per = fused_per(m, T), j->attn_per = kn_attention_ws_floats_max(m->ctx, m->head_dim, 1);
    const int64_t nbo = W / GL_QK;
    fused_run(j, env, F_STATS, nbo);
    for (int i = l0; i < l1; i++) {
        j->L = &m->layers[i];
        fused_run(j, env, F_LN1, nbo);
        fused_run(j, env, F_QKV, m->n_head);
        fused_run(j, env, F_OUT, nbo);
        fused_run(j, env, F_LN2, nbo);
        fused_run(j, env, F_FC, hid / GL_QK);
        fused_run(j, env, F_PROJ, nbo);
    }
    if (then_attend) {
        j->L = &m->layers[l1];
        fused_run(j, env, F_LN1, nbo);
        fused_run(j, env, F_QKV, m->n_head);
    }
    gl_free(j);
    return 1;
}
#else
static int fusable(const clipt_model *m, const kn_env *env, int pk) {
    (void)m, (void)env, (void)pk;
    return 0;
}
static int fused_layers(const clipt_model *m, const kn_env *env, int n_seq, int pk, int l0, int l1, int then_attend,
                        float *ws) {
    (void)m, (void)env, (void)n_seq, (void)pk, (void)l0, (void)l1, (void)then_attend, (void)ws;
    return 0;
}
#endif

int clipt_fused(const clipt_model *m, const kn_env *env) {
    return fusable(m, env, atomic_load_explicit(&((clipt_model *)m)->pack_state, memory_order_acquire) == 3);
}

void clipt_blocks(const clipt_model *m, const kn_env *env, int n_seq, float *ws) {
    int pk = use_packed(m, env);
    if (fused_layers(m, env, n_seq, pk, 0, m->n_layer, 0, ws)) return;
    for (int i = 0; i < m->n_layer; i++) layer_all(m, &m->layers[i], env, n_seq, pk, ws);
}

/* EOT pooling: the first position holding the largest id (EOT is the largest). */
static int eot_pos(const clipt_model *m, const int32_t *id) {
    int eot = 0;
    for (int t = 1; t < m->ctx; t++)
        if (id[t] > id[eot]) eot = t;
    return eot;
}

/* The final LN and projection of one pooled row. */
static void pool_row(const clipt_model *m, const kn_env *env, const float *x, float *row, float *emb) {
    op_layernorm(env, x, 1, m->width, m->lnf_w, m->lnf_b, LN_EPS, row);
    op_matmul(env, row, 1, m->width, m->proj, m->embed, emb);
}

void clipt_pool(const clipt_model *m, const kn_env *env, const int32_t *ids, int n_seq, float *ws, float *emb) {
    int W = m->width, T = n_seq * m->ctx;
    const float *x = ws;
    float *row = ws + (size_t)T * (5 * W + GL_MAX(m->hidden, W));
    for (int s = 0; s < n_seq; s++) {
        int eot = eot_pos(m, ids + (size_t)s * m->ctx);
        pool_row(m, env, x + ((size_t)s * m->ctx + eot) * W, row, emb + (size_t)s * m->embed);
    }
}

/* The last layer when only the pooled rows are read (clipt_forward): keys and values need every
 * position, but the attention output projection and the MLP only the pooled one of each
 * sequence; that skips ~7% of a 12-layer tower's arithmetic. Leaves those rows in xe [n_seq, W]
 * (in the qkv region, free once attention is done). */
static float *last_layer_pooled(const clipt_model *m, const clipt_layer *L, const kn_env *env, const int32_t *ids,
                                int n_seq, int pk, int attended, float *ws) {
    int W = m->width, T = n_seq * m->ctx;
    float *x = ws, *h = x + (size_t)T * W, *qkv = h + (size_t)T * W, *big = qkv + (size_t)T * 3 * W;
    if (!attended) attend(m, L, env, n_seq, pk, x, h, qkv);
    float *he = qkv, *xe = qkv + (size_t)n_seq * W;
    for (int s = 0; s < n_seq; s++) {
        size_t r = (size_t)s * m->ctx + (size_t)eot_pos(m, ids + (size_t)s * m->ctx);
        memcpy(he + (size_t)s * W, h + r * W, sizeof(float) * (size_t)W);
        memcpy(xe + (size_t)s * W, x + r * W, sizeof(float) * (size_t)W);
    }
    linear(env, he, n_seq, &L->out_w, &L->out_p, &L->out_q, pk, L->out_b, xe, KN_ACT_NONE, 1);
    op_layernorm(env, xe, n_seq, W, L->ln2_w, L->ln2_b, LN_EPS, he);
    linear(env, he, n_seq, &L->fc_w, &L->fc_p, &L->fc_q, pk, L->fc_b, big, KN_ACT_GELU, 0);
    linear(env, big, n_seq, &L->proj_w, &L->proj_p, &L->proj_q, pk, L->proj_b, xe, KN_ACT_NONE, 1);
    return xe;
}

int clipt_forward(const clipt_model *m, const kn_env *env, const int32_t *ids, int n_seq, float *emb, float *ws,
                  gl_err *err) {
    if (clipt_embed(m, ids, n_seq, ws, err)) return err->code;
    int pk = use_packed(m, env);
    int fused = fused_layers(m, env, n_seq, pk, 0, m->n_layer - 1, 1, ws);
    if (!fused)
        for (int i = 0; i + 1 < m->n_layer; i++) layer_all(m, &m->layers[i], env, n_seq, pk, ws);
    const float *xe = last_layer_pooled(m, &m->layers[m->n_layer - 1], env, ids, n_seq, pk, fused, ws);
    int W = m->width, T = n_seq * m->ctx;
    float *row = ws + (size_t)T * (5 * W + GL_MAX(m->hidden, W));
    for (int s = 0; s < n_seq; s++) pool_row(m, env, xe + (size_t)s * W, row, emb + (size_t)s * m->embed);
    return 0;
}
