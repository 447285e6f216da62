/* gemm.h — dense matrix products, the op most of the time goes into.
 *
 *   C[M,N] = act( A[M,K] · op(B) + bias )
 *
 * Row-major with leading dimensions. op(B) = B[K,N] (trans_b == 0) or B[N,K]^T (trans_b == 1:
 * a PyTorch Linear weight [out,in] used as y = x·W^T). Bias is per column (bias_n, length N,
 * Linear) or per row (bias_m, length M, conv weights as A); either may be NULL.
 * B may be F32, F16 or BF16 (weights as stored); A and C are F32; accumulation is F32.
 * Threads: split over the pool in env. Results do not depend on the thread count. */
#ifndef KN_GEMM_H
#define KN_GEMM_H

#include "core/tensor.h"
#include "kernels.h"

typedef enum kn_act {
    KN_ACT_NONE = 0,
    KN_ACT_RELU = 1,
    KN_ACT_GELU = 2, /* exact erf GELU */
    KN_ACT_SILU = 3,
    KN_ACT_GELU_TANH = 4,
} kn_act;

typedef struct kn_gemm_args {
    int64_t M, N, K;
    const float *A; int64_t lda;
    const void *B; int64_t ldb; gl_dtype b_type; int trans_b;
    float *C; int64_t ldc;
    const float *bias_n; /* [N] or NULL */
    const float *bias_m; /* [M] or NULL */
    kn_act act;
    int accumulate;      /* 1: C += result (before act is not allowed: act must be NONE) */
} kn_gemm_args;

void kn_gemm(const kn_env *env, const kn_gemm_args *a);

/* The plain-C definition (the spec the SIMD paths are tested against). Single-threaded. */
void kn_gemm_ref(const kn_gemm_args *a);

#endif
