/* bench_gemm — kn_gemm throughput on square and model-like shapes, 1 and 2 threads.
 * Prints GFLOP/s, % of the fp32 FMA peak (88 GFLOP/s per core on this Zen 3, x threads) and
 * % of an FMA loop's GFLOP/s measured on the same threads just after (x86),
 * and for the GEMV shapes the GB/s of weights streamed. Timings are best of N repetitions
 * (the machine is shared: best-of filters out other people's load).
 * Usage: bench_gemm [reps] [name-filter-substring] [thread counts, e.g. 12 or 2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/gemm.h"

#define PEAK_PER_CORE 88.0

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds used by this process (all threads): on a shared machine, flops per CPU second
 * shows the kernel's per-core efficiency independent of how much of the cores we were given. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The machine's fp32 FMA peak right now on nth threads, GFLOP/s (wall clock, best of 20):
 * each thread runs 12 independent 8-wide FMA chains (x86 AVX2 only; 0 elsewhere). The cores
 * are shared and clocks drop with more busy cores, so this moves; it is measured next to each
 * shape so the two can be compared. */
#if defined(__x86_64__)
static void fma_task(void *v, int ith, int nth) {
    long n = 2000000;
    __asm__ volatile(
        "vxorps %%ymm0,%%ymm0,%%ymm0\n vxorps %%ymm1,%%ymm1,%%ymm1\n vxorps %%ymm2,%%ymm2,%%ymm2\n"
        "vxorps %%ymm3,%%ymm3,%%ymm3\n vxorps %%ymm4,%%ymm4,%%ymm4\n vxorps %%ymm5,%%ymm5,%%ymm5\n"
        "vxorps %%ymm6,%%ymm6,%%ymm6\n vxorps %%ymm7,%%ymm7,%%ymm7\n vxorps %%ymm8,%%ymm8,%%ymm8\n"
        "vxorps %%ymm9,%%ymm9,%%ymm9\n vxorps %%ymm10,%%ymm10,%%ymm10\n vxorps %%ymm11,%%ymm11,%%ymm11\n"
        "vxorps %%ymm12,%%ymm12,%%ymm12\n vxorps %%ymm13,%%ymm13,%%ymm13\n"
        "1:\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm0\n vfmadd231ps %%ymm12,%%ymm13,%%ymm1\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm2\n vfmadd231ps %%ymm12,%%ymm13,%%ymm3\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm4\n vfmadd231ps %%ymm12,%%ymm13,%%ymm5\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm6\n vfmadd231ps %%ymm12,%%ymm13,%%ymm7\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm8\n vfmadd231ps %%ymm12,%%ymm13,%%ymm9\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm10\n vfmadd231ps %%ymm12,%%ymm13,%%ymm11\n"
        "dec %0\n jnz 1b\n"
        : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "cc");
    (void)v, (void)ith, (void)nth;
}
#endif

static double fma_peak(gl_pool *pool) {
#if defined(__x86_64__)
    gl_cpu cpu = gl_cpu_detect();
    if (!gl_cpu_has_avx2(&cpu)) return 0;
    double best = 1e30;
    for (int r = 0; r < 20; r++) {
        double t = now();
        gl_pool_run(pool, fma_task, NULL);
        t = now() - t;
        if (t < best) best = t;
    }
    return gl_pool_size(pool) * 2.0 * 8 * 12 * 2000000 / best * 1e-9;
#else
    (void)pool;
    return 0;
#endif
}

typedef struct shape {
    const char *name;
    int64_t M, N, K;
    gl_dtype bt;
    int trans_b;
    kn_act act;
    int bias_m, bias_n;
} shape;

static void *rand_buf(size_t n, gl_dtype t) {
    size_t esz = t == GL_F32 ? 4 : 2;
    void *p = gl_aligned_alloc(64, n * esz + 64);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float v = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
        if (t == GL_F16) ((uint16_t *)p)[i] = gl_f32_to_f16(v);
        else if (t == GL_BF16) ((uint16_t *)p)[i] = gl_f32_to_bf16(v);
        else ((float *)p)[i] = v;
    }
    return p;
}

static const char *dtn(gl_dtype t) { return t == GL_F16 ? "f16" : t == GL_BF16 ? "bf16" : "f32"; }

static void bench(const shape *sh, int nth, int reps) {
    gl_pool *pool = gl_pool_new(nth);
    kn_env env = kn_env_native(pool);
    float *A = rand_buf((size_t)(sh->M * sh->K), GL_F32);
    void *B = rand_buf((size_t)(sh->K * sh->N), sh->bt);
    float *C = gl_aligned_alloc(64, sizeof(float) * sh->M * sh->N);
    float *bm = rand_buf((size_t)sh->M, GL_F32), *bn = rand_buf((size_t)sh->N, GL_F32);
    size_t wsn = kn_gemm_ws_size(&env, sh->M, sh->N, sh->K);
    void *ws = wsn ? gl_aligned_alloc(64, wsn) : NULL;
    kn_gemm_args a;
    memset(&a, 0, sizeof a);
    a.M = sh->M, a.N = sh->N, a.K = sh->K;
    a.A = A, a.lda = sh->K;
    a.B = B, a.ldb = sh->trans_b ? sh->K : sh->N, a.b_type = sh->bt, a.trans_b = sh->trans_b;
    a.C = C, a.ldc = sh->N;
    a.bias_m = sh->bias_m ? bm : NULL;
    a.bias_n = sh->bias_n ? bn : NULL;
    a.act = sh->act;
    a.ws = ws, a.ws_size = wsn;
    double flops = 2.0 * sh->M * sh->N * sh->K;
    /* enough inner iterations for ~50 ms per sample */
    kn_gemm(&env, &a);
    double t0 = now();
    kn_gemm(&env, &a);
    double one = now() - t0;
    int inner = one > 0.05 ? 1 : (int)(0.05 / (one + 1e-9)) + 1;
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        t0 = now();
        double c0 = cpu_now();
        for (int i = 0; i < inner; i++) kn_gemm(&env, &a);
        double t = (now() - t0) / inner, c = (cpu_now() - c0) / inner;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    double gf = flops / best * 1e-9;
    printf("%-28s M=%-6lld N=%-6lld K=%-5lld %-4s tb=%d %dt: %8.3f ms %7.1f GFLOP/s %5.1f%% of peak",
           sh->name, (long long)sh->M, (long long)sh->N, (long long)sh->K, dtn(sh->bt), sh->trans_b, nth, best * 1e3,
           gf, 100.0 * gf / (PEAK_PER_CORE * nth));
    double pk = fma_peak(pool);
    if (pk > 0) printf(" = %3.0f%% of measured %.0f", 100.0 * gf / pk, pk);
    printf("  [%5.1f GFLOP/cpu-s]", flops / best_cpu * 1e-9);
    if (sh->M <= KN_GEMV_MAX_M) {
        double bytes = (double)sh->N * sh->K * (sh->bt == GL_F32 ? 4 : 2);
        printf("  %6.1f GB/s weights", bytes / best * 1e-9);
    }
    printf("\n");
    fflush(stdout);
    gl_aligned_free(A), gl_aligned_free(B), gl_aligned_free(C), gl_aligned_free(bm), gl_aligned_free(bn);
    if (ws) gl_aligned_free(ws);
    gl_pool_free(pool);
}

/* Plain read bandwidth over the pool (a sum over a buffer the size of the lm_head weights), the
 * ceiling for the decode GEMV rows above. */
typedef struct bw_job { const uint64_t *p; size_t n; uint64_t out[64]; } bw_job;

static void bw_task(void *v, int ith, int nth) {
    bw_job *j = v;
    int64_t lo, hi;
    gl_split((int64_t)j->n / 8, ith, nth, &lo, &hi);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (int64_t i = lo * 8; i < hi * 8; i += 8) {
        s0 += j->p[i], s1 += j->p[i + 1], s2 += j->p[i + 2], s3 += j->p[i + 3];
        s4 += j->p[i + 4], s5 += j->p[i + 5], s6 += j->p[i + 6], s7 += j->p[i + 7];
    }
    j->out[ith & 63] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

static void bench_bw(int nth, int reps) {
    gl_pool *pool = gl_pool_new(nth);
    size_t bytes = (size_t)151936 * 896 * 2;
    bw_job j;
    memset(&j, 0, sizeof j);
    j.n = bytes / 8;
    uint64_t *p = gl_aligned_alloc(64, bytes);
    for (size_t i = 0; i < j.n; i++) p[i] = i;
    j.p = p;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        gl_pool_run(pool, bw_task, &j);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%-28s %zu MB %dt: %8.3f ms %6.1f GB/s\n", "read-bandwidth", bytes >> 20, nth, best * 1e3, bytes / best * 1e-9);
    gl_aligned_free(p);
    gl_pool_free(pool);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *filter = argc > 2 && argv[2][0] ? argv[2] : NULL;
    const char *threads = argc > 3 ? argv[3] : "12";
    static const shape shapes[] = {
        {"square", 1024, 1024, 1024, GL_F32, 0, KN_ACT_NONE, 0, 0},
        {"square", 1024, 1024, 1024, GL_F16, 1, KN_ACT_NONE, 0, 0},
        {"fastvithd-1x1conv-768", 768, 4096, 768, GL_F32, 0, KN_ACT_GELU, 1, 0},
        {"fastvithd-1x1conv-1536", 1536, 16384, 384, GL_F32, 0, KN_ACT_NONE, 1, 0},
        {"s0-fc1-stage0", 192, 4096, 64, GL_F32, 0, KN_ACT_GELU, 1, 0},
        {"s0-fc2-stage0", 64, 4096, 192, GL_F32, 0, KN_ACT_NONE, 1, 0},
        {"s0-fc1-stage2", 768, 256, 256, GL_F32, 0, KN_ACT_GELU, 1, 0},
        {"s0-fc2-stage2", 256, 256, 768, GL_F32, 0, KN_ACT_NONE, 1, 0},
        {"s0-fc1-stage1", 384, 1024, 128, GL_F32, 0, KN_ACT_GELU, 1, 0},
        {"s0-fc2-stage1", 128, 1024, 384, GL_F32, 0, KN_ACT_NONE, 1, 0},
        {"s0-fc1-nogelu1", 384, 1024, 128, GL_F32, 0, KN_ACT_NONE, 1, 0},
        {"s0-fc1-nogelu2", 768, 256, 256, GL_F32, 0, KN_ACT_NONE, 1, 0},
        {"s0-text-qkv", 77, 1536, 512, GL_F32, 1, KN_ACT_NONE, 0, 1},
        {"s0-text-fc", 77, 2048, 512, GL_F32, 1, KN_ACT_GELU, 0, 1},
        {"qwen2-prefill-mlp", 280, 4864, 896, GL_F16, 1, KN_ACT_NONE, 0, 0},
        {"qwen2-prefill-mlp", 280, 4864, 896, GL_BF16, 1, KN_ACT_NONE, 0, 0},
        {"qwen2-decode-mlp", 1, 4864, 896, GL_F16, 1, KN_ACT_NONE, 0, 0},
        {"qwen2-decode-mlp", 1, 4864, 896, GL_BF16, 1, KN_ACT_NONE, 0, 0},
        {"qwen2-decode-lm_head", 1, 151936, 896, GL_F16, 1, KN_ACT_NONE, 0, 0},
        {"qwen2-decode-lm_head", 1, 151936, 896, GL_BF16, 1, KN_ACT_NONE, 0, 0},
    };
    gl_cpu cpu = gl_cpu_detect();
    printf("kn_gemm on %s, best of %d\n", gl_cpu_isa_name(&cpu), reps);
    if (!filter || strstr("read-bandwidth", filter))
        for (const char *t = threads; *t; t++)
            if (*t >= '1' && *t <= '9') bench_bw(*t - '0', reps);
    for (size_t i = 0; i < GL_ARRAY_LEN(shapes); i++) {
        if (filter && !strstr(shapes[i].name, filter)) continue;
        for (const char *t = threads; *t; t++)
            if (*t >= '1' && *t <= '9') bench(&shapes[i], *t - '0', reps);
    }
    return 0;
}
