/* fuzz_gguf.c — libFuzzer target: GGUF parsing in memory (with metadata lookups) and through
 * gl_weights_open. */
#include "fuzz_util.h"
#include "io/gguf.h"

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
    fuzz_open_bytes(data, size, ".gguf");
    return 0;
}
