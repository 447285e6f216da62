/* test_tok_qwen2.c — Qwen2 BPE against transformers.js ids (tests/data/tok/qwen2_cases.json,
 * made by tools/tokref/qwen2_ref.mjs from the same vocabulary files), plus error paths,
 * two-call sizing, decoding, load time and throughput. */
#include <cjson/cJSON.h>
#include <time.h>

#include "test.h"
#include <unistd.h>
#include "text/qwen2_tok.h"
#include "text/tok_file.h"
#include "text/unicode.h"

#define QWEN2_DIR GLIMPSE_SOURCE_DIR "/../shared/data/qwen2"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check_cases(const tok_qwen2 *q) {
    char *buf;
    size_t len;
    gl_err e;
    /* $GLIMPSE_TOK_QWEN2_CASES names a larger one-off case file (see tools/tokref) */
    const char *path = getenv("GLIMPSE_TOK_QWEN2_CASES");
    CHECK_EQ_INT(tok_read_file(path ? path : GLIMPSE_SOURCE_DIR "/tests/data/tok/qwen2_cases.json", 0, &buf, &len, &e), 0);
    cJSON *root = cJSON_ParseWithLength(buf, len);
    gl_free(buf);
    CHECK(root && cJSON_IsArray(root));
    int n_cases = 0, n_bad = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, root) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        cJSON *exp = cJSON_GetObjectItem(c, "ids");
        size_t ne = (size_t)cJSON_GetArraySize(exp), n = 0, tl = strlen(text);
        int32_t *ids = malloc((ne + 1) * sizeof *ids);
        int rc = tok_qwen2_encode(q, text, tl, ids, ne + 1, &n, &e);
        int ok = rc == 0 && n == ne;
        for (size_t i = 0; ok && i < ne; i++) ok = ids[i] == cJSON_GetArrayItem(exp, (int)i)->valueint;
        if (!ok && n_bad++ < 10) {
            fprintf(stderr, "case %d mismatch: %s\n  got:", n_cases, cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "text")));
            for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  exp: %s\n", cJSON_PrintUnformatted(exp));
        }
        CHECK(ok);
        /* decoding: concatenated token bytes reproduce the NFC form of the text */
        if (ok) {
            size_t total = 0, l;
            char *dec = malloc(tl * 3 + 16);
            for (size_t i = 0; i < n; i++) {
                const uint8_t *b = tok_qwen2_token_bytes(q, ids[i], &l);
                CHECK(b != NULL);
                if (b && total + l <= tl * 3 + 16) {
                    memcpy(dec + total, b, l);
                    total += l;
                }
            }
            /* compare with NFC(text), encoded back to UTF-8 */
            tok_cps a = {0}, b = {0};
            CHECK_EQ_INT(tok_utf8_to_cps((const uint8_t *)text, tl, &a, NULL), 0);
            CHECK_EQ_INT(tok_uni_nfc(&a, &b), 0);
            char *want = malloc(4 * b.n + 1);
            size_t wl = 0;
            for (size_t i = 0; i < b.n; i++) wl += (size_t)tok_utf8_encode(b.v[i], (uint8_t *)want + wl);
            CHECK_MSG(total == wl && !memcmp(dec, want, wl), "decode of case %d", n_cases);
            free(want);
            tok_cps_free(&a);
            tok_cps_free(&b);
            free(dec);
        }
        free(ids);
        n_cases++;
    }
    fprintf(stderr, "qwen2: %d cases, %d mismatches\n", n_cases, n_bad);
    CHECK(n_cases >= 300);
    cJSON_Delete(root);
}

static void check_api(const tok_qwen2 *q) {
    gl_err e;
    size_t n = 99;
    int32_t ids[4];
    /* size query, then too small, then exact */
    const char *t = "Hello world, this is a test";
    CHECK_EQ_INT(tok_qwen2_encode(q, t, strlen(t), NULL, 0, &n, &e), 0);
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(tok_qwen2_encode(q, t, strlen(t), ids, 4, &n, &e), GLIMPSE_ERR_TOO_LARGE);
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(ids[0], 9707);
    CHECK_EQ_INT(tok_qwen2_encode(q, "", 0, NULL, 0, &n, &e), 0);
    CHECK_EQ_INT(n, 0);
    /* invalid UTF-8: overlong, surrogate, truncated, stray continuation, > U+10FFFF */
    const char *bad[] = {"\xc0\xaf", "a\xed\xa0\x80", "abc\xe2\x82", "\x80", "\xf4\x90\x80\x80", "\xff"};
    for (size_t i = 0; i < GL_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(tok_qwen2_encode(q, bad[i], strlen(bad[i]), ids, 4, &n, &e), GLIMPSE_ERR_INVALID_ARG);
        CHECK(strstr(e.msg, "invalid UTF-8") != NULL);
    }
    CHECK_EQ_INT(tok_qwen2_encode(NULL, "a", 1, ids, 4, &n, &e), GLIMPSE_ERR_INVALID_ARG);
    /* embedded NUL is just a byte */
    CHECK_EQ_INT(tok_qwen2_encode(q, "a\0b", 3, ids, 4, &n, &e), 0);
    CHECK_EQ_INT(n, 3);
    /* special tokens and byte decoding */
    CHECK_EQ_INT(tok_qwen2_token_id(q, "<|im_end|>", 10), 151645);
    CHECK_EQ_INT(tok_qwen2_n_vocab(q), 151646);
    size_t l;
    const uint8_t *b = tok_qwen2_token_bytes(q, 151644, &l);
    CHECK(b && l == 12 && !memcmp(b, "<|im_start|>", 12));
    CHECK(tok_qwen2_token_bytes(q, -1, &l) == NULL);
    CHECK(tok_qwen2_token_bytes(q, 151646, &l) == NULL);
    b = tok_qwen2_token_bytes(q, 220, &l);
    CHECK(b && l == 1 && b[0] == ' ');
    /* allocation failures while encoding: NOMEM or success, never a crash or leak */
    const char *mix = "<|im_start|>user\nCafe\xcc\x81 12345 \xe6\x97\xa5\xe6\x9c\xac aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa<|im_end|>";
    for (long k = 0; k < 40; k++) {
        gl_alloc_fail_after(k);
        int rc = tok_qwen2_encode(q, mix, strlen(mix), NULL, 0, &n, &e);
        gl_alloc_fail_after(-1);
        CHECK_MSG(rc == 0 || rc == GLIMPSE_ERR_NOMEM, "fail at %ld: rc %d", k, rc);
    }
}

/* a private scratch folder: tests of several checkouts may run at once */
static char g_dir[64] = "/tmp/glimpse_test_tok_qwen2_XXXXXX";
static const char *tp(const char *name) {
    static char buf[128];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

/* 256 byte tokens (id = byte) and "ab" = 256 */
static void write_small_vocab(void) {
    FILE *f = fopen(tp("vocab.json"), "wb");
    fputs("{", f);
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        int ul = tok_utf8_encode(tok_unicode_of_byte((uint8_t)b), u);
        fprintf(f, "%s\"", b ? "," : "");
        if (b == '"' || b == '\\') fputc('\\', f);
        fwrite(u, 1, (size_t)ul, f);
        fprintf(f, "\": %d", b);
    }
    fputs(", \"ab\": 256}", f);
    fclose(f);
}

static void check_errors(void) {
    gl_err e;
    tok_qwen2 *q = NULL;
    CHECK_EQ_INT(tok_qwen2_load("/nonexistent-dir", &q, &e), GLIMPSE_ERR_IO);
    CHECK(q == NULL);
    CHECK_EQ_INT(tok_qwen2_load(NULL, &q, &e), GLIMPSE_ERR_INVALID_ARG);
    /* merges that name unknown tokens are refused */
    const char *dir = g_dir;
    write_small_vocab();
    FILE *f;
    f = fopen(tp("merges.txt"), "wb");
    fputs("#version: 0.2\na b\n", f);
    fclose(f);
    CHECK_EQ_INT(tok_qwen2_load(dir, &q, &e), 0);
    if (q) {
        int32_t ids[8];
        size_t n;
        CHECK_EQ_INT(tok_qwen2_encode(q, "abab", 4, ids, 8, &n, &e), 0);
        CHECK(n == 2 && ids[0] == 256 && ids[1] == 256);
        tok_qwen2_free(q);
        q = NULL;
    }
    f = fopen(tp("merges.txt"), "wb");
    fputs("#version: 0.2\na b\nab c\n", f);
    fclose(f);
    CHECK_EQ_INT(tok_qwen2_load(dir, &q, &e), GLIMPSE_ERR_FORMAT);
    CHECK(strstr(e.msg, "merges.txt:3") != NULL);
    f = fopen(tp("merges.txt"), "wb");
    fputs("a b c\n", f);
    fclose(f);
    CHECK_EQ_INT(tok_qwen2_load(dir, &q, &e), GLIMPSE_ERR_FORMAT);
    f = fopen(tp("vocab.json"), "wb");
    fputs("{\"a\": 1, \"b\": [2]}", f);
    fclose(f);
    CHECK_EQ_INT(tok_qwen2_load(dir, &q, &e), GLIMPSE_ERR_FORMAT);
    /* an allocation failing at each point of a small load is reported as NOMEM, never a crash
     * (and, under ASan, never a leak) */
    f = fopen(tp("merges.txt"), "wb");
    fputs("#version: 0.2\na b\n", f);
    fclose(f);
    f = fopen(tp("added_tokens.json"), "wb");
    fputs("{\"<|x|>\": 300, \"<|y|>\": 301}", f);
    fclose(f);
    write_small_vocab();
    int n_ok = 0;
    for (long k = 0; k < 80; k++) {
        gl_alloc_fail_after(k);
        int rc = tok_qwen2_load(dir, &q, &e);
        gl_alloc_fail_after(-1);
        CHECK_MSG(rc == 0 || rc == GLIMPSE_ERR_NOMEM, "fail at %ld: rc %d %s", k, rc, e.msg);
        if (rc == 0) {
            n_ok++;
            int32_t ids[8];
            size_t n;
            CHECK_EQ_INT(tok_qwen2_encode(q, "ab<|y|>b", 8, ids, 8, &n, &e), 0);
            CHECK(n == 3 && ids[0] == 256 && ids[1] == 301 && ids[2] == 'b');
            tok_qwen2_free(q);
            q = NULL;
        }
    }
    CHECK(n_ok > 0);
    remove(tp("added_tokens.json"));
    f = fopen(tp("vocab.json"), "wb");
    fputs("{\"a\": 0}", f);
    fclose(f);
    CHECK(tok_qwen2_load(dir, &q, &e) != 0); /* missing byte tokens */
    remove(tp("vocab.json"));
    remove(tp("merges.txt"));
    rmdir(g_dir);
}

/* Inputs that would be quadratic in a naive implementation finish quickly (timings printed;
 * load time and throughput are measured by bench/bench_tok). */
static void check_long_inputs(void) {
    gl_err e;
    tok_qwen2 *q = NULL;
    CHECK_EQ_INT(tok_qwen2_load(QWEN2_DIR, &q, &e), 0);
    if (!q) return;
    size_t n;
    char *big = malloc(1 << 18);
    /* pathological inputs stay fast: one long letter run, one long run of combining marks */
    memset(big, 'a', 1 << 18);
    double t0 = now_s();
    CHECK_EQ_INT(tok_qwen2_encode(q, big, 1 << 18, NULL, 0, &n, &e), 0);
    fprintf(stderr, "qwen2: 256 KiB of 'a' (one pre-token) in %.1f ms (%zu tokens)\n", (now_s() - t0) * 1e3, n);
    big[0] = 'e';
    for (size_t i = 1; i + 2 <= (1 << 18); i += 2) memcpy(big + i, "\xcc\x81", 2); /* U+0301 */
    t0 = now_s();
    CHECK_EQ_INT(tok_qwen2_encode(q, big, (1 << 18) - 1, NULL, 0, &n, &e), 0);
    fprintf(stderr, "qwen2: e + 128k U+0301 (NFC, one long mark run) in %.1f ms (%zu tokens)\n",
            (now_s() - t0) * 1e3, n);
    free(big);
    tok_qwen2_free(q);
}

int main(void) {
    gl_err e;
    tok_qwen2 *q = NULL;
    int rc = tok_qwen2_load(QWEN2_DIR, &q, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (!q) TEST_DONE();
    check_cases(q);
    check_api(q);
    tok_qwen2_free(q);
    CHECK(mkdtemp(g_dir) != NULL);
    check_errors();
    check_long_inputs();
    TEST_DONE();
}
