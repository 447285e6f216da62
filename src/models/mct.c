/* mct.c — MCt text tower. Reference: apple/ml-mobileclip mobileclip/text_encoder.py (variant
 * "mct"), modules/text/repmixer.py, and ../shared/notes/mobileclip2.md §3.2.
 *
 * A text RepMixer block sees the sequence as a 1 x L image with C channels:
 *   x = x + γ (mixer(x) − norm(x))          mixer = 1xK dw conv+BN  + BN skip; norm = BN skip
 *   x = x + γ' fc2(GELU(fc1(BN(dwconv(x)))))
 * Folded at load (in double) into one depthwise 1xK conv with bias for the token mixer (the
 * residual inside, at the centre tap), one for the FFN's conv+BN, and γ' into fc2. */
#include "mct.h"

#include <stdio.h>
#include <string.h>

#define BN_EPS 1e-5

typedef struct mct_block {
    int c, h, k;
    float *mix_w, *mix_b;  /* [k, c], [c]: token mixer incl. the residual */
    float *dw_w, *dw_b;    /* [k, c], [c]: FFN conv + BN */
    float *w1, *b1;        /* [h, c], [h] */
    float *w2, *b2;        /* [c, h], [c], scaled by layer_scale */
} mct_block;

struct mct_model {
    clipt_model *core;
    mct_block blk[2];      /* before and after the transformer layers */
    gl_blobs blobs;
};

int mct_detect(const gl_weights *w, const char *prefix) {
    char n[256];
    snprintf(n, sizeof n, "%stransformer.0.token_mixer.mixer.rbr_skip.running_mean", prefix);
    if (gl_weights_find(w, n)) return 1;
    snprintf(n, sizeof n, "%stransformer.0.token_mixer.reparam_conv.weight", prefix);
    return gl_weights_find(w, n) != NULL;
}

/* Adds a depthwise conv [c, 1, 1, kb] (+BN) into K [k, c] (centred) and B. */
static int add_conv_bn(wl *l, const char *p, double *K, double *B, int c, int k) {
    const gl_tensor *t = wl_need(l, "%s.conv.weight", p);
    if (!t) return l->err->code;
    if (t->ndim != 4 || t->shape[0] != c || t->shape[1] != 1 || t->shape[2] != 1 || t->shape[3] > k ||
        (k - t->shape[3]) % 2 == 1)
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' has an unexpected shape", l->file, t->name);
    int kb = (int)t->shape[3], off = (k - kb) / 2;
    float *w = wl_f32(l, t, -1);
    char bn[300];
    snprintf(bn, sizeof bn, "%s.bn", p);
    wl_bn v;
    if (!w || wl_load_bn(l, bn, c, BN_EPS, &v)) return l->err->code ? l->err->code : GLIMPSE_ERR_NOMEM;
    for (int o = 0; o < c; o++) {
        for (int j = 0; j < kb; j++) K[(size_t)(j + off) * c + o] += v.scale[o] * w[(size_t)o * kb + j];
        B[o] += v.shift[o];
    }
    wl_bn_free(&v);
    return 0;
}

/* Adds sign × (an Apple MobileOneBlock without activation at p: rbr_conv.i, rbr_scale, rbr_skip). */
static int add_mobileone(wl *l, const char *p, double sign, double *K, double *B, int c, int k) {
    double *k1 = gl_calloc((size_t)k * c, sizeof(double)), *b1 = gl_calloc((size_t)c, sizeof(double));
    int rc = (!k1 || !b1) ? gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory") : 0;
    char a[300];
    for (int i = 0; !rc && i < 16 && wl_find(l, "%s.rbr_conv.%d.conv.weight", p, i); i++) {
        snprintf(a, sizeof a, "%s.rbr_conv.%d", p, i);
        rc = add_conv_bn(l, a, k1, b1, c, k);
    }
    if (!rc && wl_find(l, "%s.rbr_scale.conv.weight", p)) {
        snprintf(a, sizeof a, "%s.rbr_scale", p);
        rc = add_conv_bn(l, a, k1, b1, c, k);
    }
    if (!rc && wl_find(l, "%s.rbr_skip.running_mean", p)) {
        snprintf(a, sizeof a, "%s.rbr_skip", p);
        wl_bn v;
        if (wl_load_bn(l, a, c, BN_EPS, &v)) {
            rc = l->err->code;
        } else {
            for (int o = 0; o < c; o++) k1[(size_t)(k / 2) * c + o] += v.scale[o], b1[o] += v.shift[o];
            wl_bn_free(&v);
        }
    }
    for (size_t i = 0; !rc && i < (size_t)k * c; i++) K[i] += sign * k1[i];
    for (int o = 0; !rc && o < c; o++) B[o] += sign * b1[o];
    gl_free(k1);
    gl_free(b1);
    return rc;
}

static float *to_f32(wl *l, const double *x, size_t n) {
    float *y = gl_blobs_alloc(l->blobs, sizeof(float) * n);
    if (!y) {
        gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* [c, 1, 1, k] (PyTorch) -> [k, c] */
static float *reparam_kernel(wl *l, const gl_tensor *t, int c, int k) {
    float *w = wl_f32(l, t, (int64_t)c * k), *y = gl_blobs_alloc(l->blobs, sizeof(float) * (size_t)c * k);
    if (!w || !y) return NULL;
    for (int o = 0; o < c; o++)
        for (int j = 0; j < k; j++) y[(size_t)j * c + o] = w[(size_t)o * k + j];
    return y;
}

static int load_block(wl *l, int idx, int c, mct_block *b) {
    char p[200], q[240];
    snprintf(p, sizeof p, "transformer.%d", idx);
    b->c = c;
    const gl_tensor *tr = wl_find(l, "%s.token_mixer.reparam_conv.weight", p);
    const gl_tensor *tk = tr ? tr : wl_need(l, "%s.token_mixer.mixer.rbr_conv.0.conv.weight", p);
    if (!tk) return l->err->code;
    if (tk->ndim != 4 || tk->shape[0] != c || tk->shape[2] != 1 || tk->shape[3] < 1 || tk->shape[3] % 2 == 0 ||
        tk->shape[3] > 63)
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' is not a [%d, 1, 1, odd k] kernel", l->file,
                          tk->name, c);
    b->k = (int)tk->shape[3];
    int k = b->k, rc = 0;
    if (tr) {
        b->mix_w = reparam_kernel(l, tr, c, k);
        b->mix_b = wl_f32(l, wl_need(l, "%s.token_mixer.reparam_conv.bias", p), c);
        if (!b->mix_w || !b->mix_b) return l->err->code;
    } else {
        const float *g = wl_f32(l, wl_need(l, "%s.token_mixer.layer_scale", p), c);
        if (!g) return l->err->code;
        double *K = gl_calloc((size_t)k * c, sizeof(double)), *B = gl_calloc((size_t)c, sizeof(double));
        if (!K || !B) rc = gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
        snprintf(q, sizeof q, "%s.token_mixer.mixer", p);
        if (!rc) rc = add_mobileone(l, q, 1.0, K, B, c, k);
        snprintf(q, sizeof q, "%s.token_mixer.norm", p);
        if (!rc) rc = add_mobileone(l, q, -1.0, K, B, c, k);
        if (!rc) { /* W = I + γ (W_mixer − W_norm), b = γ (b_mixer − b_norm) */
            for (int j = 0; j < k; j++)
                for (int o = 0; o < c; o++) K[(size_t)j * c + o] *= g[o];
            for (int o = 0; o < c; o++) K[(size_t)(k / 2) * c + o] += 1.0, B[o] *= g[o];
            if (!(b->mix_w = to_f32(l, K, (size_t)k * c)) || !(b->mix_b = to_f32(l, B, (size_t)c))) rc = l->err->code;
        }
        gl_free(K);
        gl_free(B);
        if (rc) return rc;
    }
    /* ConvFFN: conv (dw 1xk, no bias) + BN, fc1, GELU, fc2; layer_scale folded into fc2 */
    double *K = gl_calloc((size_t)k * c, sizeof(double)), *B = gl_calloc((size_t)c, sizeof(double));
    if (!K || !B) rc = gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    snprintf(q, sizeof q, "%s.convffn.conv", p);
    if (!rc) rc = add_conv_bn(l, q, K, B, c, k);
    if (!rc && (!(b->dw_w = to_f32(l, K, (size_t)k * c)) || !(b->dw_b = to_f32(l, B, (size_t)c)))) rc = l->err->code;
    gl_free(K);
    gl_free(B);
    if (rc) return rc;
    const gl_tensor *t1 = wl_need(l, "%s.convffn.fc1.weight", p);
    if (!t1) return l->err->code;
    if (t1->ndim < 2 || t1->shape[1] != c)
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' must be [hidden, %d, 1, 1]", l->file, t1->name, c);
    b->h = (int)t1->shape[0];
    b->w1 = wl_f32(l, t1, (int64_t)b->h * c);
    b->b1 = wl_f32(l, wl_need(l, "%s.convffn.fc1.bias", p), b->h);
    b->w2 = wl_f32(l, wl_need(l, "%s.convffn.fc2.weight", p), (int64_t)c * b->h);
    b->b2 = wl_f32(l, wl_need(l, "%s.convffn.fc2.bias", p), c);
    const float *g2 = wl_f32(l, wl_need(l, "%s.layer_scale", p), c);
    if (!b->w1 || !b->b1 || !b->w2 || !b->b2 || !g2) return l->err->code;
    for (int o = 0; o < c; o++) {
        for (int i = 0; i < b->h; i++) b->w2[(size_t)o * b->h + i] *= g2[o];
        b->b2[o] *= g2[o];
    }
    return 0;
}

int mct_load(const gl_weights *w, const char *prefix, const char *file, int causal, int n_head, mct_model **out,
             gl_err *err) {
    mct_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    int rc = clipt_load_ex(w, prefix, file, CLIPT_NAMES_APPLE, 1, causal, n_head, &m->core, err);
    if (!rc) {
        wl l = {.w = w, .blobs = &m->blobs, .err = err, .file = file ? file : "model"};
        snprintf(l.prefix, sizeof l.prefix, "%s", prefix);
        int c = clipt_width(m->core);
        rc = load_block(&l, 0, c, &m->blk[0]);
        if (!rc) rc = load_block(&l, clipt_n_layer(m->core) + 1, c, &m->blk[1]);
    }
    if (rc) {
        mct_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mct_free(mct_model *m) {
    if (!m) return;
    clipt_free(m->core);
    gl_blobs_free(&m->blobs);
    gl_free(m);
}

clipt_model *mct_core(mct_model *m) { return m->core; }

static int max_hidden(const mct_model *m) { return GL_MAX(m->blk[0].h, m->blk[1].h); }

size_t mct_ws_floats(const mct_model *m, int n_seq, int n_threads) {
    size_t T = (size_t)n_seq * clipt_context(m->core);
    return clipt_ws_floats(m->core, n_seq, n_threads) + T * (size_t)(clipt_width(m->core) + max_hidden(m)) + 64;
}

/* One block on x [L, c] of one sequence; t [L, c] and hid [L, h] are scratch. */
static void run_block(const mct_block *b, const kn_env *env, float *x, int L, float *t, float *hid) {
    op_dwconv_seq(env, x, L, b->c, b->mix_w, b->k, b->mix_b, t);
    memcpy(x, t, sizeof(float) * (size_t)L * b->c);
    op_dwconv_seq(env, x, L, b->c, b->dw_w, b->k, b->dw_b, t);
    op_linear(env, t, L, b->c, b->w1, GL_F32, b->b1, b->h, hid, KN_ACT_GELU, 0);
    op_linear(env, hid, L, b->h, b->w2, GL_F32, b->b2, b->c, x, KN_ACT_NONE, 1);
}

int mct_forward(const mct_model *m, const kn_env *env, const int32_t *ids, int n_seq, float *emb, float *block0,
                float *ws, gl_err *err) {
    int L = clipt_context(m->core), C = clipt_width(m->core);
    if (clipt_embed(m->core, ids, n_seq, ws, err)) return err->code;
    float *t = ws + clipt_ws_floats(m->core, n_seq, 1), *hid = t + (size_t)L * C;
    for (int s = 0; s < n_seq; s++) run_block(&m->blk[0], env, ws + (size_t)s * L * C, L, t, hid);
    if (block0) memcpy(block0, ws, sizeof(float) * (size_t)n_seq * L * C);
    clipt_blocks(m->core, env, n_seq, ws);
    for (int s = 0; s < n_seq; s++) run_block(&m->blk[1], env, ws + (size_t)s * L * C, L, t, hid);
    clipt_pool(m->core, env, ids, n_seq, ws, emb);
    return 0;
}
