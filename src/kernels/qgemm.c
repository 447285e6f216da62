/* qgemm.c — the quantized-weight product driver (see qgemm.h): quantize the activations, then
 * split the weight rows (N) over the pool.
 *
 * Per thread: its rows of B in chunks of ~32 KB (L1/L2-resident while they are used); each
 * chunk runs against all activation rows, 4 at a time (dot with nx = 4), so with M > 1 every
 * weight block is read from memory once and unpacked once per 4 activation rows. Bias,
 * accumulate and then the activation (the GEMM's vector act_tile) are applied per chunk. */
#include "qgemm.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define KN_Q_CHUNK_BYTES (32 << 10)
#define KN_Q_TRANS_ROWS 16 /* a_trans: rows gathered at a time before quantizing */

const kn_quant_isa *kn_quant_pick(const kn_env *env) {
#if defined(__x86_64__)
    if (gl_cpu_has_avx512vnni(&env->cpu)) return &kn_quant_isa_avx512vnni;
    if (kn_use_avx2(env)) return env->cpu.avxvnni ? &kn_quant_isa_vnni : &kn_quant_isa_avx2;
#endif
#if defined(__aarch64__)
    if (kn_use_neon(env)) return env->cpu.dotprod ? &kn_quant_isa_dotprod : &kn_quant_isa_neon;
#endif
    (void)env;
    return &kn_quant_isa_scalar;
}

static size_t row_bytes(gl_dtype t, int64_t K) {
    return (size_t)(K / GL_QK) * (t == GL_Q8_0 ? sizeof(gl_block_q8_0) : sizeof(gl_block_q4_0));
}

static size_t trans_floats(int64_t K) { return (size_t)KN_Q_TRANS_ROWS * (size_t)K; }

size_t kn_qgemm_ws_size(const kn_env *env, int64_t M, int64_t K, int a_trans) {
    if (M <= 0 || K <= 0) return 0;
    size_t n = (size_t)M * (size_t)(K / GL_QK) * sizeof(kn_block_q8a) + 64;
    if (a_trans) n += (size_t)gl_pool_size(env->pool) * (trans_floats(K) * sizeof(float) + 64);
    return n;
}

typedef struct qjob {
    const kn_qgemm_args *a;
    const kn_quant_isa *isa;
    const kn_gemm_isa *act;
    kn_block_q8a *xq; /* [M, K/32] */
    float *tbuf;      /* a_trans: per-thread gather buffers */
    int64_t m0, m1;   /* rows of A quantized into xq (row m at xq + (m - m0) * nb) */
} qjob;

/* Quantizes rows [lo, hi) of A (relative to j->m0) into xq. */
static void quant_rows(const qjob *j, int64_t lo, int64_t hi, float *tmp) {
    const kn_qgemm_args *a = j->a;
    int64_t nb = a->K / GL_QK;
    if (!a->a_trans) {
        for (int64_t m = lo; m < hi; m++) j->isa->quantize_act(a->A + (j->m0 + m) * a->lda, j->xq + m * nb, nb);
        return;
    }
    /* a [K, M] map: gather KN_Q_TRANS_ROWS columns at a time (whole cache lines per k) */
    for (int64_t m = lo; m < hi; m += KN_Q_TRANS_ROWS) {
        int64_t r = GL_MIN(KN_Q_TRANS_ROWS, hi - m);
        for (int64_t k = 0; k < a->K; k++) {
            const float *src = a->A + k * a->lda + j->m0 + m;
            for (int64_t i = 0; i < r; i++) tmp[i * a->K + k] = src[i];
        }
        for (int64_t i = 0; i < r; i++) j->isa->quantize_act(tmp + i * a->K, j->xq + (m + i) * nb, nb);
    }
}

static void run_quant(void *v, int ith, int nth) {
    const qjob *j = v;
    int64_t lo, hi;
    gl_split(j->m1 - j->m0, ith, nth, &lo, &hi);
    if (lo < hi) quant_rows(j, lo, hi, j->tbuf ? j->tbuf + (size_t)ith * (trans_floats(j->a->K) + 16) : NULL);
}

/* Rows [n0, n1) of B against the quantized rows [m0, m1) of A. */
static void dot_rows(const qjob *j, int64_t n0, int64_t n1) {
    const kn_qgemm_args *a = j->a;
    int64_t nb = a->K / GL_QK;
    size_t rb = row_bytes(a->b_type, a->K);
    int64_t chunk = GL_MAX(4, (int64_t)(KN_Q_CHUNK_BYTES / rb) / 4 * 4); /* whole 4-row decode steps */
    void (*dot)(int64_t, const void *, const kn_block_q8a *, int64_t, int, float *) =
        a->b_type == GL_Q8_0 ? j->isa->dot_q8_0 : j->isa->dot_q4_0;
    void (*dot4)(int64_t, const void *, size_t, const kn_block_q8a *, float *) =
        a->b_type == GL_Q8_0 ? j->isa->dot4_q8_0 : j->isa->dot4_q4_0;
    for (int64_t c0 = n0; c0 < n1; c0 += chunk) {
        int64_t c1 = GL_MIN(n1, c0 + chunk);
        if (j->m1 - j->m0 == 1 && dot4) { /* decode: 4 weight rows per pass over the activations */
            float *crow = a->c_trans ? NULL : &a->C[j->m0 * a->ldc];
            for (int64_t n = c0; n < c1; n += 4) {
                float o[4];
                int r = (int)GL_MIN(4, c1 - n);
                if (r == 4) dot4(nb, (const uint8_t *)a->B + (size_t)n * rb, rb, j->xq, o);
                else
                    for (int i = 0; i < r; i++) dot(nb, (const uint8_t *)a->B + (size_t)(n + i) * rb, j->xq, nb, 1, &o[i]);
                for (int i = 0; i < r; i++) {
                    float bias = a->bias_n ? a->bias_n[n + i] : 0.0f;
                    float *c = crow ? &crow[n + i] : &a->C[(n + i) * a->ldc + j->m0];
                    *c = a->accumulate ? *c + (o[i] + bias) : o[i] + bias;
                }
            }
        } else
        for (int64_t m = j->m0; m < j->m1; m += 4) {
            int nx = (int)GL_MIN(4, j->m1 - m);
            const kn_block_q8a *xr = j->xq + (m - j->m0) * nb;
            for (int64_t n = c0; n < c1; n++) {
                float o[4];
                dot(nb, (const uint8_t *)a->B + (size_t)n * rb, xr, nb, nx, o);
                float bias = a->bias_n ? a->bias_n[n] : 0.0f;
                for (int i = 0; i < nx; i++) {
                    float *c = a->c_trans ? &a->C[n * a->ldc + m + i] : &a->C[(m + i) * a->ldc + n];
                    *c = a->accumulate ? *c + (o[i] + bias) : o[i] + bias;
                }
            }
        }
        if (a->act != KN_ACT_NONE && !a->accumulate) {
            if (a->c_trans) j->act->act_tile(a->act, a->C + c0 * a->ldc + j->m0, a->ldc, c1 - c0, j->m1 - j->m0);
            else j->act->act_tile(a->act, a->C + j->m0 * a->ldc + c0, a->ldc, j->m1 - j->m0, c1 - c0);
        }
    }
}

static void run_dot(void *v, int ith, int nth) {
    const qjob *j = v;
    int64_t lo, hi;
    gl_split((j->a->N + 3) / 4, ith, nth, &lo, &hi); /* units of 4 rows */
    if (lo < hi) dot_rows(j, lo * 4, GL_MIN(hi * 4, j->a->N));
}

typedef struct dq_job { const void *B; gl_dtype t; int64_t rows, K; float *dst; } dq_job;
static void run_dequant(void *v, int ith, int nth) {
    const dq_job *d = v;
    int64_t lo, hi;
    gl_split(d->rows, ith, nth, &lo, &hi);
    size_t rb = row_bytes(d->t, d->K);
    for (int64_t r = lo; r < hi; r++) gl_dequantize_row(d->t, (const uint8_t *)d->B + (size_t)r * rb, d->dst + r * d->K, d->K);
}

void kn_dequant_rows(const kn_env *env, const void *B, gl_dtype t, int64_t rows, int64_t K, float *dst) {
    dq_job d = {B, t, rows, K, dst};
    gl_pool_run(env->pool, run_dequant, &d);
}

static int check(const kn_qgemm_args *a) {
    if (a->K % GL_QK || !gl_dtype_is_quant(a->b_type)) return GLIMPSE_ERR_INVALID_ARG;
    return 0;
}

/* ---- decode-sized products, several per pool run ----------------------------------------- */

#define KN_QBATCH 8
#define KN_QBATCH_CHUNK_BYTES (24 << 10) /* weight bytes per claimed chunk */

typedef struct qbatch {
    qjob j[KN_QBATCH];
    int64_t first[KN_QBATCH + 1]; /* product i owns chunks [first[i], first[i+1]) */
    int64_t w[KN_QBATCH];         /* rows per chunk (a multiple of 4) */
    int n;
    atomic_llong next;
} qbatch;

/* Guided claims: each takes a share of what is left (at least one chunk), so a thread streams
 * long contiguous runs of weight rows (one chunk at a time, alternating between two cores,
 * defeats the hardware prefetchers: 24 -> 18 ms per Q8_0 0.5B token measured) and the last
 * claims are small enough to balance a thread slowed by other load. */
static void run_batch(void *v, int ith, int nth) {
    qbatch *b = v;
    int64_t total = b->first[b->n];
    int i = 0;
    (void)ith;
    for (;;) {
        int64_t ch = atomic_load_explicit(&b->next, memory_order_relaxed), k;
        do {
            if (ch >= total) return;
            k = GL_MAX(1, (total - ch) / (2 * nth));
        } while (!atomic_compare_exchange_weak_explicit(&b->next, &ch, ch + k, memory_order_relaxed, memory_order_relaxed));
        for (int64_t end = ch + k; ch < end;) { /* claims are in increasing order */
            while (ch >= b->first[i + 1]) i++;
            int64_t stop = GL_MIN(end, b->first[i + 1]);
            int64_t n0 = (ch - b->first[i]) * b->w[i], n1 = GL_MIN((stop - b->first[i]) * b->w[i], b->j[i].a->N);
            dot_rows(&b->j[i], n0, n1);
            ch = stop;
        }
    }
}

static int same_a(const kn_qgemm_args *x, const kn_qgemm_args *y) {
    return x->A == y->A && x->lda == y->lda && x->M == y->M && x->K == y->K;
}

/* n <= KN_QBATCH products with M <= KN_GEMV_MAX_M and A in rows (checked by the caller). */
static int qgemm_batch(const kn_env *env, const kn_qgemm_args *const *a, int n) {
    qbatch b;
    memset(&b, 0, sizeof b);
    atomic_init(&b.next, 0);
    const kn_quant_isa *isa = kn_quant_pick(env);
    const kn_gemm_isa *act = kn_gemm_isa_pick(env);
    size_t need = 0;
    int owner[KN_QBATCH];
    for (int i = 0; i < n; i++) {
        owner[i] = i;
        for (int k = 0; k < i; k++)
            if (same_a(a[k], a[i])) { owner[i] = owner[k]; break; }
        if (owner[i] == i) need += (size_t)a[i]->M * (size_t)(a[i]->K / GL_QK);
    }
    kn_block_q8a local[1536], *buf = need <= GL_ARRAY_LEN(local) ? local : gl_malloc(need * sizeof *buf);
    if (!buf) return GLIMPSE_ERR_NOMEM;
    kn_block_q8a *p = buf;
    for (int i = 0; i < n; i++) {
        qjob *j = &b.j[i];
        *j = (qjob){a[i], isa, act, NULL, NULL, 0, a[i]->M};
        int64_t nb = a[i]->K / GL_QK;
        if (owner[i] == i) {
            j->xq = p;
            p += a[i]->M * nb;
            quant_rows(j, 0, a[i]->M, NULL);
        } else {
            j->xq = b.j[owner[i]].xq;
        }
        int64_t w = (int64_t)(KN_QBATCH_CHUNK_BYTES / row_bytes(a[i]->b_type, a[i]->K)) / 4 * 4;
        b.w[i] = GL_MAX(w, 4);
        b.first[i + 1] = b.first[i] + (a[i]->N + b.w[i] - 1) / b.w[i];
    }
    b.n = n;
    gl_pool_run(env->pool, run_batch, &b);
    if (buf != local) gl_free(buf);
    return 0;
}

static int batchable(const kn_qgemm_args *a) { return a->M <= KN_GEMV_MAX_M && !a->a_trans; }

int kn_qgemm_batch(const kn_env *env, const kn_qgemm_args *a, int n) {
    const kn_qgemm_args *g[KN_QBATCH];
    int ng = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        if (check(&a[i])) {
            rc = GLIMPSE_ERR_INVALID_ARG;
            continue;
        }
        if (a[i].M <= 0 || a[i].N <= 0) continue;
        if (!batchable(&a[i])) {
            int r = kn_qgemm(env, &a[i]);
            if (r) rc = r;
            continue;
        }
        g[ng++] = &a[i];
        if (ng == KN_QBATCH) {
            int r = qgemm_batch(env, g, ng);
            if (r) rc = r;
            ng = 0;
        }
    }
    if (ng) {
        int r = qgemm_batch(env, g, ng);
        if (r) rc = r;
    }
    return rc;
}

int kn_qgemm(const kn_env *env, const kn_qgemm_args *a) {
    if (check(a)) return GLIMPSE_ERR_INVALID_ARG;
    if (a->M <= 0 || a->N <= 0) return 0;
    if (batchable(a) && qgemm_batch(env, &a, 1) == 0) return 0;
    qjob j = {a, kn_quant_pick(env), kn_gemm_isa_pick(env), NULL, NULL, 0, a->M};
    int64_t nb = a->K / GL_QK;
    size_t need = kn_qgemm_ws_size(env, a->M, a->K, a->a_trans);
    void *own = NULL, *ws = a->ws;
    kn_block_q8a one[256]; /* decode-sized rows need no workspace at all */
    if (a->M == 1 && !a->a_trans && nb <= 256) {
        j.xq = one;
    } else {
        if (!ws || a->ws_size < need) ws = own = gl_malloc(need);
        if (ws) {
            j.xq = (kn_block_q8a *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
            if (a->a_trans) j.tbuf = (float *)(((uintptr_t)(j.xq + a->M * nb) + 63) & ~(uintptr_t)63);
        }
    }
    if (!j.xq) {
        /* out of memory: one row at a time through a small buffer (slow but correct) */
        kn_block_q8a *row = gl_malloc(sizeof(kn_block_q8a) * (size_t)nb + (size_t)a->K * sizeof(float) * KN_Q_TRANS_ROWS);
        if (!row) return GLIMPSE_ERR_NOMEM;
        j.xq = row;
        float *tmp = (float *)(row + nb);
        for (int64_t m = 0; m < a->M; m++) {
            j.m0 = m;
            j.m1 = m + 1;
            quant_rows(&j, 0, 1, tmp);
            dot_rows(&j, 0, a->N);
        }
        gl_free(row);
        return 0;
    }
    if (a->M * a->K < 8192) quant_rows(&j, 0, a->M, j.tbuf);
    else gl_pool_run(env->pool, run_quant, &j);
    gl_pool_run(env->pool, run_dot, &j);
    gl_free(own);
    return 0;
}

int kn_qgemm_ref(const kn_qgemm_args *a) {
    if (check(a)) return GLIMPSE_ERR_INVALID_ARG;
    kn_env env = kn_env_scalar(NULL);
    kn_qgemm_args s = *a;
    s.ws = NULL;
    s.ws_size = 0;
    return kn_qgemm(&env, &s);
}
