/* ops.c — model-level ops. GEMM-shaped work goes to kn_gemm; the rest is plain C threaded over
 * channels/rows until the conv/nn kernel families take it over. */
#include "ops.h"

#include "kernels/conv.h"
#include "kernels/nn.h"
#include "kernels/qgemm.h"

#include <math.h>
#include <string.h>


/* ---- convolution ---- */
static kn_conv2d_args conv_args(const op_conv *c, const float *x, int H, int W, float *y) {
    kn_conv2d_args a = {0};
    a.N = 1; a.C_in = c->cin; a.H = H; a.W = W; a.C_out = c->cout;
    a.kh = a.kw = c->k; a.stride = c->stride; a.pad_h = a.pad_w = c->k / 2; a.groups = c->groups;
    a.x = x; a.w = c->w; a.bias = c->b; a.y = y; a.act = c->act;
    return a;
}

/* Workspace of `bytes` from env's scratch, or a temporary allocation (*tmp, freed by the caller)
 * when env has none. NULL only when out of memory. */
static void *ws_get(const kn_env *env, size_t bytes, void **tmp) {
    *tmp = NULL;
    if (!bytes) return NULL;
    void *p = kn_scratch_get(env, bytes);
    if (!p) p = *tmp = gl_aligned_alloc(64, bytes);
    return p;
}

int op_conv2d(const kn_env *env, const op_conv *c, const float *x, int H, int W, float *y) {
    if (c->wq) {
        if (c->k != 1 || c->stride != 1 || c->groups != 1) return GLIMPSE_ERR_INVALID_ARG;
        op_pointwise_tq(env, c->wq, c->wqt, &c->wqp, c->b, c->cout, c->cin, x, H * W, y, c->act, 0);
        return 0;
    }
    kn_conv2d_args a = conv_args(c, x, H, W, y);
    size_t b = kn_conv2d_ws_size(env, &a);
    if (b == SIZE_MAX) return GLIMPSE_ERR_INVALID_ARG;
    void *tmp, *ws = ws_get(env, b, &tmp);
    if (b && !ws) return GLIMPSE_ERR_NOMEM;
    int rc = kn_conv2d(env, &a, ws, b);
    gl_aligned_free(tmp);
    return rc;
}

static void run_gemm(const kn_env *env, kn_gemm_args *a) {
    size_t n = kn_gemm_ws_size_t(env, a->M, a->N, a->K, a->b_type);
    a->ws = kn_scratch_get(env, n); /* NULL: kn_gemm allocates for this call */
    a->ws_size = a->ws ? n : 0;
    kn_gemm(env, a);
}

void op_matmul(const kn_env *env, const float *x, int T, int K, const float *w, int N, float *y) {
    kn_gemm_args a = {0};
    a.M = T; a.N = N; a.K = K;
    a.A = x; a.lda = K;
    a.B = w; a.ldb = N; a.b_type = GL_F32;
    a.C = y; a.ldc = N;
    run_gemm(env, &a);
}

void op_pointwise_ld(const kn_env *env, const kn_packed_a *w, const float *b, const float *x, int64_t ldx, int N,
                     float *y, int64_t ldy, kn_act act, int accumulate) {
    kn_gemm_args a = {0};
    a.M = w->M; a.N = N; a.K = w->K;
    a.Ap = w;
    a.B = x; a.ldb = ldx; a.b_type = GL_F32; a.trans_b = 0;
    a.C = y; a.ldc = ldy;
    a.bias_m = b; a.act = act; a.accumulate = accumulate;
    run_gemm(env, &a);
}

void op_pointwise(const kn_env *env, const kn_packed_a *w, const float *b, const float *x, int N, float *y,
                  kn_act act, int accumulate) {
    op_pointwise_ld(env, w, b, x, N, N, y, N, act, accumulate);
}

void op_pointwise_t(const kn_env *env, const void *w, gl_dtype wt, const float *b, int M, int K, const float *x,
                    int N, float *y, kn_act act, int accumulate) {
    op_pointwise_tq(env, w, wt, NULL, b, M, K, x, N, y, act, accumulate);
}

void op_pointwise_tq(const kn_env *env, const void *w, gl_dtype wt, const kn_qpacked *wq, const float *b, int M, int K,
                     const float *x, int N, float *y, kn_act act, int accumulate) {
    op_pointwise_tq_ld(env, w, wt, wq, b, M, K, x, N, N, y, N, act, accumulate, 0);
}

size_t op_pointwise_tq_ws(const kn_env *env, gl_dtype wt, int M, int K, int N) {
    if (!gl_dtype_is_quant(wt)) return kn_gemm_ws_size(env, M, N, K);
#if defined(__x86_64__)
    if (N >= KN_Q_DEQUANT_M && gl_cpu_has_avx512vnni(&env->cpu)) return kn_qgemm_avx512vnni_ws_size(env, N, M, K, 1);
#endif
    if (kn_q_dequant(N, M, K)) return (kn_gemm_ws_size(env, M, N, K) + 63) / 64 * 64 + (size_t)M * K * sizeof(float) + 64;
    return kn_qgemm_ws_size(env, N, K, 1);
}

void op_pointwise_tq_ld(const kn_env *env, const void *w, gl_dtype wt, const kn_qpacked *wq, const float *b, int M,
                        int K, const float *x, int64_t ldx, int N, float *y, int64_t ldy, kn_act act, int accumulate,
                        int int8_next) {
    if (!gl_dtype_is_quant(wt)) {
        kn_gemm_args a = {0};
        a.M = M; a.N = N; a.K = K;
        a.A = w; a.lda = K;
        a.B = x; a.ldb = ldx; a.b_type = GL_F32; a.trans_b = 0;
        a.C = y; a.ldc = ldy;
        a.bias_m = b; a.act = act; a.accumulate = accumulate;
        run_gemm(env, &a);
        return;
    }
#if defined(__x86_64__)
    /* int8 with 512-bit dpbusd, lanes over pixels, read straight from the map and written
     * straight into it: MobileCLIP2-S0 q8_0 image embedding 77 -> 44 ms (f32 63 ms), FastViTHD
     * vision 4.3-4.9 -> 2.3-2.6 CPU s, against dequantizing W for the f32 GEMM below */
    if (N >= KN_Q_DEQUANT_M && gl_cpu_has_avx512vnni(&env->cpu)) {
        kn_qgemm_args q = {0};
        q.M = N; q.N = M; q.K = K;
        q.A = x; q.lda = ldx; q.a_trans = 1;
        q.B = w; q.b_type = wt; q.Bq = wq && wq->p ? wq : NULL;
        q.C = y; q.ldc = ldy; q.c_trans = 1;
        q.bias_n = b; q.act = act; q.accumulate = accumulate; q.int8_next = int8_next;
        size_t n = kn_qgemm_avx512vnni_ws_size(env, q.M, q.N, K, 1);
        q.ws = kn_scratch_get(env, n);
        q.ws_size = q.ws ? n : 0;
        if (kn_qgemm_avx512vnni(env, &q) == 0) return;
    }
#endif
    /* (the 256-bit kn_qgemm_vnni takes this layout too, but measured slower here than dequantizing the
     * small W and running the f32 GEMM: gathering pixel rows and writing C transposed cost more
     * than the int8 products save) */
    if (kn_q_dequant(N, M, K)) {
        /* a map of N pixels: W (small next to the map) to f32 after the GEMM's workspace, then
         * the f32 product (qgemm.h: faster than int8 without int8 dot instructions) */
        size_t gws = kn_gemm_ws_size(env, M, N, K), off = (gws + 63) / 64 * 64;
        size_t need = off + (size_t)M * K * sizeof(float) + 64;
        void *tmp = NULL, *s = kn_scratch_get(env, need);
        if (!s) s = tmp = gl_aligned_alloc(64, need);
        if (s) {
            float *wf = (float *)(((uintptr_t)s + off + 63) & ~(uintptr_t)63);
            kn_dequant_rows(env, w, wt, M, K, wf);
            kn_gemm_args a = {0};
            a.M = M; a.N = N; a.K = K;
            a.A = wf; a.lda = K;
            a.B = x; a.ldb = ldx; a.b_type = GL_F32;
            a.C = y; a.ldc = ldy;
            a.bias_m = b; a.act = act; a.accumulate = accumulate;
            a.ws = s; a.ws_size = gws;
            kn_gemm(env, &a);
            gl_aligned_free(tmp);
            return;
        }
    }
    kn_qgemm_args q = {0};
    q.M = N; q.N = M; q.K = K;        /* pixels are the activation rows, channels the outputs */
    q.A = x; q.lda = ldx; q.a_trans = 1;
    q.B = w; q.b_type = wt;
    q.C = y; q.ldc = ldy; q.c_trans = 1;
    q.bias_n = b; q.act = act; q.accumulate = accumulate;
    size_t n = kn_qgemm_ws_size(env, q.M, K, 1);
    q.ws = kn_scratch_get(env, n);
    q.ws_size = q.ws ? n : 0;
    kn_qgemm(env, &q);
}

void op_linear(const kn_env *env, const float *x, int T, int in, const void *w, gl_dtype wt, const float *b,
               int out, float *y, kn_act act, int accumulate) {
    op_linear_q(env, x, T, in, w, wt, NULL, b, out, y, act, accumulate);
}

/* ---- sequence conv (MCt's 1 x 11 depthwise convs: ~0.1% of the text tower's work, so plain C) ---- */
void op_dwconv_seq(const kn_env *env, const float *x, int T, int C, const float *w, int k, const float *b, float *y) {
    (void)env;
    for (int t = 0; t < T; t++) {
        float *yt = y + (size_t)t * C;
        memcpy(yt, b, sizeof(float) * (size_t)C);
        for (int j = 0; j < k; j++) {
            int s = t + j - k / 2;
            if (s < 0 || s >= T) continue;
            const float *xs = x + (size_t)s * C, *wj = w + (size_t)j * C;
            for (int c = 0; c < C; c++) yt[c] += wj[c] * xs[c];
        }
    }
}

void op_linear_q(const kn_env *env, const float *x, int T, int in, const void *w, gl_dtype wt, const kn_qpacked *wq,
                 const float *b, int out, float *y, kn_act act, int accumulate) {
    kn_gemm_args a = {0};
    a.M = T; a.N = out; a.K = in;
    a.A = x; a.lda = in;
    a.B = w; a.ldb = in; a.b_type = wt; a.trans_b = 1; a.Bq = wq && wq->p ? wq : NULL;
    a.C = y; a.ldc = out;
    a.bias_n = b; a.act = act; a.accumulate = accumulate;
    run_gemm(env, &a);
}

void op_linear_p(const kn_env *env, const float *x, int T, const kn_packed_b *w, const float *b, float *y, kn_act act,
                 int accumulate) {
    kn_gemm_args a = {0};
    a.M = T; a.N = w->N; a.K = w->K;
    a.A = x; a.lda = w->K;
    a.Bp = w;
    a.C = y; a.ldc = w->N;
    a.bias_n = b; a.act = act; a.accumulate = accumulate;
    run_gemm(env, &a);
}

void op_linear_multi(const kn_env *env, const float *x, int T, int in, const op_lin *l, int n) {
    if (T > KN_GEMV_MAX_M || n > 8) {
        for (int i = 0; i < n; i++)
            op_linear(env, x, T, in, l[i].w, l[i].wt, l[i].b, l[i].out, l[i].y, l[i].act, l[i].accumulate);
        return;
    }
    kn_gemm_args a[8];
    memset(a, 0, sizeof a);
    for (int i = 0; i < n; i++) {
        a[i].M = T; a[i].N = l[i].out; a[i].K = in;
        a[i].A = x; a[i].lda = in;
        a[i].B = l[i].w; a[i].ldb = in; a[i].b_type = l[i].wt; a[i].trans_b = 1;
        a[i].C = l[i].y; a[i].ldc = l[i].out;
        a[i].bias_n = l[i].b; a[i].act = l[i].act; a[i].accumulate = l[i].accumulate;
    }
    kn_gemm_batch(env, a, n);
}

/* ---- elementwise ---- */
void op_gelu(const kn_env *env, float *x, size_t n) { kn_gelu(env, x, x, (int64_t)n); }
void op_add(const kn_env *env, float *x, const float *y, size_t n) { kn_add(env, x, y, x, (int64_t)n); }
void op_mul(const kn_env *env, float *x, const float *y, size_t n) { kn_mul(env, x, y, x, (int64_t)n); }

void op_mean_hw(const kn_env *env, const float *x, int C, int HW, float *out) {
    kn_global_avgpool(env, x, out, 1, C, HW);
}

void op_se(const kn_env *env, float *x, int C, int HW, const float *w1, const float *b1, int R, const float *w2,
           const float *b2, float *tmp) {
    float *m = tmp, *r = tmp + C;
    op_mean_hw(env, x, C, HW, m);
    for (int i = 0; i < R; i++) {
        float s = b1[i];
        for (int c = 0; c < C; c++) s += w1[(int64_t)i * C + c] * m[c];
        r[i] = s > 0 ? s : 0;
    }
    for (int c = 0; c < C; c++) {
        float s = b2[c];
        for (int i = 0; i < R; i++) s += w2[(int64_t)c * R + i] * r[i];
        m[c] = 1.0f / (1.0f + expf(-s));
    }
    kn_mul_ch(env, x, m, x, 1, C, HW);
}

void op_transpose(const kn_env *env, const float *x, int rows, int cols, float *y) {
    kn_transpose(env, x, y, 1, rows, cols);
}

void op_layernorm(const kn_env *env, const float *x, int rows, int n, const float *w, const float *b, float eps,
                  float *y) {
    kn_layernorm(env, x, y, w, b, rows, n, eps);
}

/* ---- attention ---- */
static kn_attn_args attn_args(const float *q, int64_t qs, const float *k, const float *v, int64_t kvs, int n_q,
                              int n_kv, int nh, int nkv, int hd, int causal, int64_t pos0, float *out) {
    kn_attn_args a = {0};
    a.n_q = n_q; a.n_kv = n_kv; a.n_heads = nh; a.n_kv_heads = nkv; a.head_dim = hd;
    a.scale = 1.0f / sqrtf((float)hd); a.causal = causal; a.pos0 = pos0;
    a.q = q; a.q_stride = qs; a.k = k; a.k_stride = kvs; a.v = v; a.v_stride = kvs;
    a.out = out; a.o_stride = (int64_t)nh * hd;
    return a;
}

static int run_attention(const kn_env *env, const kn_attn_args *a) {
    size_t n = kn_attention_ws_floats(env, a);
    void *tmp, *ws = ws_get(env, n * sizeof(float), &tmp);
    if (n && !ws) return GLIMPSE_ERR_NOMEM;
    int rc = kn_attention(env, a, ws, n);
    gl_aligned_free(tmp);
    return rc;
}

int op_attention(const kn_env *env, const float *qkv, int T, int n_head, int head_dim, int causal, float *out) {
    int64_t C = (int64_t)n_head * head_dim;
    kn_attn_args a = attn_args(qkv, 3 * C, qkv + C, qkv + 2 * C, 3 * C, T, T, n_head, n_head, head_dim, causal, 0, out);
    return run_attention(env, &a);
}

int op_attention_kv(const kn_env *env, const float *q, int n, const float *k, const float *v, int pos, int nh, int nkv,
                    int hd, float *out) {
    kn_attn_args a = attn_args(q, (int64_t)nh * hd, k, v, (int64_t)nkv * hd, n, pos + n, nh, nkv, hd, 1, pos, out);
    return run_attention(env, &a);
}

int op_attention_kvt(const kn_env *env, const float *q, int n, const float *k, const float *kt, int64_t kt_ld,
                     const float *v, int pos, int nh, int nkv, int hd, float *out) {
    kn_attn_args a = attn_args(q, (int64_t)nh * hd, k, v, (int64_t)nkv * hd, n, pos + n, nh, nkv, hd, 1, pos, out);
    a.kt = kt;
    a.kt_ld = kt_ld;
    return run_attention(env, &a);
}

void op_l2_normalize(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    if (s <= 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) x[i] *= inv;
}
