/* qgemm_avx2.c — AVX2 pieces of the quantized products: activation quantization and int8 dot
 * products of weight rows against activation rows. Per 32-value block, to 8 int32 lane sums:
 * Q8_0: |w| (sign_epi8) as unsigned times sign(w)·a (sign_epi8) -> maddubs (pairs to int16; at
 * most 2·128·127 < 32767, no saturation) -> madd with ones. Q4_0: the nibbles q in 0..15 are
 * already unsigned: maddubs(q, a) directly (pairs <= 2·15·128), madd with ones, minus the
 * block's Σa in every lane (8 lanes: Σ(q - 8)·a = Σq·a - 8·Σa, exact in int32). Then -> f32,
 * one FMA with d_w·d_a. Only called behind kn_use_avx2(). */
#include <immintrin.h>

#include "kernels/qgemm.h"


void kn_quantize_act_avx2(const float *x, kn_block_q8a *y, int64_t nb) {
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
        __m256i q = _mm256_permutevar8x32_epi32(p, perm);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        /* Σq: bias to unsigned, sum absolute differences to zero (4 x 64-bit), unbias */
        __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
        __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
        y[i].sum = (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
    }
}

static inline __m256i maddubs_madd(__m256i w, __m256i a) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}
#define QX_PREFIX avx2_
#define QX_DOT4(w, a) maddubs_madd(w, a)
#include "qgemm_x86.h"

const kn_quant_isa kn_quant_isa_avx2 = {"avx2", kn_quantize_act_avx2, avx2_dot_q8_0, avx2_dot_q4_0, avx2_dot_q8_0_r4,
                                        avx2_dot_q4_0_r4};
