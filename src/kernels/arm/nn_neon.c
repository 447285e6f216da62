/* nn_neon.c — NEON row kernels of nn.h (same structure as x86/nn_avx2.c; tails go through a
 * small stack buffer so every n works). */
#include "kernels/nn.h"
#include "nn_math_neon.h"

void kn_act_neon(kn_act act, const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, kn4_act(act, vld1q_f32(x + i)));
    if (i < n) {
        float t[4] = {0, 0, 0, 0};
        for (int64_t k = i; k < n; k++) t[k - i] = x[k];
        vst1q_f32(t, kn4_act(act, vld1q_f32(t)));
        for (int64_t k = i; k < n; k++) y[k] = t[k - i];
    }
}

static float vsum(const float *x, int64_t n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vaddq_f32(a0, vld1q_f32(x + i));
        a1 = vaddq_f32(a1, vld1q_f32(x + i + 4));
        a2 = vaddq_f32(a2, vld1q_f32(x + i + 8));
        a3 = vaddq_f32(a3, vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vaddq_f32(a0, vld1q_f32(x + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}

static float vsumsq(const float *x, int64_t n, float m) {
    float32x4_t vm = vdupq_n_f32(m), a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vm), d1 = vsubq_f32(vld1q_f32(x + i + 4), vm);
        float32x4_t d2 = vsubq_f32(vld1q_f32(x + i + 8), vm), d3 = vsubq_f32(vld1q_f32(x + i + 12), vm);
        a0 = vfmaq_f32(a0, d0, d0);
        a1 = vfmaq_f32(a1, d1, d1);
        a2 = vfmaq_f32(a2, d2, d2);
        a3 = vfmaq_f32(a3, d3, d3);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(x + i), vm);
        a0 = vfmaq_f32(a0, d, d);
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

void kn_layernorm_row_neon(const float *x, float *y, const float *w, const float *b, int64_t n,
                           float eps) {
    float mean = vsum(x, n) / (float)n;
    float r = 1.0f / sqrtf(vsumsq(x, n, mean) / (float)n + eps);
    float32x4_t vm = vdupq_n_f32(mean), vr = vdupq_n_f32(r);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_f32(vsubq_f32(vld1q_f32(x + i), vm), vr);
        if (w) v = vmulq_f32(v, vld1q_f32(w + i));
        if (b) v = vaddq_f32(v, vld1q_f32(b + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * r;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

void kn_rmsnorm_row_neon(const float *x, float *y, const float *w, int64_t n, float eps) {
    float r = 1.0f / sqrtf(vsumsq(x, n, 0.0f) / (float)n + eps);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), r);
        if (w) v = vmulq_f32(v, vld1q_f32(w + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++) y[i] = w ? x[i] * r * w[i] : x[i] * r;
}

void kn_softmax_row_neon(const float *x, float *y, int64_t n) {
    float32x4_t vmx = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vmx = vmaxq_f32(vmx, vld1q_f32(x + i));
    float mx = vmaxvq_f32(vmx);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float32x4_t vm = vdupq_n_f32(mx), s0 = vdupq_n_f32(0);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = kn4_exp(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(y + i, e);
        s0 = vaddq_f32(s0, e);
    }
    float s = vaddvq_f32(s0);
    if (i < n) {
        float t[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        for (int64_t k = i; k < n; k++) t[k - i] = x[k];
        vst1q_f32(t, kn4_exp(vsubq_f32(vld1q_f32(t), vm)));
        for (int64_t k = i; k < n; k++) { y[k] = t[k - i]; s += t[k - i]; }
    }
    float inv = 1.0f / s;
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), inv));
    for (; i < n; i++) y[i] *= inv;
}

float kn_dot_neon(const float *a, const float *b, int64_t n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(a + i), vld1q_f32(b + i));
        a1 = vfmaq_f32(a1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void kn_axpy_neon(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

void kn_layernorm_ch_neon(const float *x, float *y, const float *w, const float *b, int64_t C,
                          int64_t HW, int64_t p0, int64_t p1, float eps) {
    const float rc = 1.0f / (float)C;
    int64_t p = p0;
    for (; p + 4 <= p1; p += 4) {
        float32x4_t s = vdupq_n_f32(0);
        for (int64_t c = 0; c < C; c++) s = vaddq_f32(s, vld1q_f32(x + c * HW + p));
        float32x4_t m = vmulq_n_f32(s, rc), v = vdupq_n_f32(0);
        for (int64_t c = 0; c < C; c++) {
            float32x4_t d = vsubq_f32(vld1q_f32(x + c * HW + p), m);
            v = vfmaq_f32(v, d, d);
        }
        float32x4_t r = vdivq_f32(vdupq_n_f32(1.0f), vsqrtq_f32(vfmaq_n_f32(vdupq_n_f32(eps), v, rc)));
        for (int64_t c = 0; c < C; c++) {
            float32x4_t d = vmulq_f32(vsubq_f32(vld1q_f32(x + c * HW + p), m), r);
            if (w) d = vmulq_n_f32(d, w[c]);
            if (b) d = vaddq_f32(d, vdupq_n_f32(b[c]));
            vst1q_f32(y + c * HW + p, d);
        }
    }
    if (p < p1) kn_layernorm_ch_scalar(x, y, w, b, C, HW, p, p1, eps);
}
