/* fuzz_gguf.c — libFuzzer target: GGUF parsing in memory (with metadata lookups), through
 * gl_weights_open, and the loaders of converted files (the folded MCi tower, the CLIP text
 * tower, Qwen2 under llama.cpp names): bad geometry, missing or misshapen tensors must give
 * errors. Seeds include a converted tiny MobileCLIP2-S0 (q8_0, vocabulary stripped by
 * tools/gguf_strip.py). */
#include "fuzz_util.h"
#include "io/gguf.h"
#include "models/clip_text.h"
#include "models/mci.h"
#include "models/qwen2.h"

static void load_models(const gl_weights *w, const char *path) {
    gl_err err;
    mci_model *m = NULL;
    if (mci_load_gguf(w, "v.", path, &m, &err) == 0) mci_free(m);
    clipt_model *t = NULL;
    if (clipt_load(w, "text.", path, 0, 0, &t, &err) == 0) clipt_free(t);
    const io_gguf *g = gl_weights_gguf(w);
    qwen2_config qc = {.n_head = (int)io_gguf_get_int(g, "qwen2.attention.head_count", 2),
                       .n_kv_head = (int)io_gguf_get_int(g, "qwen2.attention.head_count_kv", 1),
                       .rope_theta = 10000.0f, .rms_eps = 1e-6f, .tie_embeddings = 1, .gguf_names = 1};
    qwen2_model *q = NULL;
    if (qwen2_load(w, &qc, path, &q, &err) == 0) qwen2_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    io_gguf *g;
    gl_err err;
    if (io_gguf_parse(data, size, "fuzz", &g, &err) == 0) {
        volatile uint64_t acc = 0; /* unsigned: sums of arbitrary values must not be UB */
        for (size_t i = 0; i < g->n_kvs; i++) {
            const io_gguf_kv *kv = &g->kvs[i];
            acc += (uint64_t)io_gguf_get_int(g, kv->key, 0) + (io_gguf_get_float(g, kv->key, 0) > 0);
            const char *s = io_gguf_get_str(g, kv->key, "");
            acc += (uint8_t)s[0];
            for (uint64_t k = 0; k < kv->n && k < 64; k++) {
                size_t len = 0;
                const char *e = io_gguf_arr_str(kv, k, &len);
                if (e && len) acc += (uint8_t)e[len - 1];
                acc += (uint64_t)io_gguf_arr_int(kv, k) + (io_gguf_arr_float(kv, k) > 0);
            }
        }
        (void)acc;
        io_gguf_free(g);
    }
    fuzz_open_bytes_cb(data, size, ".gguf", load_models);
    return 0;
}
