/* fuzz_json.c — libFuzzer target: io_json_parse and the lookup helpers. */
#include "io/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *j;
    gl_err err;
    if (io_json_parse((const char *)data, size, "fuzz", &j, &err)) return 0;
    static const char *const paths[] = {"a", "a.b", "0", "a.0.b", "weight_map", "x.1.2.3.4", ""};
    volatile uint64_t acc = 0; /* unsigned: sums of arbitrary values must not be UB */
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const cJSON *v = io_json_path(j, paths[i]);
        acc += (uint64_t)io_json_int(v, NULL, 0) + (io_json_num(v, NULL, 0) > 0) + io_json_bool(v, NULL, 0);
        acc += (uint8_t)io_json_str(v, NULL, "")[0];
    }
    for (const cJSON *c = j->child; c; c = c->next) acc += (uint64_t)io_json_int(j, c->string, 1);
    (void)acc;
    cJSON_Delete(j);
    return 0;
}
