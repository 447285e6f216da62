/* qgemm_x86.h — the AVX2 quantized dot kernels, written once and instantiated twice: with
 * maddubs + madd (qgemm_avx2.c) and with AVX-VNNI's dpbusd, which does both in one instruction
 * (qgemm_vnni.c, built with -mavxvnni). The includer defines QX_DOT4(w_u8, a_s8) -> 8 int32
 * sums of 4 adjacent u8 x s8 products, and QX_PREFIX. See qgemm_avx2.c for the arithmetic. */
#include <immintrin.h>

#include "kernels/qgemm.h"

#define QX_CAT2(a, b) a##b
#define QX_CAT(a, b) QX_CAT2(a, b)

static inline float QX_CAT(QX_PREFIX, hsum8)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define hsum8 QX_CAT(QX_PREFIX, hsum8)

static inline __m256i load_q8(const gl_block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)b->qs); }

/* the 32 nibbles of a Q4_0 block as unsigned bytes 0..15 (low halves first, as ggml orders) */
static inline __m256i load_q4u(const gl_block_q4_0 *b) {
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    __m128i raw = _mm_loadu_si128((const __m128i *)b->qs);
    __m128i lo = _mm_and_si128(raw, lo4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), lo4);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* One weight block against one activation block (xv its 32 int8, xs its Σ in every lane): the
 * 8 lane sums of the integer products, as f32. q4 is a constant after inlining. */
static inline __attribute__((always_inline)) __m256 qprod(const void *blk, __m256i xv, __m256i xs, const int q4) {
    if (q4) return _mm256_cvtepi32_ps(_mm256_sub_epi32(QX_DOT4(load_q4u(blk), xv), xs));
    __m256i w = load_q8(blk);
    (void)xs;
    return _mm256_cvtepi32_ps(QX_DOT4(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w)));
}

#define QLOADX(k) _mm256_loadu_si256((const __m256i *)x[k].qs)
#define QSUMX(k) _mm256_set1_epi32(x[k].sum)
#define QDW(p) _cvtsh_ss(*(const uint16_t *)(p)) /* both block types start with the f16 scale */

/* Rows of one weight matrix against one activation row: even blocks into a0, odd into a1 (the
 * FMA latency chain does not bound the loop), out = hsum8(a0 + a1). R rows (1 or 4; row r at
 * w + r * rb) share each activation block load; with R = 4 the next 4 rows (contiguous after
 * these) are prefetched a little per step, so memory sees one long read instead of 4 short
 * streams. Every row's arithmetic is the same whatever R: dot4 == dot row by row, bitwise. */
static inline __attribute__((always_inline)) void rows_x1(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x,
                                                          float *out, const int R, const int q4) {
    const size_t bs = q4 ? sizeof(gl_block_q4_0) : sizeof(gl_block_q8_0);
    /* named accumulators (not arrays): with arrays the compiler keeps them in memory */
    const char *b0 = w, *b1 = b0 + (R > 1 ? rb : 0), *b2 = b0 + (R > 1 ? 2 * rb : 0), *b3 = b0 + (R > 1 ? 3 * rb : 0);
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    /* pf is an address, not an access: prefetches past the end of B do not fault */
    const char *pf = (const char *)w + 4 * rb, *pf_end = pf + 4 * rb;
    const size_t pf_step = ((4 * rb) / (size_t)(nb / 2 + 1) + 63) & ~(size_t)63;
#define QX_STEP(bp, acc, xv, xs, xd, off) \
    acc = _mm256_fmadd_ps(qprod((bp) + (off), xv, xs, q4), _mm256_set1_ps(QDW((bp) + (off)) * (xd)), acc)
    int64_t k = 0;
    for (; k + 2 <= nb; k += 2) {
        if (R == 4 && pf < pf_end)
            for (size_t o = 0; o < pf_step; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        pf += pf_step;
        __m256i x0 = QLOADX(k), x1 = QLOADX(k + 1), s0 = QSUMX(k), s1 = QSUMX(k + 1);
        float d0 = x[k].d, d1 = x[k + 1].d;
        size_t o0 = (size_t)k * bs, o1 = o0 + bs;
        QX_STEP(b0, a00, x0, s0, d0, o0); QX_STEP(b0, a01, x1, s1, d1, o1);
        if (R > 1) {
            QX_STEP(b1, a10, x0, s0, d0, o0); QX_STEP(b1, a11, x1, s1, d1, o1);
            QX_STEP(b2, a20, x0, s0, d0, o0); QX_STEP(b2, a21, x1, s1, d1, o1);
            QX_STEP(b3, a30, x0, s0, d0, o0); QX_STEP(b3, a31, x1, s1, d1, o1);
        }
    }
    if (k < nb) {
        __m256i x0 = QLOADX(k), s0 = QSUMX(k);
        float d0 = x[k].d;
        size_t o0 = (size_t)k * bs;
        QX_STEP(b0, a00, x0, s0, d0, o0);
        if (R > 1) { QX_STEP(b1, a10, x0, s0, d0, o0); QX_STEP(b2, a20, x0, s0, d0, o0); QX_STEP(b3, a30, x0, s0, d0, o0); }
    }
#undef QX_STEP
    out[0] = hsum8(_mm256_add_ps(a00, a01));
    if (R > 1) {
        out[1] = hsum8(_mm256_add_ps(a10, a11));
        out[2] = hsum8(_mm256_add_ps(a20, a21));
        out[3] = hsum8(_mm256_add_ps(a30, a31));
    }
}

/* One weight row against nx = 2..4 activation rows (row i at x + i * xs): each weight block is
 * loaded once for the nx rows. */
static inline __attribute__((always_inline)) void row_xn(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs,
                                                         int nx, float *out, const int q4) {
    const size_t bs = q4 ? sizeof(gl_block_q4_0) : sizeof(gl_block_q8_0);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t k = 0; k < nb; k++) {
        const char *blk = (const char *)w + (size_t)k * bs;
        float dw = QDW(blk);
        for (int i = 0; i < nx; i++) {
            const kn_block_q8a *xb = &x[i * xs + k];
            __m256 p = qprod(blk, _mm256_loadu_si256((const __m256i *)xb->qs), _mm256_set1_epi32(xb->sum), q4);
            acc[i] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * xb->d), acc[i]);
        }
    }
    for (int i = 0; i < nx; i++) out[i] = hsum8(acc[i]);
}

#define QX_DOT_FN(NAME, Q4) QX_DOT_FN2(NAME, Q4)
#define QX_DOT_FN2(NAME, Q4)                                                                                        \
    static void NAME##_r4(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x, float *out) {             \
        rows_x1(nb, w, rb, x, out, 4, Q4);                                                                        \
    }                                                                                                             \
    static void NAME(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out) {          \
        switch (nx) {                                                                                             \
        case 4: row_xn(nb, w, x, xs, 4, out, Q4); break;                                                          \
        case 3: row_xn(nb, w, x, xs, 3, out, Q4); break;                                                          \
        case 2: row_xn(nb, w, x, xs, 2, out, Q4); break;                                                          \
        default: rows_x1(nb, w, 0, x, out, 1, Q4); break;                                                         \
        }                                                                                                         \
    }


QX_DOT_FN(QX_CAT(QX_PREFIX, dot_q8_0), 0)
QX_DOT_FN(QX_CAT(QX_PREFIX, dot_q4_0), 1)
#undef hsum8
