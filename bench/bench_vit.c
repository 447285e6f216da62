/* bench_vit.c — image-embedding latency of MobileCLIP2 towers through glimpse.h, several models
 * in one run so the figures can be read as ratios (the machine is shared and noisy).
 *
 *   bench_vit [-t THREADS=2] [-r REPS=7] [-b BATCH=1] MODEL_DIR...
 *
 * Per model: open, one warm-up, then REPS timed calls of glimpse_embed_images on BATCH
 * synthetic images already at the model's input size (so no resize: the tower alone, plus the
 * cheap u8 -> float normalisation). Models are interleaved rep by rep; prints the median and
 * the minimum wall ms per call and the least process CPU time per call (all threads: less
 * sensitive to other jobs on a shared machine than wall time). Make models with glimpse-gen (mobileclip2-b, -l14, -s0, ...). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "glimpse.h"

#define MAX_MODELS 8

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bm {
    const char *dir;
    glimpse_model *m;
    glimpse_ctx *c;
    glimpse_image *img;
    float *out;
    double *t, *cpu;
} bm;

int main(int argc, char **argv) {
    int threads = 2, reps = 7, batch = 1, n = 0;
    bm b[MAX_MODELS] = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (argv[i][0] == '-' || n == MAX_MODELS) {
            fprintf(stderr, "usage: bench_vit [-t THREADS] [-r REPS] [-b BATCH] MODEL_DIR... (at most %d)\n", MAX_MODELS);
            return 2;
        } else b[n++].dir = argv[i];
    }
    if (!n || threads < 1 || reps < 1 || batch < 1) {
        fprintf(stderr, "usage: bench_vit [-t THREADS] [-r REPS] [-b BATCH] MODEL_DIR...\n");
        return 2;
    }
    for (int k = 0; k < n; k++) {
        char err[512];
        glimpse_model_params mp = glimpse_model_default_params();
        if (glimpse_model_open(b[k].dir, &mp, &b[k].m, err, sizeof err)) {
            fprintf(stderr, "bench_vit: %s\n", err);
            return 1;
        }
        glimpse_ctx_params cp = glimpse_ctx_default_params();
        cp.n_threads = threads;
        if (glimpse_ctx_new(b[k].m, &cp, &b[k].c)) return fprintf(stderr, "bench_vit: context failed\n"), 1;
        /* any input at the model's size; its content does not change the work */
        int S = glimpse_image_size(b[k].m);
        b[k].img = calloc((size_t)batch, sizeof *b[k].img);
        uint64_t s = 12345;
        for (int i = 0; i < batch; i++) {
            b[k].img[i].width = b[k].img[i].height = S;
            b[k].img[i].rgb = malloc((size_t)S * S * 3);
            for (size_t j = 0; j < (size_t)S * S * 3; j++) b[k].img[i].rgb[j] = (uint8_t)((s = s * 6364136223846793005ull + 1) >> 56);
        }
        b[k].out = malloc(sizeof(float) * (size_t)batch * glimpse_embed_dim(b[k].m));
        b[k].t = calloc((size_t)reps, sizeof(double));
        b[k].cpu = calloc((size_t)reps, sizeof(double));
        if (glimpse_embed_images(b[k].c, b[k].img, batch, b[k].out, 1)) /* warm-up */
            return fprintf(stderr, "bench_vit: %s: %s\n", b[k].dir, glimpse_ctx_errmsg(b[k].c)), 1;
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < n; k++) {
            double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
            glimpse_embed_images(b[k].c, b[k].img, batch, b[k].out, 1);
            b[k].t[r] = clock_ms(CLOCK_MONOTONIC) - t0;
            b[k].cpu[r] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        }
    printf("threads %d, batch %d, %d reps (interleaved)\n", threads, batch, reps);
    for (int k = 0; k < n; k++) {
        qsort(b[k].t, (size_t)reps, sizeof(double), cmp_d);
        qsort(b[k].cpu, (size_t)reps, sizeof(double), cmp_d);
        printf("%-36s %4d px  median %8.1f ms  min %8.1f ms  (%.1f ms/image)  least CPU %8.1f ms\n", b[k].dir,
               glimpse_image_size(b[k].m), b[k].t[reps / 2], b[k].t[0], b[k].t[reps / 2] / batch, b[k].cpu[0]);
        for (int i = 0; i < batch; i++) free(b[k].img[i].rgb);
        free(b[k].img);
        free(b[k].out);
        free(b[k].t);
        free(b[k].cpu);
        glimpse_ctx_free(b[k].c);
        glimpse_model_close(b[k].m);
    }
    return 0;
}
