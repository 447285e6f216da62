/* qgemm_neon.h — the NEON quantized-product pieces, written once and instantiated twice: with
 * smull/sadalp (any aarch64, qgemm_neon.c) and with Armv8.2 sdot (qgemm_dotprod.c, built with
 * +dotprod). The includer defines KN_Q_MUL32(w0, w1, a0, a1) -> int32x4_t partial sums of the
 * 32 products and KN_Q_PREFIX. */
#include <arm_neon.h>

#include "kernels/qgemm.h"

#define KN_Q_CAT2(a, b) a##b
#define KN_Q_CAT(a, b) KN_Q_CAT2(a, b)

static void KN_Q_CAT(KN_Q_PREFIX, quantize_act)(const float *x, kn_block_q8a *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += GL_QK) {
        float32x4_t v[8];
        for (int j = 0; j < 8; j++) v[j] = vld1q_f32(x + 4 * j);
        float32x4_t m = vmaxq_f32(vmaxq_f32(vmaxq_f32(vabsq_f32(v[0]), vabsq_f32(v[1])),
                                            vmaxq_f32(vabsq_f32(v[2]), vabsq_f32(v[3]))),
                                  vmaxq_f32(vmaxq_f32(vabsq_f32(v[4]), vabsq_f32(v[5])),
                                            vmaxq_f32(vabsq_f32(v[6]), vabsq_f32(v[7]))));
        float amax = vmaxvq_f32(m);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        for (int j = 0; j < 8; j += 2) {
            int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(v[j], id)), b = vcvtnq_s32_f32(vmulq_n_f32(v[j + 1], id));
            int16x8_t h = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
            vst1_s8(y[i].qs + 4 * j, vqmovn_s16(h));
        }
        y[i].sum = vaddlvq_s8(vld1q_s8(y[i].qs)) + vaddlvq_s8(vld1q_s8(y[i].qs + 16));
    }
}

static inline int8x16x2_t KN_Q_CAT(KN_Q_PREFIX, load_q8)(const gl_block_q8_0 *b) {
    int8x16x2_t w = {{vld1q_s8(b->qs), vld1q_s8(b->qs + 16)}};
    return w;
}
static inline int8x16x2_t KN_Q_CAT(KN_Q_PREFIX, load_q4)(const gl_block_q4_0 *b) {
    uint8x16_t raw = vld1q_u8(b->qs);
    int8x16_t eight = vdupq_n_s8(8);
    int8x16x2_t w = {{vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), eight),
                      vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight)}};
    return w;
}

#define KN_Q_DOT_FN(NAME, BLOCK, LOAD)                                                                            \
    static inline __attribute__((always_inline)) void KN_Q_CAT(NAME, _n)(                                         \
        int64_t nb, const BLOCK *b, const kn_block_q8a *x, int64_t xs, int nx, float *out) {                      \
        float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};                    \
        for (int64_t k = 0; k < nb; k++) {                                                                        \
            int8x16x2_t w = LOAD(&b[k]);                                                                          \
            float dw = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(b[k].d))), 0);                 \
            for (int i = 0; i < nx; i++) {                                                                        \
                const kn_block_q8a *xb = &x[i * xs + k];                                                          \
                int32x4_t s = KN_Q_MUL32(w.val[0], w.val[1], vld1q_s8(xb->qs), vld1q_s8(xb->qs + 16));            \
                acc[i] = vfmaq_n_f32(acc[i], vcvtq_f32_s32(s), dw * xb->d);                                       \
            }                                                                                                     \
        }                                                                                                         \
        for (int i = 0; i < nx; i++) out[i] = vaddvq_f32(acc[i]);                                                 \
    }                                                                                                             \
    /* decode, 4 weight rows against one activation row: each row's arithmetic is NAME's with    \
     * nx = 1, the activation blocks are loaded once for the 4 */                                                 \
    static void KN_Q_CAT(NAME, _r4)(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x, float *out) {    \
        const BLOCK *b[4];                                                                                        \
        float32x4_t acc[4];                                                                                       \
        for (int r = 0; r < 4; r++) b[r] = (const BLOCK *)((const char *)w + r * rb), acc[r] = vdupq_n_f32(0);   \
        for (int64_t k = 0; k < nb; k++) {                                                                        \
            int8x16_t x0 = vld1q_s8(x[k].qs), x1 = vld1q_s8(x[k].qs + 16);                                        \
            for (int r = 0; r < 4; r++) {                                                                         \
                int8x16x2_t wv = LOAD(&b[r][k]);                                                                  \
                float dw = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(b[r][k].d))), 0);          \
                int32x4_t s = KN_Q_MUL32(wv.val[0], wv.val[1], x0, x1);                                           \
                acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(s), dw * x[k].d);                                      \
            }                                                                                                     \
        }                                                                                                         \
        for (int r = 0; r < 4; r++) out[r] = vaddvq_f32(acc[r]);                                                  \
    }                                                                                                             \
    static void NAME(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out) {          \
        const BLOCK *b = w;                                                                                       \
        switch (nx) {                                                                                             \
        case 4: KN_Q_CAT(NAME, _n)(nb, b, x, xs, 4, out); break;                                                  \
        case 3: KN_Q_CAT(NAME, _n)(nb, b, x, xs, 3, out); break;                                                  \
        case 2: KN_Q_CAT(NAME, _n)(nb, b, x, xs, 2, out); break;                                                  \
        default: KN_Q_CAT(NAME, _n)(nb, b, x, xs, 1, out); break;                                                 \
        }                                                                                                         \
    }

KN_Q_DOT_FN(KN_Q_CAT(KN_Q_PREFIX, dot_q8_0), gl_block_q8_0, KN_Q_CAT(KN_Q_PREFIX, load_q8))
KN_Q_DOT_FN(KN_Q_CAT(KN_Q_PREFIX, dot_q4_0), gl_block_q4_0, KN_Q_CAT(KN_Q_PREFIX, load_q4))
