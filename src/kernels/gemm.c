/* gemm.c — dispatch. Until the blocked kernels land this runs the reference, split by rows. */
#include "gemm.h"

typedef struct { const kn_gemm_args *a; } job;

static void run_rows(void *v, int ith, int nth) {
    const kn_gemm_args *a = ((job *)v)->a;
    int64_t lo, hi;
    gl_split(a->M, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    kn_gemm_args s = *a;
    s.M = hi - lo;
    s.A = a->A + lo * a->lda;
    s.C = a->C + lo * a->ldc;
    s.bias_m = a->bias_m ? a->bias_m + lo : NULL;
    kn_gemm_ref(&s);
}

void kn_gemm(const kn_env *env, const kn_gemm_args *a) {
    job j = {a};
    gl_pool_run(env->pool, run_rows, &j);
}
