/* fuzz_tok_qwen2.c — random bytes into the Qwen2 tokenizer: never crash; invalid UTF-8 (and
 * only that) gives GLIMPSE_ERR_INVALID_ARG; ids are in range and decode back to NFC(text).
 * Vocabulary: $GLIMPSE_QWEN2_DIR or ../shared/data/qwen2 (run from the repository root). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/qwen2_tok.h"
#include "text/unicode.h"

static tok_qwen2 *g_q;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *p = getenv("GLIMPSE_QWEN2_DIR");
    gl_err e;
    if (tok_qwen2_load(p ? p : "../shared/data/qwen2", &g_q, &e)) {
        fprintf(stderr, "fuzz_tok_qwen2: %s\n", e.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gl_err e;
    size_t n = 0;
    tok_cps cps = {0};
    int valid = tok_utf8_to_cps(data, size, &cps, NULL) == 0;
    int rc = tok_qwen2_encode(g_q, (const char *)data, size, NULL, 0, &n, &e);
    if (valid ? rc != 0 : rc != GLIMPSE_ERR_INVALID_ARG) abort();
    if (rc) {
        tok_cps_free(&cps);
        return 0;
    }
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    size_t n2;
    if (tok_qwen2_encode(g_q, (const char *)data, size, ids, n, &n2, &e) || n2 != n) abort();
    /* Decoding gives back the text, NFC-normalised outside special tokens; compare lengths
     * only when NFC is the identity (quick check passes). */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (!tok_qwen2_token_bytes(g_q, ids[i], &l)) abort();
        total += l;
    }
    if (tok_uni_nfc_quick(cps.v, cps.n) && total != size) abort();
    free(ids);
    tok_cps_free(&cps);
    return 0;
}
