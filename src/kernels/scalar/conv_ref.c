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

void kn_dwrows_scalar(const kn_dw_rows *d) {
    for (int r = 0; r < d->nr; r++)
        for (int64_t i = 0; i < d->n; i++) {
            float acc = d->bias;
            for (int ky = 0; ky < d->kh; ky++) {
                const float *row = d->base + (r * d->s + ky) * d->rowlen + i;
                for (int kx = 0; kx < d->kw; kx++) acc += d->w[ky * d->kw + kx] * row[d->col_off[kx]];
            }
            acc = kn_act1(d->act, acc);
            d->y[r][i] = d->res[r] ? acc + d->res[r][i] : acc;
        }
}
