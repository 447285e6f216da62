/* test_tok_clip.c — CLIP BPE against tools/tokref/clip_ref.py (tests/data/tok/clip_cases.json),
 * both from the OpenCLIP .gz merges file and from an HF vocab.json + merges.txt pair that the
 * test writes from it, plus context-length handling, errors and throughput. */
#include <cjson/cJSON.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "text/clip_tok.h"
#include "text/tok_file.h"
#include "text/unicode.h"

#define CLIP_GZ GLIMPSE_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"
/* a private scratch folder: tests of several checkouts may run at once */
static char g_hfdir[64] = "/tmp/glimpse_test_tok_clip_XXXXXX";
static const char *hp(const char *name) { /* two slots: some calls take two paths */
    static char buf[2][128];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s%s", g_hfdir, name);
    return buf[k];
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check_cases(const tok_clip *c, const char *label) {
    char *buf;
    size_t len;
    gl_err e;
    /* $GLIMPSE_TOK_CLIP_CASES names a larger one-off case file (see tools/tokref) */
    const char *path = getenv("GLIMPSE_TOK_CLIP_CASES");
    CHECK_EQ_INT(tok_read_file(path ? path : GLIMPSE_SOURCE_DIR "/tests/data/tok/clip_cases.json", 0, &buf, &len, &e), 0);
    cJSON *root = cJSON_ParseWithLength(buf, len);
    gl_free(buf);
    CHECK(root && cJSON_IsArray(root));
    int n_cases = 0, n_bad = 0, n_long = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *text = cJSON_GetObjectItem(it, "text")->valuestring;
        cJSON *exp = cJSON_GetObjectItem(it, "ids");
        size_t ne = (size_t)cJSON_GetArraySize(exp), n = 0;
        int32_t *ids = malloc((ne + 1) * sizeof *ids), ctx[TOK_CLIP_CONTEXT];
        int rc = tok_clip_encode_raw(c, text, strlen(text), ids, ne + 1, &n, &e);
        int ok = rc == 0 && n == ne;
        for (size_t i = 0; ok && i < ne; i++) ok = ids[i] == cJSON_GetArrayItem(exp, (int)i)->valueint;
        if (!ok && n_bad++ < 10) {
            fprintf(stderr, "%s case %d mismatch (rc %d): %s\n  got:", label, n_cases, rc,
                    cJSON_PrintUnformatted(cJSON_GetObjectItem(it, "text")));
            for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  exp: %s\n", cJSON_PrintUnformatted(exp));
        }
        CHECK(ok);
        /* the 77-id form: [sot] + first 75 tokens + [eot], zero padded */
        CHECK_EQ_INT(tok_clip_encode(c, text, strlen(text), ctx, TOK_CLIP_CONTEXT, &e), 0);
        size_t m = ne < 75 ? ne : 75;
        int ok2 = ctx[0] == TOK_CLIP_SOT && ctx[m + 1] == TOK_CLIP_EOT;
        for (size_t i = 0; ok2 && i < m; i++) ok2 = ctx[i + 1] == cJSON_GetArrayItem(exp, (int)i)->valueint;
        for (size_t i = m + 2; ok2 && i < TOK_CLIP_CONTEXT; i++) ok2 = ctx[i] == 0;
        CHECK_MSG(ok2, "%s case %d: 77-token form", label, n_cases);
        n_long += ne > 75;
        free(ids);
        n_cases++;
    }
    fprintf(stderr, "clip (%s): %d cases (%d over 75 tokens), %d mismatches\n", label, n_cases, n_long, n_bad);
    CHECK(n_cases >= 300);
    CHECK(n_long >= 3);
    cJSON_Delete(root);
}

/* Writes the Hugging Face form of the vocabulary (as openai/clip-vit-* ship it) from the .gz. */
static int write_hf(void) {
    char *buf;
    size_t len;
    gl_err e;
    if (tok_read_file(CLIP_GZ, 1, &buf, &len, &e)) return -1;
    if (!mkdtemp(g_hfdir)) return -1;
    FILE *v = fopen(hp("/vocab.json"), "wb"), *m = fopen(hp("/merges.txt"), "wb");
    if (!v || !m) return -1;
    fputs("#version: 0.2\n", m);
    fputc('{', v);
    int id = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < 256; k++) {
            int b = k < 188 ? (k < 94 ? 33 + k : k < 106 ? 161 + k - 94 : 174 + k - 106)
                            : tok_byte_of_unicode(256u + (uint32_t)(k - 188));
            uint8_t u[4];
            int l = tok_utf8_encode(tok_unicode_of_byte((uint8_t)b), u);
            fputs(id ? ",\"" : "\"", v);
            if (b == '"' || b == '\\') fputc('\\', v);
            fwrite(u, 1, (size_t)l, v);
            fprintf(v, "%s\":%d", pass ? "</w>" : "", id++);
        }
    }
    char *p = buf, *end = buf + len;
    for (int line = 0; p < end && line <= 48894; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        if (line > 0) {
            fwrite(p, 1, (size_t)(le - p), m);
            fputc('\n', m);
            fputs(",\"", v);
            for (char *q = p; q < le; q++) {
                if (*q == ' ') continue;
                if (*q == '"' || *q == '\\') fputc('\\', v);
                fputc(*q, v);
            }
            fprintf(v, "\":%d", id++);
        }
        p = le + 1;
    }
    fprintf(v, ",\"<|startoftext|>\":%d,\"<|endoftext|>\":%d}", id, id + 1);
    fclose(v);
    fclose(m);
    gl_free(buf);
    return id + 2 == 49408 ? 0 : -1;
}

static void check_api(const tok_clip *c) {
    gl_err e;
    int32_t ids[80];
    size_t n;
    CHECK_EQ_INT(tok_clip_n_vocab(c), 49408);
    CHECK_EQ_INT(tok_clip_sot(c), 49406);
    CHECK_EQ_INT(tok_clip_eot(c), 49407);
    /* short context lengths still end with eot */
    CHECK_EQ_INT(tok_clip_encode(c, "a photo of a cat", 16, ids, 4, &e), 0);
    CHECK(ids[0] == 49406 && ids[1] == 320 && ids[2] == 1125 && ids[3] == 49407);
    CHECK_EQ_INT(tok_clip_encode(c, "", 0, ids, 2, &e), 0);
    CHECK(ids[0] == 49406 && ids[1] == 49407);
    CHECK_EQ_INT(tok_clip_encode(c, "x", 1, ids, 1, &e), GLIMPSE_ERR_INVALID_ARG);
    CHECK_EQ_INT(tok_clip_encode(c, "\xc3(", 2, ids, 77, &e), GLIMPSE_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "invalid UTF-8 at byte 0") != NULL);
    CHECK_EQ_INT(tok_clip_encode_raw(c, "ab\xed\xa0\x80", 5, ids, 80, &n, &e), GLIMPSE_ERR_INVALID_ARG);
    /* sizing */
    CHECK_EQ_INT(tok_clip_encode_raw(c, "a photo of a cat", 16, NULL, 0, &n, &e), 0);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(tok_clip_encode_raw(c, "a photo of a cat", 16, ids, 2, &n, &e), GLIMPSE_ERR_TOO_LARGE);
    /* regression: ligatures expand (U+FB03 -> "ffi"), then ASCII used to be written past the
     * buffer end (found by a 5000-string differential run under ASan) */
    {
        char *t = malloc(300 * 3 + 3795 + 1); /* 4095 code points: no slack left after rounding */
        size_t l = 0;
        for (int k = 0; k < 300; k++) memcpy(t + l, "\xef\xac\x83", 3), l += 3;
        memset(t + l, 'a', 3795);
        l += 3795;
        CHECK_EQ_INT(tok_clip_encode_raw(c, t, l, NULL, 0, &n, &e), 0);
        CHECK(n > 0);
        free(t);
    }
    /* allocation failures while encoding */
    const char *mix = "It&#39;s a \xef\xac\x81ne caf\xc3\xa9 \xe2\x80\x9cphoto\xe2\x80\x9d, e\xcc\x81 \xce\xa3 12345!!";
    for (long k = 0; k < 40; k++) {
        gl_alloc_fail_after(k);
        int rc = tok_clip_encode(c, mix, strlen(mix), ids, 77, &e);
        gl_alloc_fail_after(-1);
        CHECK_MSG(rc == 0 || rc == GLIMPSE_ERR_NOMEM, "fail at %ld: rc %d", k, rc);
    }
    /* NUL is a control character that ftfy removes */
    CHECK_EQ_INT(tok_clip_encode_raw(c, "a\0b", 3, ids, 80, &n, &e), 0);
    CHECK_EQ_INT(n, 1);
}

static void check_errors(void) {
    gl_err e;
    tok_clip *c = NULL;
    CHECK_EQ_INT(tok_clip_load_gz("/nonexistent.gz", &c, &e), GLIMPSE_ERR_IO);
    CHECK(c == NULL);
    FILE *f = fopen(hp("/bad.txt"), "wb");
    fputs("#version\na b c\n", f);
    fclose(f);
    CHECK_EQ_INT(tok_clip_load_gz(hp("/bad.txt"), &c, &e), GLIMPSE_ERR_FORMAT);
    f = fopen(hp("/bad.txt"), "wb");
    fputs("#version\na b\n", f); /* a tiny but valid merges file */
    fclose(f);
    CHECK_EQ_INT(tok_clip_load_gz(hp("/bad.txt"), &c, &e), 0);
    if (c) {
        int32_t ids[8];
        size_t n;
        CHECK_EQ_INT(tok_clip_n_vocab(c), 515);
        CHECK_EQ_INT(tok_clip_encode_raw(c, "ab abc", 6, ids, 8, &n, &e), 0);
        CHECK(n == 4 && ids[0] == 64 && ids[1] == 256 + 65 && ids[2] == 512 && ids[3] == 256 + 66);
        tok_clip_free(c);
    }
    CHECK_EQ_INT(tok_clip_load_hf(hp("/bad.txt"), hp("/merges.txt"), &c, &e), GLIMPSE_ERR_FORMAT);
    /* allocation failures while loading: NOMEM or success, never a crash or (ASan) leak */
    int n_ok = 0;
    for (long k = 0; k < 40; k++) {
        gl_alloc_fail_after(k);
        int rc = tok_clip_load_gz(hp("/bad.txt"), &c, &e);
        gl_alloc_fail_after(-1);
        CHECK_MSG(rc == 0 || rc == GLIMPSE_ERR_NOMEM, "fail at %ld: rc %d %s", k, rc, e.msg);
        if (!rc) tok_clip_free(c), n_ok++;
        c = NULL;
    }
    CHECK(n_ok > 0);
}

/* A long text in the 77-token form (the tokenizer stops once the context is full). */
static void check_long_input(const tok_clip *c) {
    const char *chunk = "A photo of a cat sitting on a red sofa, it's 12:30 &amp; sunny. Ünïcödé 日本語 ";
    size_t cl = strlen(chunk), total = 0, n;
    char *big = malloc(1 << 21);
    while (total + cl < (1 << 20)) {
        memcpy(big + total, chunk, cl);
        total += cl;
    }
    gl_err e;
    int32_t ids[77];
    double t0 = now_s();
    CHECK_EQ_INT(tok_clip_encode(c, big, total, ids, 77, &e), 0);
    fprintf(stderr, "clip: 77-token encode of 1 MB of text in %.1f ms\n", (now_s() - t0) * 1e3);
    CHECK(ids[0] == TOK_CLIP_SOT && ids[76] == TOK_CLIP_EOT);
    (void)n;
    free(big);
}

int main(void) {
    gl_err e;
    tok_clip *c = NULL;
    double t0 = now_s();
    int rc = tok_clip_load_gz(CLIP_GZ, &c, &e);
    fprintf(stderr, "clip: load_gz %.1f ms\n", (now_s() - t0) * 1e3);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (!c) TEST_DONE();
    check_cases(c, "gz");
    check_api(c);
    check_long_input(c);
    tok_clip_free(c);
    c = NULL;
    CHECK_EQ_INT(write_hf(), 0);
    t0 = now_s();
    rc = tok_clip_load_hf(hp("/vocab.json"), hp("/merges.txt"), &c, &e);
    fprintf(stderr, "clip: load_hf %.1f ms\n", (now_s() - t0) * 1e3);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (c) {
        check_cases(c, "hf");
        tok_clip_free(c);
    }
    check_errors();
    const char *tmp[] = {"/vocab.json", "/merges.txt", "/bad.txt"};
    for (int i = 0; i < 3; i++) remove(hp(tmp[i]));
    rmdir(g_hfdir);
    TEST_DONE();
}
