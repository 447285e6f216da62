/* gemm_ref.c — plain-C GEMM, the spec. Slow on purpose: one dot product per output. */
#include <math.h>

#include "core/fp16.h"
#include "kernels/gemm.h"

static float load_b(const kn_gemm_args *a, int64_t k, int64_t n) {
    if (a->Bp) return kn_packed_b_at(a->Bp, k, n);
    int64_t idx = a->trans_b ? n * a->ldb + k : k * a->ldb + n;
    switch (a->b_type) {
    case GL_F16: return gl_f16_to_f32(((const uint16_t *)a->B)[idx]);
    case GL_BF16: return gl_bf16_to_f32(((const uint16_t *)a->B)[idx]);
    default: return ((const float *)a->B)[idx];
    }
}

static float act_ref(kn_act act, float x) {
    switch (act) {
    case KN_ACT_RELU: return x > 0 ? x : 0;
    case KN_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case KN_ACT_SILU: return x / (1.0f + expf(-x));
    case KN_ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    default: return x;
    }
}

void kn_gemm_ref(const kn_gemm_args *a) {
    for (int64_t m = 0; m < a->M; m++)
        for (int64_t n = 0; n < a->N; n++) {
            float s = 0;
            for (int64_t k = 0; k < a->K; k++)
                s += (a->Ap ? kn_packed_a_at(a->Ap, m, k) : a->A[m * a->lda + k]) * load_b(a, k, n);
            if (a->bias_n) s += a->bias_n[n];
            if (a->bias_m) s += a->bias_m[m];
            float *c = &a->C[m * a->ldc + n];
            *c = a->accumulate ? *c + s : act_ref(a->act, s);
        }
}
