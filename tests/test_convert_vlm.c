/* glimpse_convert on the tiny FastVLM golden checkpoint: the LLM .gguf (llama.cpp's qwen2 names
 * and metadata) + mmproj .gguf are loaded back and compared with the original checkpoint on the
 * golden runs (3 images x 2 prompts): first-position logits cosine (issue 5: >= 0.999 at q8_0;
 * f32/f16 must match to rounding) and greedy-token agreement over 32 new tokens (the length of
 * the common prefix, reported). The tiny model's rows are 2-4 blocks and its random logits are
 * close together, so q8_0 is held to 75% agreement and q4_0 only to a regression floor (cosine
 * >= 0.95); real-size numbers are in the report. The embedded Qwen2 tokenizer must give the
 * same ids as the original files. */
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "npy_read.h"

#include "glimpse.h"
#include "core/quant.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/weights.h"
#include "models/fastvlm.h"

#define DIR GLIMPSE_SOURCE_DIR "/tests/data/fastvlm/tiny/"
#define QWEN2 GLIMPSE_SOURCE_DIR "/../shared/data/qwen2/"

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / (sqrt(aa * bb) + 1e-30);
}

static void pixels_chw(const npy_arr *u8, float *x) {
    int H = (int)u8->shape[0], W = (int)u8->shape[1];
    const uint8_t *p = u8->data;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < H * W; i++) x[(size_t)c * H * W + i] = (float)(p[(size_t)i * 3 + c] * (1.0 / 255.0));
}

/* First logits and greedy continuation of every golden run: logits [runs][V], tokens [runs][n_new]. */
static int run_all(const fastvlm_model *m, int n_active, float *first, int32_t *toks, int *n_runs, int *n_new_out) {
    cJSON *g = NULL;
    gl_err err = {0};
    if (io_json_load(DIR "golden.json", IO_JSON_MAX_DEFAULT, &g, &err)) return -1;
    int n_new = (int)io_json_int(g, "n_new", 0);
    gl_pool *pool = gl_pool_new(2);
    kn_env env = kn_env_native(pool);
    int S = m->image_size, N = m->n_image_tokens, H = m->hidden, V = qwen2_vocab(m->llm);
    float *ws = malloc(sizeof(float) * fastvlm_ws_floats(m, 2)), *pix = malloc(sizeof(float) * 3 * S * S);
    float *emb = malloc(sizeof(float) * N * H), *seq = malloc(sizeof(float) * (N + 512) * H), *lg = malloc(sizeof(float) * V);
    const cJSON *run;
    int r = 0, rc = 0;
    cJSON_ArrayForEach(run, io_json_path(g, "runs")) {
        char path[512];
        npy_arr px;
        snprintf(path, sizeof path, DIR "%s_pixels_u8.npy", io_json_str(run, "image", ""));
        if (npy_load(path, &px)) { rc = -1; break; }
        pixels_chw(&px, pix);
        npy_free(&px);
        int32_t ids[512];
        int n_ids = 0, n_seq = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, io_json_path(run, "input_ids")) if (n_ids < 512) ids[n_ids++] = (int32_t)it->valuedouble;
        qwen2_state *st = NULL;
        if ((rc = fastvlm_encode_image(m, &env, pix, NULL, emb, ws, &err)) ||
            (rc = fastvlm_splice(m, ids, n_ids, emb, seq, &n_seq, &err)) ||
            (rc = qwen2_state_new(m->llm, n_seq + n_new + 4, 64, 2, &st, &err)) ||
            (rc = qwen2_forward(m->llm, st, &env, seq, n_seq, lg, &err))) {
            fprintf(stderr, "run %d: %s\n", r, err.msg);
            qwen2_state_free(st);
            break;
        }
        memcpy(first + (size_t)r * V, lg, sizeof(float) * V);
        for (int k = 0; k < n_new && !rc; k++) {
            int32_t best = 0;
            for (int i = 1; i < n_active && i < V; i++)
                if (lg[i] > lg[best]) best = i;
            toks[r * n_new + k] = best;
            float e[4096];
            if (H > 4096 || qwen2_embed(m->llm, &best, 1, e, &err) || qwen2_forward(m->llm, st, &env, e, 1, lg, &err)) rc = -1;
        }
        qwen2_state_free(st);
        if (rc) break;
        r++;
    }
    *n_runs = r;
    *n_new_out = n_new;
    free(ws); free(pix); free(emb); free(seq); free(lg);
    gl_pool_free(pool);
    cJSON_Delete(g);
    return rc;
}

/* A model folder as downloaded: the tiny checkpoint plus the real Qwen2 tokenizer files. */
static void make_folder(const char *dir) {
    static const char *const ck[] = {"config.json", "generation_config.json", "model.safetensors"};
    static const char *const tk[] = {"vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json"};
    char src[1024], dst[1024];
    mkdir(dir, 0755);
    for (size_t i = 0; i < GL_ARRAY_LEN(ck); i++) {
        snprintf(src, sizeof src, DIR "ckpt_bf16/%s", ck[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, ck[i]);
        CHECK(symlink(src, dst) == 0);
    }
    for (size_t i = 0; i < GL_ARRAY_LEN(tk); i++) {
        snprintf(src, sizeof src, QWEN2 "%s", tk[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, tk[i]);
        CHECK(symlink(src, dst) == 0);
    }
}

static void check_llama_layout(const char *path, int t) {
    gl_weights *w = NULL;
    gl_err e = {0};
    CHECK_MSG(gl_weights_open(path, &w, &e) == 0, "%s", e.msg);
    if (!w) return;
    const io_gguf *g = gl_weights_gguf(w);
    CHECK(!strcmp(io_gguf_get_str(g, "general.architecture", ""), "qwen2"));
    CHECK(!strcmp(io_gguf_get_str(g, "tokenizer.ggml.pre", ""), "qwen2"));
    CHECK(io_gguf_get_int(g, "qwen2.block_count", 0) == 2);
    CHECK(io_gguf_get_int(g, "qwen2.attention.head_count_kv", 0) == 2);
    const gl_tensor *q = gl_weights_find(w, "blk.1.attn_q.weight"), *te = gl_weights_find(w, "token_embd.weight");
    CHECK(q && te && gl_weights_find(w, "blk.0.ffn_down.weight") && gl_weights_find(w, "output_norm.weight"));
    CHECK(!gl_weights_find(w, "output.weight")); /* tied */
    if (q && te && t >= 2) CHECK(q->dtype == (t == 2 ? GL_Q8_0 : GL_Q4_0) && te->dtype == GL_Q8_0);
    gl_weights_close(w);
}

/* The merge id triples stored by convert are checked against the merge strings: a file with
 * one triple changed is refused with a message, not tokenised differently. */
static void check_bad_merge_ids(const char *llm, const char *mmproj) {
    FILE *f = fopen(llm, "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size);
    CHECK(buf && fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    io_gguf *g = NULL;
    gl_err e = {0};
    CHECK_MSG(io_gguf_parse(buf, (size_t)size, llm, &g, &e) == 0, "%s", e.msg);
    const io_gguf_kv *kv = g ? io_gguf_find_kv(g, "glimpse.tokenizer.merge_ids") : NULL;
    CHECK(kv && kv->arr_type == IO_GGUF_I32 && kv->n >= 30);
    if (kv) {
        size_t at = (size_t)(kv->data - buf) + 4 * 28; /* merge 9's left id */
        int32_t v;
        memcpy(&v, buf + at, 4);
        v = v == 0 ? 1 : v - 1;
        io_gguf_free(g);
        g = NULL;
        memcpy(buf + at, &v, 4);
        char bad[400];
        snprintf(bad, sizeof bad, "%s.bad.gguf", llm);
        FILE *o = fopen(bad, "wb");
        CHECK(o && fwrite(buf, 1, (size_t)size, o) == (size_t)size);
        if (o) fclose(o);
        glimpse_model_params mp = glimpse_model_default_params();
        mp.mmproj_path = mmproj;
        glimpse_model *m = NULL;
        char err[512];
        CHECK(glimpse_model_open(bad, &mp, &m, err, sizeof err) == GLIMPSE_ERR_FORMAT);
        CHECK_MSG(strstr(err, "merge 9") != NULL, "%s", err);
        glimpse_model_close(m);
        unlink(bad);
    }
    io_gguf_free(g);
    free(buf);
}

static void check_tokenizer(const char *folder, const char *llm, const char *mmproj) {
    char err[512];
    glimpse_model *a = NULL, *b = NULL;
    glimpse_model_params mp = glimpse_model_default_params();
    CHECK_MSG(glimpse_model_open(folder, NULL, &a, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(glimpse_model_open(llm, NULL, &b, err, sizeof err) == 0, "%s", err); /* mmproj-<name> beside it */
    glimpse_model_close(b);
    b = NULL;
    char moved[400];
    snprintf(moved, sizeof moved, "%s.moved", mmproj);
    CHECK(rename(mmproj, moved) == 0);
    CHECK(glimpse_model_open(llm, NULL, &b, err, sizeof err) == GLIMPSE_ERR_MISSING); /* none beside, none named */
    CHECK(strstr(err, "mmproj") != NULL);
    mp.mmproj_path = moved;
    CHECK_MSG(glimpse_model_open(llm, &mp, &b, err, sizeof err) == 0, "%s", err);
    glimpse_model_close(b);
    b = NULL;
    CHECK(rename(moved, mmproj) == 0);
    mp.mmproj_path = mmproj;
    CHECK_MSG(glimpse_model_open(llm, &mp, &b, err, sizeof err) == 0, "%s", err);
    static const char *const texts[] = {"<|im_start|>user\nDescribe the image.<|im_end|>\n", "Hello world! 123 ça 東京 🙂",
                                        "  spaces\t\ttabs\n\nnewlines<|endoftext|>"};
    for (size_t i = 0; a && b && i < GL_ARRAY_LEN(texts); i++) {
        int32_t ia[128], ib[128], na = 0, nb = 0;
        CHECK(glimpse_tokenize(a, texts[i], ia, 128, &na) == 0);
        CHECK(glimpse_tokenize(b, texts[i], ib, 128, &nb) == 0);
        CHECK_MSG(na == nb && !memcmp(ia, ib, sizeof(int32_t) * (size_t)na), "text %zu: %d vs %d ids", i, na, nb);
    }
    if (a && b) CHECK(glimpse_model_get_kind(b) == GLIMPSE_MODEL_VLM && glimpse_image_size(a) == glimpse_image_size(b));
    glimpse_model_close(a);
    glimpse_model_close(b);
    check_bad_merge_ids(llm, mmproj);
}

int main(void) {
    static const char *const TYPES[] = {"f32", "f16", "q8_0", "q4_0"};
    static const double MIN_COS[] = {0.99999, 0.9999, 0.999, 0.95};
    /* a fresh folder (a pid-named one could be left over from a killed run: its links then
     * exist and symlink fails, as it did once in CI); the outputs are named after it */
    char folder[] = "/tmp/glimpse_test_cvlm_XXXXXX", out[300], mm[320], err[512];
    if (!mkdtemp(folder)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    const char *base = folder + 5; /* after "/tmp/" */
    make_folder(folder);
    gl_err e = {0};
    fastvlm_model *ref = NULL;
    CHECK_MSG(fastvlm_load(folder, &ref, &e) == 0, "%s", e.msg);
    if (!ref) TEST_DONE();
    cJSON *g = NULL;
    CHECK(io_json_load(DIR "golden.json", IO_JSON_MAX_DEFAULT, &g, &e) == 0);
    int n_active = (int)io_json_int(g, "n_active_vocab", 0);
    cJSON_Delete(g);
    int V = qwen2_vocab(ref->llm), nr = 0, nn = 0;
    float *f_ref = malloc(sizeof(float) * 8 * V), *f_got = malloc(sizeof(float) * 8 * V);
    int32_t t_ref[8 * 64], t_got[8 * 64];
    CHECK(run_all(ref, n_active, f_ref, t_ref, &nr, &nn) == 0 && nr == 6 && nn <= 64);
    for (int t = 0; t < 4; t++) {
        snprintf(out, sizeof out, "%s_%s.gguf", folder, TYPES[t]);
        snprintf(mm, sizeof mm, "/tmp/mmproj-%s_%s.gguf", base, TYPES[t]);
        CHECK_MSG(glimpse_convert(folder, out, (glimpse_wtype)t, NULL, err, sizeof err) == 0, "%s", err);
        check_llama_layout(out, t);
        fastvlm_model *m = NULL;
        CHECK_MSG(fastvlm_load_gguf(out, mm, &m, &e) == 0, "%s", e.msg);
        int nr2 = 0, nn2 = 0;
        if (m && run_all(m, n_active, f_got, t_got, &nr2, &nn2) == 0 && nr2 == nr) {
            int agree = 0;
            double worst = 1;
            for (int r = 0; r < nr; r++) {
                worst = fmin(worst, cosine(f_ref + (size_t)r * V, f_got + (size_t)r * V, (size_t)n_active));
                for (int k = 0; k < nn && t_ref[r * nn + k] == t_got[r * nn + k]; k++) agree++;
            }
            fprintf(stderr, "  %s: first logits cosine >= %.7f, greedy prefix agreement %d / %d tokens\n", TYPES[t], worst,
                    agree, nr * nn);
            CHECK(worst >= MIN_COS[t]);
            if (t <= 1) CHECK(agree == nr * nn);
            /* a regression floor: prefix agreement is all-or-nothing per run once a near-tied step
             * flips (measured 185-189 / 192 with q8_0 1x1 convs dequantized to f32, 155 with
             * them in int8 AVX512-VNNI, cosine 0.99934 vs 0.99919: both meet the 0.999) */
            if (t == 2) CHECK(agree >= 0.75 * nr * nn);
        } else {
            CHECK(0);
        }
        fastvlm_free(m);
        if (t == 2) check_tokenizer(folder, out, mm);
        unlink(out);
        unlink(mm);
    }
    /* --vision-type: LLM at Q4_0, tower + projector kept f32 */
    snprintf(out, sizeof out, "%s_vt.gguf", folder);
    snprintf(mm, sizeof mm, "/tmp/mmproj-%s_vt.gguf", base);
    CHECK_MSG(glimpse_convert_ex(folder, out, GLIMPSE_WTYPE_Q4_0, GLIMPSE_WTYPE_F32, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(glimpse_convert_ex(folder, out, GLIMPSE_WTYPE_Q4_0, 7, NULL, err, sizeof err) == GLIMPSE_ERR_INVALID_ARG);
    gl_weights *wl = NULL, *wm = NULL;
    CHECK_MSG(gl_weights_open(out, &wl, &e) == 0 && gl_weights_open(mm, &wm, &e) == 0, "%s", e.msg);
    if (wl && wm) {
        const gl_tensor *q = gl_weights_find(wl, "blk.0.attn_q.weight"), *p0 = gl_weights_find(wm, "mm.0.weight");
        int n_f32 = 0, n_q = 0;
        for (size_t i = 0; i < gl_weights_count(wm); i++) {
            const gl_tensor *t = gl_weights_at(wm, i);
            n_f32 += t->dtype == GL_F32, n_q += gl_dtype_is_quant(t->dtype) || t->dtype == GL_F16;
        }
        CHECK(q && q->dtype == GL_Q4_0 && p0 && p0->dtype == GL_F32 && n_q == 0 && n_f32 > 0);
    }
    gl_weights_close(wl);
    gl_weights_close(wm);
    unlink(out);
    unlink(mm);
    fastvlm_free(ref);
    free(f_ref);
    free(f_got);
    static const char *const links[] = {"config.json", "generation_config.json", "model.safetensors", "vocab.json",
                                        "merges.txt", "added_tokens.json", "tokenizer_config.json"};
    for (size_t i = 0; i < GL_ARRAY_LEN(links); i++) {
        snprintf(out, sizeof out, "%s/%s", folder, links[i]);
        unlink(out);
    }
    rmdir(folder);
    TEST_DONE();
}
