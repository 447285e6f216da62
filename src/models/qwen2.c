/* qwen2.c — Qwen2 decoder. Reference: transformers models/qwen2/modeling_qwen2.py
 * (Qwen2RMSNorm, Qwen2RotaryEmbedding, apply_rotary_pos_emb, Qwen2Attention, Qwen2MLP) and
 * ../shared/notes/fastvlm.md §4. Per layer:
 *   h = x + o_proj(attn(rope(q), rope(k), v))   with q/k/v = proj(rmsnorm(x)) (+bias)
 *   y = h + down(silu(gate(rmsnorm(h))) * up(rmsnorm(h)))                             */
#include "qwen2.h"

#include "core/mapfile.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct qwen2_layer {
    float *in_norm, *post_norm;      /* [H] */
    wl_mat q, k, v, o, gate, up, down;
    float *bq, *bk, *bv;             /* [nh*hd], [nkv*hd], [nkv*hd] */
} qwen2_layer;

struct qwen2_model {
    qwen2_config cfg;
    int hidden, n_layer, head_dim, inter, vocab;
    wl_mat embed;                    /* [vocab, H] */
    wl_mat head;                     /* [vocab, H] */
    float *norm;                     /* [H] */
    float *inv_freq;                 /* [hd/2] */
    qwen2_layer *layers;
    gl_blobs blobs;
    pthread_t pager;                 /* pages the matrices in (see qwen2_load) */
    int has_pager;
};

struct qwen2_state {
    int n_ctx, n_batch, pos, kv_dim, n_threads;
    float *k, *v;                    /* [layers][n_ctx][kv_dim] */
    float *kt;                       /* [layers][kv_dim][kt_ld]: K transposed, for the attention */
    int64_t kt_ld;
    float *x, *xn, *q, *kk, *vv, *att, *g, *u, *ws, *last;
};

int qwen2_gguf_name(const char *hf, char *out, size_t n) {
    static const char *const top[][2] = {
        {"embed_tokens.weight", "token_embd.weight"}, {"norm.weight", "output_norm.weight"}, {"lm_head.weight", "output.weight"}};
    static const char *const per[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},        {"mlp.down_proj.weight", "ffn_down.weight"}};
    for (size_t i = 0; i < GL_ARRAY_LEN(top); i++)
        if (!strcmp(hf, top[i][0])) return snprintf(out, n, "%s", top[i][1]) < (int)n ? 0 : -1;
    int layer, off = 0;
    if (sscanf(hf, "layers.%d.%n", &layer, &off) != 1 || off <= 0 || layer < 0) return -1;
    for (size_t i = 0; i < GL_ARRAY_LEN(per); i++)
        if (!strcmp(hf + off, per[i][0])) return snprintf(out, n, "blk.%d.%s", layer, per[i][1]) < (int)n ? 0 : -1;
    return -1;
}

static void gguf_rename(const wl *l, const char *in, char *out, size_t n) {
    if (qwen2_gguf_name(in, out, n)) snprintf(out, n, "%s", in);
}

/* Bytes as stored (quantized types count blocks, not elements). */
static void prefault_mat(const wl_mat *m) {
    size_t n;
    if (gl_dtype_nbytes(m->type, (uint64_t)m->rows * (uint64_t)m->cols, &n)) gl_map_prefault(m->data, n);
}

static void *prefault_all(void *arg) {
    const qwen2_model *m = arg;
    for (int i = 0; i < m->n_layer; i++) {
        wl_mat mats[7];
        qwen2_layer_mats(m, i, mats);
        for (int k = 0; k < 7; k++) prefault_mat(&mats[k]);
    }
    prefault_mat(&m->head);
    return NULL;
}

int qwen2_load(const gl_weights *w, const qwen2_config *cfg, const char *file, qwen2_model **out, gl_err *err) {
    qwen2_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    m->cfg = *cfg;
    wl l = {.w = w, .blobs = &m->blobs, .err = err, .file = file ? file : "model"};
    snprintf(l.prefix, sizeof l.prefix, "%s", cfg->gguf_names ? "" : "model.");
    if (cfg->gguf_names) l.rename = gguf_rename;
    const gl_tensor *te = wl_need(&l, "embed_tokens.weight");
    if (!te) goto fail;
    if (te->ndim != 2) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: embed_tokens must be 2-D", l.file);
        goto fail;
    }
    m->vocab = (int)te->shape[0];
    m->hidden = (int)te->shape[1];
    if (cfg->n_head <= 0 || cfg->n_kv_head <= 0 || cfg->n_head % cfg->n_kv_head || m->hidden % cfg->n_head) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: bad head counts (%d heads, %d kv heads, hidden %d)", l.file,
                   cfg->n_head, cfg->n_kv_head, m->hidden);
        goto fail;
    }
    m->head_dim = m->hidden / cfg->n_head;
    if (wl_matrix(&l, te, m->vocab, m->hidden, &m->embed)) goto fail;
    while (wl_find(&l, "layers.%d.input_layernorm.weight", m->n_layer)) m->n_layer++;
    const gl_tensor *tg = wl_need(&l, "layers.0.mlp.gate_proj.weight");
    if (!m->n_layer || !tg) goto fail;
    m->inter = (int)tg->shape[0];
    m->layers = gl_blobs_alloc(&m->blobs, sizeof(qwen2_layer) * (size_t)m->n_layer);
    m->inv_freq = gl_blobs_alloc(&m->blobs, sizeof(float) * (size_t)(m->head_dim / 2));
    if (!m->layers || !m->inv_freq) {
        gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int H = m->hidden, qd = cfg->n_head * m->head_dim, kd = cfg->n_kv_head * m->head_dim, I = m->inter;
    for (int i = 0; i < m->n_layer; i++) {
        qwen2_layer *L = &m->layers[i];
        L->in_norm = wl_f32(&l, wl_need(&l, "layers.%d.input_layernorm.weight", i), H);
        L->post_norm = wl_f32(&l, wl_need(&l, "layers.%d.post_attention_layernorm.weight", i), H);
        L->bq = wl_f32(&l, wl_need(&l, "layers.%d.self_attn.q_proj.bias", i), qd);
        L->bk = wl_f32(&l, wl_need(&l, "layers.%d.self_attn.k_proj.bias", i), kd);
        L->bv = wl_f32(&l, wl_need(&l, "layers.%d.self_attn.v_proj.bias", i), kd);
        if (!L->in_norm || !L->post_norm || !L->bq || !L->bk || !L->bv) goto fail;
        if (wl_matrix(&l, wl_need(&l, "layers.%d.self_attn.q_proj.weight", i), qd, H, &L->q) ||
            wl_matrix(&l, wl_need(&l, "layers.%d.self_attn.k_proj.weight", i), kd, H, &L->k) ||
            wl_matrix(&l, wl_need(&l, "layers.%d.self_attn.v_proj.weight", i), kd, H, &L->v) ||
            wl_matrix(&l, wl_need(&l, "layers.%d.self_attn.o_proj.weight", i), H, qd, &L->o) ||
            wl_matrix(&l, wl_need(&l, "layers.%d.mlp.gate_proj.weight", i), I, H, &L->gate) ||
            wl_matrix(&l, wl_need(&l, "layers.%d.mlp.up_proj.weight", i), I, H, &L->up) ||
            wl_matrix(&l, wl_need(&l, "layers.%d.mlp.down_proj.weight", i), H, I, &L->down))
            goto fail;
    }
    if (!(m->norm = wl_f32(&l, wl_need(&l, "norm.weight"), H))) goto fail;
    /* Head: tied configs use embed_tokens even when lm_head.weight is stored (as transformers
     * ties them at load); untied configs need lm_head.weight. */
    l.prefix[0] = 0;
    const gl_tensor *th = cfg->tie_embeddings ? NULL : wl_need(&l, "lm_head.weight");
    if (!cfg->tie_embeddings && !th) goto fail;
    if (th) {
        if (wl_matrix(&l, th, m->vocab, H, &m->head)) goto fail;
    } else {
        m->head = m->embed;
    }
    /* The matrices stay in the file mapping; every page of them is read by the first forward.
     * Faulting them in one pass is cheaper than one page fault per 4 KB page in the first
     * prefill (on the VM here ~0.8 CPU s of the first 280-token prefill of 0.5B). The pass runs
     * on a thread of its own so that opening returns at once: FastVLM encodes the image (seconds)
     * before the decoder runs, and pages it touches first are simply faulted by that access. */
    if (pthread_create(&m->pager, NULL, prefault_all, m) == 0) m->has_pager = 1;
    else prefault_all(m);
    /* inv_freq as transformers computes it (float32): 1 / theta^(2i/d) */
    for (int i = 0; i < m->head_dim / 2; i++)
        m->inv_freq[i] = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)m->head_dim);
    *out = m;
    return 0;
fail:
    qwen2_free(m);
    return err->code ? err->code : GLIMPSE_ERR_INTERNAL;
}

void qwen2_free(qwen2_model *m) {
    if (!m) return;
    if (m->has_pager) pthread_join(m->pager, NULL); /* before the mapping goes */
    gl_blobs_free(&m->blobs);
    gl_free(m);
}

int qwen2_hidden(const qwen2_model *m) { return m->hidden; }
int qwen2_tied(const qwen2_model *m) { return m->head.data == m->embed.data; }
const qwen2_config *qwen2_get_config(const qwen2_model *m) { return &m->cfg; }
int qwen2_vocab(const qwen2_model *m) { return m->vocab; }
int qwen2_n_layer(const qwen2_model *m) { return m->n_layer; }
int qwen2_n_head(const qwen2_model *m) { return m->cfg.n_head; }
int qwen2_head_dim(const qwen2_model *m) { return m->head_dim; }
wl_mat qwen2_head(const qwen2_model *m) { return m->head; }
void qwen2_layer_mats(const qwen2_model *m, int l, wl_mat out[7]) {
    const qwen2_layer *L = &m->layers[l];
    out[0] = L->q, out[1] = L->k, out[2] = L->v, out[3] = L->o;
    out[4] = L->gate, out[5] = L->up, out[6] = L->down;
}

int qwen2_state_new(const qwen2_model *m, int n_ctx, int n_batch, int n_threads, qwen2_state **out, gl_err *err) {
    if (n_ctx < 1 || n_batch < 1) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "qwen2: bad context/batch size");
    qwen2_state *s = gl_calloc(1, sizeof *s);
    if (!s) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    s->n_threads = n_threads < 1 ? 1 : n_threads;
    s->kv_dim = m->cfg.n_kv_head * m->head_dim;
    size_t kv = (size_t)m->n_layer * n_ctx * s->kv_dim, B = (size_t)n_batch;
    size_t qd = (size_t)m->cfg.n_head * m->head_dim;
    s->k = gl_aligned_alloc(64, kv * sizeof(float));
    s->v = gl_aligned_alloc(64, kv * sizeof(float));
    /* K^T: the attention kernels read keys as rows of dims; keeping them so saves transposing
     * the whole cache at every step. Zeroed: columns past the last position are read (never
     * used) in 16-wide steps. */
    s->kt_ld = ((int64_t)n_ctx + 15) & ~(int64_t)15;
    size_t ktn = (size_t)m->n_layer * (size_t)s->kv_dim * (size_t)s->kt_ld;
    s->kt = gl_aligned_alloc(64, ktn * sizeof(float));
    if (s->kt) memset(s->kt, 0, ktn * sizeof(float));
    size_t scratch = B * (2 * (size_t)m->hidden + 2 * qd + 2 * (size_t)s->kv_dim + 2 * (size_t)m->inter) +
                     (size_t)n_ctx * s->n_threads + (size_t)m->hidden + 64;
    s->x = gl_aligned_alloc(64, scratch * sizeof(float));
    if (!s->k || !s->v || !s->kt || !s->x) {
        qwen2_state_free(s);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "qwen2: cannot allocate a %d-token KV cache", n_ctx);
    }
    s->xn = s->x + B * m->hidden;
    s->q = s->xn + B * m->hidden;
    s->att = s->q + B * qd;
    s->kk = s->att + B * qd;
    s->vv = s->kk + B * s->kv_dim;
    s->g = s->vv + B * s->kv_dim;
    s->u = s->g + B * m->inter;
    s->ws = s->u + B * m->inter;
    s->last = s->ws + (size_t)n_ctx * s->n_threads;
    *out = s;
    return 0;
}

void qwen2_state_free(qwen2_state *s) {
    if (!s) return;
    gl_aligned_free(s->k);
    gl_aligned_free(s->v);
    gl_aligned_free(s->kt);
    gl_aligned_free(s->x);
    gl_free(s);
}

int qwen2_state_pos(const qwen2_state *s) { return s->pos; }
int qwen2_state_ctx(const qwen2_state *s) { return s->n_ctx; }
void qwen2_state_truncate(qwen2_state *s, int pos) {
    if (pos >= 0 && pos < s->pos) s->pos = pos;
}

int qwen2_embed(const qwen2_model *m, const int32_t *ids, int n, float *out, gl_err *err) {
    size_t row = (size_t)m->hidden / gl_dtype_block(m->embed.type) * gl_dtype_size(m->embed.type); /* whole blocks */
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "token id %d out of range [0, %d)", ids[i], m->vocab);
        gl_tensor t = {.dtype = m->embed.type, .ndim = 1, .shape = {m->hidden},
                       .data = (const uint8_t *)m->embed.data + (size_t)ids[i] * row};
        gl_tensor_to_f32(&t, out + (size_t)i * m->hidden, NULL);
    }
    return 0;
}

static void rmsnorm(const float *x, int rows, int n, const float *w, float eps, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        float ss = 0;
        for (int i = 0; i < n; i++) ss += xr[i] * xr[i];
        float inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (int i = 0; i < n; i++) yr[i] = w[i] * (xr[i] * inv);
    }
}

/* rotate-half RoPE on [n, heads, hd] at positions pos0.. (element i pairs with i + hd/2). */
static void rope(const qwen2_model *m, float *x, int n, int heads, int pos0) {
    int hd = m->head_dim, half = hd / 2;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            float ang = (float)(pos0 + t) * m->inv_freq[i];
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < heads; h++) {
                float *v = x + ((size_t)t * heads + h) * hd;
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
}

int qwen2_forward(const qwen2_model *m, qwen2_state *s, const kn_env *env, const float *x_in, int n, float *logits,
                  gl_err *err) {
    if (n < 1) return 0;
    if (s->pos + n > s->n_ctx)
        return gl_err_set(err, GLIMPSE_ERR_CONTEXT_FULL, "context full: %d + %d tokens > %d", s->pos, n, s->n_ctx);
    int H = m->hidden, nh = m->cfg.n_head, nkv = m->cfg.n_kv_head, hd = m->head_dim, kd = s->kv_dim;
    int qd = nh * hd, I = m->inter;
    for (int c0 = 0; c0 < n; c0 += s->n_batch) {
        int nb = GL_MIN(s->n_batch, n - c0), pos = s->pos;
        float *x = s->x;
        memcpy(x, x_in + (size_t)c0 * H, sizeof(float) * (size_t)nb * H);
        for (int li = 0; li < m->n_layer; li++) {
            const qwen2_layer *L = &m->layers[li];
            float *kc = s->k + (size_t)li * s->n_ctx * kd, *vc = s->v + (size_t)li * s->n_ctx * kd;
            rmsnorm(x, nb, H, L->in_norm, m->cfg.rms_eps, s->xn);
            const op_lin qkv[3] = {{L->q.data, L->q.type, L->bq, qd, s->q, KN_ACT_NONE, 0},
                                   {L->k.data, L->k.type, L->bk, kd, kc + (size_t)pos * kd, KN_ACT_NONE, 0},
                                   {L->v.data, L->v.type, L->bv, kd, vc + (size_t)pos * kd, KN_ACT_NONE, 0}};
            op_linear_multi(env, s->xn, nb, H, qkv, 3);
            rope(m, s->q, nb, nh, pos);
            rope(m, kc + (size_t)pos * kd, nb, nkv, pos);
            float *ktc = s->kt + (size_t)li * kd * s->kt_ld;
            for (int c = 0; c < kd; c++)
                for (int t = 0; t < nb; t++) ktc[c * s->kt_ld + pos + t] = kc[(size_t)(pos + t) * kd + c];
            op_attention_kvt(env, s->q, nb, kc, ktc, s->kt_ld, vc, pos, nh, nkv, hd, s->att);
            op_linear(env, s->att, nb, qd, L->o.data, L->o.type, NULL, H, x, KN_ACT_NONE, 1);
            rmsnorm(x, nb, H, L->post_norm, m->cfg.rms_eps, s->xn);
            const op_lin gu[2] = {{L->gate.data, L->gate.type, NULL, I, s->g, KN_ACT_SILU, 0},
                                  {L->up.data, L->up.type, NULL, I, s->u, KN_ACT_NONE, 0}};
            op_linear_multi(env, s->xn, nb, H, gu, 2);
            op_mul(env, s->g, s->u, (size_t)nb * I);
            op_linear(env, s->g, nb, I, L->down.data, L->down.type, NULL, H, x, KN_ACT_NONE, 1);
        }
        s->pos += nb;
        if (logits && c0 + nb == n) {
            rmsnorm(x + (size_t)(nb - 1) * H, 1, H, m->norm, m->cfg.rms_eps, s->last);
            op_linear(env, s->last, 1, H, m->head.data, m->head.type, NULL, m->vocab, logits, KN_ACT_NONE, 0);
        }
    }
    return 0;
}
