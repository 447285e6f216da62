/* The int8 text tower's fused layers (clip_text.c: each thread keeps its own columns, with
 * LayerNorm from per-block partials and the products' outputs quantized where they are
 * computed) against the unfused layers, on a random-weight MobileCLIP2 text tower from
 * glimpse-gen converted to Q8_0: 1 and 2 heads (head dim 64 and 32), bidirectional and causal,
 * two sequences per call. The fused results must not depend on the thread count (1, 2, 3) and
 * must match the unfused ones to LayerNorm rounding, cosine >= 0.999999 (the first call, before the weights are
 * packed, runs unfused). Without AVX512-VNNI there is nothing fused to test. */
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#include "glimpse.h"
#include "io/weights.h"
#include "models/clip_text.h"

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static void tower(const char *gguf, int causal, int heads) {
    gl_err err = {0};
    gl_weights *w = NULL;
    clipt_model *t = NULL;
    CHECK_MSG(gl_weights_open(gguf, &w, &err) == 0, "%s", err.msg);
    if (w) CHECK_MSG(clipt_load(w, "text.", gguf, causal, heads, &t, &err) == 0, "%s", err.msg);
    if (!t) {
        gl_weights_close(w);
        return;
    }
    const int ns = 2, ctx = clipt_context(t), d = clipt_embed_dim(t), V = clipt_vocab(t);
    int32_t *ids = calloc((size_t)ns * ctx, sizeof *ids);
    uint64_t seed = 7 + (uint64_t)(2 * causal + heads);
    for (int s = 0; s < ns; s++) { /* SOT, words, EOT (the largest id), 0-padding */
        int32_t *row = ids + (size_t)s * ctx;
        int len = 5 + 30 * s;
        row[0] = V - 2;
        for (int i = 1; i < len; i++) row[i] = 1 + (int32_t)(t_rand_u64(&seed) % (uint64_t)(V - 3));
        row[len] = V - 1;
    }
    float *ref = malloc(sizeof(float) * ns * d), *first = malloc(sizeof(float) * ns * d),
          *got = malloc(sizeof(float) * ns * d);
    float *ws = malloc(sizeof(float) * clipt_ws_floats(t, ns, 3));
    kn_scratch scr = {0};
    for (int nth = 1; nth <= 3; nth++) {
        gl_pool *pool = gl_pool_new(nth);
        kn_env env = kn_env_native(pool);
        env.scratch = &scr;
        if (nth == 1) { /* the stored weights (unfused), then the call that packs them */
            CHECK(!clipt_fused(t, &env));
            CHECK(clipt_forward(t, &env, ids, ns, ref, ws, &err) == 0);
            CHECK(clipt_forward(t, &env, ids, ns, got, ws, &err) == 0);
            CHECK_MSG(clipt_fused(t, &env), "causal %d, %d heads: the layers did not run fused", causal, heads);
        }
        CHECK(clipt_forward(t, &env, ids, ns, got, ws, &err) == 0);
        if (nth == 1) memcpy(first, got, sizeof(float) * ns * d);
        CHECK_MSG(!memcmp(first, got, sizeof(float) * ns * d), "causal %d, %d heads: %d threads differ from 1", causal,
                  heads, nth);
        for (int s = 0; s < ns && nth == 1; s++) {
            double c = cosine(ref + (size_t)s * d, got + (size_t)s * d, d);
            fprintf(stderr, "  causal %d, %d heads, sequence %d: fused vs unfused cosine %.10f\n", causal, heads, s, c);
            CHECK(c >= 0.999999);
        }
        gl_pool_free(pool);
    }
    kn_scratch_free(&scr);
    free(ids), free(ref), free(first), free(got), free(ws);
    clipt_free(t);
    gl_weights_close(w);
}

int main(void) {
    gl_cpu cpu = gl_cpu_detect();
    if (!gl_cpu_has_avx512vnni(&cpu)) {
        fprintf(stderr, "test_clip_fused: no AVX512-VNNI: the fused layers do not run here\n");
        TEST_DONE();
    }
    char dir[] = "/tmp/glimpse_test_fused_XXXXXX", line[2048], gguf[1024], errbuf[512];
    if (!mkdtemp(dir)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    const char *gen = getenv("GLIMPSE_GEN") ? getenv("GLIMPSE_GEN") : GLIMPSE_GEN;
    snprintf(line, sizeof line, "'%s' mobileclip2-tiny '%s/model' >/dev/null", gen, dir);
    if (system(line) != 0) return fprintf(stderr, "glimpse-gen failed: %s\n", line), 1;
    snprintf(line, sizeof line, "%s/model", dir);
    snprintf(gguf, sizeof gguf, "%s/q8_0.gguf", dir);
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = GLIMPSE_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"; /* convert wants one */
    CHECK_MSG(glimpse_convert(line, gguf, GLIMPSE_WTYPE_Q8_0, &mp, errbuf, sizeof errbuf) == 0, "%s", errbuf);
    for (int causal = 0; causal < 2; causal++)
        for (int heads = 1; heads <= 2; heads++) tower(gguf, causal, heads);
    snprintf(line, sizeof line, "rm -rf '%s'", dir);
    if (system(line) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
