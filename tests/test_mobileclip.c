/* MobileCLIP2 parity on the tiny random-weight goldens of tools/reference/mobileclip/:
 * image and text embeddings from the OpenCLIP safetensors and the Apple .pt layouts, at the
 * model level (reference pixels and token ids) and through the public API (our decoding and
 * preprocessing of the PNGs). Tolerances (issue): cosine >= 0.99999 and max abs difference
 * <= 1e-4 on normalised embeddings. */
#include <unistd.h>

#include "test.h"
#include "npy_read.h"

#include "glimpse.h"
#include "io/json.h"
#include "models/clip_text.h"
#include "models/mci.h"
#include "models/mct.h"
#include "models/vit.h"

#define DATA GLIMPSE_SOURCE_DIR "/tests/data/mobileclip/"
/* Golden folders live here; main() can point it elsewhere for the full-size runs. */
#define VOCAB GLIMPSE_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"

static const char *g_data = DATA;
static int g_full; /* full-size goldens: real vocabulary size, taps reported only */

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
static int load_pixels_dir(const char *dir, npy_arr *px, gl_err *err);
static int load_pixels(const char *name, npy_arr *px, gl_err *err) {
    char d[512];
    snprintf(d, sizeof d, "%s%s", g_data, name);
    return load_pixels_dir(d, px, err);
}

static int load_pixels_dir(const char *dir, npy_arr *px, gl_err *err) {
    char p[512];
    snprintf(p, sizeof p, "%s/pixels_u8.npy", dir);
    npy_arr u8;
    if (npy_load(p, &u8) != 0 || u8.type != 'u' || u8.ndim != 4 || u8.shape[3] != 3) return -1;
    snprintf(p, sizeof p, "%s/meta.json", dir);
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

/* Compares an intermediate tensor of the ViT (raw values, relative to its largest magnitude)
 * with dir/what.npy. */
static void compare_tap(const char *dir, const char *what, const float *got, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.npy", dir, what);
    npy_arr r;
    CHECK(npy_load(p, &r) == 0);
    if (!r.data) return;
    CHECK(r.n == n);
    double md = 0, mx = 0;
    for (size_t i = 0; i < n && i < r.n; i++) {
        md = fmax(md, fabs(got[i] - ((float *)r.data)[i]));
        mx = fmax(mx, fabs(((float *)r.data)[i]));
    }
    fprintf(stderr, "  %s: max abs diff %.3g (max |ref| %.3g)\n", what, md, mx);
    if (!g_full) CHECK(md <= 1e-5 * fmax(1.0, mx)); /* deep full-size stacks: embeddings are the criterion */
    npy_free(&r);
}

/* A ViT tower on the reference pixels (n images [3, H, W]): the stem / block0 / final_norm taps
 * of dir, the embeddings batched (all images' tokens together) and one image at a time. */
static void vit_tower(const char *dir, const vit_model *vit, kn_env *env, const npy_arr *px, const npy_arr *ie) {
    gl_err err = {0};
    if (!vit) return;
    int n = (int)px->shape[0], H = (int)px->shape[2], W = (int)px->shape[3];
    char desc[256];
    vit_describe(vit, desc, sizeof desc);
    fprintf(stderr, "  %s\n", desc);
    CHECK(vit_image_size(vit) == H && H == W);
    int d = vit_embed_dim(vit);
    size_t tok = (size_t)n * vit_n_patch(vit), wd = (size_t)vit_width(vit);
    vit_taps taps = {malloc(sizeof(float) * tok * wd), malloc(sizeof(float) * (tok + n) * wd),
                     malloc(sizeof(float) * (tok + n) * wd)};
    float *ws = malloc(sizeof(float) * vit_ws_floats(vit, n)), *out = malloc(sizeof(float) * n * d);
    CHECK_MSG(vit_forward(vit, env, px->data, n, out, ws, &taps, &err) == 0, "%s", err.msg);
    compare_tap(dir, "stem", taps.stem, tok * wd);
    compare_tap(dir, "block0", taps.block0, (tok + n) * wd);
    compare_tap(dir, "final_norm", taps.final_norm, (tok + n) * wd);
    compare("image (raw)", out, ie->data, n, d, 0);
    compare("image (normalised)", out, ie->data, n, d, 1);
    for (int i = 0; i < n; i++)
        CHECK_MSG(vit_forward(vit, env, (float *)px->data + (size_t)i * 3 * H * W, 1, out + (size_t)i * d, ws, NULL,
                              &err) == 0, "%s", err.msg);
    compare("image (one by one, normalised)", out, ie->data, n, d, 1);
    free(ws); free(out); free(taps.stem); free(taps.block0); free(taps.final_norm);
}

/* The image tower of a checkpoint: MCi (S*) or ViT (B, L-14), over n images [3, H, W]. */
static void image_tower(const char *name, gl_weights *w, const char *file, const cJSON *mc, kn_env *env,
                        const npy_arr *px, const npy_arr *ie) {
    gl_err err = {0};
    int n = (int)px->shape[0], H = (int)px->shape[2], W = (int)px->shape[3];
    if (gl_weights_find(w, "visual.trunk.patch_embed.backbone.0.conv.weight") ||
        gl_weights_find(w, "visual.trunk.patch_embed.proj.weight")) {
        int heads = (int)io_json_int(io_json_path(mc, "vision_cfg.timm_model_kwargs"), "num_heads", 0);
        vit_model *vit = NULL;
        CHECK_MSG(vit_load(w, "visual.trunk.", file, heads, &vit, &err) == 0, "%s", err.msg);
        if (!vit) return;
        char dir[512];
        snprintf(dir, sizeof dir, "%s%s", g_data, name);
        vit_tower(dir, vit, env, px, ie);
        vit_free(vit);
        return;
    }
    mci_model *vis = NULL;
    CHECK_MSG(mci_load(w, "visual.trunk.", file, &vis, &err) == 0, "%s", err.msg);
    if (!vis) return;
    int d = mci_embed_dim(vis);
    float *ws = malloc(sizeof(float) * mci_ws_floats(vis, H, W, 2)), *out = malloc(sizeof(float) * n * d);
    for (int i = 0; i < n; i++)
        CHECK_MSG(mci_forward(vis, env, (float *)px->data + (size_t)i * 3 * H * W, H, W, out + (size_t)i * d, ws, &err) == 0,
                  "%s", err.msg);
    compare("image (raw)", out, ie->data, n, d, 0);
    compare("image (normalised)", out, ie->data, n, d, 1);
    /* the batch form (each thread takes whole images) gives the same bits */
    float *wsb = malloc(sizeof(float) * mci_batch_ws_floats(vis, H, W, 2)), *outb = malloc(sizeof(float) * n * d);
    CHECK_MSG(mci_forward_batch(vis, env, px->data, n, H, W, outb, wsb, &err) == 0, "%s", err.msg);
    CHECK_MSG(memcmp(out, outb, sizeof(float) * n * d) == 0, "%s: mci_forward_batch differs from mci_forward", name);
    free(wsb);
    free(outb);
    free(ws);
    free(out);
    mci_free(vis);
}

static void model_level(const char *name, const char *weights, const char *cfg_path) {
    char p[512];
    fprintf(stderr, "%s (%s)\n", name, weights);
    gl_err err = {0};
    gl_weights *w = NULL;
    snprintf(p, sizeof p, "%s%s/%s", g_data, name, weights);
    CHECK_MSG(gl_weights_open(p, &w, &err) == 0, "%s", err.msg);
    if (!w) return;
    cJSON *cfg = NULL;
    char cp[512];
    snprintf(cp, sizeof cp, "%s%s/%s", g_data, name, cfg_path);
    CHECK(io_json_load(cp, IO_JSON_MAX_DEFAULT, &cfg, &err) == 0);
    const cJSON *mc = io_json_path(cfg, "model_cfg") ? io_json_path(cfg, "model_cfg") : cfg;
    int heads = (int)io_json_int(io_json_path(mc, "text_cfg"), "heads", 0);
    /* open_clip: the text mask is causal unless text_cfg.no_causal_mask (only B is causal) */
    int causal = !io_json_bool(io_json_path(mc, "text_cfg"), "no_causal_mask", 0);
    clipt_model *txt = NULL;
    CHECK_MSG(clipt_load(w, "text.", p, causal, heads, &txt, &err) == 0, "%s", err.msg);
    gl_pool *pool = gl_pool_new(2);
    kn_scratch scr = {0};
    kn_env env = kn_env_native(pool);
    env.scratch = &scr;
    npy_arr px, tok, ie, te;
    CHECK(load_pixels(name, &px, &err) == 0);
    snprintf(p, sizeof p, "%s%s/tokens.npy", g_data, name);
    CHECK(npy_load(p, &tok) == 0);
    snprintf(p, sizeof p, "%s%s/image_embeds.npy", g_data, name);
    CHECK(npy_load(p, &ie) == 0);
    snprintf(p, sizeof p, "%s%s/text_embeds.npy", g_data, name);
    CHECK(npy_load(p, &te) == 0);
    snprintf(p, sizeof p, "%s%s/%s", g_data, name, weights);
    if (px.data && ie.data) image_tower(name, w, p, mc, &env, &px, &ie);
    if (txt && tok.data && te.data) {
        int d = clipt_embed_dim(txt);
        int ns = (int)tok.shape[0], ctx = (int)tok.shape[1];
        int32_t *ids = malloc(sizeof(int32_t) * ns * ctx);
        for (int i = 0; i < ns * ctx; i++) ids[i] = (int32_t)((int64_t *)tok.data)[i];
        float *ws = malloc(sizeof(float) * clipt_ws_floats(txt, ns, 2));
        float *out = malloc(sizeof(float) * ns * d);
        /* three calls: stored weights, packing them (the second call), packed */
        for (int call = 0; call < 3; call++) {
            CHECK_MSG(clipt_forward(txt, &env, ids, ns, out, ws, &err) == 0, "%s", err.msg);
            compare(call == 0 ? "text (normalised)" : call == 1 ? "text, packing (normalised)" : "text, packed (normalised)",
                    out, te.data, ns, d, 1);
        }
        /* the mask matters: the other mask must not match (guards the config plumbing) */
        clipt_model *other = NULL;
        CHECK(clipt_load(w, "text.", p, !causal, heads, &other, &err) == 0);
        if (other) {
            CHECK(clipt_forward(other, &env, ids, ns, out, ws, &err) == 0);
            double md = 0;
            for (int i = 0; i < ns * d; i++) md = fmax(md, fabs(out[i] - ((float *)te.data)[i]));
            CHECK_MSG(md > 1e-3, "%s: text embeddings do not depend on the causal mask", name);
            clipt_free(other);
        }
        free(ws); free(out); free(ids);
    }
    npy_free(&px); npy_free(&tok); npy_free(&ie); npy_free(&te);
    kn_scratch_free(&scr);
    gl_pool_free(pool);
    cJSON_Delete(cfg);
    clipt_free(txt);
    gl_weights_close(w);
}

/* MobileCLIP v1 in Apple's naming (mobileclip_*.pt) from a golden directory: the MCi tower (S*)
 * or ViT-B/16 (B, with its stem / block0 / final_norm taps) with Apple names and the MCt (S0) or
 * base (S1/S2/B) text tower; text_block0 checks the first MCt block. */
static void model_level_v1(const char *dir) {
    char p[512];
    gl_err err = {0};
    cJSON *meta = NULL;
    snprintf(p, sizeof p, "%s/meta.json", dir);
    CHECK_MSG(io_json_load(p, IO_JSON_MAX_DEFAULT, &meta, &err) == 0, "%s", err.msg);
    const char *pt = io_json_str(meta, "apple_pt", "apple/mobileclip_s0.pt");
    fprintf(stderr, "%s (%s, Apple v1 naming)\n", dir, pt);
    gl_weights *w = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, pt);
    cJSON_Delete(meta);
    CHECK_MSG(gl_weights_open(p, &w, &err) == 0, "%s", err.msg);
    if (!w) return;
    cJSON *cfg = NULL;
    snprintf(p, sizeof p, "%s/apple/config.json", dir);
    CHECK(io_json_load(p, IO_JSON_MAX_DEFAULT, &cfg, &err) == 0);
    int heads = (int)io_json_int(io_json_path(cfg, "text_cfg"), "n_heads_per_layer", 0);
    int causal = io_json_bool(io_json_path(cfg, "text_cfg"), "causal_masking", 0);
    mci_model *vis = NULL;
    vit_model *vit = NULL;
    mct_model *mct = NULL;
    clipt_model *txt = NULL;
    if (gl_weights_find(w, "image_encoder.model.patch_emb.0.block.conv.weight")) {
        int vheads = (int)io_json_int(io_json_path(cfg, "glimpse_tiny"), "heads", 0);
        int size = (int)io_json_int(io_json_path(cfg, "image_cfg"), "image_size", 224);
        CHECK_MSG(vit_load_ex(w, "image_encoder.model.", p, VIT_NAMES_APPLE, vheads, size, &vit, &err) == 0, "%s",
                  err.msg);
    } else {
        CHECK_MSG(mci_load_ex(w, "image_encoder.model.", p, MCI_NAMES_APPLE, 1, &vis, &err) == 0, "%s", err.msg);
    }
    if (mct_detect(w, "text_encoder.")) {
        CHECK_MSG(mct_load(w, "text_encoder.", p, causal, heads, &mct, &err) == 0, "%s", err.msg);
        if (mct) txt = mct_core(mct);
    } else {
        CHECK_MSG(clipt_load_ex(w, "text_encoder.", p, CLIPT_NAMES_APPLE, 0, causal, heads, &txt, &err) == 0, "%s",
                  err.msg);
    }
    gl_pool *pool = gl_pool_new(2);
    kn_scratch scr = {0};
    kn_env env = kn_env_native(pool);
    env.scratch = &scr;
    npy_arr px, tok, ie, te, tb = {0};
    CHECK(load_pixels_dir(dir, &px, &err) == 0);
    snprintf(p, sizeof p, "%s/tokens.npy", dir);
    CHECK(npy_load(p, &tok) == 0);
    snprintf(p, sizeof p, "%s/image_embeds.npy", dir);
    CHECK(npy_load(p, &ie) == 0);
    snprintf(p, sizeof p, "%s/text_embeds.npy", dir);
    CHECK(npy_load(p, &te) == 0);
    snprintf(p, sizeof p, "%s/text_block0.npy", dir);
    if (mct) CHECK(npy_load(p, &tb) == 0);
    if ((vis || vit) && txt && px.data && tok.data && ie.data && te.data) {
        int n = (int)px.shape[0], H = (int)px.shape[2], W = (int)px.shape[3];
        int d = vit ? vit_embed_dim(vit) : mci_embed_dim(vis);
        float *ws = NULL, *out = NULL;
        if (vit) {
            vit_tower(dir, vit, &env, &px, &ie);
        } else {
            ws = malloc(sizeof(float) * mci_ws_floats(vis, H, W, 2));
            out = malloc(sizeof(float) * n * d);
            for (int i = 0; i < n; i++)
                CHECK_MSG(mci_forward(vis, &env, (float *)px.data + (size_t)i * 3 * H * W, H, W, out + (size_t)i * d, ws,
                                      &err) == 0, "%s", err.msg);
            compare("image (normalised)", out, ie.data, n, d, 1);
            free(ws);
            free(out);
        }
        int ns = (int)tok.shape[0], ctx = (int)tok.shape[1], tw = clipt_width(txt);
        int32_t *ids = malloc(sizeof(int32_t) * ns * ctx);
        for (int i = 0; i < ns * ctx; i++) ids[i] = (int32_t)((int64_t *)tok.data)[i];
        ws = malloc(sizeof(float) * (mct ? mct_ws_floats(mct, ns, 2) : clipt_ws_floats(txt, ns, 2)));
        out = malloc(sizeof(float) * ns * d);
        float *b0 = malloc(sizeof(float) * (size_t)ns * ctx * tw);
        if (mct) {
            CHECK_MSG(mct_forward(mct, &env, ids, ns, out, b0, ws, &err) == 0, "%s", err.msg);
            if (tb.data) { /* after the first RepMixer block: every token, relative to the largest */
                double md = 0, mx = 0;
                for (size_t i = 0; i < (size_t)ns * ctx * tw; i++)
                    md = fmax(md, fabs(b0[i] - ((float *)tb.data)[i])), mx = fmax(mx, fabs(((float *)tb.data)[i]));
                fprintf(stderr, "  text block 0: max abs diff %.3g (max |x| %.3g)\n", md, mx);
                CHECK(md <= 1e-5 * fmax(1.0, mx));
            }
            compare("text (normalised)", out, te.data, ns, d, 1);
        } else {
            for (int call = 0; call < 3; call++) { /* stored weights, packing them, packed */
                CHECK_MSG(clipt_forward(txt, &env, ids, ns, out, ws, &err) == 0, "%s", err.msg);
                compare("text (normalised)", out, te.data, ns, d, 1);
            }
        }
        free(ws); free(out); free(ids); free(b0);
    }
    npy_free(&px); npy_free(&tok); npy_free(&ie); npy_free(&te); npy_free(&tb);
    kn_scratch_free(&scr);
    gl_pool_free(pool);
    cJSON_Delete(cfg);
    mci_free(vis);
    vit_free(vit);
    if (mct) mct_free(mct);
    else clipt_free(txt);
    gl_weights_close(w);
}

/* Apple's v1 B at other sizes: no size = the table's own 14x14 grid (224 px); the patch grid
 * follows image_size (the table is resampled); sizes the 16-pixel patches do not tile are
 * refused with a message naming the size. */
static void v1_b_sizes(void) {
    gl_err err = {0};
    gl_weights *w = NULL;
    const char *p = DATA "v1_b_tiny/apple/mobileclip_b.pt";
    CHECK_MSG(gl_weights_open(p, &w, &err) == 0, "%s", err.msg);
    if (!w) return;
    static const int sizes[] = {0, 224, 128, 72};
    static const int want[] = {224, 224, 128, -1};
    for (int i = 0; i < 4; i++) {
        vit_model *v = NULL;
        gl_err e = {0};
        int rc = vit_load_ex(w, "image_encoder.model.", p, VIT_NAMES_APPLE, 2, sizes[i], &v, &e);
        if (want[i] < 0) {
            CHECK(rc == GLIMPSE_ERR_FORMAT && !v && strstr(e.msg, "image size 72"));
        } else {
            CHECK_MSG(rc == 0 && v, "%s", e.msg);
            if (v) CHECK(vit_image_size(v) == want[i] && vit_n_patch(v) == (want[i] / 16) * (want[i] / 16));
        }
        vit_free(v);
    }
    gl_weights_close(w);
}

/* Through glimpse.h: decode + Pillow-exact preprocessing of the PNGs + tower. */
static void public_api_at(const char *name, const char *p) {
    char err[512];
    fprintf(stderr, "%s via glimpse.h (%s)\n", name, p);
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
    snprintf(a, sizeof a, "%s%s/img0.png", g_data, name);
    snprintf(b, sizeof b, "%s%s/img1.png", g_data, name);
    const char *imgs[2] = {a, b};
    int d = glimpse_embed_dim(m);
    float *out = malloc(sizeof(float) * 2 * d);
    CHECK_MSG(glimpse_embed_image_files(c, imgs, 2, out, 1) == 0, "%s", glimpse_ctx_errmsg(c));
    npy_arr ref;
    char rp[512];
    snprintf(rp, sizeof rp, "%s%s/image_embeds_norm.npy", g_data, name);
    CHECK(npy_load(rp, &ref) == 0);
    if (ref.data) compare("image files (normalised)", out, ref.data, 2, d, 0);
    /* decoded images in memory, one call each way */
    glimpse_image im[2] = {{0}, {0}};
    CHECK(glimpse_image_load(a, 0, &im[0], err, sizeof err) == 0);
    CHECK(glimpse_image_load(b, 0, &im[1], err, sizeof err) == 0);
    CHECK_MSG(glimpse_embed_images(c, im, 2, out, 1) == 0, "%s", glimpse_ctx_errmsg(c));
    if (ref.data) compare("images (normalised)", out, ref.data, 2, d, 0);
    glimpse_image_free(&im[0]);
    glimpse_image_free(&im[1]);
    /* a text through the tokenizer: ids beyond the tiny vocabulary are refused, not misread */
    const char *t = "a photo of a cat";
    CHECK(glimpse_embed_texts(c, &t, 1, out, 1) == (g_full ? GLIMPSE_OK : GLIMPSE_ERR_INVALID_ARG));
    /* wrong-kind calls fail cleanly */
    CHECK(glimpse_chat_set_image(c, NULL) == GLIMPSE_ERR_MODEL_KIND);
    npy_free(&ref);
    free(out);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
}

static void public_api(const char *name, const char *folder) {
    char p[512];
    snprintf(p, sizeof p, "%s%s/%s", g_data, name, folder);
    public_api_at(name, p);
}

/* An Apple-style folder (config.json = the bare model cfg, no preprocess_cfg) around the same
 * weights: mean/std and interpolation then come from the model's defaults (OpenAI + bicubic for
 * L-14, identity + bilinear for B), and B's causal text mask from text_cfg. */
static void public_api_apple_style(const char *name, int bad_size) {
    char dir[] = "/tmp/glimpse_mc_XXXXXX", p[600], src[512];
    if (!mkdtemp(dir)) { CHECK(0); return; }
    snprintf(src, sizeof src, "%s%s/openclip/open_clip_config.json", g_data, name);
    gl_err err = {0};
    cJSON *cfg = NULL;
    CHECK(io_json_load(src, IO_JSON_MAX_DEFAULT, &cfg, &err) == 0);
    if (bad_size) /* an image_size the position embedding does not fit */
        cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "model_cfg"), "vision_cfg"),
                                                 "image_size"), 96);
    char *txt = cfg ? cJSON_Print(io_json_path(cfg, "model_cfg")) : NULL;
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (f && txt) fputs(txt, f);
    if (f) fclose(f);
    free(txt);
    cJSON_Delete(cfg);
    snprintf(src, sizeof src, "%s%s/openclip/open_clip_model.safetensors", g_data, name);
    char wp[600];
    snprintf(wp, sizeof wp, "%s/weights.safetensors", dir);
    CHECK(symlink(src, wp) == 0);
    if (!bad_size) {
        public_api_at(name, dir);
    } else {
        char e[512] = "";
        glimpse_model *m = NULL;
        glimpse_model_params mp = glimpse_model_default_params();
        mp.vocab_path = VOCAB;
        CHECK(glimpse_model_open(dir, &mp, &m, e, sizeof e) == GLIMPSE_ERR_FORMAT);
        CHECK_MSG(strstr(e, "image_size 96") != NULL, "%s", e);
        fprintf(stderr, "  %s: refused: %s\n", name, e);
        glimpse_model_close(m);
    }
    unlink(wp);
    unlink(p);
    rmdir(dir);
}

/* Full-size parity (not part of ctest: the goldens are ~1 GB, made by make_golden.py --full):
 * test_mobileclip --full DIR runs the same checks on DIR's OpenCLIP and Apple layouts. */
static int full(const char *dir) {
    static char root[512], name[256], pt[300];
    const char *sl = strrchr(dir, '/');
    snprintf(root, sizeof root, "%.*s", sl ? (int)(sl - dir + 1) : 0, dir);
    snprintf(name, sizeof name, "%s", sl ? sl + 1 : dir);
    g_data = root;
    g_full = 1;
    model_level(name, "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    char mp[600];
    snprintf(mp, sizeof mp, "%s/meta.json", dir);
    cJSON *meta = NULL;
    gl_err err = {0};
    CHECK(io_json_load(mp, IO_JSON_MAX_DEFAULT, &meta, &err) == 0);
    const char *ap = io_json_str(meta, "apple_pt", NULL);
    if (ap) {
        snprintf(pt, sizeof pt, "%s", ap);
        model_level(name, pt, "apple/config.json");
    }
    cJSON_Delete(meta);
    public_api(name, "openclip");
    if (ap) public_api(name, "apple");
    TEST_DONE();
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--full")) return full(argv[2]);
    model_level("s0_tiny", "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    model_level("s0_tiny", "apple/mobileclip2_s0.pt", "apple/config.json");
    model_level("s3_tiny", "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    model_level("b_tiny", "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    model_level("l14_tiny", "openclip/open_clip_model.safetensors", "openclip/open_clip_config.json");
    public_api("s0_tiny", "openclip");
    public_api("s0_tiny", "apple");
    public_api("s3_tiny", "openclip");
    public_api("b_tiny", "openclip");
    public_api("l14_tiny", "openclip");
    public_api_apple_style("b_tiny", 0);
    public_api_apple_style("l14_tiny", 0);
    public_api_apple_style("l14_tiny", 1);
    model_level_v1(DATA "v1_s0_tiny");
    public_api("v1_s0_tiny", "apple");
    model_level_v1(DATA "v1_s2_tiny");
    public_api("v1_s2_tiny", "apple");
    model_level_v1(DATA "v1_b_tiny");
    public_api("v1_b_tiny", "apple");
    v1_b_sizes();
    /* full-size parity on demand: GLIMPSE_V1_FULL=/tmp/v1s0_full (make_golden.py --full --name MobileCLIP-S0
     * or -S1, -S2, -B) */
    const char *full = getenv("GLIMPSE_V1_FULL");
    if (full && *full) model_level_v1(full);
    TEST_DONE();
}
