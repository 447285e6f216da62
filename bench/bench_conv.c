/* bench_conv — conv and nn kernel throughput. Prints best-of-N times (the machine is shared and
 * noisy: take the best) and GFLOP/s against the fp32 FMA peak in ../shared/notes/machine.md
 * (88 GFLOP/s per core; 2 threads: the 2-core figure used here is 2×88 = 176, the top of the
 * measured 130–175 range, so the % is conservative).
 * Usage: bench_conv [reps] [GLIMPSE_ISA=scalar in the environment for the reference path] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "kernels/conv.h"
#include "kernels/nn.h"

#define PEAK_1T 88.0

/* 1 thread: this thread's CPU time, which leaves out time spent descheduled on the shared
 * machine; 2 threads: wall time (the pool's workers are other threads). */
static int use_cpu_clock = 0;
static double now(void) {
    struct timespec ts;
    clock_gettime(use_cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *rnd(int64_t n) {
    float *p = gl_aligned_alloc(64, (size_t)n * sizeof(float));
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) * (1.0 / 16777216.0)) - 0.5f;
    }
    return p;
}

static int reps = 10;

static double time_conv(const kn_env *env, kn_conv2d_args *a) {
    size_t wsb = kn_conv2d_ws_size(env, a);
    void *ws = wsb ? gl_aligned_alloc(64, wsb) : NULL;
    kn_conv2d(env, a, ws, wsb); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        kn_conv2d(env, a, ws, wsb);
        double t = now() - t0;
        if (t < best) best = t;
    }
    gl_aligned_free(ws);
    return best;
}

static void bench_conv(const char *name, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int k,
                       int s, int groups, kn_act act, int residual) {
    kn_conv2d_args a;
    memset(&a, 0, sizeof a);
    a.N = 1; a.C_in = Cin; a.H = H; a.W = W; a.C_out = Cout;
    a.kh = a.kw = k; a.stride = s; a.pad_h = a.pad_w = k / 2; a.groups = groups; a.act = act;
    int64_t Ho, Wo;
    a.x = rnd(Cin * H * W); a.w = rnd(Cout * Cin / groups * k * k); a.bias = rnd(Cout);
    a.y = (float *)a.x; /* placeholder for the shape check */
    kn_conv2d_shape(&a, &Ho, &Wo);
    a.y = rnd(Cout * Ho * Wo);
    if (residual) a.residual = a.y;
    double flop = 2.0 * Cout * Ho * Wo * (double)(Cin / groups) * k * k;
    for (int nt = 1; nt <= 2; nt++) {
        gl_pool *p = gl_pool_new(nt);
        kn_env env = kn_env_native(p);
        use_cpu_clock = nt == 1;
        double t = time_conv(&env, &a);
        double gf = flop / t * 1e-9;
        printf("%-44s %d thr  %8.3f ms  %7.1f GFLOP/s  %5.1f%% of peak\n", name, nt, t * 1e3, gf,
               100.0 * gf / (PEAK_1T * nt));
        gl_pool_free(p);
    }
    gl_aligned_free((void *)a.x); gl_aligned_free((void *)a.w); gl_aligned_free((void *)a.bias);
    gl_aligned_free(a.y);
}

static void bench_rows(void) {
    int64_t rows = 4096, n = 768;
    float *x = rnd(rows * n), *y = rnd(rows * n), *w = rnd(n), *b = rnd(n);
    for (int nt = 1; nt <= 2; nt++) {
        gl_pool *p = gl_pool_new(nt);
        kn_env env = kn_env_native(p);
        use_cpu_clock = nt == 1;
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        for (int r = 0; r < reps + 1; r++) {
            double t0 = now();
            kn_layernorm(&env, x, y, w, b, rows, n, 1e-5f);
            double t1 = now();
            kn_softmax(&env, x, y, rows, n);
            double t2 = now();
            kn_gelu(&env, x, y, rows * n);
            double t3 = now();
            kn_layernorm_ch(&env, x, y, w, b, 1, n, rows, 1e-5f);
            double t4 = now();
            if (r == 0) continue;
            best[0] = GL_MIN(best[0], t1 - t0);
            best[1] = GL_MIN(best[1], t2 - t1);
            best[2] = GL_MIN(best[2], t3 - t2);
            best[3] = GL_MIN(best[3], t4 - t3);
        }
        double gb = 2.0 * rows * n * 4 * 1e-9; /* read + write */
        static const char *nm[4] = {"layernorm 4096x768", "softmax 4096x768", "gelu (erf) 3.1M",
                                    "layernorm_ch C768 HW4096"};
        for (int i = 0; i < 4; i++)
            printf("%-44s %d thr  %8.3f ms  %7.2f Gelem/s  %6.1f GB/s\n", nm[i], nt, best[i] * 1e3,
                   rows * n / best[i] * 1e-9, gb / best[i]);
        gl_pool_free(p);
    }
    gl_aligned_free(x); gl_aligned_free(y); gl_aligned_free(w); gl_aligned_free(b);
}

static void bench_attn(void) {
    /* FastViTHD stage-4 attention at 1024²: 1024 tokens, 768 ch = 24 heads × 32 */
    int64_t T = 1024, C = 768;
    float *qkv = rnd(T * 3 * C), *o = rnd(T * C);
    kn_attn_args a = {T, T, 24, 24, 32, 0.17677669f, 0, 0, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, o, C, NULL, 0};
    double flop = 4.0 * T * T * C;
    for (int nt = 1; nt <= 2; nt++) {
        gl_pool *p = gl_pool_new(nt);
        kn_env env = kn_env_native(p);
        use_cpu_clock = nt == 1;
        size_t wf = kn_attention_ws_floats(&env, &a);
        float *ws = gl_aligned_alloc(64, wf * sizeof(float));
        double best = 1e30;
        for (int r = 0; r < reps / 2 + 2; r++) {
            double t0 = now();
            kn_attention(&env, &a, ws, wf);
            best = GL_MIN(best, now() - t0);
        }
        double gf = flop / best * 1e-9;
        printf("%-44s %d thr  %8.3f ms  %7.1f GFLOP/s  %5.1f%% of peak\n", "attention 1024 tok, 24 heads x 32", nt,
               best * 1e3, gf, 100.0 * gf / (PEAK_1T * nt));
        gl_aligned_free(ws);
        gl_pool_free(p);
    }
    gl_aligned_free(qkv); gl_aligned_free(o);
}

int main(int argc, char **argv) {
    if (argc > 1) reps = atoi(argv[1]) > 0 ? atoi(argv[1]) : reps;
    printf("bench_conv: isa %s, best of %d\n", glimpse_isa(), reps);
    bench_conv("dw 7x7 s1 384ch 64x64 (RepCPE-like)", 384, 64, 64, 384, 7, 1, 384, KN_ACT_NONE, 0);
    bench_conv("dw 7x7 s1 256ch 16x16 (S0 stage 3 ConvMlp)", 256, 16, 16, 256, 7, 1, 256, KN_ACT_NONE, 0);
    bench_conv("dw 7x7 s1 512ch 8x8 (S0 stage 4 ConvMlp)", 512, 8, 8, 512, 7, 1, 512, KN_ACT_NONE, 0);
    bench_conv("dw 7x7 s1 384ch 64x64 +res", 384, 64, 64, 384, 7, 1, 384, KN_ACT_NONE, 1);
    bench_conv("dw 3x3 s1 64ch 256x256", 64, 256, 256, 64, 3, 1, 64, KN_ACT_NONE, 0);
    bench_conv("dw 3x3 s2 96ch 512x512 +GELU (stem.1)", 96, 512, 512, 96, 3, 2, 96, KN_ACT_GELU, 0);
    bench_conv("grouped 7x7 s2 96->192 128x128 +GELU", 96, 128, 128, 192, 7, 2, 96, KN_ACT_GELU, 0);
    bench_conv("stem 3x3 s2 3->96 1024x1024 +GELU", 3, 1024, 1024, 96, 3, 2, 1, KN_ACT_GELU, 0);
    bench_conv("1x1 96->96 256x256 +GELU", 96, 256, 256, 96, 1, 1, 1, KN_ACT_GELU, 0);
    bench_rows();
    bench_attn();
    return 0;
}
