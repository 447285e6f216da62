/* cmd_caption.c — `glimpse caption`, `glimpse ask` and `glimpse chat` (FastVLM). */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct gen_opts {
    const char *model, *image, *prompt, *dump, *mmproj;
    int threads, json;
    glimpse_gen_params gen;
} gen_opts;

static void usage(FILE *f, const char *cmd) {
    if (!strcmp(cmd, "chat"))
        fprintf(f, "usage: glimpse chat -m MODEL [IMAGE] [options]\n\n"
                   "Interactive questions about one image. Type a question and press enter; /image PATH switches\n"
                   "to another image (new conversation), /reset forgets the image, /quit or end of input exits.\n");
    else
        fprintf(f, "usage: glimpse %s -m MODEL IMAGE %s[options]\n\n"
                   "Streams FastVLM's answer to stdout (default prompt \"Describe the image.\").\n",
                cmd, strcmp(cmd, "ask") ? "[-p PROMPT] " : "QUESTION ");
    fprintf(f, "\noptions:\n"
               "  -m, --model DIR        FastVLM folder as downloaded (config.json, safetensors, tokenizer),\n"
               "                         or the LLM .gguf of a converted pair\n"
               "  --mmproj FILE          the vision file of a pair (default: mmproj-NAME beside it)\n"
               "  -p, --prompt TEXT      the question or instruction\n"
               "  -n, --max-tokens N     maximum new tokens (default 256)\n"
               "  --temp T               temperature (default 0: greedy)\n"
               "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S   sampling\n"
               "  -t, --threads N        threads (default: all cores)\n"
               "  --json                 print one JSON object at the end (text, tokens, timings)\n"
               "  --dump DIR             write pixels.npy, vision_features.npy, image_embeds.npy, logits.npy\n");
}

static int parse(int argc, char **argv, gen_opts *o, const char **rest, int *n_rest) {
    memset(o, 0, sizeof *o);
    o->gen = glimpse_gen_default_params();
    o->threads = cli_default_threads();
    *n_rest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_takes_value(a, "-m --model -p --prompt -n --max-tokens --temp --temperature --top-k --top-p --min-p "
                               "--repeat-penalty --seed -t --threads --dump --mmproj")) {
            if (i + 1 >= argc) return cli_fail(argv[0], "%s needs a value", a) + 1;
            v = argv[++i];
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) o->gen.max_new_tokens = atoi(v);
        else if (!strcmp(a, "--temp") || !strcmp(a, "--temperature")) o->gen.temperature = (float)atof(v);
        else if (!strcmp(a, "--top-k")) o->gen.top_k = atoi(v);
        else if (!strcmp(a, "--top-p")) o->gen.top_p = (float)atof(v);
        else if (!strcmp(a, "--min-p")) o->gen.min_p = (float)atof(v);
        else if (!strcmp(a, "--repeat-penalty")) o->gen.repeat_penalty = (float)atof(v);
        else if (!strcmp(a, "--seed")) o->gen.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--dump")) o->dump = v;
        else if (!strcmp(a, "--mmproj")) o->mmproj = v;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (a[0] == '-' && a[1]) return cli_fail(argv[0], "unknown option '%s' (see --help)", a) + 1;
        else if (*n_rest < 8) rest[(*n_rest)++] = a;
        else return cli_fail(argv[0], "too many arguments") + 1;
    }
    if (!o->model) return cli_fail(argv[0], "no model: pass -m MODEL_DIR") + 1;
    if (o->gen.max_new_tokens < 1) return cli_fail(argv[0], "--max-tokens must be at least 1") + 1;
    if (o->threads < 1) return cli_fail(argv[0], "--threads must be at least 1") + 1;
    return 0;
}

typedef struct stream_state {
    int print;
    int32_t *toks;
    int n, cap;
    char *text;
    size_t len, tcap;
} stream_state;

static int on_token(void *user, int32_t tok, const char *text, size_t len) {
    stream_state *s = user;
    if (tok >= 0) {
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 256;
            s->toks = realloc(s->toks, sizeof(int32_t) * (size_t)s->cap);
        }
        s->toks[s->n++] = tok;
    }
    if (s->len + len + 1 > s->tcap) {
        s->tcap = (s->len + len + 1) * 2;
        s->text = realloc(s->text, s->tcap);
    }
    memcpy(s->text + s->len, text, len);
    s->len += len;
    s->text[s->len] = 0;
    if (s->print) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}

static int load(const char *cmd, const gen_opts *o, glimpse_model **m, glimpse_ctx **c) {
    char err[512];
    glimpse_model_params mp = glimpse_model_default_params();
    mp.mmproj_path = o->mmproj;
    if (glimpse_model_open(o->model, &mp, m, err, sizeof err)) return cli_fail(cmd, "%s", err);
    if (glimpse_model_get_kind(*m) != GLIMPSE_MODEL_VLM) {
        glimpse_model_close(*m);
        return cli_fail(cmd, "%s is a CLIP model, not FastVLM: use `glimpse embed` or `glimpse classify`", o->model);
    }
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = o->threads;
    if (glimpse_ctx_new(*m, &cp, c)) {
        cli_fail(cmd, "%s", glimpse_model_errmsg(*m));
        glimpse_model_close(*m);
        return 1;
    }
    if (o->dump && glimpse_ctx_set_dump_dir(*c, o->dump)) return cli_fail(cmd, "%s", glimpse_ctx_errmsg(*c));
    return 0;
}

static int set_image(const char *cmd, glimpse_ctx *c, const char *path) {
    glimpse_image img;
    char err[512];
    if (glimpse_image_load(path, 0, &img, err, sizeof err)) return cli_fail(cmd, "%s", err);
    int rc = glimpse_chat_set_image(c, &img);
    glimpse_image_free(&img);
    return rc ? cli_fail(cmd, "%s: %s", path, glimpse_ctx_errmsg(c)) : 0;
}

static void print_json(const stream_state *s, const glimpse_timings *t) {
    cJSON *o = cJSON_CreateObject(), *tm = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", s->text ? s->text : "");
    cJSON_AddItemToObject(o, "tokens", cJSON_CreateIntArray(s->toks ? s->toks : (const int[]){0}, s->n));
    cJSON_AddNumberToObject(o, "prompt_tokens", t->prompt_tokens);
    cJSON_AddNumberToObject(tm, "load_ms", t->load_ms);
    cJSON_AddNumberToObject(tm, "preprocess_ms", t->preprocess_ms);
    cJSON_AddNumberToObject(tm, "vision_ms", t->vision_ms);
    cJSON_AddNumberToObject(tm, "prefill_ms", t->prefill_ms);
    cJSON_AddNumberToObject(tm, "ttft_ms", t->ttft_ms);
    cJSON_AddNumberToObject(tm, "decode_tokens_per_s",
                            t->generated_tokens > 1 && t->decode_ms > 0 ? (t->generated_tokens - 1) / (t->decode_ms / 1e3) : 0);
    cJSON_AddItemToObject(o, "timings", tm);
    char *js = cJSON_PrintUnformatted(o);
    puts(js);
    free(js);
    cJSON_Delete(o);
}

int cmd_caption(int argc, char **argv) {
    const char *cmd = argv[0];
    int ask = !strcmp(cmd, "ask");
    if (cli_wants_help(argc, argv)) {
        usage(stdout, cmd);
        return 0;
    }
    gen_opts o;
    const char *rest[8];
    int n_rest, rc = parse(argc, argv, &o, rest, &n_rest);
    if (rc) return 2;
    if (n_rest < 1) return usage(stderr, cmd), 2;
    if (ask) {
        if (n_rest != 2 && !(n_rest == 1 && o.prompt)) return cli_fail(cmd, "usage: glimpse ask -m MODEL IMAGE QUESTION"), 2;
        if (n_rest == 2) o.prompt = rest[1];
    } else if (n_rest != 1) {
        return cli_fail(cmd, "expected one image, got %d arguments", n_rest), 2;
    }
    if (!o.prompt) o.prompt = "Describe the image.";
    glimpse_model *m;
    glimpse_ctx *c;
    if (load(cmd, &o, &m, &c)) return 1;
    stream_state s = {.print = !o.json};
    rc = set_image(cmd, c, rest[0]);
    if (!rc && glimpse_chat_ask(c, o.prompt, &o.gen, on_token, &s)) rc = cli_fail(cmd, "%s", glimpse_ctx_errmsg(c));
    if (!rc) {
        glimpse_timings t = glimpse_ctx_timings(c);
        if (o.json) print_json(&s, &t);
        else putchar('\n');
    }
    free(s.toks);
    free(s.text);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return rc ? 1 : 0;
}

int cmd_chat(int argc, char **argv) {
    const char *cmd = argv[0];
    if (cli_wants_help(argc, argv)) {
        usage(stdout, cmd);
        return 0;
    }
    gen_opts o;
    const char *rest[8];
    int n_rest;
    if (parse(argc, argv, &o, rest, &n_rest)) return 2;
    if (n_rest > 1) return cli_fail(cmd, "expected at most one image"), 2;
    glimpse_model *m;
    glimpse_ctx *c;
    if (load(cmd, &o, &m, &c)) return 1;
    int rc = n_rest ? set_image(cmd, c, rest[0]) : glimpse_chat_set_image(c, NULL);
    char line[8192];
    while (!rc) {
        fprintf(stderr, "> ");
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strncmp(line, "/image ", 7)) {
            if (set_image(cmd, c, line + 7) == 0) fprintf(stderr, "(new conversation about %s)\n", line + 7);
            continue;
        }
        if (!strcmp(line, "/reset")) {
            glimpse_chat_set_image(c, NULL);
            fprintf(stderr, "(new conversation without an image)\n");
            continue;
        }
        stream_state s = {.print = 1};
        if (glimpse_chat_ask(c, line, &o.gen, on_token, &s)) cli_fail(cmd, "%s", glimpse_ctx_errmsg(c));
        putchar('\n');
        free(s.toks);
        free(s.text);
    }
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return rc ? 1 : 0;
}
