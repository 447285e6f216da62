/* scan.c — kn_scan_f16: split rows over the pool, run the ISA version on each part. */
#include "kernels/scan.h"

typedef struct {
    const kn_env *env;
    const uint16_t *rows;
    int64_t n, dim;
    const float *q;
    float *scores;
} scan_job;

static void scan_part(const kn_env *env, const uint16_t *rows, int64_t n, int64_t dim, const float *q,
                      float *scores) {
#if defined(__x86_64__) || defined(_M_X64)
    if (kn_use_avx2(env)) return kn_scan_f16_avx2(rows, n, dim, q, scores);
#elif defined(__aarch64__)
    if (kn_use_neon(env)) return kn_scan_f16_neon(rows, n, dim, q, scores);
#endif
    kn_scan_f16_scalar(rows, n, dim, q, scores);
}

static void scan_task(void *v, int ith, int nth) {
    scan_job *j = v;
    int64_t lo, hi;
    gl_split(j->n, ith, nth, &lo, &hi);
    if (hi > lo) scan_part(j->env, j->rows + lo * j->dim, hi - lo, j->dim, j->q, j->scores + lo);
}

void kn_scan_f16(const kn_env *env, const uint16_t *rows, int64_t n, int64_t dim, const float *q,
                 float *scores) {
    if (n <= 0) return;
    /* below ~1 MB of rows the pool wake-up costs more than it saves */
    if (!env->pool || n * dim < (1 << 19)) return scan_part(env, rows, n, dim, q, scores);
    scan_job j = {env, rows, n, dim, q, scores};
    gl_pool_run(env->pool, scan_task, &j);
}
