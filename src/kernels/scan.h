/* scan.h — brute-force similarity scan over f16 vectors (the photo-album search).
 *
 * An index keeps one L2-normalised embedding per photo as IEEE half floats, rows packed
 * (row i at rows + i*dim). A search is one f32 query against every row: memory-bound (2 bytes
 * per element read once), so the kernels stream rows and keep the query in L1.
 * kn_scan_f16 splits rows over env->pool and picks the ISA version (AVX2+F16C, NEON, scalar). */
#ifndef KN_SCAN_H
#define KN_SCAN_H

#include "kernels/kernels.h"

/* scores[i] = sum_k q[k] * half(rows[i*dim + k]) for i in [0, n). n, dim >= 0. */
void kn_scan_f16(const kn_env *env, const uint16_t *rows, int64_t n, int64_t dim, const float *q,
                 float *scores);

/* Single-threaded ISA versions (same contract); the scalar one is the spec. */
void kn_scan_f16_scalar(const uint16_t *rows, int64_t n, int64_t dim, const float *q, float *scores);
void kn_scan_f16_avx2(const uint16_t *rows, int64_t n, int64_t dim, const float *q, float *scores);
void kn_scan_f16_neon(const uint16_t *rows, int64_t n, int64_t dim, const float *q, float *scores);

#endif
