/* qgemm_ref.c — the plain-C twins of the quantized-product pieces (the spec for qgemm.h). */
#include <math.h>

#include "core/fp16.h"
#include "kernels/qgemm.h"

static void quantize_act(const float *x, kn_block_q8a *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += GL_QK) {
        float amax = 0.0f;
        for (int j = 0; j < GL_QK; j++) {
            float a = fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        y[i].sum = 0;
        for (int j = 0; j < GL_QK; j++) {
            long q = lrintf(x[j] * id); /* current rounding mode: to nearest even, like cvtps */
            y[i].qs[j] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
            y[i].sum += y[i].qs[j];
        }
    }
}

static void dot_q8_0(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out) {
    const gl_block_q8_0 *b = w;
    for (int i = 0; i < nx; i++) {
        const kn_block_q8a *xr = x + i * xs;
        float s = 0.0f;
        for (int64_t k = 0; k < nb; k++) {
            int32_t isum = 0;
            for (int j = 0; j < GL_QK; j++) isum += b[k].qs[j] * xr[k].qs[j];
            s += gl_f16_to_f32(b[k].d) * xr[k].d * (float)isum;
        }
        out[i] = s;
    }
}

static void dot_q4_0(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out) {
    const gl_block_q4_0 *b = w;
    for (int i = 0; i < nx; i++) {
        const kn_block_q8a *xr = x + i * xs;
        float s = 0.0f;
        for (int64_t k = 0; k < nb; k++) {
            int32_t isum = 0;
            for (int j = 0; j < GL_QK / 2; j++) {
                isum += ((b[k].qs[j] & 0x0f) - 8) * xr[k].qs[j];
                isum += ((b[k].qs[j] >> 4) - 8) * xr[k].qs[j + GL_QK / 2];
            }
            s += gl_f16_to_f32(b[k].d) * xr[k].d * (float)isum;
        }
        out[i] = s;
    }
}

const kn_quant_isa kn_quant_isa_scalar = {"scalar", quantize_act, dot_q8_0, dot_q4_0, NULL, NULL};
