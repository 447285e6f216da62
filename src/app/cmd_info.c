/* cmd_info.c — `glimpse info PATH`: what a weights file or model folder holds. */
#include <inttypes.h>

#include "cli.h"
#include "io/weights.h"

int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv) || argc != 2) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: glimpse info PATH\n\n"
                "Lists the tensors (name, dtype, shape) of a .safetensors, sharded safetensors folder,\n"
                "PyTorch .pt/.bin zip checkpoint or .gguf file, and the format it was read as.\n");
        return argc == 2 ? 0 : 2;
    }
    gl_err err = {0};
    gl_weights *w;
    if (gl_weights_open(argv[1], &w, &err)) return cli_fail("info", "%s", err.msg);
    size_t n = gl_weights_count(w);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += gl_weights_at(w, i)->nbytes;
    printf("format: %s\ntensors: %zu\nbytes: %" PRIu64 "\n", gl_weights_format_name(gl_weights_get_format(w)), n,
           total);
    char shape[160];
    for (size_t i = 0; i < n; i++) {
        const gl_tensor *t = gl_weights_at(w, i);
        printf("%s %s %s\n", t->name, gl_dtype_name(t->dtype), gl_tensor_shape_str(t, shape, sizeof shape));
    }
    gl_weights_close(w);
    return 0;
}
