/* MobileCLIP2 parity on the tiny random-weight goldens of tools/reference/mobileclip/:
 * image and text embeddings from the OpenCLIP safetensors and the Apple .pt layouts, at the
 * model level (reference pixels and token ids) and through the public API (our decoding and
 * preprocessing of the PNGs). Tolerances (issue): cosine >= 0.99999 and max abs difference
 * <= 1e-4 on normalised embeddings. */
#include "test.h"
#include "npy_read.h"

#include "glimpse.h"
#include "io/json.h"
#include "models/clip_text.h"
#include "models/mci.h"

#define DATA GLIMPSE_SOURCE_DIR "/tests/data/mobileclip/"
#define VOCAB GLIMPSE_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"

static void l2n(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sqrt(s));
}

/* Compares rows of normalised embeddings. */
static void compare(const char *what, const float *got, const float *ref, int rows, int d, int normalize) {
    for (int r = 0; r < rows; r++) {
        float a[4096], b[4096];
        memcpy(a, got + (size_t)r * d, sizeof(float) * d);
        memcpy(b, ref + (size_t)r * d, sizeof(float) * d);
        if (normalize) { l2n(a, d); l2n(b, d); }
        double ab = 0, aa = 0, bb = 0, md = 0;
        for (int i = 0; i < d; i++) {
            ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
            md = fmax(md, fabs(a[i] - b[i]));
        }
        double cs = ab / sqrt(aa * bb);
        fprintf(stderr, "  %s row %d: cosine %.9f, max abs diff %.3g\n", what, r, cs, md);
        CHECK(cs >= 0.99999);
        CHECK(md <= 1e-4);
    }
}


/* The goldens store the resized uint8 pixels (HWC); the float input is (u8/255 - mean)/std in
 * float32, CHW, with mean/std from meta.json, exactly as the reference computes it. */
static int load_pixels(const char *name, npy_arr *px, gl_err *err) {
    char p[512];
    snprintf(p, sizeof p, DATA "%s/pixels_u8.npy", name);
    npy_arr u8;
    if (npy_load(p, &u8) != 0 || u8.type != 'u' || u8.ndim != 4 || u8.shape[3] != 3) return -1;
    snprintf(p, sizeof p, DATA "%s/meta.json", name);
    cJSON *meta = NULL;
    if (io_json_load(p, IO_JSON_MAX_DEFAULT, &meta, err) != 0) { npy_free(&u8); return -1; }
    const cJSON *mean = io_json_path(meta, "preprocess.mean"), *std = io_json_path(meta, "preprocess.std");
    float m[3], s[3];
    for (int c = 0; c < 3; c++) {
        m[c] = (float)cJSON_GetArrayItem(mean, c)->valuedouble;
        s[c] = (float)cJSON_GetArrayItem(std, c)->valuedouble;
    }
    cJSON_Delete(meta);
    long long n = u8.shape[0], H = u8.shape[1], W = u8.shape[2];
    memset(px, 0, sizeof *px);
    px->type = 'f', px->ndim = 4, px->n = (size_t)(n * 3 * H * W);
    px->shape[0] = n, px->shape[1] = 3, px->shape[2] = H, px->shape[3] = W;
    float *f = malloc(sizeof(float) * px->n);
    const unsigned char *src = u8.data;
    for (long long i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (long long y = 0; y < H; y++)
                for (long long x = 0; x < W; x++)
                    f[((i * 3 + c) * H + y) * W + x] =
                        ((float)src[((i * H + y) * W + x) * 3 + c] / 255.0f - m[c]) / s[c];
    px->data = f;
    npy_free(&u8);
    return 0;
}

static void model_level(const char *name, const char *weights, const char *cfg_path) {
    char p[512];
    fprintf(stderr, "%s (%s)\n", name, weights);
    gl_err err = {0};
    gl_weights *w = NULL;
    snprintf(p, sizeof p, DATA "%s/%s", name, weights);
    CHECK_MSG(gl_weights_open(p, &w, &err) == 0, "%s", err.msg);
    if (!w) return;
    cJSON *cfg = NULL;
    snprintf(p, sizeof p, DATA "%s/%s", name, cfg_path);
    CHECK(io_json_load(p, IO_JSON_MAX_DEFAULT, &cfg, &err) == 0);
    const cJSON *mc = io_json_path(cfg, "model_cfg") ? io_json_path(cfg, "model_cfg") : cfg;
    int heads = (int)io_json_int(io_json_path(mc, "text_cfg"), "heads", 0);
    mci_model *vis = NULL;
    clipt_model *txt = NULL;
    CHECK_MSG(mci_load(w, "visual.trunk.", p, &vis, &err) == 0, "%s", err.msg);
    CHECK_MSG(clipt_load(w, "text.", p, 0, heads, &txt, &err) == 0, "%s", err.msg);
    gl_pool *pool = gl_pool_new(2);
    kn_scratch scr = {0};
    kn_env env = kn_env_native(pool);
    env.scratch = &scr;
    npy_arr px, tok, ie, te;
    CHECK(load_pixels(name, &px, &err) == 0);
    snprintf(p, sizeof p, DATA "%s/tokens.npy", name);
    CHECK(npy_load(p, &tok) == 0);
    snprintf(p, sizeof p, DATA "%s/image_embeds.npy", name);
    CHECK(npy_load(p, &ie) == 0);
    snprintf(p, sizeof p, DATA "%s/text_embeds.npy", name);
    CHECK(npy_load(p, &te) == 0);
    if (vis && txt && px.data && tok.data && ie.data && te.data) {
        int n = (int)px.shape[0], H = (int)px.shape[2], W = (int)px.shape[3], d = mci_embed_dim(vis);
        float *ws = malloc(sizeof(float) * mci_ws_floats(vis, H, W, 2)), *out = malloc(sizeof(float) * n * d);
        for (int i = 0; i < n; i++)
            CHECK_MSG(mci_forward(vis, &env, (float *)px.data + (size_t)i * 3 * H * W, H, W, out + (size_t)i * d, ws, &err) == 0,
                      "%s", err.msg);
        compare("image (raw)", out, ie.data, n, d, 0);
        compare("image (normalised)", out, ie.data, n, d, 1);
        /* the batch form (each thread takes whole images) gives the same bits */
        float *wsb = malloc(sizeof(float) * mci_batch_ws_floats(vis, H, W, 2)), *outb = malloc(sizeof(float) * n * d);
        CHECK_MSG(mci_forward_batch(vis, &env, px.data, n, H, W, outb, wsb, &err) == 0, "%s", err.msg);
        CHECK_MSG(memcmp(out, outb, sizeof(float) * n * d) == 0, "%s: mci_forward_batch differs from mci_forward", name);
        free(wsb);
        free(outb);
        free(ws);
        free(out);
        int ns = (int)tok.shape[0], ctx = (int)tok.shape[1];
        int32_t *ids = malloc(sizeof(int32_t) * ns * ctx);
        for (int i = 0; i < ns * ctx; i++) ids[i] = (int32_t)((int64_t *)tok.data)[i];
        ws = malloc(sizeof(float) * clipt_ws_floats(txt, ns, 2));
        out = malloc(sizeof(float) * ns * d);
        CHECK_MSG(clipt_forward(txt, &env, ids, ns, out, ws, &err) == 0, "%s", err.msg);
        compare("text (normalised)", out, te.data, ns, d, 1);
        free(ws); free(out); free(ids);
    }
    npy_free(&px); npy_free(&tok); npy_free(&ie); npy_free(&te);
    kn_scratch_free(&scr);
    gl_pool_free(pool);
    cJSON_Delete(cfg);
    mci_free(vis);
    clipt_free(txt);
    gl_weights_close(w);
}

/* Through glimpse.h: decode + Pillow-exact preprocessing of the PNGs + tower. */
static void public_api(const char *name, const char *folder) {
    char p[512], err[512];
    fprintf(stderr, "%s via glimpse.h (%s)\n", name, folder);
    snprintf(p, sizeof p, DATA "%s/%s", name, folder);
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = VOCAB;
    glimpse_model *m = NULL;
    CHECK_MSG(glimpse_model_open(p, &mp, &m, err, sizeof err) == 0, "%s", err);
    if (!m) return;
    CHECK(glimpse_model_get_kind(m) == GLIMPSE_MODEL_CLIP);
    glimpse_ctx *c = NULL;
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = 2;
    CHECK(glimpse_ctx_new(m, &cp, &c) == 0);
    char a[512], b[512];
    snprintf(a, sizeof a, DATA "%s/img0.png", name);
    snprintf(b, sizeof b, DATA "%s/img1.png", name);
    const char *imgs[2] = {a, b};
    int d = glimpse_embed_dim(m);
    float *out = malloc(sizeof(float) * 2 * d);
    CHECK_MSG(glimpse_embed_image_files(c, imgs, 2, out, 1) == 0, "%s", glimpse_ctx_errmsg(c));
    npy_arr ref;
    snprintf(p, sizeof p, DATA "%s/image_embeds_norm.npy", name);
    CHECK(npy_load(p, &ref) == 0);
    if (ref.data) compare("image files (normalised)", out, ref.data, 2, d, 0);
    /* a text through the tokenizer: ids beyond the tiny vocabulary are refused, not misread */
    const char *t = "a photo of a cat";
    CHECK(glimpse_embed_texts(c, &t, 1, out, 1) == GLIMPSE_ERR_INVALID_ARG);
    /* wrong-kind calls fail cleanly */
    CHECK(glimpse_chat_set_image(c, NULL) == GLIMPSE_ERR_MODEL_KIND);
    npy_free(&ref);
    free(out);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
}

int main(void) {
    model_level("s0_tiny", "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    model_level("s0_tiny", "apple/mobileclip2_s0.pt", "apple/config.json");
    model_level("s3_tiny", "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    public_api("s0_tiny", "openclip");
    public_api("s0_tiny", "apple");
    public_api("s3_tiny", "openclip");
    TEST_DONE();
}
