/* nn_attn_avx512.c — kn_attn_blk (nn.h) with 512-bit vectors: up to 4 queries x 64 keys per
 * score step (4 K loads + 4 broadcasts per 16 FMAs, twice the AVX2 kernel's width) and 4 queries
 * x 64 dims per P·V step. Every output lane is the same FMA chain as in nn_attn_avx2.c (over d
 * for a score, over keys for an output), so the results are the AVX2 kernel's bits. Used by
 * the text towers (77 tokens, 8-12 heads) and the MCi/ViT attention stages. */
#include <immintrin.h>

#include "kernels/nn.h"
#include "nn_math_avx512.h"

static inline __attribute__((always_inline)) void score_step(const kn_attn_blk *b, const float *const q[4], int64_t j,
                                                             const int NV) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const float *kt = b->kt + j;
    for (int d = 0; d < b->hd; d++, kt += b->ldkt) {
        __m512 k[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) k[v] = _mm512_loadu_ps(kt + 16 * v);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512 qb = _mm512_set1_ps(q[r][d]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(qb, k[v], acc[r][v]);
        }
    }
    const __m512 sc = _mm512_set1_ps(b->scale);
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        if (r < b->nq)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(b->s + r * b->ldkt + j + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

/* K^T rows are padded with zeros to ldkt (a multiple of 16): whole vectors only */
static void scores(const kn_attn_blk *b, int64_t nk16) {
    const float *q[4];
    for (int r = 0; r < 4; r++) q[r] = b->q + (r < b->nq ? r : 0) * b->q_stride;
    int64_t j = 0;
    for (; j + 64 <= nk16; j += 64) score_step(b, q, j, 4);
    switch ((nk16 - j) / 16) {
    case 3: score_step(b, q, j, 3); break;
    case 2: score_step(b, q, j, 2); break;
    case 1: score_step(b, q, j, 1); break;
    default: break;
    }
}

/* out rows of the block's queries, dims [d0, d0 + 16·NV) (the last vector masked by km) */
static inline __attribute__((always_inline)) void pv_step(const kn_attn_blk *b, int64_t nk, int d0, __mmask16 km,
                                                          const int NV) {
    const float *p[4];
    for (int r = 0; r < 4; r++) p[r] = b->s + (r < b->nq ? r : 0) * b->ldkt;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const float *vr = b->v + d0;
    for (int64_t j = 0; j < nk; j++, vr += b->v_stride) {
        __m512 x[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) x[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(km, vr + 16 * v) : _mm512_loadu_ps(vr + 16 * v);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512 w = _mm512_set1_ps(p[r][j]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(w, x[v], acc[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        if (r >= b->nq) break;
        float *o = b->out + r * b->o_stride + d0;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            if (v == NV - 1) _mm512_mask_storeu_ps(o + 16 * v, km, acc[r][v]);
            else _mm512_storeu_ps(o + 16 * v, acc[r][v]);
        }
    }
}

void kn_attn_blk_avx512(const kn_attn_blk *b) {
    const int64_t nk = kn_attn_blk_nk(b);
    scores(b, (nk + 15) & ~(int64_t)15);
    kn_attn_blk_softmax_avx2(b, nk);
    for (int d0 = 0; d0 < b->hd; d0 += 64) {
        int left = b->hd - d0, nv = left >= 64 ? 4 : (left + 15) / 16, tail = left - 16 * (nv - 1);
        __mmask16 km = tail >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << tail) - 1);
        switch (nv) {
        case 4: pv_step(b, nk, d0, km, 4); break;
        case 3: pv_step(b, nk, d0, km, 3); break;
        case 2: pv_step(b, nk, d0, km, 2); break;
        default: pv_step(b, nk, d0, km, 1); break;
        }
    }
}

/* K^T for the block kernels: n keys (rows of k, stride k_stride) x hd dims -> kt [hd][ldkt],
 * zero from key n to the next multiple of 16. 16x16 tiles through registers (the scalar strided
 * copy was ~3.5% of the int8 text tower). */
void kn_attn_pack_kt_avx512(const float *k, int64_t k_stride, int hd, int64_t n, int64_t ldkt, float *kt) {
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int nj = (int)(n - j0 < 16 ? n - j0 : 16);
        for (int d0 = 0; d0 < hd; d0 += 16) {
            const int nd = hd - d0 < 16 ? hd - d0 : 16;
            const __mmask16 md = (__mmask16)((1u << nd) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nj ? _mm512_maskz_loadu_ps(md, k + (j0 + i) * k_stride + d0) : _mm512_setzero_ps();
            transpose16x16(r);
            for (int i = 0; i < nd; i++) _mm512_storeu_ps(kt + (int64_t)(d0 + i) * ldkt + j0, r[i]);
        }
    }
}
