/* glimpse_convert on the tiny MobileCLIP2-S0 goldens: each type converted, reopened from the
 * one GGUF file (no vocabulary beside it) and compared with the original checkpoint: image
 * embeddings through glimpse.h, text embeddings at the model level (the tiny text tower has a
 * 64-token vocabulary, so the goldens' token ids are used), tokenizer ids, and bad input.
 * Tolerances (issue 5): cosine >= 0.999 at q8_0 and >= 0.99 at q4_0; f32 must be exact (the
 * file holds the same folded floats the loader computes) and f16 >= 0.9999. */
#include <unistd.h>

#include "test.h"
#include "npy_read.h"

#include "glimpse.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/weights.h"
#include "models/clip_text.h"

#define DATA GLIMPSE_SOURCE_DIR "/tests/data/mobileclip/s0_tiny/"
#define VOCAB GLIMPSE_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"

static const char *const TYPES[] = {"f32", "f16", "q8_0", "q4_0"};
static const double MIN_COS[] = {0.9999999, 0.9999, 0.999, 0.99};

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static int embed_images(const char *model, const char *vocab, float *out, int *d) {
    char err[512];
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = vocab;
    glimpse_model *m = NULL;
    if (glimpse_model_open(model, &mp, &m, err, sizeof err)) {
        fprintf(stderr, "open %s: %s\n", model, err);
        return -1;
    }
    glimpse_ctx *c = NULL;
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = 2;
    int rc = glimpse_ctx_new(m, &cp, &c);
    const char *imgs[2] = {DATA "img0.png", DATA "img1.png"};
    *d = glimpse_embed_dim(m);
    if (!rc) rc = glimpse_embed_image_files(c, imgs, 2, out, 1);
    if (rc) fprintf(stderr, "embed %s: %s\n", model, glimpse_ctx_errmsg(c));
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return rc;
}

/* Text embeddings of the goldens' token ids from weights file path (prefix "text."). */
static int embed_text(const char *path, float *out, int *n) {
    gl_err err = {0};
    gl_weights *w = NULL;
    clipt_model *t = NULL;
    npy_arr tok;
    if (npy_load(DATA "tokens.npy", &tok)) return -1;
    int rc = gl_weights_open(path, &w, &err);
    int heads = 0;
    if (!rc && gl_weights_gguf(w)) {
        heads = (int)io_gguf_get_int(gl_weights_gguf(w), "mobileclip.text.head_count", 0);
    } else if (!rc) {
        cJSON *cfg = NULL;
        if (io_json_load(DATA "openclip/open_clip_config.json", IO_JSON_MAX_DEFAULT, &cfg, &err) == 0)
            heads = (int)io_json_int(io_json_path(io_json_path(cfg, "model_cfg"), "text_cfg"), "heads", 0);
        cJSON_Delete(cfg);
    }
    if (!rc) rc = clipt_load(w, "text.", path, 0, heads, &t, &err);
    if (!rc) {
        int ns = (int)tok.shape[0], ctx = (int)tok.shape[1];
        int32_t *ids = malloc(sizeof(int32_t) * ns * ctx);
        for (int i = 0; i < ns * ctx; i++) ids[i] = (int32_t)((int64_t *)tok.data)[i];
        float *ws = malloc(sizeof(float) * clipt_ws_floats(t, ns, 1));
        kn_env env = kn_env_native(NULL);
        rc = clipt_forward(t, &env, ids, ns, out, ws, &err);
        /* the second call packs the weights (f32 for the f32 GEMM, q8_0/q4_0 for the int8 one
         * where the CPU has AVX512-VNNI), the third runs on the packed copy: the same bits */
        float *again = malloc(sizeof(float) * (size_t)ns * (size_t)clipt_embed_dim(t));
        for (int k = 0; k < 2 && !rc; k++) rc = clipt_forward(t, &env, ids, ns, again, ws, &err);
        if (!rc) CHECK_MSG(!memcmp(again, out, sizeof(float) * (size_t)ns * (size_t)clipt_embed_dim(t)),
                           "%s: text embeddings through the packed weights differ", path);
        free(again);
        *n = ns;
        free(ids);
        free(ws);
    }
    if (rc) fprintf(stderr, "text %s: %s\n", path, err.msg);
    npy_free(&tok);
    clipt_free(t);
    gl_weights_close(w);
    return rc;
}

static void check_tokens(const char *a, const char *b) {
    char err[512];
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = VOCAB;
    glimpse_model *ma = NULL, *mb = NULL;
    CHECK_MSG(glimpse_model_open(a, &mp, &ma, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(glimpse_model_open(b, NULL, &mb, err, sizeof err) == 0, "%s", err);
    static const char *const texts[] = {"a photo of a cat", "Hello, World! ça va? 東京 2024", ""};
    for (size_t i = 0; ma && mb && i < GL_ARRAY_LEN(texts); i++) {
        int32_t ia[80], ib[80];
        int32_t na = 0, nb = 0;
        CHECK(glimpse_tokenize(ma, texts[i], ia, 80, &na) == 0);
        CHECK(glimpse_tokenize(mb, texts[i], ib, 80, &nb) == 0);
        CHECK_EQ_INT(na, nb);
        CHECK(na > 0 && na <= 80 && !memcmp(ia, ib, sizeof(int32_t) * (size_t)na));
    }
    if (ma && mb) CHECK_EQ_INT(glimpse_image_size(ma), glimpse_image_size(mb));
    glimpse_model_close(ma);
    glimpse_model_close(mb);
}

static void bad_input(const char *converted) {
    char err[512] = "", p[256];
    /* a converted file is not converted again */
    snprintf(p, sizeof p, "/tmp/glimpse_test_convert_%d_again.gguf", (int)getpid());
    CHECK(glimpse_convert(converted, p, GLIMPSE_WTYPE_Q8_0, NULL, err, sizeof err) == GLIMPSE_ERR_UNSUPPORTED);
    CHECK(strstr(err, "already") != NULL);
    CHECK(glimpse_convert(DATA "openclip", p, (glimpse_wtype)9, NULL, err, sizeof err) == GLIMPSE_ERR_INVALID_ARG);
    /* a mobileclip GGUF missing its tower: a clear error, no crash */
    io_gguf_writer *gw = io_gguf_writer_new(32);
    io_gguf_writer_set_str(gw, "general.architecture", "mobileclip");
    float one = 1.0f;
    io_gguf_writer_add_tensor(gw, "v.stem.0.weight", GL_F32, 1, (int64_t[]){1}, &one, 4);
    gl_err e = {0};
    snprintf(p, sizeof p, "/tmp/glimpse_test_convert_%d_bad.gguf", (int)getpid());
    CHECK(io_gguf_writer_write(gw, p, &e) == 0);
    io_gguf_writer_free(gw);
    glimpse_model *m = NULL;
    int rc = glimpse_model_open(p, NULL, &m, err, sizeof err);
    CHECK(rc == GLIMPSE_ERR_MISSING);
    CHECK_MSG(strstr(err, "glimpse.mci.stem.0") != NULL, "%s", err);
    glimpse_model_close(m);
    unlink(p);
    /* ... and one that looks like a ViT tower but has nothing else */
    gw = io_gguf_writer_new(32);
    io_gguf_writer_set_str(gw, "general.architecture", "mobileclip");
    io_gguf_writer_add_tensor(gw, "visual.trunk.pos_embed", GL_F32, 1, (int64_t[]){1}, &one, 4);
    CHECK(io_gguf_writer_write(gw, p, &e) == 0);
    io_gguf_writer_free(gw);
    m = NULL;
    rc = glimpse_model_open(p, NULL, &m, err, sizeof err);
    CHECK_MSG(rc != 0 && strstr(err, "visual.trunk.") != NULL, "%d %s", rc, err);
    glimpse_model_close(m);
    unlink(p);
    /* towers the GGUF layout has no place for: refused with a message, no file (ViT towers crashed) */
    static const char *const other[] = {"v1_s0_tiny/apple", "v1_s2_tiny/apple", "v1_b_tiny/apple"};
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = VOCAB;
    for (size_t i = 0; i < GL_ARRAY_LEN(other); i++) {
        char src[512];
        snprintf(src, sizeof src, "%s/tests/data/mobileclip/%s", GLIMPSE_SOURCE_DIR, other[i]);
        snprintf(p, sizeof p, "/tmp/glimpse_test_convert_%d_other.gguf", (int)getpid());
        err[0] = 0;
        CHECK_MSG(glimpse_convert(src, p, GLIMPSE_WTYPE_Q8_0, &mp, err, sizeof err) == GLIMPSE_ERR_UNSUPPORTED, "%s: %s",
                  other[i], err);
        CHECK_MSG(strstr(err, "not supported") || strstr(err, "supports"), "%s: %s", other[i], err);
        CHECK_MSG(access(p, F_OK) != 0, "%s: wrote %s", other[i], p);
        unlink(p);
    }
}

/* ViT towers (MobileCLIP2-B with its conv stem, L-14) convert too (they crashed the converter):
 * f32 gives the folder's embeddings bit for bit, q8_0 / q4_0 within the cosines. */
static void vit_towers(void) {
    static const char *const towers[] = {"b_tiny", "l14_tiny"};
    static const double min_cos[] = {1.0, 0.99999, 0.999, 0.99};
    for (size_t k = 0; k < GL_ARRAY_LEN(towers); k++) {
        char dir[512], out[256], err[512];
        snprintf(dir, sizeof dir, "%s/tests/data/mobileclip/%s/openclip", GLIMPSE_SOURCE_DIR, towers[k]);
        float ref[2 * 1024], got[2 * 1024];
        int d = 0, d2 = 0;
        if (embed_images(dir, VOCAB, ref, &d) != 0 || d > 1024) {
            CHECK(0);
            continue;
        }
        for (int t = 0; t < 4; t++) {
            snprintf(out, sizeof out, "/tmp/glimpse_test_convert_%d_vit_%s.gguf", (int)getpid(), TYPES[t]);
            glimpse_model_params mp = glimpse_model_default_params();
            mp.vocab_path = VOCAB;
            CHECK_MSG(glimpse_convert(dir, out, (glimpse_wtype)t, &mp, err, sizeof err) == 0, "%s %s: %s", towers[k],
                      TYPES[t], err);
            if (embed_images(out, NULL, got, &d2) == 0 && d2 == d) {
                for (int r = 0; r < 2; r++) {
                    double cs = cosine(ref + r * d, got + r * d, d);
                    fprintf(stderr, "  %s %s image %d: cosine %.7f\n", towers[k], TYPES[t], r, cs);
                    if (t == 0) CHECK_MSG(!memcmp(ref + r * d, got + r * d, sizeof(float) * (size_t)d), "%s f32", towers[k]);
                    else CHECK(cs >= min_cos[t]);
                }
            } else {
                CHECK(0);
            }
            unlink(out);
        }
    }
}

int main(void) {
    float ref[2 * 4096], got[2 * 4096], tref[8 * 4096], tgot[8 * 4096];
    int d = 0, d2 = 0, ns = 0, ns2 = 0;
    CHECK(embed_images(DATA "openclip", VOCAB, ref, &d) == 0);
    CHECK(embed_text(DATA "openclip/open_clip_model.safetensors", tref, &ns) == 0);
    char out[256], err[512];
    for (int t = 0; t < 4; t++) {
        snprintf(out, sizeof out, "/tmp/glimpse_test_convert_%d_%s.gguf", (int)getpid(), TYPES[t]);
        glimpse_model_params mp = glimpse_model_default_params();
        mp.vocab_path = VOCAB;
        CHECK_MSG(glimpse_convert(DATA "openclip", out, (glimpse_wtype)t, &mp, err, sizeof err) == 0, "%s", err);
        /* quantized files really hold blocks (and they are used in place) */
        gl_weights *w = NULL;
        gl_err e = {0};
        CHECK(gl_weights_open(out, &w, &e) == 0);
        const gl_tensor *fc = w ? gl_weights_find(w, "text.transformer.resblocks.0.mlp.c_proj.weight") : NULL;
        const gl_tensor *v3 = w ? gl_weights_find(w, "v.s3.b0.ffn.fc1.weight") : NULL;
        const gl_tensor *v3d = w ? gl_weights_find(w, "v.s3.b0.ffn.fc2.weight") : NULL;
        CHECK(fc && v3 && v3d);
        /* Q4_0 keeps the residual writers (fc2, c_proj) at Q8_0 (mci_io.c save_type) */
        if (fc && v3 && v3d && t >= 2)
            CHECK(v3->dtype == (t == 2 ? GL_Q8_0 : GL_Q4_0) && fc->dtype == GL_Q8_0 && v3d->dtype == GL_Q8_0);
        gl_weights_close(w);
        if (embed_images(out, NULL, got, &d2) == 0 && d2 == d) {
            for (int r = 0; r < 2; r++) {
                double cs = cosine(ref + r * d, got + r * d, d);
                fprintf(stderr, "  %s image %d: cosine %.7f\n", TYPES[t], r, cs);
                CHECK(cs >= MIN_COS[t]);
            }
        } else {
            CHECK(0);
        }
        if (embed_text(out, tgot, &ns2) == 0 && ns2 == ns) {
            for (int r = 0; r < ns; r++) {
                double cs = cosine(tref + r * d, tgot + r * d, d);
                fprintf(stderr, "  %s text %d: cosine %.7f\n", TYPES[t], r, cs);
                CHECK(cs >= MIN_COS[t]);
            }
        } else {
            CHECK(0);
        }
        if (t == 2) {
            check_tokens(DATA "openclip", out);
            bad_input(out);
        }
        unlink(out);
    }
    vit_towers();
    TEST_DONE();
}
