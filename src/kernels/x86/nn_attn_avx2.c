/* nn_attn_avx2.c — blocked attention for one head and up to 4 queries (see kn_attn_blk in
 * nn.h). Scores: 4 queries × 16 keys per step, 6 loads per 8 FMAs. P·V: 2 queries × 32 dims per
 * step, the same ratio. */
#include "kernels/nn.h"
#include "nn_math_avx2.h"

static void scores(const kn_attn_blk *b, int64_t nk16) {
    const float *q0 = b->q, *q1 = b->nq > 1 ? q0 + b->q_stride : q0;
    const float *q2 = b->nq > 2 ? q0 + 2 * b->q_stride : q0, *q3 = b->nq > 3 ? q0 + 3 * b->q_stride : q0;
    const __m256 sc = _mm256_set1_ps(b->scale);
    for (int64_t j = 0; j < nk16; j += 16) {
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        const float *kt = b->kt + j;
        for (int d = 0; d < b->hd; d++, kt += b->ldkt) {
            __m256 k0 = _mm256_loadu_ps(kt), k1 = _mm256_loadu_ps(kt + 8), qb;
            qb = _mm256_broadcast_ss(q0 + d);
            a00 = _mm256_fmadd_ps(qb, k0, a00);
            a01 = _mm256_fmadd_ps(qb, k1, a01);
            qb = _mm256_broadcast_ss(q1 + d);
            a10 = _mm256_fmadd_ps(qb, k0, a10);
            a11 = _mm256_fmadd_ps(qb, k1, a11);
            qb = _mm256_broadcast_ss(q2 + d);
            a20 = _mm256_fmadd_ps(qb, k0, a20);
            a21 = _mm256_fmadd_ps(qb, k1, a21);
            qb = _mm256_broadcast_ss(q3 + d);
            a30 = _mm256_fmadd_ps(qb, k0, a30);
            a31 = _mm256_fmadd_ps(qb, k1, a31);
        }
        float *s = b->s + j;
        _mm256_storeu_ps(s, _mm256_mul_ps(a00, sc));
        _mm256_storeu_ps(s + 8, _mm256_mul_ps(a01, sc));
        if (b->nq > 1) {
            _mm256_storeu_ps(s + b->ldkt, _mm256_mul_ps(a10, sc));
            _mm256_storeu_ps(s + b->ldkt + 8, _mm256_mul_ps(a11, sc));
        }
        if (b->nq > 2) {
            _mm256_storeu_ps(s + 2 * b->ldkt, _mm256_mul_ps(a20, sc));
            _mm256_storeu_ps(s + 2 * b->ldkt + 8, _mm256_mul_ps(a21, sc));
        }
        if (b->nq > 3) {
            _mm256_storeu_ps(s + 3 * b->ldkt, _mm256_mul_ps(a30, sc));
            _mm256_storeu_ps(s + 3 * b->ldkt + 8, _mm256_mul_ps(a31, sc));
        }
    }
}

/* out rows i0 (and i0+1 when two) = P · V over dims [d0, d0 + 8·nv), nv <= 4 full vectors */
static void pv_full(const kn_attn_blk *b, int i0, int two, int64_t nk, int d0) {
    const float *p0 = b->s + i0 * b->ldkt, *p1 = two ? p0 + b->ldkt : p0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    const float *v = b->v + d0;
    for (int64_t j = 0; j < nk; j++, v += b->v_stride) {
        __m256 x0 = _mm256_loadu_ps(v), x1 = _mm256_loadu_ps(v + 8), x2 = _mm256_loadu_ps(v + 16),
               x3 = _mm256_loadu_ps(v + 24);
        __m256 w = _mm256_broadcast_ss(p0 + j), u = _mm256_broadcast_ss(p1 + j);
        a0 = _mm256_fmadd_ps(w, x0, a0);
        a1 = _mm256_fmadd_ps(w, x1, a1);
        a2 = _mm256_fmadd_ps(w, x2, a2);
        a3 = _mm256_fmadd_ps(w, x3, a3);
        c0 = _mm256_fmadd_ps(u, x0, c0);
        c1 = _mm256_fmadd_ps(u, x1, c1);
        c2 = _mm256_fmadd_ps(u, x2, c2);
        c3 = _mm256_fmadd_ps(u, x3, c3);
    }
    float *o = b->out + i0 * b->o_stride + d0;
    _mm256_storeu_ps(o, a0);
    _mm256_storeu_ps(o + 8, a1);
    _mm256_storeu_ps(o + 16, a2);
    _mm256_storeu_ps(o + 24, a3);
    if (two) {
        o += b->o_stride;
        _mm256_storeu_ps(o, c0);
        _mm256_storeu_ps(o + 8, c1);
        _mm256_storeu_ps(o + 16, c2);
        _mm256_storeu_ps(o + 24, c3);
    }
}

/* one 8-dim (or shorter, masked) slice [d0, d0 + cnt) for query i */
static void pv_slice(const kn_attn_blk *b, int i, int64_t nk, int d0, int cnt) {
    const float *p = b->s + i * b->ldkt, *v = b->v + d0;
    __m256i m = kn8_tailmask(cnt);
    __m256 a = _mm256_setzero_ps();
    for (int64_t j = 0; j < nk; j++, v += b->v_stride)
        a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_maskload_ps(v, m), a);
    _mm256_maskstore_ps(b->out + i * b->o_stride + d0, m, a);
}

void kn_attn_blk_softmax_avx2(const kn_attn_blk *b, int64_t nk) {
    for (int i = 0; i < b->nq; i++) {
        float *s = b->s + i * b->ldkt;
        kn_softmax_row_avx2(s, s, b->lim[i]);
        for (int64_t j = b->lim[i]; j < nk; j++) s[j] = 0; /* keys this query must not see */
    }
}

void kn_attn_blk_avx2(const kn_attn_blk *b) {
    const int64_t nk = kn_attn_blk_nk(b);
    scores(b, (nk + 15) & ~(int64_t)15);
    kn_attn_blk_softmax_avx2(b, nk);
    for (int i = 0; i < b->nq; i += 2) {
        int two = i + 1 < b->nq, d0 = 0;
        for (; d0 + 32 <= b->hd; d0 += 32) pv_full(b, i, two, nk, d0);
        for (; d0 < b->hd; d0 += 8) {
            int cnt = b->hd - d0 < 8 ? b->hd - d0 : 8;
            pv_slice(b, i, nk, d0, cnt);
            if (two) pv_slice(b, i + 1, nk, d0, cnt);
        }
    }
}
