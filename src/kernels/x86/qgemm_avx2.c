/* qgemm_avx2.c — AVX2 pieces of the quantized products: activation quantization and int8 dot
 * products of one weight row against up to 4 activation rows. Per 32-value block:
 * |w| (sign_epi8) as unsigned times sign(w)·a (sign_epi8) -> maddubs (pairs to int16; at most
 * 2·128·127 < 32767, so no saturation) -> madd with ones (to 8 x int32) -> f32, one FMA with
 * d_w·d_a. Q4_0 nibbles are unpacked to int8 (q - 8) first. Only called behind kn_use_avx2(). */
#include <immintrin.h>

#include "kernels/qgemm.h"

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void quantize_act(const float *x, kn_block_q8a *y, int64_t nb) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < nb; i++, x += GL_QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        __m256 s = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, s)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, s));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, s)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, s));
        /* packs work per 128-bit lane: the permute puts the 8 groups of 4 back in order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)y[i].qs, _mm256_permutevar8x32_epi32(p, perm));
    }
}

static inline __m256i load_q8(const gl_block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)b->qs); }

static inline __m256i load_q4(const gl_block_q4_0 *b) {
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    __m128i raw = _mm_loadu_si128((const __m128i *)b->qs);
    __m128i lo = _mm_and_si128(raw, lo4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), lo4);
    __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    return _mm256_sub_epi8(w, _mm256_set1_epi8(8));
}

/* 8 int32 partial sums of the 32 products w[j]·a[j], as f32. */
static inline __m256 dot32v(__m256i aw, __m256i w, __m256i a) {
    __m256i sa = _mm256_sign_epi8(a, w);
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(p);
}
static inline __m256 dot32(__m256i aw, __m256i w, const int8_t *a) {
    return dot32v(aw, w, _mm256_loadu_si256((const __m256i *)a));
}

/* Decode, 4 weight rows against one activation row: each row's arithmetic is exactly the
 * one-row kernel's below (even blocks into a0, odd into a1, hsum8(a0 + a1)); the activation
 * blocks are loaded once for the 4 rows, and the next 4 rows (contiguous after these) are
 * prefetched a little per step, so memory sees one long read instead of 4 short streams. */
static inline __attribute__((always_inline)) void rows4(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x,
                                                        float *out, const int q4) {
    const size_t bs = q4 ? sizeof(gl_block_q4_0) : sizeof(gl_block_q8_0);
    const char *b0 = w, *b1 = b0 + rb, *b2 = b1 + rb, *b3 = b2 + rb;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    /* pf is an address, not an access: prefetches past the end of B do not fault */
    const char *pf = b0 + 4 * rb, *pf_end = pf + 4 * rb;
    const size_t pf_step = ((4 * rb) / (size_t)(nb / 2 + 1) + 63) & ~(size_t)63;
#define LD(p) (q4 ? load_q4((const gl_block_q4_0 *)(p)) : load_q8((const gl_block_q8_0 *)(p)))
#define DW(p) _cvtsh_ss(*(const uint16_t *)(p)) /* both block types start with the f16 scale */
#define STEP(bp, acc, xv, xd, off)                                                                 \
    do {                                                                                            \
        __m256i wv = LD(bp + (off));                                                                \
        acc = _mm256_fmadd_ps(dot32v(_mm256_sign_epi8(wv, wv), wv, xv), _mm256_set1_ps(DW(bp + (off)) * (xd)), acc); \
    } while (0)
    int64_t k = 0;
    for (; k + 2 <= nb; k += 2) {
        if (pf < pf_end)
            for (size_t o = 0; o < pf_step; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        pf += pf_step;
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[k].qs), x1 = _mm256_loadu_si256((const __m256i *)x[k + 1].qs);
        float d0 = x[k].d, d1 = x[k + 1].d;
        size_t o0 = (size_t)k * bs, o1 = o0 + bs;
        STEP(b0, a00, x0, d0, o0); STEP(b0, a01, x1, d1, o1);
        STEP(b1, a10, x0, d0, o0); STEP(b1, a11, x1, d1, o1);
        STEP(b2, a20, x0, d0, o0); STEP(b2, a21, x1, d1, o1);
        STEP(b3, a30, x0, d0, o0); STEP(b3, a31, x1, d1, o1);
    }
    if (k < nb) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[k].qs);
        float d0 = x[k].d;
        size_t o0 = (size_t)k * bs;
        STEP(b0, a00, x0, d0, o0); STEP(b1, a10, x0, d0, o0); STEP(b2, a20, x0, d0, o0); STEP(b3, a30, x0, d0, o0);
    }
#undef STEP
#undef DW
#undef LD
    out[0] = hsum8(_mm256_add_ps(a00, a01));
    out[1] = hsum8(_mm256_add_ps(a10, a11));
    out[2] = hsum8(_mm256_add_ps(a20, a21));
    out[3] = hsum8(_mm256_add_ps(a30, a31));
}

#define DOT_FN(NAME, BLOCK, LOAD)                                                                               \
    static inline __attribute__((always_inline)) void NAME##_n(int64_t nb, const BLOCK *b, const kn_block_q8a *x, \
                                                               int64_t xs, int nx, float *out) {                  \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};      \
        for (int64_t k = 0; k < nb; k++) {                                                                        \
            __m256i w = LOAD(&b[k]);                                                                              \
            __m256i aw = _mm256_sign_epi8(w, w);                                                                  \
            float dw = _cvtsh_ss(b[k].d);                                                                         \
            for (int i = 0; i < nx; i++) {                                                                        \
                const kn_block_q8a *xb = &x[i * xs + k];                                                          \
                acc[i] = _mm256_fmadd_ps(dot32(aw, w, xb->qs), _mm256_set1_ps(dw * xb->d), acc[i]);               \
            }                                                                                                     \
        }                                                                                                         \
        for (int i = 0; i < nx; i++) out[i] = hsum8(acc[i]);                                                      \
    }                                                                                                             \
    /* decode (one row): two blocks per step into two accumulators, so the FMA latency chain    \
     * does not bound the loop */                                                                                 \
    static void NAME##_1(int64_t nb, const BLOCK *b, const kn_block_q8a *x, float *out) {                         \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                                \
        int64_t k = 0;                                                                                            \
        for (; k + 2 <= nb; k += 2) {                                                                             \
            __m256i w0 = LOAD(&b[k]), w1 = LOAD(&b[k + 1]);                                                       \
            __m256 p0 = dot32(_mm256_sign_epi8(w0, w0), w0, x[k].qs);                                             \
            __m256 p1 = dot32(_mm256_sign_epi8(w1, w1), w1, x[k + 1].qs);                                         \
            a0 = _mm256_fmadd_ps(p0, _mm256_set1_ps(_cvtsh_ss(b[k].d) * x[k].d), a0);                             \
            a1 = _mm256_fmadd_ps(p1, _mm256_set1_ps(_cvtsh_ss(b[k + 1].d) * x[k + 1].d), a1);                     \
        }                                                                                                         \
        if (k < nb) {                                                                                             \
            __m256i w0 = LOAD(&b[k]);                                                                             \
            a0 = _mm256_fmadd_ps(dot32(_mm256_sign_epi8(w0, w0), w0, x[k].qs),                                    \
                                 _mm256_set1_ps(_cvtsh_ss(b[k].d) * x[k].d), a0);                                 \
        }                                                                                                         \
        *out = hsum8(_mm256_add_ps(a0, a1));                                                                      \
    }                                                                                                             \
    static void NAME##_r4(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x, float *out) {             \
        rows4(nb, w, rb, x, out, sizeof(BLOCK) == sizeof(gl_block_q4_0));                                          \
    }                                                                                                             \
    static void NAME(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out) {          \
        const BLOCK *b = w;                                                                                       \
        switch (nx) {                                                                                             \
        case 4: NAME##_n(nb, b, x, xs, 4, out); break;                                                           \
        case 3: NAME##_n(nb, b, x, xs, 3, out); break;                                                           \
        case 2: NAME##_n(nb, b, x, xs, 2, out); break;                                                           \
        default: NAME##_1(nb, b, x, out); break;                                                                 \
        }                                                                                                         \
    }

DOT_FN(dot_q8_0, gl_block_q8_0, load_q8)
DOT_FN(dot_q4_0, gl_block_q4_0, load_q4)

const kn_quant_isa kn_quant_isa_avx2 = {"avx2", quantize_act, dot_q8_0, dot_q4_0, dot_q8_0_r4, dot_q4_0_r4};
