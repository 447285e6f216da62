/* conv_neon.c — depthwise conv kernel for NEON: up to 3 output rows × 16 pixels per block,
 * each loaded input vector shared by the rows that use it (see x86/conv_avx2.c). */
#include "kernels/conv.h"
#include "nn_math_neon.h"

#define LD(v) vld1q_f32(p + 4 * (v))
#define BC(r) vld1q_dup_f32(d->w + wo##r + kx)

#define ROW_STEP(F0, F1, F2)                                                     \
    for (int kx = 0; kx < kw; kx++) {                                            \
        const float *p = row + off[kx];                                          \
        float32x4_t w0 = F0 ? BC(0) : z, w1 = F1 ? BC(1) : z, w2 = F2 ? BC(2) : z; \
        float32x4_t x0 = LD(0), x1 = LD(1), x2 = LD(2), x3 = LD(3);              \
        if (F0) {                                                                \
            a00 = vfmaq_f32(a00, w0, x0); a01 = vfmaq_f32(a01, w0, x1);          \
            a02 = vfmaq_f32(a02, w0, x2); a03 = vfmaq_f32(a03, w0, x3);          \
        }                                                                        \
        if (F1) {                                                                \
            a10 = vfmaq_f32(a10, w1, x0); a11 = vfmaq_f32(a11, w1, x1);          \
            a12 = vfmaq_f32(a12, w1, x2); a13 = vfmaq_f32(a13, w1, x3);          \
        }                                                                        \
        if (F2) {                                                                \
            a20 = vfmaq_f32(a20, w2, x0); a21 = vfmaq_f32(a21, w2, x1);          \
            a22 = vfmaq_f32(a22, w2, x2); a23 = vfmaq_f32(a23, w2, x3);          \
        }                                                                        \
    }

static inline void put(float *y, const float *res, float32x4_t v, kn_act act) {
    v = kn4_act(act, v);
    if (res) v = vaddq_f32(v, vld1q_f32(res));
    vst1q_f32(y, v);
}

static void block16(const kn_dw_rows *d, int64_t i) {
    const int kh = d->kh, kw = d->kw, s = d->s, nr = d->nr;
    const int64_t *off = d->col_off;
    const float32x4_t z = vdupq_n_f32(0), b = vdupq_n_f32(d->bias);
    float32x4_t a00 = b, a01 = b, a02 = b, a03 = b, a10 = b, a11 = b, a12 = b, a13 = b;
    float32x4_t a20 = b, a21 = b, a22 = b, a23 = b;
    const int span = (nr - 1) * s + kh;
    for (int iy = 0; iy < span; iy++) {
        int lo = iy - kh + 1 <= 0 ? 0 : (iy - kh + s) / s, hi = iy / s;
        if (hi > nr - 1) hi = nr - 1;
        const float *row = d->base + iy * d->rowlen + i;
        const int wo0 = iy * kw, wo1 = (iy - s) * kw, wo2 = (iy - 2 * s) * kw;
        switch (lo * 3 + hi) {
        case 0: ROW_STEP(1, 0, 0) break;
        case 1: ROW_STEP(1, 1, 0) break;
        case 2: ROW_STEP(1, 1, 1) break;
        case 4: ROW_STEP(0, 1, 0) break;
        case 5: ROW_STEP(0, 1, 1) break;
        case 8: ROW_STEP(0, 0, 1) break;
        default: break;
        }
    }
#define PUT_ROW(r)                                                          \
    {                                                                       \
        float *y = d->y[r] + i;                                             \
        const float *res = d->res[r] ? d->res[r] + i : NULL;                \
        put(y, res, a##r##0, d->act);                                       \
        put(y + 4, res ? res + 4 : NULL, a##r##1, d->act);                  \
        put(y + 8, res ? res + 8 : NULL, a##r##2, d->act);                  \
        put(y + 12, res ? res + 12 : NULL, a##r##3, d->act);                \
    }
    PUT_ROW(0)
    if (nr > 1) PUT_ROW(1)
    if (nr > 2) PUT_ROW(2)
#undef PUT_ROW
}

static void block4(const kn_dw_rows *d, int64_t i) {
    const int kh = d->kh, kw = d->kw, s = d->s;
    int64_t left = d->n - i;
    for (int r = 0; r < d->nr; r++) {
        float32x4_t acc = vdupq_n_f32(d->bias);
        for (int ky = 0; ky < kh; ky++) {
            const float *row = d->base + (r * s + ky) * d->rowlen + i;
            for (int kx = 0; kx < kw; kx++)
                acc = vfmaq_f32(acc, vld1q_dup_f32(d->w + ky * kw + kx), vld1q_f32(row + d->col_off[kx]));
        }
        float t[4];
        vst1q_f32(t, kn4_act(d->act, acc));
        for (int64_t k = 0; k < left && k < 4; k++) d->y[r][i + k] = t[k] + (d->res[r] ? d->res[r][i + k] : 0.0f);
    }
}

void kn_dwrows_neon(const kn_dw_rows *d) {
    int64_t i = 0;
    for (; i + 16 <= d->n; i += 16) block16(d, i);
    for (; i < d->n; i += 4) block4(d, i);
}
