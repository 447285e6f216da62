/* nn_math_avx512.h — 16-lane math shared by the AVX-512 kernels (the f32 GEMM's GELU epilogue,
 * the int8 GEMM's fused one, depthwise convs: all give the same bits). Include only from files
 * built with AVX-512 flags (*_avx512.c, *_avx512vnni.c). */
#ifndef KN_NN_MATH_AVX512_H
#define KN_NN_MATH_AVX512_H

#include <immintrin.h>

/* ---- exact-erf GELU, 16 lanes ------------------------------------------------------------
 * The AVX2 code's method and constants (gemm_avx2.c: exp8, recip8, erfc8_pos) at twice the
 * width: the epilogue of the text tower's MLP GEMM, ~4% of its time at 8 lanes. The reciprocal
 * starts from rcp14 instead of the 12-bit rcp, so the last bits can differ from the AVX2 result
 * (both are within test_gemm's 2e-6 of the exact function). Also the depthwise convs' GELU. */

/* e^x for the erfc below (x >= ~-90): the AVX2 code's reduction and polynomial, with 2^n
 * applied by scalef (no clamp, no integer exponent arithmetic: 5 fewer operations; results
 * under e^-87.3 come out as the denormals they are instead of e^-87.3). */
static inline __m512 exp16(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 r2 = _mm512_mul_ps(r, r), r4 = _mm512_mul_ps(r2, r2);
    __m512 p01 = _mm512_add_ps(_mm512_set1_ps(1.0f), r);
    __m512 p23 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6), _mm512_set1_ps(0.5f));
    __m512 p45 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 120), _mm512_set1_ps(1.0f / 24));
    __m512 p67 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 5040), _mm512_set1_ps(1.0f / 720));
    __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(p67, r2, p45), r4, _mm512_fmadd_ps(p23, r2, p01));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 recip16(__m512 d) {
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

static inline __m512 gelu16(__m512 x) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 az = _mm512_abs_ps(z);
    __m512 zc = _mm512_min_ps(az, _mm512_set1_ps(9.4f));
    __m512 t = recip16(_mm512_fmadd_ps(zc, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    const __m512 c0 = _mm512_set1_ps(-1.265430212e+00f), c1 = _mm512_set1_ps(9.982751608e-01f);
    const __m512 c2 = _mm512_set1_ps(3.896754384e-01f), c3 = _mm512_set1_ps(2.025135793e-02f);
    const __m512 c4 = _mm512_set1_ps(4.306344688e-02f), c5 = _mm512_set1_ps(-1.582799703e-01f);
    const __m512 c6 = _mm512_set1_ps(-6.026692390e-01f), c7 = _mm512_set1_ps(1.086908579e+00f);
    const __m512 c8 = _mm512_set1_ps(-6.513414383e-01f), c9 = _mm512_set1_ps(1.395468265e-01f);
    __m512 t2 = _mm512_mul_ps(t, t), t4 = _mm512_mul_ps(t2, t2), t8 = _mm512_mul_ps(t4, t4);
    __m512 p03 = _mm512_fmadd_ps(_mm512_fmadd_ps(c3, t, c2), t2, _mm512_fmadd_ps(c1, t, c0));
    __m512 p47 = _mm512_fmadd_ps(_mm512_fmadd_ps(c7, t, c6), t2, _mm512_fmadd_ps(c5, t, c4));
    __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(c9, t, c8), t8, _mm512_fmadd_ps(p47, t4, p03));
    __m512 e = _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(zc, zc, p))); /* erfc(|z|) */
    /* 1 + erf(z): 2 - erfc(z) for z >= 0, erfc(-z) below */
    __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
    __m512 phi = _mm512_mask_sub_ps(e, pos, _mm512_set1_ps(2.0f), e);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), phi);
}

/* 16x16 transpose in registers: r[i] lane j <- r[j] lane i (A-panel packing of the f32 GEMM,
 * K^T packing of attention). */
static inline void transpose16x16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

#endif
