/* cmd_embed.c — `glimpse embed` and `glimpse tokenize`. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/npy.h"

int cli_open_clip(const char *cmd, const char *model, const char *vocab, int threads, glimpse_model **m,
                  glimpse_ctx **c) {
    char err[512];
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = vocab;
    if (glimpse_model_open(model, &mp, m, err, sizeof err)) return cli_fail(cmd, "%s", err);
    if (glimpse_model_get_kind(*m) != GLIMPSE_MODEL_CLIP) {
        glimpse_model_close(*m);
        return cli_fail(cmd, "%s is a FastVLM model, not MobileCLIP: use `glimpse caption` or `glimpse ask`", model);
    }
    if (!c) return 0;
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = threads;
    if (glimpse_ctx_new(*m, &cp, c)) {
        cli_fail(cmd, "%s", glimpse_model_errmsg(*m));
        glimpse_model_close(*m);
        return 1;
    }
    return 0;
}

typedef struct input { int is_image; const char *s; } input;

int cmd_embed(int argc, char **argv) {
    const char *cmd = argv[0];
    if (cli_wants_help(argc, argv)) {
        printf("usage: glimpse embed -m MODEL [--image PATH]... [--text STRING]... [options]\n\n"
               "One embedding per input, in command-line order, L2-normalised unless --no-normalize.\n\n"
               "options:\n"
               "  -m, --model PATH   MobileCLIP / MobileCLIP2 folder or checkpoint file\n"
               "  --image PATH       an image (JPEG, PNG, WebP); repeatable\n"
               "  --text STRING      a text; repeatable\n"
               "  --npy OUT.npy      write the embeddings as a float32 [n, dim] array\n"
               "  --json             print {\"model\", \"dim\", \"embeddings\": [{\"type\", \"input\", \"embedding\"}]}\n"
               "  --no-normalize     raw embeddings\n"
               "  --vocab FILE       CLIP vocabulary when the model folder has none\n"
               "  -t, --threads N    threads (default: all cores)\n");
        return 0;
    }
    const char *model = NULL, *npy = NULL, *vocab = NULL;
    int json = 0, norm = 1, threads = cli_default_threads(), n = 0;
    input *in = calloc((size_t)argc, sizeof *in);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_takes_value(a, "-m --model --image --text --npy --vocab -t --threads")) {
            if (i + 1 >= argc) return free(in), cli_fail(cmd, "%s needs a value", a), 2;
            v = argv[++i];
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--image")) in[n++] = (input){1, v};
        else if (!strcmp(a, "--text")) in[n++] = (input){0, v};
        else if (!strcmp(a, "--npy")) npy = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-normalize")) norm = 0;
        else return free(in), cli_fail(cmd, "unexpected argument '%s' (see --help)", a), 2;
    }
    if (!model || n == 0) return free(in), cli_fail(cmd, "need -m MODEL and at least one --image or --text"), 2;
    if (threads < 1) return free(in), cli_fail(cmd, "--threads must be at least 1"), 2;
    glimpse_model *m;
    glimpse_ctx *c;
    if (cli_open_clip(cmd, model, vocab, threads, &m, &c)) return free(in), 1;
    int d = glimpse_embed_dim(m), rc = 0;
    float *out = malloc(sizeof(float) * (size_t)n * d);
    /* group consecutive images so they are decoded in parallel */
    for (int i = 0; i < n && !rc;) {
        int j = i;
        while (j < n && in[j].is_image == in[i].is_image) j++;
        const char **list = malloc(sizeof(char *) * (size_t)(j - i));
        for (int k = i; k < j; k++) list[k - i] = in[k].s;
        if (in[i].is_image) rc = glimpse_embed_image_files(c, list, j - i, out + (size_t)i * d, norm);
        else rc = glimpse_embed_texts(c, list, j - i, out + (size_t)i * d, norm);
        free(list);
        if (rc) cli_fail(cmd, "%s", glimpse_ctx_errmsg(c));
        i = j;
    }
    if (!rc && npy) {
        gl_err e = {0};
        int64_t shape[2] = {n, d};
        if (io_npy_write_f32(npy, out, 2, shape, &e)) rc = cli_fail(cmd, "%s", e.msg);
    }
    if (!rc && json) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "model", glimpse_model_name(m));
        cJSON_AddNumberToObject(o, "dim", d);
        for (int i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "type", in[i].is_image ? "image" : "text");
            cJSON_AddStringToObject(e, "input", in[i].s);
            cJSON_AddItemToObject(e, "embedding", cJSON_CreateFloatArray(out + (size_t)i * d, d));
            cJSON_AddItemToArray(arr, e);
        }
        cJSON_AddItemToObject(o, "embeddings", arr);
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        free(s);
        cJSON_Delete(o);
    } else if (!rc && !npy) {
        for (int i = 0; i < n; i++) {
            printf("%s\t%s\t", in[i].is_image ? "image" : "text", in[i].s);
            for (int k = 0; k < d; k++) printf(k ? " %.6g" : "%.6g", out[(size_t)i * d + k]);
            putchar('\n');
        }
    }
    free(out);
    free(in);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return rc ? 1 : 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *cmd = argv[0];
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--clip-vocab") || !strcmp(argv[i], "--qwen2-dir")) return cmd_tokenize_vocab(argc, argv);
    if (cli_wants_help(argc, argv)) {
        printf("usage: glimpse tokenize -m MODEL [--json] [--vocab FILE] TEXT...\n"
               "       glimpse tokenize (--clip-vocab FILE | --qwen2-dir DIR) [--ctx N] [--raw] TEXT...\n\n"
               "Prints the token ids the model sees, one line per text: the 77 padded ids of a CLIP text\n"
               "encoder, or the Qwen2 ids of a FastVLM model (special tokens recognised, no template).\n"
               "The second form needs no model (see glimpse tokenize --clip-vocab x --help).\n");
        return 0;
    }
    const char *model = NULL, *vocab = NULL;
    int json = 0, n = 0;
    const char **texts = calloc((size_t)argc, sizeof *texts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_takes_value(a, "-m --model --vocab")) {
            if (i + 1 >= argc) return free(texts), cli_fail(cmd, "%s needs a value", a), 2;
            if (!strcmp(a, "--vocab")) vocab = argv[++i];
            else model = argv[++i];
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--")) { while (++i < argc) texts[n++] = argv[i]; }
        else if (a[0] == '-' && a[1]) return free(texts), cli_fail(cmd, "unknown option '%s'", a), 2;
        else texts[n++] = a;
    }
    if (!model || !n) return free(texts), cli_fail(cmd, "need -m MODEL and at least one text"), 2;
    char err[512];
    glimpse_model *m;
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = vocab;
    if (glimpse_model_open(model, &mp, &m, err, sizeof err)) return free(texts), cli_fail(cmd, "%s", err);
    int rc = 0;
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    for (int t = 0; t < n && !rc; t++) {
        int32_t cnt = 0;
        glimpse_status s = glimpse_tokenize(m, texts[t], NULL, 0, &cnt);
        if (s && s != GLIMPSE_ERR_TOO_LARGE) { rc = cli_fail(cmd, "%s", glimpse_model_errmsg(m)); break; }
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)(cnt + 1));
        if (glimpse_tokenize(m, texts[t], ids, cnt, &cnt)) rc = cli_fail(cmd, "%s", glimpse_model_errmsg(m));
        else if (json) cJSON_AddItemToArray(arr, cJSON_CreateIntArray(ids, cnt));
        else {
            for (int i = 0; i < cnt; i++) printf(i ? " %d" : "%d", ids[i]);
            putchar('\n');
        }
        free(ids);
    }
    if (json && !rc) {
        char *s = cJSON_PrintUnformatted(arr);
        puts(s);
        free(s);
    }
    cJSON_Delete(arr);
    free(texts);
    glimpse_model_close(m);
    return rc ? 1 : 0;
}
