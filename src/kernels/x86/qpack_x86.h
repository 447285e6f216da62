/* qpack_x86.h — weight unpacking shared by the int8 GEMMs that repack Q8_0 / Q4_0 blocks into
 * column panels per call (qgemm_big_vnni.c, qgemm_big_avx512vnni.c). 256-bit AVX2 code;
 * include only from files built with AVX2 flags. */
#ifndef KN_QPACK_X86_H
#define KN_QPACK_X86_H

#include <immintrin.h>

#include "core/quant.h"

/* The 32 weights of block b of a row as int8 (Q4_0: q - 8, low nibbles first) and its scale. */
static inline __m256i block_i8(gl_dtype t, const uint8_t *row, int64_t b, float *d) {
    if (!row) {
        *d = 0.0f;
        return _mm256_setzero_si256();
    }
    if (t == GL_Q8_0) {
        const gl_block_q8_0 *blk = (const gl_block_q8_0 *)row + b;
        *d = _cvtsh_ss(blk->d);
        return _mm256_loadu_si256((const __m256i *)blk->qs);
    }
    const gl_block_q4_0 *blk = (const gl_block_q4_0 *)row + b;
    *d = _cvtsh_ss(blk->d);
    __m128i raw = _mm_loadu_si128((const __m128i *)blk->qs), lo4 = _mm_set1_epi8(0x0f);
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(raw, lo4)),
                                        _mm_and_si128(_mm_srli_epi16(raw, 4), lo4), 1);
    return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}

/* 8x8 transpose of 32-bit elements (groups of 4 weights), in registers: r[q] = quad q of the
 * 8 rows. */
static inline void transpose8x32(__m256i r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(_mm256_castsi256_ps(r[i]), _mm256_castsi256_ps(r[i + 1]));
        t[i + 1] = _mm256_unpackhi_ps(_mm256_castsi256_ps(r[i]), _mm256_castsi256_ps(r[i + 1]));
    }
    for (int i = 0; i < 8; i += 4)
        for (int h = 0; h < 2; h++) {
            u[i + h] = _mm256_shuffle_ps(t[i + h], t[i + h + 2], _MM_SHUFFLE(1, 0, 1, 0));
            u[i + h + 2] = _mm256_shuffle_ps(t[i + h], t[i + h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        }
    static const int ord[4] = {0, 2, 1, 3};
    for (int i = 0; i < 4; i++) {
        r[ord[i]] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        r[ord[i] + 4] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

#endif
