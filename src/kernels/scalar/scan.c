/* scan.c (scalar) — the reference f16 row scan: exact half->float, f32 accumulation in order. */
#include "core/fp16.h"
#include "kernels/scan.h"

void kn_scan_f16_scalar(const uint16_t *rows, int64_t n, int64_t dim, const float *q, float *scores) {
    for (int64_t i = 0; i < n; i++) {
        const uint16_t *r = rows + i * dim;
        float s = 0.0f;
        for (int64_t k = 0; k < dim; k++) s += q[k] * gl_f16_to_f32(r[k]);
        scores[i] = s;
    }
}
