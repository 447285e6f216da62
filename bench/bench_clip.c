/* bench_clip — MobileCLIP image and text tower speed: the forward passes only (normalised pixels
 * in, embedding out; token ids in, embedding out), as the ONNX Runtime and PyTorch peers are
 * timed by bench/clip_peers.sh. Weights are random (glimpse-gen or make_golden.py): speed does
 * not depend on their values.
 *
 *   bench_clip MODEL_DIR [-t THREADS=2] [-r REPS=15] [-b BATCH=8] [--image-only|--text-only]
 *
 * Prints one line per case: median and best milliseconds per call, images (or texts) per second,
 * and GFLOP/s (FLOPs: S0 image 4.75 G, text 5.8 G per 77-token sequence; see BENCHMARKS.md).
 * A call at batch B is mci_forward_batch over B images (each thread takes whole images) or one
 * text forward over B sequences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "io/weights.h"
#include "kernels/kernels.h"
#include "models/clip_text.h"
#include "models/mci.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of all our threads: with other load on the shared machine, GFLOP per CPU-second
 * shows the engine's efficiency apart from how much of the cores it was given. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* t: wall seconds per rep; c: CPU seconds per rep (all threads). The least CPU time of a rep is
 * the steadiest figure on a loaded machine (time spent descheduled is not in it). */
static void report(const char *what, int batch, double *t, double *c, int reps, double gflop_each) {
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    qsort(c, (size_t)reps, sizeof *c, cmp_d);
    double med = t[reps / 2];
    printf("glimpse %-5s b%-2d median %8.2f ms  best %8.2f ms  %7.2f /s  %6.1f GFLOP/s  [least CPU %7.2f ms: %5.1f GFLOP/cpu-s]\n",
           what, batch, med * 1e3, t[0] * 1e3, batch / med, gflop_each * batch / med, c[0] * 1e3, gflop_each * batch / c[0]);
    fflush(stdout);
}

static float *rnd(size_t n, uint32_t seed) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_clip MODEL_DIR|MODEL.gguf [-t THREADS] [-r REPS] [-b BATCH] [--image-only|--text-only]\n");
        return 2;
    }
    int nt = 2, reps = 15, batch = 8, do_img = 1, do_txt = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--image-only")) do_txt = 0;
        else if (!strcmp(argv[i], "--text-only")) do_img = 0;
        else {
            fprintf(stderr, "bench_clip: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (nt < 1 || reps < 1 || batch < 1) {
        fprintf(stderr, "bench_clip: -t, -r and -b must be >= 1\n");
        return 2;
    }
    /* a folder (OpenCLIP layout) or a GGUF written by `glimpse convert` (any --type) */
    char path[4096];
    size_t al = strlen(argv[1]);
    int gguf = al > 5 && !strcmp(argv[1] + al - 5, ".gguf");
    if (gguf) snprintf(path, sizeof path, "%s", argv[1]);
    else snprintf(path, sizeof path, "%s/open_clip_model.safetensors", argv[1]);
    gl_err err = {0};
    double t_load = now();
    gl_weights *w = NULL;
    mci_model *vis = NULL;
    clipt_model *txt = NULL;
    if (gl_weights_open(path, &w, &err) ||
        (gguf ? mci_load_gguf(w, "v.", path, &vis, &err) : mci_load(w, "visual.trunk.", path, &vis, &err)) ||
        clipt_load(w, "text.", path, 0, 0, &txt, &err)) {
        fprintf(stderr, "bench_clip: %s\n", err.msg);
        return 1;
    }
    if (gguf) mci_pack_quant(vis); /* as the library's CLIP loader does */
    char desc[256];
    mci_describe(vis, desc, sizeof desc);
    printf("model %s: %s; loaded in %.0f ms; %d threads, %d reps\n", argv[1], desc, (now() - t_load) * 1e3, nt, reps);
    gl_pool *pool = gl_pool_new(nt);
    kn_scratch scratch = {0};
    kn_env env = kn_env_native(pool);
    env.scratch = &scratch;
    double *t = malloc(sizeof(double) * (size_t)reps), *c = malloc(sizeof(double) * (size_t)reps);
    int S = 256, rc = 0;
    if (do_img) {
        int d = mci_embed_dim(vis);
        float *px = rnd((size_t)batch * 3 * S * S, 7), *emb = malloc(sizeof(float) * (size_t)batch * d);
        float *ws = malloc(sizeof(float) * mci_batch_ws_floats(vis, S, S, nt));
        int bs[2] = {1, batch};
        for (int k = 0; k < (batch > 1 ? 2 : 1) && !rc; k++) {
            rc |= mci_forward(vis, &env, px, S, S, emb, ws, &err); /* warm-up */
            for (int r = 0; r < reps && !rc; r++) {
                double t0 = now(), c0 = cpu_now();
                rc = mci_forward_batch(vis, &env, px, bs[k], S, S, emb, ws, &err);
                t[r] = now() - t0, c[r] = cpu_now() - c0;
            }
            if (!rc) report("image", bs[k], t, c, reps, 4.75);
        }
        free(px);
        free(emb);
        free(ws);
    }
    if (do_txt && !rc) {
        int ctx = clipt_context(txt), V = clipt_vocab(txt), d = clipt_embed_dim(txt);
        int32_t *ids = calloc((size_t)ctx * batch, sizeof(int32_t));
        for (int s = 0; s < batch; s++) { /* SOT, a few words, EOT, zero padding (as the peers) */
            int32_t *r = ids + (size_t)s * ctx;
            r[0] = V - 2, r[1] = 320 % V, r[2] = (1125 + s) % V, r[3] = V - 1;
        }
        float *emb = malloc(sizeof(float) * (size_t)batch * d);
        float *ws = malloc(sizeof(float) * clipt_ws_floats(txt, batch, nt));
        int bs[2] = {1, batch};
        for (int k = 0; k < (batch > 1 ? 2 : 1) && !rc; k++) {
            rc |= clipt_forward(txt, &env, ids, bs[k], emb, ws, &err);
            for (int r = 0; r < reps && !rc; r++) {
                double t0 = now(), c0 = cpu_now();
                rc = clipt_forward(txt, &env, ids, bs[k], emb, ws, &err);
                t[r] = now() - t0, c[r] = cpu_now() - c0;
            }
            if (!rc) report("text", bs[k], t, c, reps, 5.8);
        }
        free(ids);
        free(emb);
        free(ws);
    }
    if (rc) fprintf(stderr, "bench_clip: %s\n", err.msg);
    free(t);
    free(c);
    kn_scratch_free(&scratch);
    gl_pool_free(pool);
    mci_free(vis);
    clipt_free(txt);
    gl_weights_close(w);
    return rc ? 1 : 0;
}
