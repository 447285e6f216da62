/* bench_fastvlm — FastVLM end to end through the public API: time to first token split into
 * preprocess, vision tower + projector and prompt prefill, then decode tokens/s, with
 * efficiency figures against the machine's limits (../shared/notes/machine.md):
 *   vision: GFLOP/s vs the fp32 FMA peak (FastViTHD + projector = 487 GFLOP at 1024^2, scaled
 *           by (S/1024)^2 for other sizes);
 *   prefill: GFLOP/s of the Linear layers (2 x weights x tokens) + attention, vs the same peak;
 *   decode: GB/s of weights streamed per token (every decoder matrix + the head) vs ~19 GB/s.
 * Each repeat runs a fresh image + "Describe the image." turn (a new conversation); prints
 * every repeat and the medians, and the peak RSS (getrusage after the first repeat, before the
 * first stream test).
 *
 * Usage: bench_fastvlm MODEL_DIR [IMAGE] [-t threads] [-n decode_tokens] [-r repeats] [--json] [--llm-only [--prompt T]]
 * Without IMAGE a 640x400 synthetic image is used (padded and resized like a photo).
 * --llm-only: just the decoder (internal API), for profiling: prefill of 280 positions of
 * random embeddings (--prompt T: T positions; 0: decode from an empty cache, as llama-bench's tg),
 * then greedy decode (the vision phase takes most of a full run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "api/api.h"

#define PEAK_2T 176.0 /* GFLOP/s: 2 x 88, the top of the measured 130-175 (so % is conservative) */
#define PEAK_1T 88.0
#define BW_2T 19.0    /* GB/s, typical 2-thread streaming read */
#define BW_1T 11.0
#define VISION_GFLOP_1024 487.0

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* CPU seconds of this process (all threads): with the machine shared, work per CPU second
 * shows efficiency independent of how much of the cores we were given. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Streaming-read ceiling measured in the same run (the machine's bandwidth varies with the
 * other users' load): threads each sum one contiguous part of a 512 MB buffer; best of 3. */
typedef struct { const uint64_t *p; size_t n; uint64_t sink[16][8]; } stream_job;
static void stream_task(void *v, int ith, int nth) {
    stream_job *j = v;
    int64_t lo, hi;
    gl_split((int64_t)j->n / 32, ith, nth, &lo, &hi);
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (int64_t i = lo * 32; i < hi * 32; i += 4) a += j->p[i], b += j->p[i + 1], c += j->p[i + 2], d += j->p[i + 3];
    j->sink[ith & 15][0] = a + b + c + d;
}
static double stream_gbs(int threads) {
    size_t bytes = (size_t)512 << 20;
    stream_job j = {.n = bytes / 8};
    uint64_t *p = gl_aligned_alloc(64, bytes);
    if (!p) return 0;
    memset(p, 1, bytes);
    j.p = p;
    gl_pool *pool = gl_pool_new(threads);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_ms();
        gl_pool_run(pool, stream_task, &j);
        double gbs = bytes / ((now_ms() - t0) * 1e6);
        if (gbs > best) best = gbs;
    }
    gl_pool_free(pool);
    gl_aligned_free(p);
    return best;
}

/* Decoder alone: prefill T random rows, then n_dec greedy steps, reps times. */
static int llm_only(const fastvlm_model *v, int threads, int n_dec, int reps, int T) {
    const qwen2_model *q = v->llm;
    int H = v->hidden, V = qwen2_vocab(q);
    gl_pool *pool = gl_pool_new(threads);
    kn_scratch scr = {0};
    kn_env env = kn_env_native(pool);
    env.scratch = &scr;
    qwen2_state *st;
    gl_err err = {0};
    float *x = malloc(sizeof(float) * (size_t)(T + 1) * H), *lg = malloc(sizeof(float) * (size_t)V);
    if (!x || !lg || qwen2_state_new(q, 1024, 512, threads, &st, &err)) return 1;
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)(T + 1) * H; i++) s = s * 1664525u + 1013904223u, x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    for (int r = 0; r < reps; r++) {
        qwen2_state_truncate(st, 0);
        double t0 = now_ms(), c0 = cpu_s();
        /* T = 0: decode from an empty cache (as llama-bench's tg test), after one first position */
        if (qwen2_forward(q, st, &env, x, T ? T : 1, lg, &err)) return 1;
        double t1 = now_ms(), c1 = cpu_s();
        for (int i = 0; i < n_dec; i++) {
            int32_t best = 0;
            for (int k = 1; k < V; k++) if (lg[k] > lg[best]) best = k;
            if (qwen2_embed(q, &best, 1, x, &err) || qwen2_forward(q, st, &env, x, 1, lg, &err)) return 1;
        }
        double t2 = now_ms(), c2 = cpu_s();
        printf("llm-only rep %d: prefill %d positions %.0f ms (%.1f CPU s), decode %.2f tok/s (%.1f CPU ms/token), "
               "stream read now %.1f GB/s\n", r, T, t1 - t0, c1 - c0, n_dec / ((t2 - t1) / 1e3), (c2 - c1) * 1e3 / n_dec,
               stream_gbs(threads));
    }
    qwen2_state_free(st);
    kn_scratch_free(&scr);
    gl_pool_free(pool);
    free(x), free(lg);
    return 0;
}

static int on_token(void *user, int32_t tok, const char *text, size_t len) {
    (void)user, (void)tok, (void)text, (void)len;
    return 0;
}

/* Bytes of one matrix as stored. */
static double mat_bytes(const wl_mat *m) {
    size_t n = 0;
    gl_dtype_nbytes(m->type, (uint64_t)m->rows * (uint64_t)m->cols, &n);
    return (double)n;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *image = NULL;
    int threads = 2, n_dec = 32, reps = 3, json = 0, llm = 0, prompt = 280;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_dec = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--llm-only")) llm = 1;
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = atoi(argv[++i]);
        else if (!dir) dir = argv[i];
        else if (!image) image = argv[i];
        else {
            fprintf(stderr, "bench_fastvlm: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir || threads < 1 || n_dec < 2 || reps < 1 || reps > 64) {
        fprintf(stderr, "usage: bench_fastvlm MODEL_DIR [IMAGE] [-t threads] [-n decode_tokens>=2] [-r repeats] [--json]\n");
        return 2;
    }
    char err[512];
    glimpse_model *m;
    if (glimpse_model_open(dir, NULL, &m, err, sizeof err)) {
        fprintf(stderr, "bench_fastvlm: %s\n", err);
        return 1;
    }
    if (glimpse_model_get_kind(m) != GLIMPSE_MODEL_VLM) {
        fprintf(stderr, "bench_fastvlm: %s is not a FastVLM folder\n", dir);
        return 1;
    }
    if (llm) return llm_only(m->vlm, threads, n_dec, reps, prompt < 0 ? 0 : prompt > 900 ? 900 : prompt);
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = threads;
    glimpse_ctx *c;
    if (glimpse_ctx_new(m, &cp, &c)) {
        fprintf(stderr, "bench_fastvlm: %s\n", glimpse_model_errmsg(m));
        return 1;
    }
    glimpse_image img;
    if (image) {
        if (glimpse_image_load(image, 0, &img, err, sizeof err)) {
            fprintf(stderr, "bench_fastvlm: %s\n", err);
            return 1;
        }
    } else {
        /* synthetic 640x400 (the pad + upscale path of a landscape photo) */
        img.width = 640, img.height = 400;
        img.rgb = malloc((size_t)img.width * img.height * 3);
        if (!img.rgb) return 1;
        for (int y = 0; y < img.height; y++)
            for (int x = 0; x < img.width; x++) {
                uint8_t *p = img.rgb + ((size_t)y * img.width + x) * 3;
                p[0] = (uint8_t)(x * 255 / 639), p[1] = (uint8_t)(y * 255 / 399), p[2] = (uint8_t)((x / 9 + y / 13) % 2 * 150 + 50);
            }
    }

    /* work per phase, from the loaded shapes */
    const fastvlm_model *v = m->vlm;
    const qwen2_model *q = v->llm;
    double S = v->image_size, vis_gflop = VISION_GFLOP_1024 * (S / 1024) * (S / 1024);
    double w_bytes = 0, w_params = 0; /* decoder matrices + head, as stored */
    int n_layer = qwen2_n_layer(q);
    for (int l = 0; l < n_layer; l++) {
        wl_mat mats[7];
        qwen2_layer_mats(q, l, mats);
        for (int k = 0; k < 7; k++) w_bytes += mat_bytes(&mats[k]), w_params += (double)mats[k].rows * mats[k].cols;
    }
    wl_mat head = qwen2_head(q);
    double head_bytes = mat_bytes(&head);

    glimpse_gen_params gp = glimpse_gen_default_params();
    gp.max_new_tokens = n_dec;
    double pre[64], vis[64], pf[64], ttft[64], dec[64], vcpu[64], bw_now[64];
    int T = 0, gen = 0;
    double rss_kb = 0;
    for (int r = 0; r < reps; r++) {
        double c0 = cpu_s();
        int rc = glimpse_chat_set_image(c, &img);
        vcpu[r] = cpu_s() - c0;
        if (rc || glimpse_chat_ask(c, "Describe the image.", &gp, on_token, NULL)) {
            fprintf(stderr, "bench_fastvlm: %s\n", glimpse_ctx_errmsg(c));
            return 1;
        }
        glimpse_timings t = glimpse_ctx_timings(c);
        if (r == 0) { /* before the first stream test's buffer (ru_maxrss is a high-water mark) */
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            rss_kb = (double)ru.ru_maxrss;
        }
        bw_now[r] = stream_gbs(threads);
        T = t.prompt_tokens, gen = t.generated_tokens;
        pre[r] = t.preprocess_ms, vis[r] = t.vision_ms, pf[r] = t.prefill_ms, ttft[r] = t.ttft_ms;
        dec[r] = gen > 1 ? (gen - 1) / (t.decode_ms / 1e3) : 0;
        if (!json)
            printf("rep %d: stream %.1f GB/s, preprocess %.0f ms, vision %.0f ms (preprocess + vision: %.1f CPU s), prefill %.0f ms "
                   "(%d tokens), TTFT %.0f ms, decode %.2f tok/s (%d tokens)\n",
                   r, bw_now[r], pre[r], vis[r], vcpu[r], pf[r], T, ttft[r], dec[r], gen);
    }
    double mpre = median(pre, reps), mvis = median(vis, reps), mpf = median(pf, reps), mttft = median(ttft, reps);
    double mdec = median(dec, reps), mvcpu = median(vcpu, reps), mbw = median(bw_now, reps);
    /* prefill: Linear layers over T tokens + attention QK^T and PV (causal: ~T^2/2 pairs) + the
     * head on the last position */
    int hd = qwen2_head_dim(q), nh = qwen2_n_head(q);
    double pf_gflop = (2.0 * w_params * T + 2.0 * 2.0 * n_layer * nh * hd * (double)T * T / 2 +
                       2.0 * head.rows * head.cols) * 1e-9;
    double peak = threads >= 2 ? PEAK_2T : PEAK_1T, bw = threads >= 2 ? BW_2T : BW_1T;
    double gb_tok = (w_bytes + head_bytes) * 1e-9;
    double rss_gib = rss_kb / (1024.0 * 1024.0);
    if (json) {
        printf("{\"threads\":%d,\"image_size\":%d,\"prompt_tokens\":%d,\"generated\":%d,\"preprocess_ms\":%.1f,"
               "\"vision_ms\":%.1f,\"prefill_ms\":%.1f,\"ttft_ms\":%.1f,\"decode_tok_s\":%.3f,\"vision_gflop\":%.1f,"
               "\"prefill_gflop\":%.1f,\"decode_gb_per_token\":%.4f,\"vision_cpu_s\":%.2f,\"stream_gb_s\":%.2f,\"peak_rss_gib\":%.3f}\n",
               threads, v->image_size, T, gen, mpre, mvis, mpf, mttft, mdec, vis_gflop, pf_gflop, gb_tok, mvcpu, mbw, rss_gib);
    } else {
        printf("median of %d, %d thread(s), image %dx%d, %d prompt positions:\n", reps, threads, v->image_size,
               v->image_size, T);
        printf("  preprocess  %8.1f ms\n", mpre);
        printf("  vision      %8.1f ms  %6.1f GFLOP/s (%.0f GFLOP, %.0f%% of %.0f peak)\n", mvis, vis_gflop / (mvis / 1e3),
               vis_gflop, 100 * vis_gflop / (mvis / 1e3) / peak, peak);
        printf("              %8.1f CPU s (preprocess + vision): %.1f GFLOP per CPU second\n", mvcpu, vis_gflop / mvcpu);
        printf("  prefill     %8.1f ms  %6.1f GFLOP/s (%.0f GFLOP, %.0f%% of peak)\n", mpf, pf_gflop / (mpf / 1e3), pf_gflop,
               100 * pf_gflop / (mpf / 1e3) / peak);
        printf("  TTFT        %8.1f ms\n", mttft);
        printf("  decode      %8.2f tok/s  %5.1f GB/s (%.3f GB/token, %.0f%% of %.0f GB/s; %.0f%% of %.1f GB/s streamed "
               "in this run)\n", mdec, mdec * gb_tok, gb_tok, 100 * mdec * gb_tok / bw, bw, 100 * mdec * gb_tok / mbw, mbw);
        printf("  peak RSS    %8.3f GiB\n", rss_gib);
    }
    if (!image) free(img.rgb);
    else glimpse_image_free(&img);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return 0;
}
