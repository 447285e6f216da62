/* FastVLM parity on the tiny random-weight golden from tools/reference/fastvlm/gen_tiny_golden.py:
 * FastViTHD features, projector output and first-position logits against PyTorch. */
#include "test.h"
#include "npy_read.h"

#include "io/weights.h"
#include "models/mci.h"

#define DIR GLIMPSE_SOURCE_DIR "/tests/data/fastvlm/tiny/"

/* Tolerance from the issue: vision features cosine >= 0.9999. */
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

static void vision(const char *ckpt) {
    gl_err err = {0};
    gl_weights *w = NULL;
    CHECK_MSG(gl_weights_open(ckpt, &w, &err) == 0, "%s", err.msg);
    if (!w) return;
    mci_model *m = NULL;
    CHECK_MSG(mci_load_ex(w, "model.vision_tower.vision_tower.model.", ckpt, MCI_NAMES_APPLE, 0, &m, &err) == 0, "%s",
              err.msg);
    if (!m) { gl_weights_close(w); return; }
    gl_pool *pool = gl_pool_new(2);
    kn_env env = kn_env_native(pool);
    for (int k = 0; k < 3; k++) {
        char path[512];
        npy_arr px, feat;
        snprintf(path, sizeof path, DIR "img%d_pixels_u8.npy", k);
        CHECK(npy_load(path, &px) == 0);
        snprintf(path, sizeof path, DIR "img%d_features.npy", k);
        CHECK(npy_load(path, &feat) == 0);
        int H = (int)px.shape[0], W = (int)px.shape[1];
        float *x = malloc(sizeof(float) * 3 * H * W);
        pixels_chw(&px, x);
        size_t wsn = mci_ws_floats(m, H, W, 2);
        float *ws = malloc(wsn * sizeof(float));
        float *out = malloc(sizeof(float) * feat.n);
        CHECK_MSG(mci_forward_features(m, &env, x, H, W, out, ws, &err) == 0, "%s", err.msg);
        double cs = cosine(out, feat.data, feat.n);
        double md = 0;
        for (size_t i = 0; i < feat.n; i++) md = fmax(md, fabs(out[i] - ((float *)feat.data)[i]));
        fprintf(stderr, "%s img%d: features cosine %.8f max abs diff %.3g\n", ckpt + strlen(DIR), k, cs, md);
        CHECK(cs >= 0.9999);
        free(x); free(ws); free(out);
        npy_free(&px); npy_free(&feat);
    }
    gl_pool_free(pool);
    mci_free(m);
    gl_weights_close(w);
}

int main(void) {
    vision(DIR "ckpt_bf16");
    vision(DIR "ckpt_f16_sharded");
    TEST_DONE();
}
