/* quant.c — reference Q8_0 / Q4_0 quantization (see quant.h). The rounding follows ggml's
 * _ref quantizers: Q8_0 rounds half away from zero (roundf); Q4_0 adds 8.5 and truncates, clamped
 * to 15. Non-finite inputs give some code rather than undefined behaviour. */
#include "quant.h"

#include <math.h>

#include "fp16.h"

static int8_t q8(float v) {
    float r = roundf(v);
    if (!(r == r)) return 0;
    return (int8_t)(r > 127.0f ? 127 : r < -128.0f ? -128 : r);
}

static uint8_t q4(float v) {
    float r = v + 8.5f;
    if (!(r == r) || r < 0.0f) return 0;
    return (uint8_t)(r >= 15.0f ? 15 : (int)r);
}

static void quantize_q8_0(const float *x, gl_block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += GL_QK) {
        float amax = 0.0f;
        for (int j = 0; j < GL_QK; j++) {
            float a = fabsf(x[j]);
            amax = amax > a ? amax : a; /* ggml's MAX(amax, |v|) */
        }
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = gl_f32_to_f16(d);
        for (int j = 0; j < GL_QK; j++) y[i].qs[j] = q8(x[j] * id);
    }
}

static void quantize_q4_0(const float *x, gl_block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += GL_QK) {
        float amax = 0.0f, max = 0.0f; /* the first value of largest magnitude, with its sign */
        for (int j = 0; j < GL_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = gl_f32_to_f16(d);
        for (int j = 0; j < GL_QK / 2; j++)
            y[i].qs[j] = (uint8_t)(q4(x[j] * id) | q4(x[j + GL_QK / 2] * id) << 4);
    }
}

void gl_quantize_row(gl_dtype t, const float *x, void *y, int64_t n) {
    if (t == GL_Q8_0) quantize_q8_0(x, y, n / GL_QK);
    else if (t == GL_Q4_0) quantize_q4_0(x, y, n / GL_QK);
}

void gl_dequantize_row(gl_dtype t, const void *x, float *y, int64_t n) {
    int64_t nb = n / GL_QK;
    if (t == GL_Q8_0) {
        const gl_block_q8_0 *b = x;
        for (int64_t i = 0; i < nb; i++) {
            float d = gl_f16_to_f32(b[i].d);
            for (int j = 0; j < GL_QK; j++) y[i * GL_QK + j] = b[i].qs[j] * d;
        }
    } else if (t == GL_Q4_0) {
        const gl_block_q4_0 *b = x;
        for (int64_t i = 0; i < nb; i++) {
            float d = gl_f16_to_f32(b[i].d);
            for (int j = 0; j < GL_QK / 2; j++) {
                y[i * GL_QK + j] = ((b[i].qs[j] & 0x0f) - 8) * d;
                y[i * GL_QK + j + GL_QK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
            }
        }
    }
}
