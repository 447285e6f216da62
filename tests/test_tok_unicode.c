/* test_tok_unicode.c — NFC and Python-style lowercasing against Python's unicodedata /
 * str.lower() (tests/data/tok/unicode_cases.txt from tools/tokref/unicode_ref.py), UTF-8
 * decoding edge cases, the streaming hold-back helper and the GPT-2 byte mapping. */
#include "test.h"
#include "text/tok_file.h"
#include "text/unicode.h"

static void parse_hex(char *s, tok_cps *out) {
    out->n = 0;
    for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " ")) tok_cps_push(out, (uint32_t)strtoul(tok, NULL, 16));
}

static void check_cases(void) {
    FILE *f = fopen(GLIMPSE_SOURCE_DIR "/tests/data/tok/unicode_cases.txt", "rb");
    CHECK(f != NULL);
    if (!f) return;
    char line[4096];
    int n_nfc = 0, n_lower = 0, bad = 0, n_quick_wrong = 0;
    tok_cps in = {0}, want = {0}, got = {0};
    while (fgets(line, sizeof line, f)) {
        char *kind = strtok(line, "\t"), *a = strtok(NULL, "\t"), *b = strtok(NULL, "\t\n");
        if (!kind || !a) continue;
        char bb[4096];
        snprintf(bb, sizeof bb, "%s", b ? b : "");
        parse_hex(a, &in);
        parse_hex(bb, &want);
        int is_nfc = !strcmp(kind, "nfc");
        CHECK_EQ_INT(is_nfc ? tok_uni_nfc(&in, &got) : tok_uni_lower_str(&in, &got), 0);
        int ok = got.n == want.n && !memcmp(got.v, want.v, got.n * sizeof *got.v);
        if (!ok && bad++ < 10) {
            fprintf(stderr, "%s mismatch for", kind);
            for (size_t i = 0; i < in.n; i++) fprintf(stderr, " %X", in.v[i]);
            fprintf(stderr, ": got");
            for (size_t i = 0; i < got.n; i++) fprintf(stderr, " %X", got.v[i]);
            fprintf(stderr, "\n");
        }
        CHECK(ok);
        /* the quick check may say "maybe" for normalized text, but never "yes" for text NFC changes */
        if (is_nfc) {
            int same = want.n == in.n && !memcmp(want.v, in.v, in.n * sizeof *in.v);
            if (!same && tok_uni_nfc_quick(in.v, in.n)) n_quick_wrong++;
            n_nfc++;
        } else {
            n_lower++;
        }
    }
    fclose(f);
    fprintf(stderr, "unicode: %d nfc and %d lower cases, %d mismatches\n", n_nfc, n_lower, bad);
    CHECK(n_nfc > 2000 && n_lower > 200);
    CHECK_EQ_INT(n_quick_wrong, 0);
    tok_cps_free(&in);
    tok_cps_free(&want);
    tok_cps_free(&got);
}

static void check_utf8(void) {
    uint32_t cp;
    /* boundaries of each length, and the classic invalid forms */
    CHECK(tok_utf8_decode((const uint8_t *)"\x7f", 1, &cp) == 1 && cp == 0x7F);
    CHECK(tok_utf8_decode((const uint8_t *)"\xc2\x80", 2, &cp) == 2 && cp == 0x80);
    CHECK(tok_utf8_decode((const uint8_t *)"\xdf\xbf", 2, &cp) == 2 && cp == 0x7FF);
    CHECK(tok_utf8_decode((const uint8_t *)"\xe0\xa0\x80", 3, &cp) == 3 && cp == 0x800);
    CHECK(tok_utf8_decode((const uint8_t *)"\xef\xbf\xbf", 3, &cp) == 3 && cp == 0xFFFF);
    CHECK(tok_utf8_decode((const uint8_t *)"\xf0\x90\x80\x80", 4, &cp) == 4 && cp == 0x10000);
    CHECK(tok_utf8_decode((const uint8_t *)"\xf4\x8f\xbf\xbf", 4, &cp) == 4 && cp == 0x10FFFF);
    const char *bad[] = {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80",
                         "\xed\xbf\xbf", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                         "\xff", "\xfe", "\xc2", "\xe2\x82", "\xf0\x9f\x98", "\xc2\x41"};
    for (size_t i = 0; i < GL_ARRAY_LEN(bad); i++)
        CHECK_MSG(tok_utf8_decode((const uint8_t *)bad[i], strlen(bad[i]), &cp) == 0, "bad[%zu]", i);
    uint8_t buf[4];
    for (uint32_t c = 0; c <= 0x10FFFF; c += (c < 0x20000 ? 1 : 97)) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        int l = tok_utf8_encode(c, buf);
        CHECK(tok_utf8_decode(buf, (size_t)l, &cp) == l && cp == c);
    }
    size_t off = 0;
    tok_cps v = {0};
    CHECK_EQ_INT(tok_utf8_to_cps((const uint8_t *)"ab\xe2\x82\xac\xff", 6, &v, &off), GLIMPSE_ERR_INVALID_ARG);
    CHECK_EQ_INT(off, 5);
    tok_cps_free(&v);
}

static void check_stream(void) {
    struct { const char *s; size_t want; } t[] = {
        {"abc", 3}, {"ab\xc3", 2}, {"ab\xc3\xa9", 4}, {"\xe6\x97", 0}, {"\xe6\x97\xa5", 3}, {"x\xf0\x9f\x98", 1},
        {"x\xf0\x9f\x98\x80", 5}, {"\xf0", 0}, {"\xff", 1}, {"a\x80", 2}, {"\xe0\x80", 2}, {"\xed\xa0", 2}, {"", 0},
    };
    for (size_t i = 0; i < GL_ARRAY_LEN(t); i++)
        CHECK_MSG(tok_utf8_ready_len((const uint8_t *)t[i].s, strlen(t[i].s)) == t[i].want, "stream case %zu", i);
}

static void check_bytes(void) {
    int seen[512] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t u = tok_unicode_of_byte((uint8_t)b);
        CHECK(u < 512 && !seen[u]);
        if (u < 512) seen[u] = 1;
        CHECK_EQ_INT(tok_byte_of_unicode(u), b);
    }
    CHECK_EQ_INT(tok_unicode_of_byte(' '), 0x120); /* GPT-2's 'Ġ' */
    CHECK_EQ_INT(tok_unicode_of_byte('\n'), 0x10A); /* 'Ċ' */
    CHECK_EQ_INT(tok_byte_of_unicode(0x144), -1);
    CHECK_EQ_INT(tok_byte_of_unicode(0xAD), -1);
}

int main(void) {
    check_cases();
    check_utf8();
    check_stream();
    check_bytes();
    TEST_DONE();
}
