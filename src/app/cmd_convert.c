/* cmd_convert.c — `glimpse convert -m MODEL -o OUT.gguf --type f32|f16|q8_0|q4_0 [--vision-type T]`. */
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: glimpse convert -m MODEL -o OUT.gguf [--type f32|f16|q8_0|q4_0] [--vision-type T] [--vocab FILE]\n\n"
               "Writes MODEL (a folder or weights file as downloaded) as one GGUF file: weights, hyperparameters,\n"
               "preprocessing constants and tokenizer, so OUT.gguf needs nothing beside it. --type sets how the\n"
               "matrices are stored (q8_0 / q4_0: ggml's 8- and 4-bit blocks; default f16); other weights stay\n"
               "f32. --vision-type stores the image tower differently (default: --type; for FastVLM at q4_0,\n"
               "q8_0). FastVLM gives two files, llama.cpp style: OUT.gguf (the Qwen2 LLM, readable by\n"
               "llama.cpp) and mmproj-OUT.gguf (vision tower + projector) beside it.\n");
}

int cmd_convert(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = NULL, *out = NULL, *type = "f16", *vtype = NULL, *vocab = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_takes_value(a, "-m --model -o --out --type --vision-type --vocab")) {
            if (i + 1 >= argc) return usage(stderr), cli_fail("convert", "%s needs a value", a), 2;
            const char *v = argv[++i];
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--type")) type = v;
            else if (!strcmp(a, "--vision-type")) vtype = v;
            else vocab = v;
        } else {
            usage(stderr);
            cli_fail("convert", "unexpected argument '%s'", a);
            return 2;
        }
    }
    if (!model || !out) {
        usage(stderr);
        return 2;
    }
    static const char *const names[] = {"f32", "f16", "q8_0", "q4_0"};
    int t = -1, vt = -1;
    for (int i = 0; i < 4; i++) {
        if (!strcmp(type, names[i])) t = i;
        if (vtype && !strcmp(vtype, names[i])) vt = i;
    }
    if (t < 0) {
        cli_fail("convert", "unknown --type '%s' (f32, f16, q8_0 or q4_0)", type);
        return 2;
    }
    if (vtype && vt < 0) {
        cli_fail("convert", "unknown --vision-type '%s' (f32, f16, q8_0 or q4_0)", vtype);
        return 2;
    }
    glimpse_model_params p = glimpse_model_default_params();
    p.vocab_path = vocab;
    char err[512];
    if (glimpse_convert_ex(model, out, (glimpse_wtype)t, vt, &p, err, sizeof err)) return cli_fail("convert", "%s", err);
    fprintf(stderr, "glimpse convert: wrote %s (%s%s%s)\n", out, names[t], vt >= 0 ? ", vision " : "", vt >= 0 ? names[vt] : "");
    return 0;
}
