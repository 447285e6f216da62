/* qgemm_neon.c — quantized products on any aarch64: int8 x int8 -> int16 (smull), pairwise
 * added into int32 (sadalp). See qgemm_neon.h. Only called behind kn_use_neon(). */
#include <arm_neon.h>

static inline int32x4_t neon_mul32(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)));
    s = vpadalq_s16(s, vmull_high_s8(w0, a0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(a1)));
    return vpadalq_s16(s, vmull_high_s8(w1, a1));
}

#define KN_Q_PREFIX neon_
#define KN_Q_MUL32(w0, w1, a0, a1) neon_mul32(w0, w1, a0, a1)
#include "qgemm_neon.h"

const kn_quant_isa kn_quant_isa_neon = {"neon", neon_quantize_act, neon_dot_q8_0, neon_dot_q4_0,
                                        neon_dot_q8_0_r4, neon_dot_q4_0_r4};
