/* conv_ref.c — plain-C convolution: the direct definition (the spec) and the scalar depthwise
 * row kernel used by kn_conv2d's depthwise path when no SIMD is available. */
#include "kernels/conv.h"
#include "kernels/nn.h"

int kn_conv2d_ref(const kn_conv2d_args *a) {
    int64_t Ho, Wo;
    if (!kn_conv2d_shape(a, &Ho, &Wo)) return GLIMPSE_ERR_INVALID_ARG;
    int64_t cin_g = a->C_in / a->groups, cout_g = a->C_out / a->groups;
    for (int64_t n = 0; n < a->N; n++)
        for (int64_t o = 0; o < a->C_out; o++) {
            int64_t g = o / cout_g;
            const float *wo = a->w + o * cin_g * a->kh * a->kw;
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    float s = a->bias ? a->bias[o] : 0.0f;
                    for (int64_t i = 0; i < cin_g; i++) {
                        const float *xp = a->x + ((n * a->C_in) + g * cin_g + i) * a->H * a->W;
                        for (int ky = 0; ky < a->kh; ky++) {
                            int64_t iy = oy * a->stride + ky - a->pad_h;
                            if (iy < 0 || iy >= a->H) continue;
                            for (int kx = 0; kx < a->kw; kx++) {
                                int64_t ix = ox * a->stride + kx - a->pad_w;
                                if (ix < 0 || ix >= a->W) continue;
                                s += wo[(i * a->kh + ky) * a->kw + kx] * xp[iy * a->W + ix];
                            }
                        }
                    }
                    int64_t idx = ((n * a->C_out + o) * Ho + oy) * Wo + ox;
                    float r = kn_act1(a->act, s);
                    if (a->residual) r += a->residual[idx];
                    a->y[idx] = r;
                }
        }
    return GLIMPSE_OK;
}

void kn_dwrow_scalar(float *y, int64_t n, const float *const *src, const float *w, int ntaps,
                     float bias, kn_act act, const float *res) {
    for (int64_t i = 0; i < n; i++) {
        float s = bias;
        for (int t = 0; t < ntaps; t++) s += w[t] * src[t][i];
        s = kn_act1(act, s);
        y[i] = res ? s + res[i] : s;
    }
}
