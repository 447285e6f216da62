/* unicode.h — UTF-8 coding, the few Unicode properties the tokenizers need, NFC, and the
 * generated tables behind them (unicode_tables.c, made by tools/unicode/gen_unicode_tables.py).
 *
 * Everything here is a pure function over const tables: no state, safe from any thread. */
#ifndef TOK_UNICODE_H
#define TOK_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- generated tables (sorted; ranges are inclusive) ---- */
typedef struct tok_uni_entity {
    const char *name;  /* "amp;" or legacy "amp" (no '&') */
    uint32_t cp[2];    /* the replacement: one or two code points (cp[1] == 0 for one) */
} tok_uni_entity;

extern const uint32_t tok_uni_letter[][2];         /* \p{L} */
extern const uint32_t tok_uni_number[][2];         /* \p{N} */
extern const uint32_t tok_uni_decimal[][2];        /* Nd (Python re \d) */
extern const uint32_t tok_uni_white[][2];          /* White_Space (regex \s) */
extern const uint32_t tok_uni_pyspace[][2];        /* Python str.isspace() */
extern const uint32_t tok_uni_cased[][2];          /* Cased (final-sigma rule) */
extern const uint32_t tok_uni_case_ignorable[][2]; /* Case_Ignorable (final-sigma rule) */
extern const uint32_t tok_uni_nfc_no[][2];         /* NFC_Quick_Check = No */
extern const uint32_t tok_uni_nfc_maybe[][2];      /* NFC_Quick_Check = Maybe */
extern const size_t tok_uni_letter_n, tok_uni_number_n, tok_uni_decimal_n, tok_uni_white_n, tok_uni_pyspace_n,
    tok_uni_cased_n, tok_uni_case_ignorable_n, tok_uni_nfc_no_n, tok_uni_nfc_maybe_n;
extern const uint32_t tok_uni_lower[];   /* pairs (cp, lowercase) for Python str.lower() */
extern const uint32_t tok_uni_ccc[];     /* triples (first, last, combining class) */
extern const uint32_t tok_uni_decomp[];  /* triples (cp, d1, d2 or 0): canonical, one level */
extern const uint32_t tok_uni_comp[];    /* triples (a, b, composite), sorted by (a, b) */
extern const uint32_t tok_uni_width[];   /* triples (cp, r1, r2 or 0): ftfy width fix */
extern const uint32_t tok_uni_html_invalid_charref[]; /* pairs (number, replacement) */
extern const uint32_t tok_uni_html_invalid_cp[];      /* numbers html.unescape drops */
extern const size_t tok_uni_lower_n, tok_uni_ccc_n, tok_uni_decomp_n, tok_uni_comp_n,
    tok_uni_width_n, tok_uni_html_invalid_charref_n, tok_uni_html_invalid_cp_n;
extern const tok_uni_entity tok_uni_entities[]; /* sorted by name (bytewise) */
extern const size_t tok_uni_entities_n;

/* ---- UTF-8 ---- */

/* Decodes one strict UTF-8 sequence (no overlongs, surrogates or values above U+10FFFF).
 * Returns its length 1..4, or 0 if s[0..n) does not start with a valid sequence (n >= 1). */
int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encodes cp (<= U+10FFFF) into out; returns 1..4. */
int tok_utf8_encode(uint32_t cp, uint8_t out[4]);

/* For streaming decoded tokens: the length of the longest prefix of s[0..n) that does not end
 * inside a UTF-8 sequence which more bytes could still complete. Emit that prefix and keep the
 * rest for the next token; invalid bytes are not held back (the caller decides what to print). */
size_t tok_utf8_ready_len(const uint8_t *s, size_t n);

/* A growable code point array; free with tok_cps_free. */
typedef struct tok_cps {
    uint32_t *v;
    size_t n, cap;
} tok_cps;
int tok_cps_reserve(tok_cps *b, size_t n); /* capacity >= n; GLIMPSE_OK or GLIMPSE_ERR_NOMEM */
int tok_cps_push(tok_cps *b, uint32_t cp);
void tok_cps_free(tok_cps *b);

/* Decodes UTF-8 text into out (replacing its contents). Invalid UTF-8 gives
 * GLIMPSE_ERR_INVALID_ARG and *bad_off (if not NULL) the offset of the first bad byte. */
int tok_utf8_to_cps(const uint8_t *s, size_t n, tok_cps *out, size_t *bad_off);

/* ---- properties ---- */
bool tok_uni_in(const uint32_t (*r)[2], size_t n, uint32_t cp);
static inline bool tok_uni_is_letter(uint32_t cp) {
    if (cp < 0x80) return ((cp | 0x20) - 'a') < 26u;
    return tok_uni_in(tok_uni_letter, tok_uni_letter_n, cp);
}
static inline bool tok_uni_is_number(uint32_t cp) {
    if (cp < 0x80) return cp - '0' < 10u;
    return tok_uni_in(tok_uni_number, tok_uni_number_n, cp);
}
static inline bool tok_uni_is_white(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp - 9u) < 5u;
    return tok_uni_in(tok_uni_white, tok_uni_white_n, cp);
}
static inline bool tok_uni_is_pyspace(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp - 9u) < 5u || (cp - 0x1Cu) < 4u;
    return tok_uni_in(tok_uni_pyspace, tok_uni_pyspace_n, cp);
}
int tok_uni_ccc_of(uint32_t cp);

/* Python str.lower() of a whole string, including U+0130 -> "i\u0307" and the final-sigma rule.
 * in and out must differ. */
int tok_uni_lower_str(const tok_cps *in, tok_cps *out);

/* True if NFC(s) == s is certain by the quick-check (no No/Maybe characters, ordered marks). */
bool tok_uni_nfc_quick(const uint32_t *s, size_t n);
/* out = NFC(in); in and out must differ. Linear in the input length (long runs of combining
 * marks are sorted with a counting sort, not insertion sort). */
int tok_uni_nfc(const tok_cps *in, tok_cps *out);

#endif
