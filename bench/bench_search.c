/* bench_search.c — the album's brute-force search: one f32 query against n synthetic unit
 * f16 vectors (dim 512, MobileCLIP2-S0's width), scores + top-k selection, for n = 100k and 1M.
 * Prints best and median of several runs per thread count (the machine is shared: see
 * BENCHMARKS.md) and the effective read bandwidth (2 bytes per element).
 *   bench_search [n ...]   (default: 100000 1000000) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/scan.h"

#define DIM 512
#define K 20
#define REPS 7

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rng(uint64_t *s) {
    uint64_t x = *s += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* top-k of scores by a k-slot min-heap (what `glimpse search` does) */
static void topk(const float *s, int64_t n, int k, int64_t *idx) {
    float hs[K];
    int hn = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = s[i];
        if (hn < k) {
            int c = hn++;
            while (c > 0 && hs[(c - 1) / 2] > v) { hs[c] = hs[(c - 1) / 2]; idx[c] = idx[(c - 1) / 2]; c = (c - 1) / 2; }
            hs[c] = v, idx[c] = i;
        } else if (v > hs[0]) {
            int c = 0;
            for (;;) {
                int l = 2 * c + 1, r = l + 1, m = c;
                float mv = v;
                if (l < k && hs[l] < mv) m = l, mv = hs[l];
                if (r < k && hs[r] < mv) m = r;
                if (m == c) break;
                hs[c] = hs[m], idx[c] = idx[m], c = m;
            }
            hs[c] = v, idx[c] = i;
        }
    }
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int64_t sizes[8] = {100000, 1000000};
    int ns = 2;
    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 8; i++) sizes[ns++] = atoll(argv[i]);
    }
    gl_cpu cpu = gl_cpu_detect();
    printf("bench_search: dim %d, top-%d, %s, best/median of %d\n", DIM, K,
           gl_cpu_has_avx2(&cpu) ? "avx2" : "scalar/neon", REPS);
    for (int si = 0; si < ns; si++) {
        int64_t n = sizes[si];
        uint16_t *rows = malloc(sizeof(uint16_t) * n * DIM);
        float *scores = malloc(sizeof(float) * n), q[DIM];
        if (!rows || !scores) return fprintf(stderr, "out of memory\n"), 1;
        uint64_t seed = 42;
        float v[DIM];
        for (int64_t i = 0; i < n; i++) {
            double ss = 0;
            for (int k = 0; k < DIM; k++) v[k] = (float)((rng(&seed) >> 40) * (1.0 / 16777216.0) - 0.5), ss += v[k] * v[k];
            float inv = (float)(1.0 / sqrt(ss));
            for (int k = 0; k < DIM; k++) rows[i * DIM + k] = gl_f32_to_f16(v[k] * inv);
        }
        for (int k = 0; k < DIM; k++) q[k] = gl_f16_to_f32(rows[(n / 2) * DIM + k]);
        for (int nt = 1; nt <= 2; nt++) {
            gl_pool *pool = nt > 1 ? gl_pool_new(nt) : NULL;
            kn_env env = kn_env_native(pool);
            double t[REPS];
            int64_t idx[K];
            for (int r = 0; r < REPS; r++) {
                double t0 = now_ms();
                kn_scan_f16(&env, rows, n, DIM, q, scores);
                topk(scores, n, K, idx);
                t[r] = now_ms() - t0;
            }
            qsort(t, REPS, sizeof t[0], cmpd);
            printf("  n=%-8lld threads=%d  best %7.2f ms  median %7.2f ms  (%.1f GB/s)\n", (long long)n, nt, t[0],
                   t[REPS / 2], n * DIM * 2.0 / (t[0] * 1e6));
            gl_pool_free(pool);
        }
        free(rows);
        free(scores);
    }
    return 0;
}
