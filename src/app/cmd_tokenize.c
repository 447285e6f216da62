/* cmd_tokenize.c — `glimpse tokenize`: token ids of texts, with the CLIP or Qwen2 tokenizer.
 * This is the model-free form (the vocabulary named on the command line); `glimpse tokenize -m
 * MODEL` (cmd_embed.c) hands over here when --clip-vocab or --qwen2-dir is given. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "text/clip_tok.h"
#include "text/qwen2_tok.h"

static int usage(FILE *f, int rc) {
    fprintf(f, "usage: glimpse tokenize (--clip-vocab FILE | --qwen2-dir DIR) [--ctx N] [--raw] TEXT...\n\n"
               "Prints the token ids of each TEXT (\"-\" reads stdin) on one line.\n"
               "  --clip-vocab FILE  OpenCLIP bpe_simple_vocab_16e6.txt.gz; prints the ctx-length form\n"
               "                     (start, tokens, end, zero padding) unless --raw is given\n"
               "  --qwen2-dir DIR    folder with vocab.json, merges.txt and added_tokens.json\n"
               "  --ctx N            CLIP context length (default 77)\n"
               "  --raw              CLIP: all tokens, no start/end ids, no truncation or padding\n");
    return rc;
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    *len = n;
    return b;
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
}

int cmd_tokenize_vocab(int argc, char **argv) {
    const char *clip_path = NULL, *qwen_dir = NULL;
    int ctx = TOK_CLIP_CONTEXT, raw = 0, n_texts = 0, i;
    if (cli_wants_help(argc, argv)) return usage(stdout, 0);
    /* options may come anywhere; everything else is a text (compacted to the front of argv) */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clip-vocab") && i + 1 < argc) clip_path = argv[++i];
        else if (!strcmp(argv[i], "--qwen2-dir") && i + 1 < argc) qwen_dir = argv[++i];
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raw")) raw = 1;
        else if (argv[i][0] == '-' && argv[i][1] == '-') return usage(stderr, 2);
        else argv[1 + n_texts++] = argv[i];
    }
    argc = 1 + n_texts;
    i = 1;
    if (!n_texts || !clip_path == !qwen_dir || ctx < 2 || ctx > 1 << 20) return usage(stderr, 2);
    gl_err e = {0};
    tok_clip *clip = NULL;
    tok_qwen2 *qwen = NULL;
    if (clip_path ? tok_clip_load_gz(clip_path, &clip, &e) : tok_qwen2_load(qwen_dir, &qwen, &e))
        return cli_fail("tokenize", "%s", e.msg);
    int status = 0;
    for (; i < argc && !status; i++) {
        size_t len, n = 0;
        char *text = strcmp(argv[i], "-") ? argv[i] : read_stdin(&len);
        if (!text) {
            status = cli_fail("tokenize", "out of memory");
            break;
        }
        if (text == argv[i]) len = strlen(text);
        int rc;
        int32_t *ids = NULL;
        if (clip && !raw) {
            ids = malloc((size_t)ctx * sizeof *ids);
            rc = ids ? tok_clip_encode(clip, text, len, ids, ctx, &e) : GLIMPSE_ERR_NOMEM;
            n = (size_t)ctx;
        } else {
            rc = clip ? tok_clip_encode_raw(clip, text, len, NULL, 0, &n, &e)
                      : tok_qwen2_encode(qwen, text, len, NULL, 0, &n, &e);
            if (!rc && !(ids = malloc((n + 1) * sizeof *ids))) rc = GLIMPSE_ERR_NOMEM;
            if (!rc) rc = clip ? tok_clip_encode_raw(clip, text, len, ids, n, &n, &e)
                               : tok_qwen2_encode(qwen, text, len, ids, n, &n, &e);
        }
        if (rc) status = cli_fail("tokenize", "%s", rc == GLIMPSE_ERR_NOMEM ? "out of memory" : e.msg);
        else print_ids(ids, n);
        free(ids);
        if (text != argv[i]) free(text);
    }
    tok_clip_free(clip);
    tok_qwen2_free(qwen);
    return status;
}
