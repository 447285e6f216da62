/* ops.c — model-level ops. GEMM-shaped work goes to kn_gemm; the rest is plain C threaded over
 * channels/rows until the conv/nn kernel families take it over. */
#include "ops.h"

#include <math.h>
#include <string.h>

static float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
static float apply_act(kn_act a, float x) {
    switch (a) {
    case KN_ACT_RELU: return x > 0 ? x : 0;
    case KN_ACT_GELU: return gelu(x);
    case KN_ACT_SILU: return x / (1.0f + expf(-x));
    default: return x;
    }
}

/* ---- convolution ---- */
typedef struct { const op_conv *c; const float *x; int H, W, Ho, Wo; float *y; } conv_job;

static void conv_task(void *v, int ith, int nth) {
    const conv_job *j = v;
    const op_conv *c = j->c;
    int cig = c->cin / c->groups, cog = c->cout / c->groups, k = c->k, p = k / 2;
    int64_t lo, hi;
    gl_split(c->cout, ith, nth, &lo, &hi);
    for (int64_t o = lo; o < hi; o++) {
        int g = (int)(o / cog);
        float *yo = j->y + o * (int64_t)j->Ho * j->Wo;
        for (int i = 0; i < j->Ho * j->Wo; i++) yo[i] = c->b[o];
        for (int ci = 0; ci < cig; ci++) {
            const float *xc = j->x + (int64_t)(g * cig + ci) * j->H * j->W;
            const float *wk = c->w + ((int64_t)o * cig + ci) * k * k;
            for (int oy = 0; oy < j->Ho; oy++)
                for (int ky = 0; ky < k; ky++) {
                    int iy = oy * c->stride - p + ky;
                    if (iy < 0 || iy >= j->H) continue;
                    const float *xr = xc + (int64_t)iy * j->W;
                    float *yr = yo + (int64_t)oy * j->Wo;
                    for (int kx = 0; kx < k; kx++) {
                        float wv = wk[ky * k + kx];
                        for (int ox = 0; ox < j->Wo; ox++) {
                            int ix = ox * c->stride - p + kx;
                            if (ix >= 0 && ix < j->W) yr[ox] += wv * xr[ix];
                        }
                    }
                }
        }
        if (c->act != KN_ACT_NONE)
            for (int i = 0; i < j->Ho * j->Wo; i++) yo[i] = apply_act(c->act, yo[i]);
    }
}

size_t op_conv_ws_floats(const op_conv *c, int H, int W) { return 0; }

void op_conv2d(const kn_env *env, const op_conv *c, const float *x, int H, int W, float *y, float *ws) {
    int Ho = op_conv_out(H, c->k, c->stride), Wo = op_conv_out(W, c->k, c->stride);
    if (c->k == 1 && c->stride == 1 && c->groups == 1) {
        op_pointwise(env, c->w, c->b, c->cout, c->cin, x, H * W, y, c->act, 0);
        return;
    }
    conv_job j = {c, x, H, W, Ho, Wo, y};
    gl_pool_run(env->pool, conv_task, &j);
}

void op_pointwise(const kn_env *env, const float *w, const float *b, int M, int K, const float *x, int N,
                  float *y, kn_act act, int accumulate) {
    kn_gemm_args a = {0};
    a.M = M; a.N = N; a.K = K;
    a.A = w; a.lda = K;
    a.B = x; a.ldb = N; a.b_type = GL_F32; a.trans_b = 0;
    a.C = y; a.ldc = N;
    a.bias_m = b; a.act = act; a.accumulate = accumulate;
    kn_gemm(env, &a);
}

void op_linear(const kn_env *env, const float *x, int T, int in, const void *w, gl_dtype wt, const float *b,
               int out, float *y, kn_act act, int accumulate) {
    kn_gemm_args a = {0};
    a.M = T; a.N = out; a.K = in;
    a.A = x; a.lda = in;
    a.B = w; a.ldb = in; a.b_type = wt; a.trans_b = 1;
    a.C = y; a.ldc = out;
    a.bias_n = b; a.act = act; a.accumulate = accumulate;
    kn_gemm(env, &a);
}

/* ---- elementwise ---- */
typedef struct { float *x; const float *y; size_t n; int op; } ew_job;
static void ew_task(void *v, int ith, int nth) {
    ew_job *j = v;
    int64_t lo, hi;
    gl_split((int64_t)j->n, ith, nth, &lo, &hi);
    if (j->op == 0)
        for (int64_t i = lo; i < hi; i++) j->x[i] = gelu(j->x[i]);
    else if (j->op == 1)
        for (int64_t i = lo; i < hi; i++) j->x[i] += j->y[i];
    else
        for (int64_t i = lo; i < hi; i++) j->x[i] *= j->y[i];
}
void op_mul(const kn_env *env, float *x, const float *y, size_t n) {
    ew_job j = {x, y, n, 2};
    gl_pool_run(env->pool, ew_task, &j);
}
void op_gelu(const kn_env *env, float *x, size_t n) {
    ew_job j = {x, NULL, n, 0};
    gl_pool_run(env->pool, ew_task, &j);
}
void op_add(const kn_env *env, float *x, const float *y, size_t n) {
    ew_job j = {x, y, n, 1};
    gl_pool_run(env->pool, ew_task, &j);
}

void op_mean_hw(const kn_env *env, const float *x, int C, int HW, float *out) {
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int i = 0; i < HW; i++) s += x[(int64_t)c * HW + i];
        out[c] = (float)(s / HW);
    }
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
        float g = 1.0f / (1.0f + expf(-s));
        float *xc = x + (int64_t)c * HW;
        for (int i = 0; i < HW; i++) xc[i] *= g;
    }
}

void op_transpose(const kn_env *env, const float *x, int rows, int cols, float *y) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[(int64_t)c * rows + r] = x[(int64_t)r * cols + c];
}

typedef struct { const float *x; int rows, n; const float *w, *b; float eps; float *y; } ln_job;
static void ln_task(void *v, int ith, int nth) {
    ln_job *j = v;
    int64_t lo, hi;
    gl_split(j->rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * j->n;
        float *y = j->y + r * j->n;
        double s = 0, ss = 0;
        for (int i = 0; i < j->n; i++) s += x[i];
        double mean = s / j->n;
        for (int i = 0; i < j->n; i++) ss += (x[i] - mean) * (x[i] - mean);
        float inv = (float)(1.0 / sqrt(ss / j->n + j->eps));
        for (int i = 0; i < j->n; i++) y[i] = (float)(x[i] - mean) * inv * j->w[i] + j->b[i];
    }
}
void op_layernorm(const kn_env *env, const float *x, int rows, int n, const float *w, const float *b, float eps,
                  float *y) {
    ln_job j = {x, rows, n, w, b, eps, y};
    gl_pool_run(env->pool, ln_task, &j);
}

/* ---- attention ---- */
typedef struct { const float *qkv; int T, nh, hd, causal; float *out, *ws; } att_job;
static void att_task(void *v, int ith, int nth) {
    att_job *j = v;
    int C = j->nh * j->hd, ld = 3 * C;
    float scale = 1.0f / sqrtf((float)j->hd);
    float *s = j->ws + (int64_t)ith * j->T;
    int64_t lo, hi;
    gl_split((int64_t)j->nh * j->T, ith, nth, &lo, &hi);
    for (int64_t idx = lo; idx < hi; idx++) {
        int h = (int)(idx / j->T), t = (int)(idx % j->T);
        const float *q = j->qkv + (int64_t)t * ld + h * j->hd;
        int n = j->causal ? t + 1 : j->T;
        float mx = -INFINITY;
        for (int u = 0; u < n; u++) {
            const float *k = j->qkv + (int64_t)u * ld + C + h * j->hd;
            float d = 0;
            for (int i = 0; i < j->hd; i++) d += q[i] * k[i];
            s[u] = d * scale;
            if (s[u] > mx) mx = s[u];
        }
        float sum = 0;
        for (int u = 0; u < n; u++) { s[u] = expf(s[u] - mx); sum += s[u]; }
        float inv = 1.0f / sum;
        float *o = j->out + (int64_t)t * C + h * j->hd;
        for (int i = 0; i < j->hd; i++) o[i] = 0;
        for (int u = 0; u < n; u++) {
            const float *vv = j->qkv + (int64_t)u * ld + 2 * C + h * j->hd;
            float p = s[u] * inv;
            for (int i = 0; i < j->hd; i++) o[i] += p * vv[i];
        }
    }
}
size_t op_attention_ws_floats(int T, int n_head, int n_threads) { return (size_t)T * (size_t)n_threads; }
void op_attention(const kn_env *env, const float *qkv, int T, int n_head, int head_dim, int causal, float *out,
                  float *ws) {
    att_job j = {qkv, T, n_head, head_dim, causal, out, ws};
    gl_pool_run(env->pool, att_task, &j);
}

typedef struct { const float *q, *k, *v; int n, pos, nh, nkv, hd; float *out, *ws; } attkv_job;
static void attkv_task(void *vj, int ith, int nth) {
    attkv_job *j = vj;
    int qd = j->nh * j->hd, kd = j->nkv * j->hd, grp = j->nh / j->nkv;
    float scale = 1.0f / sqrtf((float)j->hd);
    float *s = j->ws + (int64_t)ith * (j->pos + j->n);
    int64_t lo, hi;
    gl_split((int64_t)j->nh * j->n, ith, nth, &lo, &hi);
    for (int64_t idx = lo; idx < hi; idx++) {
        int h = (int)(idx / j->n), t = (int)(idx % j->n), kvh = h / grp;
        const float *q = j->q + (int64_t)t * qd + h * j->hd;
        int nk = j->pos + t + 1;
        float mx = -INFINITY;
        for (int u = 0; u < nk; u++) {
            const float *k = j->k + (int64_t)u * kd + kvh * j->hd;
            float d = 0;
            for (int i = 0; i < j->hd; i++) d += q[i] * k[i];
            s[u] = d * scale;
            if (s[u] > mx) mx = s[u];
        }
        float sum = 0;
        for (int u = 0; u < nk; u++) { s[u] = expf(s[u] - mx); sum += s[u]; }
        float inv = 1.0f / sum;
        float *o = j->out + (int64_t)t * qd + h * j->hd;
        for (int i = 0; i < j->hd; i++) o[i] = 0;
        for (int u = 0; u < nk; u++) {
            const float *vv = j->v + (int64_t)u * kd + kvh * j->hd;
            float p = s[u] * inv;
            for (int i = 0; i < j->hd; i++) o[i] += p * vv[i];
        }
    }
}
void op_attention_kv(const kn_env *env, const float *q, int n, const float *k, const float *v, int pos, int nh,
                     int nkv, int hd, float *out, float *ws) {
    attkv_job j = {q, k, v, n, pos, nh, nkv, hd, out, ws};
    gl_pool_run(env->pool, attkv_task, &j);
}

void op_l2_normalize(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    if (s <= 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) x[i] *= inv;
}
