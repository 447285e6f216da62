/* qgemm_big_vnni.c — C = act(A · B^T + bias) with Q8_0 / Q4_0 weights B and many rows of A
 * (prefill, batches of image tokens), in int8 with AVX-VNNI.
 *
 * Without VNNI a block's int8 dot costs more instructions than the f32 FMAs it replaces, so
 * kn_gemm dequantizes B and runs the f32 GEMM; dpbusd does 32 u8 x s8 products per instruction
 * (4 per int32 lane) where an f32 FMA does 8. To use that, products must land one output per
 * lane: B is repacked per call into panels of 16 columns in which, for each 4 consecutive k,
 * the 16 columns' 4 weights sit side by side (64 bytes), and each activation row contributes
 * its 4 bytes broadcast to every lane. Per 32-value block the int32 lanes then hold whole
 * block dots, exact; each block adds dot · d_w · d_a to f32 accumulators.
 *
 * dpbusd's first operand is unsigned: activations are stored as q + 128 (u8) and the
 * 128 · Σ_k w that adds is subtracted per column and block (kept with the panel). Q4_0 weights
 * are unpacked to q - 8 in the panel, so both types share the kernel.
 *
 * Threads claim panels (16 columns) from one counter; each packs its panel (~K bytes x 16) and
 * runs all rows of A against it, 2 rows at a time. Every output is summed in the same order
 * whatever the thread count. */
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/qgemm.h"
#include "qpack_x86.h"

#define NR 16
#define MR 2

typedef struct panel {
    int8_t *w;     /* [nb][8 quads][16 cols][4] */
    float *dw;     /* [nb][16] weight scales */
    int32_t *sw;   /* [nb][16] 128 · Σ of the block's weights */
} panel;

typedef struct vjob {
    const kn_qgemm_args *a;
    const kn_gemm_isa *act;
    const uint8_t *xu; /* [M][K]: activations + 128 */
    const float *xd;   /* [M][nb]: activation scales */
    uint8_t *pbuf;     /* per thread: one panel */
    size_t pstride;
    int64_t n_panels;
    atomic_llong next;
} vjob;

static size_t panel_bytes(int64_t nb) { return (size_t)nb * (512 + 2 * 64) + 64; }

/* Columns [n0, n0 + 16) of B (fewer at the end: zero weights) into p: per block, two 8x8
 * transposes of 4-byte groups put each quad's 16 columns side by side; the column sums come
 * from dpbusd with ones over the packed quads. */
static void pack_panel(const kn_qgemm_args *a, int64_t n0, panel *p) {
    const int64_t nb = a->K / GL_QK;
    const size_t rb = (size_t)nb * (a->b_type == GL_Q8_0 ? sizeof(gl_block_q8_0) : sizeof(gl_block_q4_0));
    const uint8_t *rows[NR];
    for (int c = 0; c < NR; c++) rows[c] = n0 + c < a->N ? (const uint8_t *)a->B + (size_t)(n0 + c) * rb : NULL;
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        int8_t *dst = p->w + (size_t)b * 512;
        for (int h = 0; h < 2; h++) { /* columns 8h .. 8h + 7 */
            __m256i r[8];
            for (int c = 0; c < 8; c++) r[c] = block_i8(a->b_type, rows[8 * h + c], b, &p->dw[b * NR + 8 * h + c]);
            transpose8x32(r); /* r[q] = quad q of the 8 columns */
            __m256i sum = _mm256_setzero_si256();
            for (int q = 0; q < 8; q++) {
                _mm256_store_si256((__m256i *)(dst + q * 64 + h * 32), r[q]);
                sum = _mm256_dpbusd_avx_epi32(sum, ones, r[q]);
            }
            _mm256_store_si256((__m256i *)(p->sw + b * NR + 8 * h), _mm256_slli_epi32(sum, 7)); /* 128 · Σw */
        }
    }
}

/* Rows [m, m + R) of A (R = 1 or 2, a constant after inlining) against one panel:
 * C[m.., n0 .. n0 + nc). Accumulators are named variables so they stay in registers: per
 * (row, 8 columns) an int32 sum for the even and one for the odd quads of a block (8
 * dependency chains of 4 dpbusd each keep the unit busy), and an f32 sum across blocks. */
#define DP(acc, xv, wv) acc = _mm256_dpbusd_avx_epi32(acc, xv, wv)
static inline __attribute__((always_inline)) void tile(const vjob *j, const panel *p, int64_t m, int64_t n0, int64_t nc,
                                                       const int R) {
    const kn_qgemm_args *a = j->a;
    const int64_t K = a->K, nb = K / GL_QK;
    const __m256 z = _mm256_setzero_ps();
    __m256 f00 = z, f01 = z, f10 = z, f11 = z;
    const uint8_t *x0 = j->xu + m * K, *x1 = x0 + (R > 1 ? K : 0);
    const float *xd = j->xd + m * nb;
    for (int64_t b = 0; b < nb; b++) {
        const __m256i zi = _mm256_setzero_si256();
        __m256i s00 = zi, s01 = zi, s10 = zi, s11 = zi;
        __m256i t00 = zi, t01 = zi, t10 = zi, t11 = zi;
        const int8_t *w = p->w + (size_t)b * 512;
        const size_t xo = (size_t)b * GL_QK;
        for (int q = 0; q < 8; q += 2) {
            __m256i w0 = _mm256_load_si256((const __m256i *)(w + q * 64));
            __m256i w1 = _mm256_load_si256((const __m256i *)(w + q * 64 + 32));
            __m256i w2 = _mm256_load_si256((const __m256i *)(w + q * 64 + 64));
            __m256i w3 = _mm256_load_si256((const __m256i *)(w + q * 64 + 96));
            int32_t v;
            memcpy(&v, x0 + xo + q * 4, 4);
            __m256i xa = _mm256_set1_epi32(v);
            memcpy(&v, x0 + xo + q * 4 + 4, 4);
            __m256i xb = _mm256_set1_epi32(v);
            DP(s00, xa, w0); DP(s01, xa, w1); DP(t00, xb, w2); DP(t01, xb, w3);
            if (R > 1) {
                memcpy(&v, x1 + xo + q * 4, 4);
                xa = _mm256_set1_epi32(v);
                memcpy(&v, x1 + xo + q * 4 + 4, 4);
                xb = _mm256_set1_epi32(v);
                DP(s10, xa, w0); DP(s11, xa, w1); DP(t10, xb, w2); DP(t11, xb, w3);
            }
        }
        __m256i c0 = _mm256_load_si256((const __m256i *)(p->sw + b * NR));
        __m256i c1 = _mm256_load_si256((const __m256i *)(p->sw + b * NR + 8));
        __m256 d0 = _mm256_load_ps(p->dw + b * NR), d1 = _mm256_load_ps(p->dw + b * NR + 8);
#define FIN(f, sv, tv, c, d, r)                                                                                    \
    f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_add_epi32(sv, tv), c)),                         \
                        _mm256_mul_ps(d, _mm256_set1_ps(xd[(r) * nb + b])), f)
        FIN(f00, s00, t00, c0, d0, 0); FIN(f01, s01, t01, c1, d1, 0);
        if (R > 1) { FIN(f10, s10, t10, c0, d0, 1); FIN(f11, s11, t11, c1, d1, 1); }
#undef FIN
    }
    __m256 fr[MR][2] = {{f00, f01}, {f10, f11}};
    for (int r = 0; r < R; r++) {
        float o[NR];
        _mm256_storeu_ps(o, fr[r][0]);
        _mm256_storeu_ps(o + 8, fr[r][1]);
        for (int64_t i = 0; i < nc; i++) {
            float v = o[i] + (a->bias_n ? a->bias_n[n0 + i] : 0.0f);
            float *c = a->c_trans ? &a->C[(n0 + i) * a->ldc + m + r] : &a->C[(m + r) * a->ldc + n0 + i];
            *c = a->accumulate ? *c + v : v;
        }
    }
}
#undef DP

static void run_panels(void *v, int ith, int nth) {
    vjob *j = v;
    const kn_qgemm_args *a = j->a;
    const int64_t nb = a->K / GL_QK;
    uint8_t *base = (uint8_t *)(((uintptr_t)(j->pbuf + (size_t)ith * j->pstride) + 63) & ~(uintptr_t)63);
    panel p = {(int8_t *)base, (float *)(base + (size_t)nb * 512), (int32_t *)(base + (size_t)nb * 512 + (size_t)nb * 64)};
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n_panels) break;
        int64_t n0 = t * NR, nc = GL_MIN((int64_t)NR, a->N - n0);
        pack_panel(a, n0, &p);
        int64_t m = 0;
        for (; m + MR <= a->M; m += MR) tile(j, &p, m, n0, nc, MR);
        if (m < a->M) tile(j, &p, m, n0, nc, 1);
        if (a->act != KN_ACT_NONE && !a->accumulate) {
            if (a->c_trans) j->act->act_tile(a->act, a->C + n0 * a->ldc, a->ldc, nc, a->M);
            else j->act->act_tile(a->act, a->C + n0, a->ldc, a->M, nc);
        }
    }
    (void)nth;
}

typedef struct qa_job { const kn_qgemm_args *a; const kn_quant_isa *isa; uint8_t *xu; float *xd; float *tmp; } qa_job;

/* Row m of A -> q8a blocks -> u8 (q + 128) and the block scales. A channel-major A (a_trans:
 * a [K, M] feature map) is gathered 8 rows at a time into tmp first. */
static void quant_a(void *v, int ith, int nth) {
    const qa_job *q = v;
    const kn_qgemm_args *a = q->a;
    const int64_t K = a->K, nb = K / GL_QK;
    int64_t lo, hi;
    gl_split((a->M + 7) / 8, ith, nth, &lo, &hi);
    lo *= 8, hi = GL_MIN(hi * 8, a->M);
    kn_block_q8a blk[8];
    float *tmp = q->tmp ? q->tmp + (size_t)ith * (size_t)(8 * K) : NULL;
    for (int64_t m = lo; m < hi; m++) {
        const float *row = a->A + m * a->lda;
        if (a->a_trans) {
            if ((m - lo) % 8 == 0) { /* the next 8 pixels, whole cache lines per channel */
                int64_t r = GL_MIN((int64_t)8, hi - m);
                for (int64_t k = 0; k < K; k++)
                    for (int64_t i = 0; i < r; i++) tmp[i * K + k] = a->A[k * a->lda + m + i];
            }
            row = tmp + (m - lo) % 8 * K;
        }
        for (int64_t b0 = 0; b0 < nb; b0 += 8) {
            int64_t n = GL_MIN((int64_t)8, nb - b0);
            q->isa->quantize_act(row + b0 * GL_QK, blk, n);
            for (int64_t b = 0; b < n; b++) {
                q->xd[m * nb + b0 + b] = blk[b].d;
                __m256i v8 = _mm256_loadu_si256((const __m256i *)blk[b].qs);
                _mm256_storeu_si256((__m256i *)(q->xu + m * K + (b0 + b) * GL_QK),
                                    _mm256_xor_si256(v8, _mm256_set1_epi8((char)0x80)));
            }
        }
    }
}

size_t kn_qgemm_vnni_ws_size(const kn_env *env, int64_t M, int64_t K) {
    int64_t nb = K / GL_QK;
    size_t nth = (size_t)gl_pool_size(env->pool);
    return (size_t)M * (size_t)K + (size_t)M * (size_t)nb * sizeof(float) + nth * (panel_bytes(nb) + 64) +
           nth * (size_t)(8 * K) * sizeof(float) + 320; /* + the a_trans gather rows */
}

int kn_qgemm_vnni(const kn_env *env, const kn_qgemm_args *a) {
    if (a->K % GL_QK || !gl_dtype_is_quant(a->b_type)) return GLIMPSE_ERR_INVALID_ARG;
    const int64_t nb = a->K / GL_QK;
    size_t need = kn_qgemm_vnni_ws_size(env, a->M, a->K);
    void *own = NULL, *ws = a->ws;
    if (!ws || a->ws_size < need) ws = own = gl_malloc(need);
    if (!ws) return GLIMPSE_ERR_NOMEM;
    uint8_t *xu = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *xd = (float *)(((uintptr_t)(xu + (size_t)a->M * (size_t)a->K) + 63) & ~(uintptr_t)63);
    uint8_t *pbuf = (uint8_t *)(xd + (size_t)a->M * (size_t)nb);
    size_t pstride = panel_bytes(nb) + 64;
    float *tmp = (float *)(((uintptr_t)(pbuf + (size_t)gl_pool_size(env->pool) * pstride) + 63) & ~(uintptr_t)63);
    qa_job qj = {a, kn_quant_pick(env), xu, xd, a->a_trans ? tmp : NULL};
    gl_pool_run(env->pool, quant_a, &qj);
    vjob j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.act = kn_gemm_isa_pick(env);
    j.xu = xu;
    j.xd = xd;
    j.pbuf = pbuf;
    j.pstride = pstride;
    j.n_panels = (a->N + NR - 1) / NR;
    atomic_init(&j.next, 0);
    gl_pool_run(env->pool, run_panels, &j);
    gl_free(own);
    return 0;
}
