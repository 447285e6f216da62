/* nn_ref.c — plain-C twins of the nn.h row kernels: the spec the SIMD versions are tested
 * against. Reductions accumulate in double so the spec itself is not the error source. */
#include <math.h>

#include "kernels/nn.h"

void kn_act_scalar(kn_act act, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = kn_act1(act, x[i]);
}

void kn_layernorm_row_scalar(const float *x, float *y, const float *w, const float *b, int64_t n,
                             float eps) {
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    float rstd = (float)(1.0 / sqrt(ss / (double)n + eps)), m = (float)mean;
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - m) * rstd;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

void kn_rmsnorm_row_scalar(const float *x, float *y, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = w ? x[i] * r * w[i] : x[i] * r;
}

void kn_softmax_row_scalar(const float *x, float *y, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - mx);
        s += y[i];
    }
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

float kn_dot_scalar(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void kn_axpy_scalar(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void kn_layernorm_ch_scalar(const float *x, float *y, const float *w, const float *b, int64_t C,
                            int64_t HW, int64_t p0, int64_t p1, float eps) {
    for (int64_t p = p0; p < p1; p++) {
        double s = 0, ss = 0;
        for (int64_t c = 0; c < C; c++) s += x[c * HW + p];
        double m = s / (double)C;
        for (int64_t c = 0; c < C; c++) ss += (x[c * HW + p] - m) * (x[c * HW + p] - m);
        float r = (float)(1.0 / sqrt(ss / (double)C + eps)), mf = (float)m;
        for (int64_t c = 0; c < C; c++) {
            float v = (x[c * HW + p] - mf) * r;
            if (w) v *= w[c];
            if (b) v += b[c];
            y[c * HW + p] = v;
        }
    }
}

void kn_attn_blk_scalar(const kn_attn_blk *b) {
    for (int i = 0; i < b->nq; i++) {
        const float *q = b->q + i * b->q_stride;
        float *s = b->s + i * b->ldkt, *o = b->out + i * b->o_stride;
        int64_t lim = b->lim[i];
        for (int64_t j = 0; j < lim; j++) {
            float acc = 0;
            for (int d = 0; d < b->hd; d++) acc += q[d] * b->kt[d * b->ldkt + j];
            s[j] = acc * b->scale;
        }
        kn_softmax_row_scalar(s, s, lim);
        for (int d = 0; d < b->hd; d++) o[d] = 0;
        for (int64_t j = 0; j < lim; j++) kn_axpy_scalar(o, s[j], b->v + j * b->v_stride, b->hd);
    }
}
