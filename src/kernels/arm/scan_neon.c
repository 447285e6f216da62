/* scan_neon.c — f16 row scan on aarch64: vcvt_f32_f16 (baseline ARMv8) and vfmaq_f32, 16
 * elements per step in four accumulators. Only called behind kn_use_neon(). */
#include <arm_neon.h>

#include "core/fp16.h"
#include "kernels/scan.h"

static float dot1(const uint16_t *r, const float *q, int64_t dim) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(r + k));
        float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(r + k + 8));
        a0 = vfmaq_f32(a0, vld1q_f32(q + k), vcvt_f32_f16(vget_low_f16(h0)));
        a1 = vfmaq_f32(a1, vld1q_f32(q + k + 4), vcvt_high_f32_f16(h0));
        a2 = vfmaq_f32(a2, vld1q_f32(q + k + 8), vcvt_f32_f16(vget_low_f16(h1)));
        a3 = vfmaq_f32(a3, vld1q_f32(q + k + 12), vcvt_high_f32_f16(h1));
    }
    for (; k + 4 <= dim; k += 4)
        a0 = vfmaq_f32(a0, vld1q_f32(q + k), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(r + k))));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; k < dim; k++) s += q[k] * gl_f16_to_f32(r[k]); /* leftovers */
    return s;
}

void kn_scan_f16_neon(const uint16_t *rows, int64_t n, int64_t dim, const float *q, float *scores) {
    for (int64_t i = 0; i < n; i++) scores[i] = dot1(rows + i * dim, q, dim);
}
