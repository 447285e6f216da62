/* nn_math_avx2.h — 8-wide exp, erf, GELU, SiLU for the AVX2 kernels (included by the x86 .c files only,
 * which are built with -mavx2 -mfma).
 *
 * exp: Cody–Waite range reduction x = n·ln2 + r (|r| <= ln2/2, ln2 split in two parts), a
 * degree-6 minimax-style polynomial for e^r and 2^n built in the exponent bits: ~1-2 ulp over
 * [-87.3, 88.7]; below -87.3 it returns 0, above 88.7 +inf.
 * erf: |x| < 0.921875 uses an odd polynomial in x (relative error ~1e-7); above, erf = 1 −
 * exp(−x²)·R(t) with t = 1/(1+p|x|) (Abramowitz–Stegun 7.1.26 form), abs error < 2e-7. */
#ifndef KN_NN_MATH_AVX2_H
#define KN_NN_MATH_AVX2_H

#include <immintrin.h>

#include "kernels/nn.h"

static inline __m256 kn8_exp(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228f), lo = _mm256_set1_ps(-87.3365f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n: n in [-126, 128]; split n = n1 + n2 so each factor is a normal float */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    e = _mm256_andnot_ps(under, e);
    return _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), over);
}

static inline __m256 kn8_erf(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 x2 = _mm256_mul_ps(x, x);
    /* small: erf(x) = x·P(x²), Taylor series to x^19, < 3e-9 relative at |x| < 0.921875 */
    __m256 p = _mm256_set1_ps(-1.6365844691234924e-07f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.6462114365889246e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.492565035840625e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.00012055332981789664f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.0008548327023450852f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.005223977625442188f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.026866170645131252f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.11283791670955126f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.37612638903183754f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.1283791670955126f));
    __m256 small = _mm256_mul_ps(p, x);
    /* large: 1 - exp(-x²)·(a1 t + ... + a5 t^5) */
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, _mm256_set1_ps(1.0f)));
    __m256 q = _mm256_set1_ps(1.061405429f);
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.453152027f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.421413741f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-0.284496736f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.254829592f));
    q = _mm256_mul_ps(q, t);
    __m256 big = _mm256_fnmadd_ps(q, kn8_exp(_mm256_sub_ps(_mm256_setzero_ps(), x2)), _mm256_set1_ps(1.0f));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(small, big, _mm256_cmp_ps(ax, _mm256_set1_ps(0.921875f), _CMP_GE_OQ));
}

/* 1/(1+e^-x) with a true division (rcp's 12 bits are not enough for the 1e-6 target) */
static inline __m256 kn8_sigmoid(__m256 x) {
    __m256 e = kn8_exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline __m256 kn8_act(kn_act act, __m256 x) {
    switch ((int)act) {
    case KN_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case KN_ACT_GELU: {
        __m256 e = kn8_erf(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    }
    case KN_ACT_SILU: return _mm256_mul_ps(x, kn8_sigmoid(x));
    case KN_ACT_GELU_TANH: {
        /* 0.5(1 + tanh u) = sigmoid(2u) */
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 u = _mm256_mul_ps(_mm256_set1_ps(2.0f * 0.7978845608028654f),
                                 _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
        return _mm256_mul_ps(x, kn8_sigmoid(u));
    }
    case KN_ACT_SIGMOID: return kn8_sigmoid(x);
    default: return x;
    }
}

static inline float kn8_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float kn8_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* mask with the first n (0..8) lanes set, for tails */
static inline __m256i kn8_tailmask(int64_t n) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

#endif
