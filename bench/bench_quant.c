/* bench_quant — quantized weights (Q8_0 / Q4_0) against f16 / f32 on this machine, same run.
 *
 *  1. decode: one token through Qwen2-0.5B's matrices (24 layers x q,k,v,o,gate,up,down + the
 *     151936-row head), M = 1, as GB/s of weights streamed, next to a plain streaming read of a
 *     buffer as large (the bandwidth ceiling measured now: machine.md's ~19 GB/s on 2 threads).
 *  2. prefill: 280 tokens through one layer's matrices, GFLOP/s, Q8_0 / Q4_0 / F16 / F32.
 *  3. with a MobileCLIP2 folder (bench_quant --s0 DIR, e.g. from glimpse-gen mobileclip2-s0):
 *     image embedding time of the original (f32) vs its q8_0 / q4_0 conversions, alternating.
 * Timings are medians of N repetitions (shared machine: compare the ratios, not the absolutes).
 * Usage: bench_quant [--reps N] [--threads T] [--s0 DIR] [--skip-llm] [--decode-only] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fp16.h"
#include "core/pool.h"
#include "core/quant.h"
#if GLIMPSE_HAVE_API
#include "glimpse.h"
#endif
#include "kernels/gemm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- streaming read ceiling ---- */
typedef struct rd { const uint64_t *p; size_t n; uint64_t sums[64]; } rd;
/* 8 independent integer chains: bound by loads (memory), not by add latency */
static void read_task(void *v, int ith, int nth) {
    rd *r = v;
    int64_t lo, hi;
    gl_split((int64_t)(r->n / 8), ith, nth, &lo, &hi);
    uint64_t s[8] = {0};
    for (int64_t i = lo * 8; i < hi * 8; i += 8)
        for (int j = 0; j < 8; j++) s[j] += r->p[i + j];
    r->sums[ith] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

typedef struct mat { int64_t rows, cols; void *w[4]; } mat; /* Q8_0, Q4_0, F16, F32 */
static const gl_dtype TYPES[4] = {GL_Q8_0, GL_Q4_0, GL_F16, GL_F32};
static const char *const TNAMES[4] = {"q8_0", "q4_0", "f16", "f32"};

static size_t type_bytes(gl_dtype t, int64_t rows, int64_t cols) {
    size_t b;
    gl_dtype_nbytes(t, (uint64_t)(rows * cols), &b);
    return b;
}

static void mat_init(mat *m, int64_t rows, int64_t cols, uint64_t *seed, int with_f32) {
    m->rows = rows, m->cols = cols;
    float *f = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        f[i] = (float)((*seed >> 40) * (1.0 / 16777216.0) - 0.5) * 0.1f;
    }
    for (int t = 0; t < 4; t++) {
        m->w[t] = NULL;
        if (t == 3 && !with_f32) continue;
        size_t b = type_bytes(TYPES[t], rows, cols);
        m->w[t] = malloc(b);
        if (t < 2) for (int64_t r = 0; r < rows; r++) gl_quantize_row(TYPES[t], f + r * cols, (uint8_t *)m->w[t] + r * type_bytes(TYPES[t], 1, cols), cols);
        else if (t == 2) for (int64_t i = 0; i < rows * cols; i++) ((uint16_t *)m->w[t])[i] = gl_f32_to_f16(f[i]);
        else memcpy(m->w[t], f, b);
    }
    free(f);
}

static void linear(const kn_env *env, const float *x, int M, const mat *m, int t, float *y, void *ws, size_t wsn) {
    kn_gemm_args a = {0};
    a.M = M; a.N = m->rows; a.K = m->cols;
    a.A = x; a.lda = m->cols;
    a.B = m->w[t]; a.ldb = m->cols; a.b_type = TYPES[t]; a.trans_b = 1;
    a.C = y; a.ldc = m->rows;
    a.ws = ws; a.ws_size = wsn;
    kn_gemm(env, &a);
}

static void bench_llm(gl_pool *pool, int reps, int decode_only) {
    /* Qwen2-0.5B: hidden 896, 14 heads / 2 kv heads of 64, intermediate 4864, 24 layers, vocab 151936 */
    enum { H = 896, KV = 128, I = 4864, L = 24, V = 151936 };
    uint64_t seed = 1;
    mat layer[7], head;
    int64_t shp[7][2] = {{H, H}, {KV, H}, {KV, H}, {H, H}, {I, H}, {I, H}, {H, I}};
    kn_env env = kn_env_native(pool);
    /* 24 distinct copies would need 1.6 GB at f16: instead one layer's matrices are allocated
     * per layer index for the quantized and f16 types (f32 only for the prefill part) */
    mat *layers = malloc(sizeof(mat) * L * 7);
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 7; j++) mat_init(&layers[l * 7 + j], shp[j][0], shp[j][1], &seed, 0);
    for (int j = 0; j < 7; j++) mat_init(&layer[j], shp[j][0], shp[j][1], &seed, 1);
    mat_init(&head, V, H, &seed, 0);
    float *x = malloc(sizeof(float) * 280 * I), *y = malloc(sizeof(float) * ((size_t)V + 280 * I));
    for (int64_t i = 0; i < 280 * I; i++) x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    size_t wsn = (size_t)64 << 20;
    void *ws = malloc(wsn);
    /* the ceiling: a streaming read as large as the f16 weights */
    size_t f16_bytes = 0;
    for (int j = 0; j < 7; j++) f16_bytes += type_bytes(GL_F16, shp[j][0], shp[j][1]) * L;
    f16_bytes += type_bytes(GL_F16, V, H);
    rd r = {0};
    r.n = f16_bytes / 8;
    uint64_t *buf = malloc(r.n * 8);
    for (size_t i = 0; i < r.n; i++) buf[i] = i;
    r.p = buf;
    printf("decode, one token through Qwen2-0.5B's matrices (M = 1), %d threads, median of %d:\n", gl_pool_size(pool), reps);
    double t_rd[64], t_dec[3][64];
    for (int k = 0; k < reps; k++) {
        double t0 = now();
        gl_pool_run(pool, read_task, &r);
        t_rd[k] = now() - t0;
        for (int t = 0; t < 3; t++) {
            t0 = now();
            for (int l = 0; l < L; l++)
                for (int j = 0; j < 7; j++) linear(&env, x, 1, &layers[l * 7 + j], t, y, ws, wsn);
            linear(&env, x, 1, &head, t == 1 ? 0 : t, y, ws, wsn); /* head at Q8_0 for q4_0 files */
            t_dec[t][k] = now() - t0;
        }
    }
    double rd_s = median(t_rd, reps), rd_gbs = r.n * 8 / rd_s / 1e9;
    printf("  streaming read (%.0f MB): %.1f GB/s  <- ceiling\n", r.n * 8 / 1e6, rd_gbs);
    for (int t = 0; t < 3; t++) {
        size_t bytes = 0;
        for (int j = 0; j < 7; j++) bytes += type_bytes(TYPES[t], shp[j][0], shp[j][1]) * L;
        bytes += type_bytes(t == 1 ? GL_Q8_0 : TYPES[t], V, H);
        double s = median(t_dec[t], reps);
        printf("  %-5s %6.0f MB  %6.1f ms/token  %5.1f GB/s  = %3.0f%% of the read ceiling  (%.1f tokens/s ceiling-bound)\n",
               TNAMES[t], bytes / 1e6, s * 1e3, bytes / s / 1e9, 100.0 * bytes / s / 1e9 / rd_gbs, 1.0 / s);
    }
    if (decode_only) goto done;
    printf("prefill, 280 tokens through one layer's matrices, median of %d:\n", reps);
    double flop = 0;
    for (int j = 0; j < 7; j++) flop += 2.0 * 280 * shp[j][0] * shp[j][1];
    for (int t = 0; t < 4; t++) {
        double tt[64];
        for (int k = 0; k < reps; k++) {
            double t0 = now();
            for (int j = 0; j < 7; j++) linear(&env, x, 280, &layer[j], t, y, ws, wsn);
            tt[k] = now() - t0;
        }
        double s = median(tt, reps);
        printf("  %-5s %7.1f ms  %6.1f GFLOP/s\n", TNAMES[t], s * 1e3, flop / s / 1e9);
    }
done:
    for (int l = 0; l < L * 7; l++)
        for (int t = 0; t < 4; t++) free(layers[l].w[t]);
    for (int j = 0; j < 7; j++)
        for (int t = 0; t < 4; t++) free(layer[j].w[t]);
    for (int t = 0; t < 4; t++) free(head.w[t]);
    free(layers); free(x); free(y); free(ws); free(buf);
}

#if GLIMPSE_HAVE_API
static int embed_once(glimpse_ctx *c, const glimpse_image *img, float *out) { return glimpse_embed_images(c, img, 1, out, 1); }

static void bench_s0(const char *dir, int threads, int reps) {
    char q8[256], q4[256], err[512];
    snprintf(q8, sizeof q8, "/tmp/bench_quant_%d_q8_0.gguf", (int)getpid());
    snprintf(q4, sizeof q4, "/tmp/bench_quant_%d_q4_0.gguf", (int)getpid());
    if (glimpse_convert(dir, q8, GLIMPSE_WTYPE_Q8_0, NULL, err, sizeof err) ||
        glimpse_convert(dir, q4, GLIMPSE_WTYPE_Q4_0, NULL, err, sizeof err)) {
        fprintf(stderr, "bench_quant: %s\n", err);
        return;
    }
    const char *paths[3] = {dir, q8, q4};
    if (getenv("BENCH_QUANT_Q8")) paths[1] = getenv("BENCH_QUANT_Q8"); /* compare another file in the q8_0 slot */
    const char *names[3] = {"f32 (original)", "q8_0", "q4_0"};
    glimpse_model *m[3] = {0};
    glimpse_ctx *c[3] = {0};
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = threads;
    for (int i = 0; i < 3; i++) {
        if (glimpse_model_open(paths[i], NULL, &m[i], err, sizeof err) || glimpse_ctx_new(m[i], &cp, &c[i])) {
            fprintf(stderr, "bench_quant: %s: %s\n", paths[i], err);
            return;
        }
    }
    int S = glimpse_image_size(m[0]);
    uint8_t *rgb = malloc((size_t)3 * S * S);
    for (int i = 0; i < 3 * S * S; i++) rgb[i] = (uint8_t)(i * 31 % 251);
    glimpse_image img = {S, S, rgb};
    float out[1024];
    double t[3][64];
    for (int i = 0; i < 3; i++) embed_once(c[i], &img, out); /* warm: workspaces, page-in */
    for (int k = 0; k < reps; k++)
        for (int i = 0; i < 3; i++) {
            double t0 = now();
            embed_once(c[i], &img, out);
            t[i][k] = now() - t0;
        }
    double base = median(t[0], reps);
    printf("MobileCLIP2 image embedding (%dx%d, %d threads, median of %d, alternating):\n", S, S, threads, reps);
    for (int i = 0; i < 3; i++) {
        double s = i ? median(t[i], reps) : base;
        printf("  %-15s %7.1f ms  %.2fx the f32 speed\n", names[i], s * 1e3, base / s);
    }
    for (int i = 0; i < 3; i++) glimpse_ctx_free(c[i]), glimpse_model_close(m[i]);
    free(rgb);
    unlink(q8);
    unlink(q4);
}
#else
static void bench_s0(const char *dir, int threads, int reps) {
    (void)dir, (void)threads, (void)reps;
    fprintf(stderr, "bench_quant: --s0 needs the full build (not GLIMPSE_KERNELS_ONLY)\n");
}
#endif

int main(int argc, char **argv) {
    int reps = 7, threads = 2, skip_llm = 0, decode_only = 0;
    const char *s0 = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--s0") && i + 1 < argc) s0 = argv[++i];
        else if (!strcmp(argv[i], "--skip-llm")) skip_llm = 1;
        else if (!strcmp(argv[i], "--decode-only")) decode_only = 1;
        else {
            fprintf(stderr, "usage: bench_quant [--reps N] [--threads T] [--s0 DIR] [--skip-llm] [--decode-only]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64) reps = 7;
    gl_pool *pool = gl_pool_new(threads);
    if (!skip_llm) bench_llm(pool, reps, decode_only);
    gl_pool_free(pool);
    if (s0) bench_s0(s0, threads, reps);
    return 0;
}
