/* qgemm_big_avx512vnni.c — C = act(A · B^T + bias) with Q8_0 / Q4_0 weights B and many rows of A,
 * in int8 with 512-bit vpdpbusd (AVX512-VNNI): 64 u8 x s8 products per instruction, twice the
 * AVX-VNNI kernel's (qgemm_big_vnni.c), and 32 registers for bigger tiles. Two layouts:
 *
 *  rows (A [M, K], C [M, N]: prefill, token Linear layers): lanes over 32 output columns. B is
 *  packed per call into panels of 32 columns (each 4 consecutive k of the 32 columns side by
 *  side, 128 bytes), activations are q + 128 (u8) and each row's 4 bytes are broadcast; a tile
 *  is 6 rows x 32 columns (12 int32 + 12 f32 accumulators).
 *
 *  channel-major (a_trans + c_trans: 1x1 convolutions, A a [K, M] map of M pixels, C [N, M]):
 *  lanes over 32 pixels. The map is quantized per (pixel, 32-channel block), 16 pixels per
 *  vector, reading whole channel rows, straight into 32-pixel tiles of [K/4][32][4] u8 (no
 *  gathers); W is packed per call to int8 rows whose 4 bytes are broadcast (one vpbroadcastd
 *  per 2 dpbusd), and outputs land as whole rows of C with bias, accumulate or fused GELU; a
 *  tile is 6 output channels x 32 pixels.
 *
 * dpbusd's first operand is unsigned: the u8 side carries q + 128 and the block's int32
 * accumulator starts at -128 · Σ w (per column / output channel), so it ends at the exact
 * block dot; then one int32 -> f32 and one FMA with d_w · d_a per block. Q4_0 is unpacked to
 * q - 8 when packed, so both types share the kernels.
 *
 * No persistent copy of the weights: B is packed per call into scratch. Threads claim tasks
 * (panels x row ranges, or pixel chunks x channel ranges); every output is computed by the same
 * instructions whatever the task split, so results do not depend on the thread count. */
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/qgemm.h"
#include "nn_math_avx512.h"
#include "qpack_x86.h"

#define NR 32 /* rows layout: columns per panel */
#define MR 6  /* rows per tile (rows layout) / output channels per tile (channel-major) */
#define PX 32 /* channel-major: pixels per tile */
#define PF_BLOCKS 8 /* pack_panel's prefetch distance (blocks of 34 / 18 bytes per row) */

static int64_t rup(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static uint8_t *align64(void *p) { return (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

static size_t row_bytes(gl_dtype t, int64_t K) {
    return (size_t)(K / GL_QK) * (t == GL_Q8_0 ? sizeof(gl_block_q8_0) : sizeof(gl_block_q4_0));
}

/* ================================ rows layout ================================ */

typedef struct panel {
    int8_t *w;   /* [nb][8 quads][32 cols][4] */
    float *dw;   /* [nb][32] weight scales */
    int32_t *c;  /* [nb][32] -128 · Σ of the block's weights: the accumulators' start */
} panel;

#define PANEL_BLOCK (1024 + 2 * 128) /* bytes of a panel per block of 32 k: weights, dw, c */
static size_t panel_bytes(int64_t nb) { return (size_t)nb * PANEL_BLOCK + 64; }
/* The panel stored at pp (64-byte aligned): nb blocks of weights, then the scales, then c. */
static panel panel_at(uint8_t *pp, int64_t nb) {
    return (panel){(int8_t *)pp, (float *)(pp + (size_t)nb * 1024), (int32_t *)(pp + (size_t)nb * 1152)};
}

/* Columns [n0, n0 + 32) of B (zero weights past N) into p. */
static void pack_panel(const kn_qgemm_args *a, int64_t n0, panel *p) {
    const int64_t nb = a->K / GL_QK;
    const size_t rb = row_bytes(a->b_type, a->K);
    const uint8_t *rows[NR];
    for (int c = 0; c < NR; c++) rows[c] = n0 + c < a->N ? (const uint8_t *)a->B + (size_t)(n0 + c) * rb : NULL;
    const __m256i ones = _mm256_set1_epi8(1);
    const size_t bs = a->b_type == GL_Q8_0 ? sizeof(gl_block_q8_0) : sizeof(gl_block_q4_0);
    for (int64_t b = 0; b < nb; b++) {
        int8_t *dst = p->w + (size_t)b * 1024;
        /* 32 rows read a block at a time are 32 strided streams, more than the hardware
         * prefetchers follow: a third of this kernel's time (S0 text, 1 thread) sat on these
         * loads from DRAM. Ask for each row's line PF_BLOCKS blocks ahead. */
        if (b + PF_BLOCKS < nb && (b * bs) / 64 != ((b + 1) * bs) / 64)
            for (int c = 0; c < NR; c++)
                if (rows[c]) _mm_prefetch((const char *)rows[c] + (b + PF_BLOCKS) * bs + 63, _MM_HINT_T0);
        for (int h = 0; h < 4; h++) { /* columns 8h .. 8h + 7 */
            __m256i r[8];
            for (int c = 0; c < 8; c++) r[c] = block_i8(a->b_type, rows[8 * h + c], b, &p->dw[b * NR + 8 * h + c]);
            transpose8x32(r);
            __m256i sum = _mm256_setzero_si256();
            for (int q = 0; q < 8; q++) {
                _mm256_store_si256((__m256i *)(dst + q * 128 + h * 32), r[q]);
                sum = _mm256_dpbusd_epi32(sum, ones, r[q]);
            }
            _mm256_store_si256((__m256i *)(p->c + b * NR + 8 * h), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum, 7)));
        }
    }
}

typedef struct rjob {
    const kn_qgemm_args *a;
    const kn_gemm_isa *act;
    const uint8_t *xu; /* [M][K]: activations + 128 */
    const float *xd;   /* [M][nb] */
    uint8_t *pbuf;
    size_t pstride;
    int64_t n_panels, rows_per_task, n_rtasks;
    atomic_llong next;
} rjob;

/* What a rows-layout tile reads and where its outputs go (kn_qgemm's C, or kn_qpanel's too). */
typedef struct tctx {
    const uint8_t *xu; const float *xd; int64_t K, drs, dbs; /* scale of row r, block b: xd[r·drs + b·dbs] */
    float *C; int64_t ldc; const float *bias; int accumulate; kn_act act;
    uint8_t *qu; float *qd; float *st; int64_t ldq, M; /* kn_qpanel_args' outputs; N; all rows */
    int64_t b0, b1; float *acc; /* K blocks [b0, b1) of the panel; sums of earlier / for later ones in acc [M][32] */
    const char *pf[3]; size_t pf_n[3]; /* what the caller runs next, fetched a share per tile */
} tctx;

/* GELU for outputs that are quantized to int8 right away (the text MLP's hidden layer, EPI_Q8;
 * MCi ConvFFN's fc1, int8_next): erf(z) as z·P(z²)/Q(z²), degree 5/5 fitted by least squares
 * on [0, 3.9] (tools/fit_gelu_int8.py), z clamped there. |error| <= 1e-6 on GELU over
 * [-14, 14] in float32, about a ten-thousandth of the int8 step the value is rounded to next,
 * in ~20 operations instead of gelu16's ~40 (an f32 output needs gelu16: its relative accuracy
 * in the negative tail, where this form only has absolute accuracy). */
static inline __m512 gelu16_q8(__m512 x) {
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    const __m512 zc = _mm512_max_ps(_mm512_min_ps(z, _mm512_set1_ps(3.9f)), _mm512_set1_ps(-3.9f));
    const __m512 t = _mm512_mul_ps(zc, zc);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(2.0650450133859017e-06f), t, _mm512_set1_ps(2.860016666577884e-04f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(3.7665015724552926e-03f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(5.2751799425059906e-02f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.9028233824098842e-01f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.1283790935543083f));
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(3.830594197616457e-05f), t, _mm512_set1_ps(1.164869531526816e-03f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.4968820831768617e-02f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.1407607317828584e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(5.019656592032743e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.0f));
    const __m512 erf = _mm512_mul_ps(_mm512_mul_ps(zc, p), recip16(q));
    const __m512 hx = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    return _mm512_fmadd_ps(hx, erf, hx);
}

/* Rows' 32 outputs as the next product's activation blocks, in two steps so that the
 * divisions of up to 16 rows run as one vector division each: kn_quantize_act_avx2's bits
 * (the same max, d = amax / 127 and 1 / d, IEEE-exact either way; cvtps rounds to nearest
 * even; saturating to int8 directly equals its two saturating packs), stored + 128. */
static inline float q8_amax(__m512 v0, __m512 v1) {
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
}
/* amax[0..n) (n <= 16) -> d, and 1/d (0 where d == 0, as the scalar d != 0 test: NaN too) */
static inline void q8_scales(const float *amax, int n, float *d, float *id) {
    const __mmask16 k = (__mmask16)((1u << n) - 1);
    const __m512 dv = _mm512_div_ps(_mm512_maskz_loadu_ps(k, amax), _mm512_set1_ps(127.0f));
    const __mmask16 nz = _mm512_cmp_ps_mask(dv, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    _mm512_mask_storeu_ps(d, k, dv);
    _mm512_mask_storeu_ps(id, k, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), dv));
}
static inline void q8_store(__m512 v0, __m512 v1, float d, float id, uint8_t *qu, float *qd) {
    const __m512 s = _mm512_set1_ps(id);
    const __m128i k80 = _mm_set1_epi8((char)0x80);
    const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, s)));
    const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, s)));
    _mm_storeu_si128((__m128i *)qu, _mm_xor_si128(q0, k80));
    _mm_storeu_si128((__m128i *)(qu + 16), _mm_xor_si128(q1, k80));
    *qd = d;
}

/* A row's 32 outputs -> (sum, sum of squared deviations from their own mean): a layer norm's
 * partials, merged per row by kn_ln_merge. */
static inline void st_put(__m512 v0, __m512 v1, float *st) {
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(v0, v1));
    const __m512 mean = _mm512_set1_ps(sum * (1.0f / GL_QK));
    const __m512 d0 = _mm512_sub_ps(v0, mean), d1 = _mm512_sub_ps(v1, mean);
    st[0] = sum;
    st[1] = _mm512_reduce_add_ps(_mm512_fmadd_ps(d0, d0, _mm512_mul_ps(d1, d1)));
}

/* Rows [m, m + R) against one panel: C[m.., n0 .. n0 + nc). R is a constant after inlining,
 * and the accumulator arrays are fully unrolled into registers; so is EPI, what else the
 * outputs feed: 0 nothing, 1 t->qu (quantized for the next product), 2 t->st (LN partials). */
enum { EPI_C, EPI_Q8, EPI_ST };
static inline __attribute__((always_inline)) void rtile(const tctx *t, const panel *p, int64_t m, int64_t n0,
                                                        int64_t nc, const int R, const int EPI) {
    const int64_t K = t->K, nb = K / GL_QK;
    const uint8_t *x = t->xu + m * K;
    const float *xd = t->xd + m * t->drs;
    __m512 f[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (t->b0) f[r][0] = _mm512_loadu_ps(t->acc + (m + r) * NR), f[r][1] = _mm512_loadu_ps(t->acc + (m + r) * NR + 16);
        else f[r][0] = f[r][1] = _mm512_setzero_ps();
    }
    for (int64_t b = t->b0; b < t->b1; b++) {
        const __m512i c0 = _mm512_load_si512(p->c + b * NR), c1 = _mm512_load_si512(p->c + b * NR + 16);
        __m512i s[MR][2];
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) s[r][0] = c0, s[r][1] = c1;
        const int8_t *w = p->w + (size_t)b * 1024;
        const uint8_t *xb = x + b * GL_QK;
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const __m512i w0 = _mm512_load_si512(w + q * 128), w1 = _mm512_load_si512(w + q * 128 + 64);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                int32_t v;
                memcpy(&v, xb + r * K + q * 4, 4);
                const __m512i xv = _mm512_set1_epi32(v);
                s[r][0] = _mm512_dpbusd_epi32(s[r][0], xv, w0);
                s[r][1] = _mm512_dpbusd_epi32(s[r][1], xv, w1);
            }
        }
        const __m512 d0 = _mm512_load_ps(p->dw + b * NR), d1 = _mm512_load_ps(p->dw + b * NR + 16);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512 da = _mm512_set1_ps(xd[r * t->drs + b * t->dbs]);
            f[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][0]), _mm512_mul_ps(d0, da), f[r][0]);
            f[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][1]), _mm512_mul_ps(d1, da), f[r][1]);
        }
    }
    if (t->b1 < nb) { /* more K blocks to come: the same sums, continued later (same bits) */
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) _mm512_storeu_ps(t->acc + (m + r) * NR, f[r][0]), _mm512_storeu_ps(t->acc + (m + r) * NR + 16, f[r][1]);
        return;
    }
    const __mmask16 k0 = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1);
    const __mmask16 k1 = nc >= 32 ? 0xffff : nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1);
    __m512 b0 = _mm512_setzero_ps(), b1 = b0;
    if (t->bias) b0 = _mm512_maskz_loadu_ps(k0, t->bias + n0), b1 = _mm512_maskz_loadu_ps(k1, t->bias + n0 + 16);
    __m512 vq[MR][2];
    float am[MR];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        float *c = t->C ? t->C + (m + r) * t->ldc + n0 : NULL;
        __m512 v0 = _mm512_add_ps(f[r][0], b0), v1 = _mm512_add_ps(f[r][1], b1);
        if (t->accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, c), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, c + 16), v1);
        } else if (t->act == KN_ACT_GELU && EPI == EPI_Q8 && !c) { /* only quantized: see gelu16_q8 */
            v0 = gelu16_q8(v0), v1 = gelu16_q8(v1);
        } else if (t->act == KN_ACT_GELU) { /* fused: the act_tile pass's gelu16, same bits */
            v0 = gelu16(v0), v1 = gelu16(v1);
        }
        if (c) {
            _mm512_mask_storeu_ps(c, k0, v0);
            _mm512_mask_storeu_ps(c + 16, k1, v1);
        }
        if (EPI == EPI_Q8) vq[r][0] = v0, vq[r][1] = v1, am[r] = q8_amax(v0, v1);
        if (EPI == EPI_ST) st_put(v0, v1, t->st + 2 * (n0 / GL_QK * t->M + m + r));
    }
    if (EPI == EPI_Q8) {
        float d[16], id[16];
        q8_scales(am, R, d, id);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            q8_store(vq[r][0], vq[r][1], d[r], id[r], t->qu + (m + r) * t->ldq + n0, t->qd + n0 / GL_QK * t->M + m + r);
    }
}

/* Rows [m0, m1) of panel p (columns n0 .. n0 + nc). */
static inline __attribute__((always_inline)) void rtiles_epi(const tctx *t, const panel *p, int64_t m0, int64_t m1,
                                                             int64_t n0, int64_t nc, const int EPI) {
    int64_t m = m0;
    const size_t tiles = (size_t)((m1 - m0 + MR - 1) / MR);
    size_t share[3], at[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) share[i] = (t->pf_n[i] / tiles + 63) & ~(size_t)63;
    for (; m + MR <= m1; m += MR) {
        for (int i = 0; i < 3; i++)
            for (size_t e = GL_MIN(at[i] + share[i], t->pf_n[i]); at[i] < e; at[i] += 64) _mm_prefetch(t->pf[i] + at[i], _MM_HINT_T0);
        rtile(t, p, m, n0, nc, MR, EPI);
    }
    switch (m1 - m) {
    case 5: rtile(t, p, m, n0, nc, 5, EPI); break;
    case 4: rtile(t, p, m, n0, nc, 4, EPI); break;
    case 3: rtile(t, p, m, n0, nc, 3, EPI); break;
    case 2: rtile(t, p, m, n0, nc, 2, EPI); break;
    case 1: rtile(t, p, m, n0, nc, 1, EPI); break;
    default: break;
    }
}
static void rtiles(const tctx *t, const panel *p, int64_t m0, int64_t m1, int64_t n0, int64_t nc) {
    if (t->qu) rtiles_epi(t, p, m0, m1, n0, nc, EPI_Q8);
    else if (t->st) rtiles_epi(t, p, m0, m1, n0, nc, EPI_ST);
    else rtiles_epi(t, p, m0, m1, n0, nc, EPI_C);
}


static void run_panels(void *v, int ith, int nth) {
    rjob *j = v;
    const kn_qgemm_args *a = j->a;
    const int64_t nb = a->K / GL_QK;
    uint8_t *base = align64(j->pbuf + (size_t)ith * j->pstride);
    panel p = panel_at(base, nb);
    const tctx tc = {j->xu, j->xd, a->K, nb, 1, a->C, a->ldc, a->bias_n, a->accumulate, a->act, NULL, NULL, NULL, 0, a->M,
                     0, nb, NULL, {NULL, NULL, NULL}, {0, 0, 0}};
    const int64_t n_tasks = j->n_panels * j->n_rtasks;
    int64_t t = 0, t_end = 0;
    for (;; t++) {
        /* guided claims (each a share of what is left, consecutive tasks): a thread walks runs of
         * adjacent panels, one stream the prefetchers follow, where single claims alternating
         * between cores left each core a panel in every two */
        if (t >= t_end) {
            long long c = atomic_load_explicit(&j->next, memory_order_relaxed), k;
            do {
                if (c >= n_tasks) return;
                k = GL_MAX((long long)1, (n_tasks - c) / (2 * nth));
            } while (!atomic_compare_exchange_weak_explicit(&j->next, &c, c + k, memory_order_relaxed, memory_order_relaxed));
            t = c, t_end = c + k;
        }
        int64_t pi = t / j->n_rtasks, m0 = t % j->n_rtasks * j->rows_per_task;
        int64_t m1 = GL_MIN(a->M, m0 + j->rows_per_task);
        int64_t n0 = pi * NR, nc = GL_MIN((int64_t)NR, a->N - n0);
        if (a->Bq) { /* packed once: one contiguous stream, which the hardware prefetchers follow */
            p = panel_at((uint8_t *)a->Bq->p + (size_t)pi * (size_t)nb * PANEL_BLOCK, nb);
        } else {
            pack_panel(a, n0, &p);
            /* the next panel's weight rows towards L2 while this one's tiles run (compute for 77
             * text rows takes longer than fetching 32 rows, which pack_panel would otherwise wait for) */
            if (n0 + NR < a->N) {
                const size_t rb = row_bytes(a->b_type, a->K);
                const char *nx = (const char *)a->B + (size_t)(n0 + NR) * rb;
                size_t bytes = (size_t)GL_MIN((int64_t)NR, a->N - n0 - NR) * rb;
                for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(nx + o, _MM_HINT_T1);
            }
        }
        rtiles(&tc, &p, m0, m1, n0, nc);
        if (a->act != KN_ACT_NONE && a->act != KN_ACT_GELU && !a->accumulate) j->act->act_tile(a->act, a->C + m0 * a->ldc + n0, a->ldc, m1 - m0, nc);
    }
}

typedef struct qa_job { const kn_qgemm_args *a; const kn_quant_isa *isa; uint8_t *xu; float *xd; } qa_job;

/* Rows of A -> q8a blocks (the ISA's quantizer: bitwise the reference) -> u8 (q + 128), scales. */
static void quant_rows(void *v, int ith, int nth) {
    const qa_job *q = v;
    const kn_qgemm_args *a = q->a;
    const int64_t K = a->K, nb = K / GL_QK;
    int64_t lo, hi;
    gl_split(a->M, ith, nth, &lo, &hi);
    kn_block_q8a blk[8];
    for (int64_t m = lo; m < hi; m++)
        for (int64_t b0 = 0; b0 < nb; b0 += 8) {
            int64_t n = GL_MIN((int64_t)8, nb - b0);
            q->isa->quantize_act(a->A + m * a->lda + b0 * GL_QK, blk, n);
            for (int64_t b = 0; b < n; b++) {
                q->xd[m * nb + b0 + b] = blk[b].d;
                __m256i v8 = _mm256_loadu_si256((const __m256i *)blk[b].qs);
                _mm256_storeu_si256((__m256i *)(q->xu + m * K + (b0 + b) * GL_QK),
                                    _mm256_xor_si256(v8, _mm256_set1_epi8((char)0x80)));
            }
        }
}

static size_t rows_ws(int nth, int64_t M, int64_t K) {
    int64_t nb = K / GL_QK;
    return (size_t)M * (size_t)K + (size_t)M * (size_t)nb * sizeof(float) + (size_t)nth * (panel_bytes(nb) + 64) + 256;
}

static int run_rows(const kn_env *env, const kn_qgemm_args *a, void *ws) {
    const int64_t nb = a->K / GL_QK;
    const int nth = gl_pool_size(env->pool);
    uint8_t *xu = align64(ws);
    float *xd = (float *)align64(xu + (size_t)a->M * (size_t)a->K);
    uint8_t *pbuf = (uint8_t *)(xd + (size_t)a->M * (size_t)nb);
    qa_job qj = {a, kn_quant_pick(env), xu, xd};
    gl_pool_run(env->pool, quant_rows, &qj);
    rjob j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.act = kn_gemm_isa_pick(env);
    j.xu = xu;
    j.xd = xd;
    j.pbuf = pbuf;
    j.pstride = panel_bytes(nb) + 64;
    j.n_panels = (a->N + NR - 1) / NR;
    /* too few panels for the threads (k/v projections): split the rows too, each task packing
     * its panel again (cheap next to its rows' products), at least 8 whole tiles per task */
    int64_t want = GL_MAX((int64_t)1, (2 * nth + j.n_panels - 1) / j.n_panels);
    want = GL_MIN(want, GL_MAX((int64_t)1, a->M / (8 * MR)));
    j.rows_per_task = rup((a->M + want - 1) / want, MR);
    j.n_rtasks = (a->M + j.rows_per_task - 1) / j.rows_per_task;
    atomic_init(&j.next, 0);
    gl_pool_run(env->pool, run_panels, &j);
    return 0;
}

/* ---- one panel at a time, for callers that schedule their own threads (qgemm.h) ---- */

/* Blocks [b0, b1) of panel pp's weights, scales and sums: the prefetch ranges of a chunk. */
static void chunk_ranges(uint8_t *pp, int64_t nb, int64_t b0, int64_t b1, tctx *t) {
    const panel q = panel_at(pp, nb);
    t->pf[0] = (const char *)(q.w + b0 * 1024), t->pf_n[0] = (size_t)(b1 - b0) * 1024;
    t->pf[1] = (const char *)(q.dw + b0 * NR), t->pf_n[1] = (size_t)(b1 - b0) * NR * 4;
    t->pf[2] = (const char *)(q.c + b0 * NR), t->pf_n[2] = (size_t)(b1 - b0) * NR * 4;
}

/* K blocks per pass over the rows when kn_qpanel_args.acc is given: 20 KB of weights, which
 * stay in L1 while every row tile reads them, with the next chunk arriving meanwhile (read
 * straight from DRAM, the first tile of a pass wants ~80 GB/s: a core gets ~30). */
#define KCH 16

void kn_qpanel_avx512vnni(const kn_qpanel_args *a, int64_t pi) {
    const int64_t N = a->B->N, K = a->B->K, nb = K / GL_QK, n0 = pi * NR, np = (N + NR - 1) / NR;
    const int64_t ch = a->acc ? KCH : nb;
    uint8_t *base = (uint8_t *)a->B->p;
    const size_t pbytes = (size_t)nb * PANEL_BLOCK;
    panel p = panel_at(base + (size_t)pi * pbytes, nb);
    tctx tc = {a->xu, a->xd, K, 1, a->M, a->C, a->ldc, a->bias, a->accumulate, a->act, a->qu, a->qd, a->stats, N, a->M,
               0, nb, a->acc, {NULL, NULL, NULL}, {0, 0, 0}};
    for (int64_t b0 = 0; b0 < nb; b0 += ch) {
        tc.b0 = b0, tc.b1 = GL_MIN(nb, b0 + ch);
        tc.pf_n[0] = tc.pf_n[1] = tc.pf_n[2] = 0;
        if (tc.b1 < nb) chunk_ranges(base + (size_t)pi * pbytes, nb, tc.b1, GL_MIN(nb, tc.b1 + ch), &tc);
        else if (a->next >= 0 && a->next < np) chunk_ranges(base + (size_t)a->next * pbytes, nb, 0, GL_MIN(nb, ch), &tc);
        rtiles(&tc, &p, 0, a->M, n0, GL_MIN((int64_t)NR, N - n0));
    }
}

void kn_q8_block_avx512(const float *x, int64_t ldx, int64_t M, const float *mr, const float *w, const float *b,
                        uint8_t *qu, int64_t ldq, float *qd) {
    for (int64_t r0 = 0; r0 < M; r0 += 16) { /* 16 rows: their values stay in registers */
        const int n = (int)GL_MIN((int64_t)16, M - r0);
        __m512 v[16][2];
        float am[16], d[16], id[16];
        for (int i = 0; i < n; i++) {
            const int64_t r = r0 + i;
            __m512 v0 = _mm512_loadu_ps(x + r * ldx), v1 = _mm512_loadu_ps(x + r * ldx + 16);
            if (mr) { /* kn_layernorm_row_avx2's order: (x - mean) * rstd, * w, + b */
                const __m512 mean = _mm512_set1_ps(mr[2 * r]), rstd = _mm512_set1_ps(mr[2 * r + 1]);
                v0 = _mm512_mul_ps(_mm512_sub_ps(v0, mean), rstd), v1 = _mm512_mul_ps(_mm512_sub_ps(v1, mean), rstd);
                if (w) v0 = _mm512_mul_ps(v0, _mm512_loadu_ps(w)), v1 = _mm512_mul_ps(v1, _mm512_loadu_ps(w + 16));
                if (b) v0 = _mm512_add_ps(v0, _mm512_loadu_ps(b)), v1 = _mm512_add_ps(v1, _mm512_loadu_ps(b + 16));
            }
            v[i][0] = v0, v[i][1] = v1, am[i] = q8_amax(v0, v1);
        }
        q8_scales(am, n, d, id);
        for (int i = 0; i < n; i++) q8_store(v[i][0], v[i][1], d[i], id[i], qu + (r0 + i) * ldq, qd + r0 + i);
    }
}

void kn_ln_block_stats_avx512(const float *x, int64_t ldx, int64_t M, float *st) {
    for (int64_t r = 0; r < M; r++) st_put(_mm512_loadu_ps(x + r * ldx), _mm512_loadu_ps(x + r * ldx + 16), st + 2 * r);
}

/* ============================ channel-major layout ============================ */

typedef struct cjob {
    const kn_qgemm_args *a; /* M pixels, N output channels, K input channels */
    const kn_gemm_isa *act;
    int8_t *wq;   /* [N][K] weights as int8 */
    float *wd;    /* [N][nb] */
    int32_t *wc;  /* [N][nb] -128 · Σ w */
    uint8_t *xbuf;
    size_t xstride;
    int64_t pc, n_chunks, ch_per_task, n_ctasks;
    atomic_llong next;
} cjob;

/* Weight rows [lo, hi) -> int8, scales, offset corrections. */
static void pack_w_rows(const kn_qgemm_args *a, int64_t lo, int64_t hi, int8_t *wq, float *wd, int32_t *wc) {
    const int64_t K = a->K, nb = K / GL_QK;
    const size_t rb = row_bytes(a->b_type, K);
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t n = lo; n < hi; n++) {
        const uint8_t *row = (const uint8_t *)a->B + (size_t)n * rb;
        for (int64_t b = 0; b < nb; b++) {
            __m256i q = block_i8(a->b_type, row, b, &wd[n * nb + b]);
            _mm256_storeu_si256((__m256i *)(wq + n * K + b * GL_QK), q);
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
            wc[n * nb + b] = -128 * _mm_cvtsi128_si32(h);
        }
    }
}

static void pack_w(void *v, int ith, int nth) {
    const cjob *j = v;
    int64_t lo, hi;
    gl_split(j->a->N, ith, nth, &lo, &hi);
    pack_w_rows(j->a, lo, hi, j->wq, j->wd, j->wc);
}

/* channel-major weights packed once: wq [N][K], then wd and wc [N][nb] (64-byte aligned parts) */
static size_t cm_wq_bytes(int64_t N, int64_t K) { return (size_t)rup((int64_t)N * K, 64); }
static size_t cm_wd_bytes(int64_t N, int64_t K) { return (size_t)rup((int64_t)N * (K / GL_QK) * 4, 64); }

/* Pixels [m0, m0 + np) of the [K, M] map (np <= pc) -> xu [pc/32][K/4][32][4] u8 (q + 128: one
 * 32-pixel tile's K channels contiguous, K * 32 bytes, read straight through by ctile) and
 * xd [nb][pc]. Per block, its 32 channel rows are read whole (np contiguous floats each, so the
 * prefetchers see plain streams; 16 pixels at a time down the channels was 32 page-strided
 * loads per vector and a third of this kernel's time): first the amax per pixel, then again
 * (from L2) 4 channels at a time, each 4 channels' bytes interleaved per pixel with shifts.
 * Same arithmetic as the reference quantizer (d = amax / 127, q = rint(x · 1/d)), so the same
 * bits. Pixels past np are zero (q = 0). idb: pc floats. */
static void quant_map(const cjob *j, int64_t m0, int64_t np, uint8_t *xu, float *xd, float *idb) {
    const kn_qgemm_args *a = j->a;
    const int64_t nb = a->K / GL_QK, pc = j->pc, lda = a->lda;
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512i lo8 = _mm512_set1_epi32(0xff), off = _mm512_set1_epi32((int)0x80808080u);
#define KMASK(p) ((p) >= np ? (__mmask16)0 : np - (p) >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (np - (p))) - 1))
    for (int64_t b = 0; b < nb; b++) {
        const float *x = a->A + b * GL_QK * lda + m0;
        float *d = xd + b * pc;
        for (int64_t p = 0; p < pc; p += 16) _mm512_store_ps(d + p, _mm512_setzero_ps());
        for (int i = 0; i < GL_QK; i++)
            for (int64_t p = 0; p < np; p += 16)
                _mm512_store_ps(d + p, _mm512_max_ps(_mm512_load_ps(d + p),
                                                     _mm512_and_ps(_mm512_maskz_loadu_ps(KMASK(p), x + i * lda + p), sign)));
        for (int64_t p = 0; p < pc; p += 16) {
            const __m512 dv = _mm512_div_ps(_mm512_load_ps(d + p), _mm512_set1_ps(127.0f));
            const __mmask16 nz = _mm512_cmp_ps_mask(dv, _mm512_setzero_ps(), _CMP_NEQ_OQ);
            _mm512_store_ps(d + p, dv);
            _mm512_store_ps(idb + p, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), dv));
        }
        for (int q = 0; q < 8; q++) {
            const float *xq = x + q * 4 * lda;
            uint8_t *dst = xu + (b * 8 + q) * PX * 4;
            for (int64_t p = 0; p < pc; p += 16) {
                const __mmask16 k = KMASK(p);
                const __m512 id = _mm512_load_ps(idb + p);
                __m512i u = _mm512_setzero_si512();
                for (int i = 0; i < 4; i++) {
                    __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, xq + i * lda + p), id));
                    u = _mm512_or_si512(u, _mm512_slli_epi32(_mm512_and_si512(qi, lo8), 8 * i));
                }
                _mm512_store_si512(dst + p / PX * a->K * PX + p % PX * 4, _mm512_xor_si512(u, off));
            }
        }
    }
#undef KMASK
}

/* Output channels [n, n + R) x pixels [p, p + 32) of the chunk (pixel m0 + p of the map). */
static inline __attribute__((always_inline)) void ctile(const cjob *j, const uint8_t *xu, const float *xd, int64_t m0,
                                                        int64_t p, int64_t np, int64_t n, const int R) {
    const kn_qgemm_args *a = j->a;
    const int64_t K = a->K, nb = K / GL_QK, pc = j->pc;
    __m512 f[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        f[r][0] = f[r][1] = _mm512_setzero_ps();
        if (a->accumulate) { /* the residual added to comes from DRAM: 4096 px x 1024 x 256
                                * accumulating, 1 thread, 9.4 -> 4.3 ms with these */
            _mm_prefetch((const char *)(a->C + (n + r) * a->ldc + m0 + p), _MM_HINT_T0);
            _mm_prefetch((const char *)(a->C + (n + r) * a->ldc + m0 + p + 16), _MM_HINT_T0);
        }
    }
    for (int64_t b = 0; b < nb; b++) {
        __m512i s[MR][2];
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) s[r][0] = s[r][1] = _mm512_set1_epi32(j->wc[(n + r) * nb + b]);
        const uint8_t *x = xu + p * K + b * 8 * PX * 4;
        const int8_t *w = j->wq + n * K + b * GL_QK;
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const __m512i x0 = _mm512_load_si512(x + q * 128), x1 = _mm512_load_si512(x + q * 128 + 64);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                int32_t v;
                memcpy(&v, w + r * K + q * 4, 4);
                const __m512i wv = _mm512_set1_epi32(v);
                s[r][0] = _mm512_dpbusd_epi32(s[r][0], x0, wv);
                s[r][1] = _mm512_dpbusd_epi32(s[r][1], x1, wv);
            }
        }
        const __m512 d0 = _mm512_load_ps(xd + b * pc + p), d1 = _mm512_load_ps(xd + b * pc + p + 16);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512 dw = _mm512_set1_ps(j->wd[(n + r) * nb + b]);
            f[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][0]), _mm512_mul_ps(d0, dw), f[r][0]);
            f[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][1]), _mm512_mul_ps(d1, dw), f[r][1]);
        }
    }
    const int64_t v = np - p;
    const __mmask16 k0 = v >= 16 ? 0xffff : (__mmask16)((1u << v) - 1);
    const __mmask16 k1 = v >= 32 ? 0xffff : v <= 16 ? 0 : (__mmask16)((1u << (v - 16)) - 1);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        float *c = a->C + (n + r) * a->ldc + m0 + p;
        const __m512 bv = _mm512_set1_ps(a->bias_n ? a->bias_n[n + r] : 0.0f);
        __m512 v0 = _mm512_add_ps(f[r][0], bv), v1 = _mm512_add_ps(f[r][1], bv);
        if (a->accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, c), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, c + 16), v1);
        } else if (a->act == KN_ACT_GELU) { /* fused (a second pass over C cost ~5% of the tower) */
            if (a->int8_next) v0 = gelu16_q8(v0), v1 = gelu16_q8(v1);
            else v0 = gelu16(v0), v1 = gelu16(v1);
        }
        _mm512_mask_storeu_ps(c, k0, v0);
        _mm512_mask_storeu_ps(c + 16, k1, v1);
    }
}

static void run_chunks(void *v, int ith, int nth) {
    cjob *j = v;
    const kn_qgemm_args *a = j->a;
    const int64_t nb = a->K / GL_QK;
    uint8_t *xu = align64(j->xbuf + (size_t)ith * j->xstride);
    float *xd = (float *)(xu + (size_t)a->K * (size_t)j->pc), *idb = xd + (size_t)nb * (size_t)j->pc;
    int64_t last = -1; /* the chunk now in xu: consecutive tasks of one chunk quantize it once */
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n_chunks * j->n_ctasks) break;
        int64_t ci = t / j->n_ctasks, n0 = t % j->n_ctasks * j->ch_per_task, n1 = GL_MIN(a->N, n0 + j->ch_per_task);
        int64_t m0 = ci * j->pc, np = GL_MIN(j->pc, a->M - m0);
        if (ci != last) quant_map(j, m0, np, xu, xd, idb), last = ci;
        /* pixel tiles outer: a tile's activations (K * 32 bytes) stay in L1 across the
         * channel tiles, whose W rows stream by (4 bytes per 2 dpbusd). Inner channel tiles
         * over a [K/4][pixels][4] layout (4 KB strides) took 10.3 ms for 16384 pixels x 256 x 256
         * on one thread, this 5.4 ms. */
        for (int64_t p = 0; p < np; p += PX) {
            int64_t n = n0;
            for (; n + MR <= n1; n += MR) ctile(j, xu, xd, m0, p, np, n, MR);
            switch (n1 - n) {
            case 5: ctile(j, xu, xd, m0, p, np, n, 5); break;
            case 4: ctile(j, xu, xd, m0, p, np, n, 4); break;
            case 3: ctile(j, xu, xd, m0, p, np, n, 3); break;
            case 2: ctile(j, xu, xd, m0, p, np, n, 2); break;
            case 1: ctile(j, xu, xd, m0, p, np, n, 1); break;
            default: break;
            }
        }
        if (a->act != KN_ACT_NONE && a->act != KN_ACT_GELU && !a->accumulate) j->act->act_tile(a->act, a->C + n0 * a->ldc + m0, a->ldc, n1 - n0, np);
    }
    (void)nth;
}

/* Pixels per chunk: a multiple of 32 whose quantized activations (K bytes per pixel) stay in
 * L2 (~256 KB), and small enough that every thread gets a few chunks. */
static int64_t chunk_pixels(int nth, int64_t M, int64_t K) {
    int64_t cap = GL_MAX((int64_t)PX, (256 << 10) / K / PX * PX);
    int64_t want = rup((M + 4 * nth - 1) / (4 * nth), PX);
    return GL_MAX((int64_t)PX, GL_MIN(cap, want));
}

static size_t cm_ws(int nth, int64_t M, int64_t N, int64_t K) {
    int64_t nb = K / GL_QK, pc = chunk_pixels(nth, M, K);
    return (size_t)N * (size_t)K + (size_t)N * (size_t)nb * 8 + 128 +
           (size_t)nth * ((size_t)K * (size_t)pc + (size_t)(nb + 1) * (size_t)pc * 4 + 64);
}

static int run_cm(const kn_env *env, const kn_qgemm_args *a, void *ws) {
    const int64_t K = a->K, nb = K / GL_QK;
    const int nth = gl_pool_size(env->pool);
    cjob j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.act = kn_gemm_isa_pick(env);
    j.wq = (int8_t *)align64(ws);
    j.wd = (float *)align64(j.wq + (size_t)a->N * (size_t)K);
    j.wc = (int32_t *)(j.wd + (size_t)a->N * (size_t)nb);
    j.xbuf = (uint8_t *)(j.wc + (size_t)a->N * (size_t)nb);
    j.pc = chunk_pixels(nth, a->M, K);
    j.xstride = (size_t)K * (size_t)j.pc + (size_t)(nb + 1) * (size_t)j.pc * 4 + 64;
    j.n_chunks = (a->M + j.pc - 1) / j.pc;
    /* too few chunks (small maps): split the output channels too, in whole tiles */
    int64_t want = GL_MAX((int64_t)1, (2 * nth + j.n_chunks - 1) / j.n_chunks);
    want = GL_MIN(want, GL_MAX((int64_t)1, a->N / (4 * MR)));
    j.ch_per_task = rup((a->N + want - 1) / want, MR);
    j.n_ctasks = (a->N + j.ch_per_task - 1) / j.ch_per_task;
    atomic_init(&j.next, 0);
    if (a->Bq) { /* packed once: no per-call packing run */
        j.wq = (int8_t *)a->Bq->p;
        j.wd = (float *)(a->Bq->p + cm_wq_bytes(a->N, K));
        j.wc = (int32_t *)(a->Bq->p + cm_wq_bytes(a->N, K) + cm_wd_bytes(a->N, K));
    } else {
        gl_pool_run(env->pool, pack_w, &j);
    }
    gl_pool_run(env->pool, run_chunks, &j);
    return 0;
}

/* ================================ packed once ================================ */

size_t kn_qpacked_bytes(int64_t N, int64_t K, int cm) {
    if (cm) return cm_wq_bytes(N, K) + 2 * cm_wd_bytes(N, K);
    return (size_t)((N + NR - 1) / NR) * (size_t)(K / GL_QK) * PANEL_BLOCK;
}

void kn_qpack_avx512vnni(const void *B, gl_dtype t, int64_t N, int64_t K, int cm, void *dst, kn_qpacked *out) {
    const int64_t nb = K / GL_QK;
    kn_qgemm_args a = {0};
    a.N = N, a.K = K, a.B = B, a.b_type = t;
    uint8_t *d = dst;
    if (cm) {
        pack_w_rows(&a, 0, N, (int8_t *)d, (float *)(d + cm_wq_bytes(N, K)), (int32_t *)(d + cm_wq_bytes(N, K) + cm_wd_bytes(N, K)));
    } else {
        for (int64_t n0 = 0; n0 < N; n0 += NR) {
            panel p = panel_at(d + (size_t)(n0 / NR) * (size_t)nb * PANEL_BLOCK, nb);
            pack_panel(&a, n0, &p);
        }
    }
    *out = (kn_qpacked){(const uint8_t *)dst, N, K, cm};
}

/* ================================ entry ================================ */

size_t kn_qgemm_avx512vnni_ws_size(const kn_env *env, int64_t M, int64_t N, int64_t K, int cm) {
    int nth = gl_pool_size(env->pool);
    return cm ? cm_ws(nth, M, N, K) : rows_ws(nth, M, K);
}

int kn_qgemm_avx512vnni(const kn_env *env, const kn_qgemm_args *a) {
    if (a->K % GL_QK || !gl_dtype_is_quant(a->b_type)) return GLIMPSE_ERR_INVALID_ARG;
    if (a->M <= 0 || a->N <= 0) return 0;
    if (a->a_trans != a->c_trans) return kn_qgemm(env, a); /* mixed layouts: nothing uses them */
    const int cm = a->a_trans;
    if (a->Bq && (!a->Bq->p || a->Bq->N != a->N || a->Bq->K != a->K || a->Bq->cm != cm)) return GLIMPSE_ERR_INVALID_ARG;
    size_t need = kn_qgemm_avx512vnni_ws_size(env, a->M, a->N, a->K, cm);
    void *own = NULL, *ws = a->ws;
    if (!ws || a->ws_size < need) ws = own = gl_malloc(need);
    if (!ws) return GLIMPSE_ERR_NOMEM;
    int rc = cm ? run_cm(env, a, ws) : run_rows(env, a, ws);
    gl_free(own);
    return rc;
}
