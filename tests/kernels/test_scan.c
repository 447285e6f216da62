/* kn_scan_f16: the native ISA version and the threaded dispatcher vs the scalar twin, and the
 * scalar twin vs a double-accumulated exact dot. Dims cover every tail (1, lanes-1, lanes,
 * lanes+1, odd primes, the 512/768 embedding widths, a large one); row counts cover the odd
 * row left over by the two-row AVX2 loop and the multi-threaded split. */
#include "test.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/scan.h"

/* f32 dot of dim terms vs exact: |err| <= TOL * sqrt(dim) * sum|q_k v_k| (random-walk bound;
 * the SIMD versions only reorder the additions). */
#define TOL 2e-6

int main(void) {
    uint64_t seed = 0x5ca7f16ull;
    fprintf(stderr, "test_scan: seed %#llx\n", (unsigned long long)seed);
    static const int64_t dims[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 97, 256, 512, 768, 1031};
    static const int64_t ns[] = {1, 2, 3, 5, 64, 1023};
    gl_pool *pool = gl_pool_new(3);
    kn_env nat = kn_env_native(NULL), natp = kn_env_native(pool), sca = kn_env_scalar(NULL);
    double worst = 0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            int64_t d = dims[di], n = ns[ni];
            uint16_t *rows = malloc(sizeof(uint16_t) * n * d);
            float *q = malloc(sizeof(float) * d), *s0 = malloc(sizeof(float) * n), *s1 = malloc(sizeof(float) * n),
                  *s2 = malloc(sizeof(float) * n);
            for (int64_t k = 0; k < d; k++) q[k] = t_rand_f32(&seed);
            for (int64_t k = 0; k < n * d; k++) rows[k] = gl_f32_to_f16(t_rand_f32(&seed));
            kn_scan_f16(&sca, rows, n, d, q, s0);
            kn_scan_f16(&nat, rows, n, d, q, s1);
            kn_scan_f16(&natp, rows, n, d, q, s2);
            for (int64_t i = 0; i < n; i++) {
                double ex = 0, mag = 0;
                for (int64_t k = 0; k < d; k++) {
                    double t = (double)q[k] * gl_f16_to_f32(rows[i * d + k]);
                    ex += t;
                    mag += fabs(t);
                }
                double tol = TOL * sqrt((double)d) * mag + 1e-30;
                double e0 = fabs(s0[i] - ex), e1 = fabs(s1[i] - ex);
                if (e1 / tol > worst) worst = e1 / tol;
                CHECK_MSG(e0 <= tol, "scalar d=%lld n=%lld i=%lld: %.9g vs exact %.9g", (long long)d, (long long)n,
                          (long long)i, s0[i], ex);
                CHECK_MSG(e1 <= tol, "native d=%lld n=%lld i=%lld: %.9g vs exact %.9g (scalar %.9g)", (long long)d,
                          (long long)n, (long long)i, s1[i], ex, s0[i]);
                /* threads split rows, never a row: results equal the single-thread ones bit for bit */
                CHECK_MSG(s2[i] == s1[i], "pool d=%lld n=%lld i=%lld: %.9g vs %.9g", (long long)d, (long long)n,
                          (long long)i, s2[i], s1[i]);
            }
            free(rows), free(q), free(s0), free(s1), free(s2);
        }
    /* a large case through the threaded path (n*dim above the split threshold) */
    {
        int64_t n = 3001, d = 512;
        uint16_t *rows = malloc(sizeof(uint16_t) * n * d);
        float *q = malloc(sizeof(float) * d), *s1 = malloc(sizeof(float) * n), *s2 = malloc(sizeof(float) * n);
        for (int64_t k = 0; k < d; k++) q[k] = t_rand_f32(&seed);
        for (int64_t k = 0; k < n * d; k++) rows[k] = gl_f32_to_f16(t_rand_f32(&seed));
        kn_scan_f16(&nat, rows, n, d, q, s1);
        kn_scan_f16(&natp, rows, n, d, q, s2);
        int same = 1;
        for (int64_t i = 0; i < n; i++) same &= s1[i] == s2[i];
        CHECK(same);
        free(rows), free(q), free(s1), free(s2);
    }
    fprintf(stderr, "test_scan: worst native error %.3f of the tolerance\n", worst);
    gl_pool_free(pool);
    TEST_DONE();
}
