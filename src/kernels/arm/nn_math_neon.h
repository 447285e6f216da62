/* nn_math_neon.h — 4-wide exp, erf, sigmoid and activations for the NEON kernels; the same
 * algorithms and constants as x86/nn_math_avx2.h (see there for the error bounds). */
#ifndef KN_NN_MATH_NEON_H
#define KN_NN_MATH_NEON_H

#include <arm_neon.h>

#include "kernels/nn.h"

static inline float32x4_t kn4_exp(float32x4_t x) {
    const float32x4_t hi = vdupq_n_f32(88.7228f), lo = vdupq_n_f32(-87.3365f);
    uint32x4_t under = vcltq_f32(x, lo), over = vcgtq_f32(x, hi);
    float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(xc, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500E-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507E-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073E-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894E-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459E-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201E-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtnq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    float32x4_t e = vmulq_f32(vmulq_f32(p, s1), s2);
    e = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), under));
    return vbslq_f32(over, vdupq_n_f32(INFINITY), e);
}

static inline float32x4_t kn4_erf(float32x4_t x) {
    float32x4_t ax = vabsq_f32(x), x2 = vmulq_f32(x, x);
    static const float c[10] = {-1.6365844691234924e-07f, 1.6462114365889246e-06f, -1.492565035840625e-05f,
                                0.00012055332981789664f, -0.0008548327023450852f, 0.005223977625442188f,
                                -0.026866170645131252f, 0.11283791670955126f, -0.37612638903183754f,
                                1.1283791670955126f};
    float32x4_t p = vdupq_n_f32(c[0]);
    for (int i = 1; i < 10; i++) p = vfmaq_f32(vdupq_n_f32(c[i]), p, x2);
    float32x4_t small = vmulq_f32(p, x);
    float32x4_t t = vdivq_f32(vdupq_n_f32(1.0f), vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0.3275911f), ax));
    float32x4_t q = vdupq_n_f32(1.061405429f);
    q = vfmaq_f32(vdupq_n_f32(-1.453152027f), q, t);
    q = vfmaq_f32(vdupq_n_f32(1.421413741f), q, t);
    q = vfmaq_f32(vdupq_n_f32(-0.284496736f), q, t);
    q = vfmaq_f32(vdupq_n_f32(0.254829592f), q, t);
    q = vmulq_f32(q, t);
    float32x4_t big = vfmsq_f32(vdupq_n_f32(1.0f), q, kn4_exp(vnegq_f32(x2)));
    /* copy the sign of x */
    uint32x4_t sgn = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big), sgn));
    return vbslq_f32(vcgeq_f32(ax, vdupq_n_f32(0.921875f)), big, small);
}

static inline float32x4_t kn4_sigmoid(float32x4_t x) {
    float32x4_t e = kn4_exp(vnegq_f32(x));
    return vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(vdupq_n_f32(1.0f), e));
}

static inline float32x4_t kn4_act(kn_act act, float32x4_t x) {
    switch ((int)act) {
    case KN_ACT_RELU: return vmaxq_f32(x, vdupq_n_f32(0.0f));
    case KN_ACT_GELU: {
        float32x4_t e = kn4_erf(vmulq_n_f32(x, 0.70710678118654752f));
        return vmulq_f32(vmulq_n_f32(x, 0.5f), vaddq_f32(vdupq_n_f32(1.0f), e));
    }
    case KN_ACT_SILU: return vmulq_f32(x, kn4_sigmoid(x));
    case KN_ACT_GELU_TANH: {
        float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
        float32x4_t u = vmulq_n_f32(vfmaq_n_f32(x, x3, 0.044715f), 2.0f * 0.7978845608028654f);
        return vmulq_f32(x, kn4_sigmoid(u));
    }
    case KN_ACT_SIGMOID: return kn4_sigmoid(x);
    default: return x;
    }
}

#endif
