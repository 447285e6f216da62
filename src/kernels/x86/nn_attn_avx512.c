/* nn_attn_avx512.c — kn_attn_blk (nn.h) with 512-bit vectors: up to 4 queries x 64 keys per
 * score step (4 K loads + 4 broadcasts per 16 FMAs, twice the AVX2 kernel's width) and 4 queries
 * x 64 dims per P·V step. Every output lane is the same FMA chain as in nn_attn_avx2.c (over d
 * for a score, over keys for an output), so the results are the AVX2 kernel's bits. Used by
 * the text towers (77 tokens, 8-12 heads) and the MCi/ViT attention stages. */
#include <immintrin.h>
#include <math.h>

#include "kernels/nn.h"
#include "nn_math_avx512.h"

static inline __attribute__((always_inline)) void score_step(const kn_attn_blk *b, const float *const q[4], int64_t j,
                                                             const int NV) {
    __m512 acc[4][5];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 5
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const float *kt = b->kt + j;
    for (int d = 0; d < b->hd; d++, kt += b->ldkt) {
        __m512 k[5];
#pragma GCC unroll 5
        for (int v = 0; v < NV; v++) k[v] = _mm512_loadu_ps(kt + 16 * v);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512 qb = _mm512_set1_ps(q[r][d]);
#pragma GCC unroll 5
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(qb, k[v], acc[r][v]);
        }
    }
    const __m512 sc = _mm512_set1_ps(b->scale);
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        if (r < b->nq)
#pragma GCC unroll 5
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(b->s + r * b->ldkt + j + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

/* K^T rows are padded with zeros to ldkt (a multiple of 16): whole vectors only. Steps of 64
 * keys, the last one up to 80 (the text towers' 77 keys in one step: 20 accumulators) */
static void scores(const kn_attn_blk *b, int64_t nk16) {
    const float *q[4];
    for (int r = 0; r < 4; r++) q[r] = b->q + (r < b->nq ? r : 0) * b->q_stride;
    int64_t j = 0;
    for (; nk16 - j > 80; j += 64) score_step(b, q, j, 4);
    switch ((nk16 - j) / 16) {
    case 5: score_step(b, q, j, 5); break;
    case 4: score_step(b, q, j, 4); break;
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

/* kn8_exp (nn_math_avx2.h) on 16 lanes: the same operations per lane, so the same bits (a
 * twin, not a call on both halves: that measured 9% slower attention blocks). */
static inline __m512 exp16_kn8(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.7228f), lo = _mm512_set1_ps(-87.3365f);
    const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i ni = _mm512_cvtps_epi32(n);
    __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
    __m512 e = _mm512_maskz_mov_ps((__mmask16)~under, _mm512_mul_ps(_mm512_mul_ps(p, s1), s2));
    return _mm512_mask_mov_ps(e, over, _mm512_set1_ps(INFINITY));
}

/* kn_softmax_row_avx2's bits with 16 lanes and k-masks (its masked tail loads and stores were
 * a third of the text towers' attention time on AMD): the max is order-free; its two 8-lane
 * sums are this accumulator's halves, and the tail is added to the low half in its 8-lane
 * steps. Then zeros to nk, as kn_attn_blk_softmax_avx2. */
static void softmax_rows(const kn_attn_blk *b, int64_t nk) {
    for (int q = 0; q < b->nq; q++) {
        float *s = b->s + q * b->ldkt;
        const int64_t n = b->lim[q];
        __m512 vmx = _mm512_set1_ps(-INFINITY);
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) vmx = _mm512_max_ps(vmx, _mm512_loadu_ps(s + i));
        const __mmask16 kt = (__mmask16)((1u << (n - i)) - 1);
        vmx = _mm512_mask_max_ps(vmx, kt, vmx, _mm512_maskz_loadu_ps(kt, s + i));
        const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmx));
        __m512 acc = _mm512_setzero_ps();
        for (i = 0; i + 16 <= n; i += 16) {
            const __m512 e = exp16_kn8(_mm512_sub_ps(_mm512_loadu_ps(s + i), vm));
            _mm512_storeu_ps(s + i, e);
            acc = _mm512_add_ps(acc, e);
        }
        __m256 s0 = _mm512_castps512_ps256(acc), s1 = _mm512_extractf32x8_ps(acc, 1);
        if (i < n) {
            const __m512 e = _mm512_maskz_mov_ps(kt, exp16_kn8(_mm512_sub_ps(_mm512_maskz_loadu_ps(kt, s + i), vm)));
            _mm512_mask_storeu_ps(s + i, kt, e);
            s0 = _mm256_add_ps(s0, _mm512_castps512_ps256(e));
            if (n - i > 8) s0 = _mm256_add_ps(s0, _mm512_extractf32x8_ps(e, 1));
        }
        __m256 t = _mm256_add_ps(s0, s1); /* kn8_hsum */
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        const __m512 inv = _mm512_set1_ps(1.0f / _mm_cvtss_f32(h));
        for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(s + i, _mm512_mul_ps(_mm512_loadu_ps(s + i), inv));
        _mm512_mask_storeu_ps(s + i, kt, _mm512_mul_ps(_mm512_maskz_loadu_ps(kt, s + i), inv));
        for (int64_t j = n; j < nk; j++) s[j] = 0; /* keys this query must not see */
    }
}

void kn_attn_blk_avx512(const kn_attn_blk *b) {
    const int64_t nk = kn_attn_blk_nk(b);
    scores(b, (nk + 15) & ~(int64_t)15);
    softmax_rows(b, nk);
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
