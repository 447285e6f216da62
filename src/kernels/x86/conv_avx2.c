/* conv_avx2.c — depthwise conv row kernel, 8 output pixels per vector.
 *
 * Blocks of 64 outputs keep 8 accumulators in registers; each tap broadcasts its weight once and
 * issues 8 FMAs with unaligned loads from the staged (zero-padded) input row, so the inner loop
 * is ~1.1 loads per FMA and has no edge branches (conv.c stages the padding). */
#include "kernels/conv.h"
#include "nn_math_avx2.h"

static inline void store_out(float *y, __m256 acc, kn_act act, const float *res) {
    acc = kn8_act(act, acc);
    if (res) acc = _mm256_add_ps(acc, _mm256_loadu_ps(res));
    _mm256_storeu_ps(y, acc);
}

void kn_dwrow_avx2(float *y, int64_t n, const float *const *src, const float *w, int ntaps,
                   float bias, kn_act act, const float *res) {
    const __m256 vb = _mm256_set1_ps(bias);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb, a4 = vb, a5 = vb, a6 = vb, a7 = vb;
        for (int t = 0; t < ntaps; t++) {
            const float *s = src[t] + i;
            __m256 wv = _mm256_broadcast_ss(w + t);
            a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 0), a0);
            a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 8), a1);
            a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 16), a2);
            a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 24), a3);
            a4 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 32), a4);
            a5 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 40), a5);
            a6 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 48), a6);
            a7 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 56), a7);
        }
        const float *r = res ? res + i : NULL;
        store_out(y + i + 0, a0, act, r ? r + 0 : NULL);
        store_out(y + i + 8, a1, act, r ? r + 8 : NULL);
        store_out(y + i + 16, a2, act, r ? r + 16 : NULL);
        store_out(y + i + 24, a3, act, r ? r + 24 : NULL);
        store_out(y + i + 32, a4, act, r ? r + 32 : NULL);
        store_out(y + i + 40, a5, act, r ? r + 40 : NULL);
        store_out(y + i + 48, a6, act, r ? r + 48 : NULL);
        store_out(y + i + 56, a7, act, r ? r + 56 : NULL);
    }
    for (; i + 16 <= n; i += 16) {
        __m256 a0 = vb, a1 = vb;
        for (int t = 0; t < ntaps; t++) {
            __m256 wv = _mm256_broadcast_ss(w + t);
            a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src[t] + i), a0);
            a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src[t] + i + 8), a1);
        }
        store_out(y + i, a0, act, res ? res + i : NULL);
        store_out(y + i + 8, a1, act, res ? res + i + 8 : NULL);
    }
    for (; i < n; i += 8) {
        /* the staged rows have >= 8 zero floats of slack, so a full vector may be read */
        __m256 a0 = vb;
        for (int t = 0; t < ntaps; t++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), _mm256_loadu_ps(src[t] + i), a0);
        a0 = kn8_act(act, a0);
        int64_t left = n - i;
        if (left >= 8) {
            if (res) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(res + i));
            _mm256_storeu_ps(y + i, a0);
        } else {
            __m256i m = kn8_tailmask(left);
            if (res) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(res + i, m));
            _mm256_maskstore_ps(y + i, m, a0);
        }
    }
}
