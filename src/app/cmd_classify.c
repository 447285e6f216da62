/* cmd_classify.c — `glimpse classify`: zero-shot labels as OpenCLIP's zero-shot classifier
 * builds them: each label's template embeddings L2-normalised, averaged, normalised again;
 * probabilities = softmax(logit_scale · image · labels). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "templates.h"

int cli_open_clip(const char *cmd, const char *model, const char *vocab, int threads, glimpse_model **m,
                  glimpse_ctx **c);

static char *fill(const char *tpl, const char *label) {
    const char *p = strstr(tpl, "{}");
    size_t n = strlen(tpl) + strlen(label);
    char *s = malloc(n + 1);
    if (!p) snprintf(s, n + 1, "%s", tpl);
    else snprintf(s, n + 1, "%.*s%s%s", (int)(p - tpl), tpl, label, p + 2);
    return s;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

/* Splits on sep (',' for --labels, '\n' for files) into a NULL-free array of trimmed labels. */
static int split_labels(char *buf, char sep, char ***out) {
    int n = 0, cap = 16;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    for (char *p = buf; p;) {
        char *e = strchr(p, sep);
        if (e) *e = 0;
        char *t = trim(p);
        if (*t && t[0] != '#') {
            if (n == cap) v = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
            v[n++] = t;
        }
        p = e ? e + 1 : NULL;
    }
    *out = v;
    return n;
}

int cmd_classify(int argc, char **argv) {
    const char *cmd = argv[0];
    if (cli_wants_help(argc, argv)) {
        printf("usage: glimpse classify -m MODEL (--labels \"cat,dog,car\" | --labels-file FILE) [options] IMAGE...\n\n"
               "Zero-shot classification: top-k labels with probabilities for each image.\n\n"
               "options:\n"
               "  --templates imagenet|plain  prompts per label: the 80 ImageNet templates averaged (default), or\n"
               "                              the label text as given\n"
               "  -k N                        labels to show (default 5)\n"
               "  --json                      one JSON object per image\n"
               "  --vocab FILE, -t N          as for embed\n");
        return 0;
    }
    const char *model = NULL, *labels_arg = NULL, *labels_file = NULL, *tpl = "imagenet", *vocab = NULL;
    int k = 5, json = 0, threads = cli_default_threads(), n_img = 0;
    const char **imgs = calloc((size_t)argc, sizeof *imgs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_takes_value(a, "-m --model --labels --labels-file --templates -k --top-k --vocab -t --threads")) {
            if (i + 1 >= argc) return free(imgs), cli_fail(cmd, "%s needs a value", a), 2;
            v = argv[++i];
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--labels")) labels_arg = v;
        else if (!strcmp(a, "--labels-file")) labels_file = v;
        else if (!strcmp(a, "--templates")) tpl = v;
        else if (!strcmp(a, "-k") || !strcmp(a, "--top-k")) k = atoi(v);
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] == '-' && a[1]) return free(imgs), cli_fail(cmd, "unknown option '%s'", a), 2;
        else imgs[n_img++] = a;
    }
    if (!model || !n_img || (!labels_arg == !labels_file))
        return free(imgs), cli_fail(cmd, "need -m MODEL, one of --labels/--labels-file, and images"), 2;
    int plain = !strcmp(tpl, "plain");
    if (!plain && strcmp(tpl, "imagenet")) return free(imgs), cli_fail(cmd, "--templates must be imagenet or plain"), 2;
    char *buf = NULL;
    if (labels_arg) buf = strdup(labels_arg);
    else {
        FILE *f = fopen(labels_file, "rb");
        if (!f) return free(imgs), cli_fail(cmd, "%s: cannot open", labels_file);
        size_t cap = 1 << 16, len = 0, r;
        buf = malloc(cap + 1);
        while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
            len += r;
            if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
        }
        fclose(f);
        buf[len] = 0;
    }
    char **labels;
    int n_lab = split_labels(buf, labels_arg ? ',' : '\n', &labels);
    if (n_lab < 1) return free(buf), free(labels), free(imgs), cli_fail(cmd, "no labels given"), 2;
    if (k < 1) k = 1;
    if (k > n_lab) k = n_lab;

    glimpse_model *m;
    glimpse_ctx *c;
    int rc = cli_open_clip(cmd, model, vocab, threads, &m, &c);
    if (rc) return free(buf), free(labels), free(imgs), 1;
    int d = glimpse_embed_dim(m), nt = plain ? 1 : (int)(sizeof IMAGENET_TEMPLATES / sizeof *IMAGENET_TEMPLATES);
    float *W = calloc((size_t)n_lab * d, sizeof(float)), *te = malloc(sizeof(float) * (size_t)nt * d);
    char **prompts = malloc(sizeof(char *) * (size_t)nt);
    for (int l = 0; l < n_lab && !rc; l++) {
        for (int t = 0; t < nt; t++) prompts[t] = plain ? strdup(labels[l]) : fill(IMAGENET_TEMPLATES[t], labels[l]);
        if (glimpse_embed_texts(c, (const char *const *)prompts, nt, te, 1)) rc = cli_fail(cmd, "%s", glimpse_ctx_errmsg(c));
        for (int t = 0; t < nt; t++) free(prompts[t]);
        double ss = 0;
        float *w = W + (size_t)l * d;
        for (int i = 0; i < d; i++) {
            double s = 0;
            for (int t = 0; t < nt; t++) s += te[(size_t)t * d + i];
            w[i] = (float)(s / nt);
            ss += (double)w[i] * w[i];
        }
        for (int i = 0; i < d; i++) w[i] = (float)(w[i] / sqrt(ss > 0 ? ss : 1));
    }
    float *ie = malloc(sizeof(float) * (size_t)d), *prob = malloc(sizeof(float) * (size_t)n_lab);
    int *order = malloc(sizeof(int) * (size_t)n_lab);
    float scale = glimpse_logit_scale(m);
    for (int i = 0; i < n_img && !rc; i++) {
        if (glimpse_embed_image_files(c, &imgs[i], 1, ie, 1)) {
            rc = cli_fail(cmd, "%s", glimpse_ctx_errmsg(c));
            break;
        }
        float mx = -INFINITY;
        for (int l = 0; l < n_lab; l++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += (double)ie[j] * W[(size_t)l * d + j];
            prob[l] = (float)(scale * s);
            mx = fmaxf(mx, prob[l]);
        }
        double sum = 0;
        for (int l = 0; l < n_lab; l++) sum += (prob[l] = expf(prob[l] - mx));
        for (int l = 0; l < n_lab; l++) prob[l] = (float)(prob[l] / sum), order[l] = l;
        for (int a = 0; a < k; a++) /* partial selection sort: top k */
            for (int b = a + 1; b < n_lab; b++)
                if (prob[order[b]] > prob[order[a]]) { int t = order[a]; order[a] = order[b]; order[b] = t; }
        if (json) {
            cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
            cJSON_AddStringToObject(o, "image", imgs[i]);
            for (int a = 0; a < k; a++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "label", labels[order[a]]);
                cJSON_AddNumberToObject(e, "prob", prob[order[a]]);
                cJSON_AddItemToArray(arr, e);
            }
            cJSON_AddItemToObject(o, "labels", arr);
            char *s = cJSON_PrintUnformatted(o);
            puts(s);
            free(s);
            cJSON_Delete(o);
        } else {
            printf("%s\n", imgs[i]);
            for (int a = 0; a < k; a++) printf("  %6.2f%%  %s\n", 100.0 * prob[order[a]], labels[order[a]]);
        }
    }
    free(W); free(te); free(prompts); free(ie); free(prob); free(order);
    free(buf); free(labels); free(imgs);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return rc ? 1 : 0;
}
