/* fuzz_tok_clip.c — random bytes into the CLIP tokenizer: never crash; invalid UTF-8 (and only
 * that) gives GLIMPSE_ERR_INVALID_ARG; output always has the [sot ... eot 0...] shape.
 * Vocabulary: $GLIMPSE_CLIP_VOCAB or ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz (run from
 * the repository root). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip_tok.h"
#include "text/unicode.h"

static tok_clip *g_clip;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *p = getenv("GLIMPSE_CLIP_VOCAB");
    gl_err e;
    if (tok_clip_load_gz(p ? p : "../shared/data/clip/bpe_simple_vocab_16e6.txt.gz", &g_clip, &e)) {
        fprintf(stderr, "fuzz_tok_clip: %s\n", e.msg);
        abort();
    }
    return 0;
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = tok_utf8_decode(s + i, n - i, &cp);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t ids[TOK_CLIP_CONTEXT];
    gl_err e;
    int rc = tok_clip_encode(g_clip, (const char *)data, size, ids, TOK_CLIP_CONTEXT, &e);
    int valid = valid_utf8(data, size);
    if (valid ? rc != 0 : rc != GLIMPSE_ERR_INVALID_ARG) abort();
    if (rc) return 0;
    if (ids[0] != TOK_CLIP_SOT) abort();
    int k = 1;
    while (k < TOK_CLIP_CONTEXT && ids[k] != TOK_CLIP_EOT) {
        if (ids[k] < 0 || ids[k] >= 49408) abort();
        k++;
    }
    if (k == TOK_CLIP_CONTEXT) abort();
    for (k++; k < TOK_CLIP_CONTEXT; k++)
        if (ids[k] != 0) abort();
    size_t n;
    if (tok_clip_encode_raw(g_clip, (const char *)data, size, NULL, 0, &n, &e)) abort();
    return 0;
}
