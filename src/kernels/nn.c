/* nn.c — dispatch and threading for nn.h. Memory-bound elementwise ops (add, mul, scale,
 * per-channel scale) are plain C here (the compiler vectorises them; they run at bandwidth);
 * ops with transcendental functions or reductions go to the ISA row kernels. */
#include "nn.h"

#include <math.h>

typedef struct isa {
    void (*act)(kn_act, const float *, float *, int64_t);
    void (*ln)(const float *, float *, const float *, const float *, int64_t, float);
    void (*rms)(const float *, float *, const float *, int64_t, float);
    void (*softmax)(const float *, float *, int64_t);
    float (*dot)(const float *, const float *, int64_t);
    void (*axpy)(float *, float, const float *, int64_t);
    void (*lnch)(const float *, float *, const float *, const float *, int64_t, int64_t, int64_t, int64_t, float);
} isa;

static isa pick(const kn_env *env) {
    isa f = {kn_act_scalar, kn_layernorm_row_scalar, kn_rmsnorm_row_scalar, kn_softmax_row_scalar,
             kn_dot_scalar, kn_axpy_scalar, kn_layernorm_ch_scalar};
#if defined(__x86_64__)
    if (kn_use_avx2(env)) {
        isa a = {kn_act_avx2, kn_layernorm_row_avx2, kn_rmsnorm_row_avx2, kn_softmax_row_avx2,
                 kn_dot_avx2, kn_axpy_avx2, kn_layernorm_ch_avx2};
        f = a;
    }
#elif defined(__aarch64__)
    if (kn_use_neon(env)) {
        isa a = {kn_act_neon, kn_layernorm_row_neon, kn_rmsnorm_row_neon, kn_softmax_row_neon,
                 kn_dot_neon, kn_axpy_neon, kn_layernorm_ch_neon};
        f = a;
    }
#endif
    return f;
}

/* The next part of a range (gl_grab), in 16-element units so threads never share a cache line
 * of y. */
static bool grab16(atomic_llong *next, int64_t n, int nth, int64_t *lo, int64_t *hi) {
    int64_t u = (n + 15) / 16;
    if (!gl_grab(next, u, gl_grain(u, nth, 64), lo, hi)) return false;
    *lo = GL_MIN(*lo * 16, n);
    *hi = GL_MIN(*hi * 16, n);
    return true;
}

/* ---- elementwise ------------------------------------------------------------------------- */

enum { EW_ACT, EW_ADD, EW_MUL, EW_SCALE, EW_SWIGLU };

typedef struct ew_job {
    int op;
    kn_act act;
    const float *a, *b;
    float *y;
    float s;
    int64_t n;
    isa f;
    atomic_llong next;
} ew_job;

static void ew_task(void *v, int ith, int nth) {
    ew_job *j = v;
    int64_t lo, hi;
    const float *a = j->a, *b = j->b;
    float *y = j->y;
    (void)ith;
    while (grab16(&j->next, j->n, nth, &lo, &hi)) switch (j->op) {
    case EW_ACT: j->f.act(j->act, a + lo, y + lo, hi - lo); break;
    case EW_ADD: for (int64_t i = lo; i < hi; i++) y[i] = a[i] + b[i]; break;
    case EW_MUL: for (int64_t i = lo; i < hi; i++) y[i] = a[i] * b[i]; break;
    case EW_SCALE: for (int64_t i = lo; i < hi; i++) y[i] = a[i] * j->s; break;
    case EW_SWIGLU:
        /* silu(g) in place in y first (y may alias g or u only if it aliases exactly) */
        for (int64_t i0 = lo; i0 < hi; i0 += 256) {
            int64_t cnt = GL_MIN((int64_t)256, hi - i0);
            float t[256];
            j->f.act(KN_ACT_SILU, a + i0, t, cnt);
            for (int64_t i = 0; i < cnt; i++) y[i0 + i] = t[i] * b[i0 + i];
        }
        break;
    }
}

static void ew_run(const kn_env *env, int op, kn_act act, const float *a, const float *b, float *y,
                   float s, int64_t n) {
    if (n <= 0) return;
    ew_job j = {op, act, a, b, y, s, n, pick(env), 0};
    if (n < 16384) ew_task(&j, 0, 1); /* not worth waking threads (a few microseconds) */
    else gl_pool_run(env->pool, ew_task, &j);
}

void kn_act_apply(const kn_env *env, kn_act act, const float *x, float *y, int64_t n) {
    ew_run(env, EW_ACT, act, x, NULL, y, 0, n);
}
void kn_gelu(const kn_env *env, const float *x, float *y, int64_t n) { kn_act_apply(env, KN_ACT_GELU, x, y, n); }
void kn_gelu_tanh(const kn_env *env, const float *x, float *y, int64_t n) { kn_act_apply(env, KN_ACT_GELU_TANH, x, y, n); }
void kn_silu(const kn_env *env, const float *x, float *y, int64_t n) { kn_act_apply(env, KN_ACT_SILU, x, y, n); }
void kn_relu(const kn_env *env, const float *x, float *y, int64_t n) { kn_act_apply(env, KN_ACT_RELU, x, y, n); }
void kn_add(const kn_env *env, const float *a, const float *b, float *y, int64_t n) { ew_run(env, EW_ADD, 0, a, b, y, 0, n); }
void kn_mul(const kn_env *env, const float *a, const float *b, float *y, int64_t n) { ew_run(env, EW_MUL, 0, a, b, y, 0, n); }
void kn_scale(const kn_env *env, const float *x, float s, float *y, int64_t n) { ew_run(env, EW_SCALE, 0, x, NULL, y, s, n); }
void kn_swiglu(const kn_env *env, const float *g, const float *u, float *y, int64_t n) { ew_run(env, EW_SWIGLU, 0, g, u, y, 0, n); }

void kn_sigmoid(const kn_env *env, const float *x, float *y, int64_t n) {
    kn_act_apply(env, KN_ACT_SIGMOID, x, y, n);
}

/* ---- per-channel ------------------------------------------------------------------------- */

typedef struct ch_job {
    const float *x, *f, *g;
    float *y;
    int64_t N, C, HW;
    int mul;
    atomic_llong next;
} ch_job;

static void ch_task(void *v, int ith, int nth) {
    ch_job *j = v;
    int64_t lo, hi;
    (void)ith;
    while (gl_grab(&j->next, j->N * j->C, gl_grain(j->N * j->C, nth, 1), &lo, &hi))
        for (int64_t r = lo; r < hi; r++) {
            const float *x = j->x + r * j->HW;
            float *y = j->y + r * j->HW;
            if (j->mul) {
                float s = j->g[r];
                for (int64_t i = 0; i < j->HW; i++) y[i] = x[i] * s;
            } else {
                const float *f = j->f + r * j->HW;
                float s = j->g ? j->g[r % j->C] : 1.0f;
                for (int64_t i = 0; i < j->HW; i++) y[i] = x[i] + s * f[i];
            }
        }
}

void kn_add_scaled_ch(const kn_env *env, const float *x, const float *f, const float *gamma,
                      float *y, int64_t N, int64_t C, int64_t HW) {
    ch_job j = {x, f, gamma, y, N, C, HW, 0, 0};
    gl_pool_run(env->pool, ch_task, &j);
}

void kn_mul_ch(const kn_env *env, const float *x, const float *s, float *y, int64_t N, int64_t C,
               int64_t HW) {
    ch_job j = {x, NULL, s, y, N, C, HW, 1, 0};
    gl_pool_run(env->pool, ch_task, &j);
}

/* ---- row ops ----------------------------------------------------------------------------- */

enum { ROW_LN, ROW_RMS, ROW_SOFTMAX, ROW_L2 };

typedef struct row_job {
    int op;
    const float *x, *w, *b;
    float *y;
    int64_t rows, n;
    float eps;
    isa f;
    atomic_llong next;
} row_job;

static void row_task(void *v, int ith, int nth) {
    row_job *j = v;
    int64_t lo, hi;
    (void)ith;
    while (gl_grab(&j->next, j->rows, gl_grain(j->rows, nth, 1), &lo, &hi))
        for (int64_t r = lo; r < hi; r++) {
            const float *x = j->x + r * j->n;
            float *y = j->y + r * j->n;
            switch (j->op) {
            case ROW_LN: j->f.ln(x, y, j->w, j->b, j->n, j->eps); break;
            case ROW_RMS: j->f.rms(x, y, j->w, j->n, j->eps); break;
            case ROW_SOFTMAX: j->f.softmax(x, y, j->n); break;
            case ROW_L2: {
                float nrm = sqrtf(j->f.dot(x, x, j->n));
                float inv = 1.0f / (nrm > j->eps ? nrm : j->eps);
                for (int64_t i = 0; i < j->n; i++) y[i] = x[i] * inv;
                break;
            }
            }
        }
}

static void row_run(const kn_env *env, int op, const float *x, float *y, const float *w,
                    const float *b, int64_t rows, int64_t n, float eps) {
    if (rows <= 0 || n <= 0) return;
    row_job j = {op, x, w, b, y, rows, n, eps, pick(env), 0};
    /* under ~20 us of work (a 77-token text tower's LayerNorm: 11 us alone, 17 us split over 2
     * cores) waking the other threads costs more than they save */
    if (rows * n < 65536) row_task(&j, 0, 1);
    else gl_pool_run(env->pool, row_task, &j);
}

void kn_layernorm(const kn_env *env, const float *x, float *y, const float *w, const float *b,
                  int64_t rows, int64_t n, float eps) {
    row_run(env, ROW_LN, x, y, w, b, rows, n, eps);
}
void kn_ln_merge(const float *st, int64_t rows, int64_t nb, int64_t bs, float eps, float *out) {
    const float n = (float)(nb * bs);
    for (int64_t r = 0; r < rows; r++) {
        const float *p = st + 2 * r;
        float sum = 0.0f, m2 = 0.0f;
        for (int64_t b = 0; b < nb; b++) sum += p[2 * b * rows];
        const float mean = sum / n;
        for (int64_t b = 0; b < nb; b++) {
            const float dm = p[2 * b * rows] / (float)bs - mean;
            m2 += p[2 * b * rows + 1] + (float)bs * dm * dm;
        }
        out[2 * r] = mean;
        out[2 * r + 1] = 1.0f / sqrtf(m2 / n + eps);
    }
}
void kn_rmsnorm(const kn_env *env, const float *x, float *y, const float *w, int64_t rows,
                int64_t n, float eps) {
    row_run(env, ROW_RMS, x, y, w, NULL, rows, n, eps);
}
void kn_softmax(const kn_env *env, const float *x, float *y, int64_t rows, int64_t n) {
    row_run(env, ROW_SOFTMAX, x, y, NULL, NULL, rows, n, 0);
}
void kn_l2norm(const kn_env *env, const float *x, float *y, int64_t rows, int64_t n, float eps) {
    row_run(env, ROW_L2, x, y, NULL, NULL, rows, n, eps);
}

typedef struct lnch_job {
    const float *x, *w, *b;
    float *y;
    int64_t N, C, HW;
    float eps;
    isa f;
} lnch_job;

static void lnch_task(void *v, int ith, int nth) {
    const lnch_job *j = v;
    /* split over (image, 64-pixel block) so small maps still use all threads */
    int64_t nb = (j->HW + 63) / 64, lo, hi;
    gl_split(j->N * nb, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        int64_t n = t / nb, p0 = t % nb * 64, p1 = GL_MIN(p0 + 64, j->HW);
        j->f.lnch(j->x + n * j->C * j->HW, j->y + n * j->C * j->HW, j->w, j->b, j->C, j->HW, p0, p1, j->eps);
    }
}

void kn_layernorm_ch(const kn_env *env, const float *x, float *y, const float *w, const float *b,
                     int64_t N, int64_t C, int64_t HW, float eps) {
    lnch_job j = {x, w, b, y, N, C, HW, eps, pick(env)};
    gl_pool_run(env->pool, lnch_task, &j);
}

typedef struct tr_job {
    const float *x;
    float *y;
    int64_t batch, rows, cols;
} tr_job;

static void tr_task(void *v, int ith, int nth) {
    const tr_job *j = v;
    /* 32×32 tiles; split over (batch, tile row) */
    int64_t tr = (j->rows + 31) / 32, lo, hi;
    gl_split(j->batch * tr, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        int64_t bi = t / tr, r0 = t % tr * 32, r1 = GL_MIN(r0 + 32, j->rows);
        const float *x = j->x + bi * j->rows * j->cols;
        float *y = j->y + bi * j->rows * j->cols;
        for (int64_t c0 = 0; c0 < j->cols; c0 += 32) {
            int64_t c1 = GL_MIN(c0 + 32, j->cols);
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) y[c * j->rows + r] = x[r * j->cols + c];
        }
    }
}

void kn_transpose(const kn_env *env, const float *x, float *y, int64_t batch, int64_t rows,
                  int64_t cols) {
    tr_job j = {x, y, batch, rows, cols};
    gl_pool_run(env->pool, tr_task, &j);
}

/* ---- attention --------------------------------------------------------------------------- */

static bool attn_ok(const kn_attn_args *a) {
    return a && a->q && a->k && a->v && a->out && a->n_q >= 0 && a->n_kv >= 0 && a->n_heads > 0 &&
           a->n_kv_heads > 0 && a->n_heads % a->n_kv_heads == 0 && a->head_dim > 0 &&
           (!a->kt || (a->kt_ld % 16 == 0 && a->kt_ld >= ((a->n_kv + 15) & ~(int64_t)15)));
}

/* Queries per task of the blocked path: K is packed transposed once per (head, chunk). */
#define ATTN_QCH 64
static bool attn_blocked(const kn_attn_args *a) { return a->n_q >= 8; }
/* Decode with grouped-query heads: the heads sharing one K/V head are the block's queries. */
static bool attn_grouped(const kn_attn_args *a) { return a->n_q < 8 && a->n_heads / a->n_kv_heads >= 2; }
/* Row stride of K^T and of the scores scratch (kn_attn_blk uses one for both). */
static int64_t attn_ldkt(const kn_attn_args *a) {
    return a->kt ? a->kt_ld : (GL_MAX(a->n_kv, (int64_t)1) + 15) & ~(int64_t)15;
}

size_t kn_attention_ws_floats(const kn_env *env, const kn_attn_args *a) {
    size_t per = attn_blocked(a) || attn_grouped(a)
                     ? (size_t)((a->kt ? 0 : a->head_dim) + KN_ATTN_QB) * (size_t)attn_ldkt(a) + 16
                                 : (size_t)(a->n_kv > 0 ? a->n_kv : 1) + 16;
    return per * (size_t)gl_pool_size(env->pool);
}

size_t kn_attention_ws_floats_max(int64_t n_kv, int head_dim, int n_threads) {
    const size_t ld = (size_t)((GL_MAX(n_kv, (int64_t)1) + 15) & ~(int64_t)15);
    return ((size_t)(head_dim + KN_ATTN_QB) * ld + 16 + (size_t)GL_MAX(n_kv, (int64_t)1) + 16) * (size_t)GL_MAX(n_threads, 1);
}

typedef struct attn_job {
    const kn_attn_args *a;
    float *ws;
    size_t ws_per;
    isa f;
    void (*blk)(const kn_attn_blk *);
    int avx512; /* K^T packed by kn_attn_pack_kt_avx512 */
} attn_job;

static int64_t attn_lim(const kn_attn_args *a, int64_t i) {
    if (!a->causal) return a->n_kv;
    return GL_MIN(a->n_kv, GL_MAX((int64_t)0, a->pos0 + i + 1));
}

/* one query at a time: dot products against K rows, softmax, axpy of V rows (decode) */
static void attn_task_dot(void *v, int ith, int nth) {
    const attn_job *j = v;
    const kn_attn_args *a = j->a;
    const int hd = a->head_dim, grp = a->n_heads / a->n_kv_heads;
    float *sc = j->ws + (size_t)ith * j->ws_per;
    int64_t lo, hi;
    /* tasks ordered head-major so a thread's queries share one head's K/V in cache */
    gl_split((int64_t)a->n_heads * a->n_q, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        int64_t h = t / a->n_q, i = t % a->n_q, kvh = h / grp;
        const float *q = a->q + i * a->q_stride + h * hd;
        float *o = a->out + i * a->o_stride + h * hd;
        int64_t lim = attn_lim(a, i);
        memset(o, 0, (size_t)hd * sizeof(float));
        if (lim <= 0) continue;
        const float *kb = a->k + kvh * hd, *vb = a->v + kvh * hd;
        for (int64_t jj = 0; jj < lim; jj++) sc[jj] = a->scale * j->f.dot(q, kb + jj * a->k_stride, hd);
        j->f.softmax(sc, sc, lim);
        for (int64_t jj = 0; jj < lim; jj++) j->f.axpy(o, sc[jj], vb + jj * a->v_stride, hd);
    }
}

/* K^T of kv head kvh, positions [0, n) padded to a multiple of 16 with zeros: [hd, ldkt]. */
static void pack_kt(const kn_attn_args *a, int64_t kvh, int64_t n, int64_t ldkt, float *kt, int avx512) {
    const int hd = a->head_dim;
#if defined(__x86_64__)
    if (avx512) {
        kn_attn_pack_kt_avx512(a->k + kvh * hd, a->k_stride, hd, n, ldkt, kt);
        return;
    }
#endif
    (void)avx512;
    int64_t n16 = (n + 15) & ~(int64_t)15;
    const float *kb = a->k + kvh * hd;
    for (int d = 0; d < hd; d++) {
        float *row = kt + (int64_t)d * ldkt;
        for (int64_t jj = 0; jj < n; jj++) row[jj] = kb[jj * a->k_stride + d];
        for (int64_t jj = n; jj < n16; jj++) row[jj] = 0;
    }
}

/* (kv head, query) tasks: K^T packed once, the group's heads in blocks of KN_ATTN_QB (decode
 * of a GQA model: one pass over each K/V row serves the whole group, with no call per row). */
static void attn_task_grp(void *v, int ith, int nth) {
    const attn_job *j = v;
    const kn_attn_args *a = j->a;
    const int hd = a->head_dim, grp = a->n_heads / a->n_kv_heads;
    const int64_t ldkt = attn_ldkt(a);
    float *kt = j->ws + (size_t)ith * j->ws_per, *sc = a->kt ? kt : kt + (size_t)hd * ldkt;
    int64_t lo, hi;
    gl_split((int64_t)a->n_kv_heads * a->n_q, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        int64_t kvh = t / a->n_q, i = t % a->n_q, lim = attn_lim(a, i);
        float *o = a->out + i * a->o_stride + kvh * grp * hd;
        if (lim <= 0) {
            memset(o, 0, (size_t)grp * hd * sizeof(float));
            continue;
        }
        const float *ktp = kt;
        int64_t ld = ldkt;
        if (a->kt) ktp = a->kt + kvh * hd * a->kt_ld, ld = a->kt_ld;
        else pack_kt(a, kvh, lim, ldkt, kt, j->avx512);
        int64_t lims[KN_ATTN_QB];
        for (int r = 0; r < KN_ATTN_QB; r++) lims[r] = lim;
        for (int h = 0; h < grp; h += KN_ATTN_QB) {
            int nq = GL_MIN(KN_ATTN_QB, grp - h);
            kn_attn_blk b = {a->q + i * a->q_stride + (kvh * grp + h) * hd, hd, nq, ktp, ld,
                             a->v + kvh * hd, a->v_stride, lims, hd, a->scale, sc, o + (int64_t)h * hd, hd};
            j->blk(&b);
        }
    }
}

/* (head, chunk of ATTN_QCH queries) tasks: pack K^T, then blocks of KN_ATTN_QB queries */
static void attn_task_blk(void *v, int ith, int nth) {
    const attn_job *j = v;
    const kn_attn_args *a = j->a;
    const int hd = a->head_dim, grp = a->n_heads / a->n_kv_heads;
    /* up to 2 chunks' worth of queries stay one task per head: a 77-token text tower had a
     * 64-query and a 13-query task per head, and each packed K^T again */
    const int64_t ldkt = attn_ldkt(a), nch = a->n_q <= 2 * ATTN_QCH ? 1 : (a->n_q + ATTN_QCH - 1) / ATTN_QCH;
    float *kt = j->ws + (size_t)ith * j->ws_per, *sc = a->kt ? kt : kt + (size_t)hd * ldkt;
    int64_t lo, hi;
    gl_split((int64_t)a->n_heads * nch, ith, nth, &lo, &hi);
    int64_t packed_kvh = -1, packed_n = 0;
    for (int64_t t = lo; t < hi; t++) {
        int64_t h = t / nch, i0 = t % nch * ATTN_QCH, i1 = nch == 1 ? a->n_q : GL_MIN(i0 + ATTN_QCH, a->n_q), kvh = h / grp;
        int64_t need = attn_lim(a, i1 - 1); /* lim grows with i */
        const float *ktp = kt;
        int64_t ld = ldkt;
        if (a->kt) {
            ktp = a->kt + kvh * hd * a->kt_ld, ld = a->kt_ld;
        } else if (kvh != packed_kvh || need > packed_n) {
            pack_kt(a, kvh, need, ldkt, kt, j->avx512);
            packed_kvh = kvh;
            packed_n = need;
        }
        for (int64_t i = i0; i < i1;) {
            int64_t lim0 = attn_lim(a, i);
            if (lim0 <= 0) { /* fully masked query */
                memset(a->out + i * a->o_stride + h * hd, 0, (size_t)hd * sizeof(float));
                i++;
                continue;
            }
            int nq = (int)GL_MIN((int64_t)KN_ATTN_QB, i1 - i);
            int64_t lims[KN_ATTN_QB];
            for (int r = 0; r < nq; r++) lims[r] = attn_lim(a, i + r);
            kn_attn_blk b = {a->q + i * a->q_stride + h * hd, a->q_stride, nq, ktp, ld,
                             a->v + kvh * hd, a->v_stride, lims, hd, a->scale, sc,
                             a->out + i * a->o_stride + h * hd, a->o_stride};
            j->blk(&b);
            i += nq;
        }
    }
}

int kn_attention(const kn_env *env, const kn_attn_args *a, float *ws, size_t ws_floats) {
    if (!attn_ok(a)) return GLIMPSE_ERR_INVALID_ARG;
    size_t need = kn_attention_ws_floats(env, a);
    if (!ws || ws_floats < need) return GLIMPSE_ERR_INVALID_ARG;
    if (a->n_q == 0) return GLIMPSE_OK;
    attn_job j = {a, ws, need / (size_t)gl_pool_size(env->pool), pick(env), NULL, 0};
#if defined(__x86_64__)
    if (kn_use_avx2(env)) j.blk = kn_use_avx512(env) ? kn_attn_blk_avx512 : kn_attn_blk_avx2;
    j.avx512 = kn_use_avx512(env);
#endif
    if (!kn_use_avx2(env) && !kn_use_neon(env)) j.blk = kn_attn_blk_scalar;
    void (*task)(void *, int, int) = attn_blocked(a) && j.blk   ? attn_task_blk
                                     : attn_grouped(a) && j.blk ? attn_task_grp
                                                                : attn_task_dot;
    /* a decode step over a short context is a few microseconds of work: less than waking and
     * joining the other threads costs */
    if (a->n_q * a->n_kv * a->n_heads * a->head_dim < ((int64_t)1 << 18)) task(&j, 0, 1);
    else gl_pool_run(env->pool, task, &j);
    return GLIMPSE_OK;
}

/* ---- RoPE -------------------------------------------------------------------------------- */

typedef struct rope_job {
    float *x;
    int64_t n_tok, stride;
    int n_heads, hd;
    const int64_t *pos;
    double base;
} rope_job;

static void rope_task(void *v, int ith, int nth) {
    const rope_job *j = v;
    int half = j->hd / 2;
    int64_t lo, hi;
    gl_split(j->n_tok, ith, nth, &lo, &hi);
    float cs[512], sn[512]; /* head_dim <= 1024 */
    for (int64_t t = lo; t < hi; t++) {
        for (int i = 0; i < half; i++) {
            double inv = pow(j->base, -2.0 * i / (double)j->hd);
            double ang = (double)j->pos[t] * inv;
            cs[i] = (float)cos(ang);
            sn[i] = (float)sin(ang);
        }
        for (int h = 0; h < j->n_heads; h++) {
            float *x = j->x + t * j->stride + (int64_t)h * j->hd;
            for (int i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half];
                x[i] = x1 * cs[i] - x2 * sn[i];
                x[i + half] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

void kn_rope(const kn_env *env, float *x, int64_t n_tok, int64_t stride, int n_heads,
             int head_dim, const int64_t *pos, double theta_base) {
    if (n_tok <= 0 || head_dim < 2 || head_dim > 1024) return;
    rope_job j = {x, n_tok, stride, n_heads, head_dim, pos, theta_base};
    gl_pool_run(env->pool, rope_task, &j);
}
