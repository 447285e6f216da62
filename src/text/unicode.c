/* unicode.c — UTF-8 coding, property lookups, Python-compatible lowercasing and NFC.
 * Tables come from unicode_tables.c (generated); see unicode.h for the contracts. */
#include "text/unicode.h"

#include <string.h>

#include "core/common.h"

/* ---- UTF-8 ---- */

int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2) return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        uint32_t v = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        *cp = v;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        uint32_t v = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                     ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (v < 0x10000 || v > 0x10FFFF) return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

int tok_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_ready_len(const uint8_t *s, size_t n) {
    /* only the last 3 bytes can be an unfinished sequence */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking for the lead */
        size_t need = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
        if (need <= back) return n; /* complete (or not a lead byte at all) */
        /* a valid prefix so far? check the second byte's tighter range where it applies */
        if (back >= 2) {
            uint8_t d = s[n - back + 1];
            if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
                (c == 0xF4 && d > 0x8F))
                return n;
        }
        return n - back;
    }
    return n;
}

int tok_cps_reserve(tok_cps *b, size_t n) {
    if (n <= b->cap) return GLIMPSE_OK;
    size_t cap = b->cap ? b->cap : 64, bytes;
    while (cap < n) {
        if (!gl_mul_ok(cap, 2, &cap)) return GLIMPSE_ERR_NOMEM;
    }
    if (!gl_mul_ok(cap, sizeof(uint32_t), &bytes)) return GLIMPSE_ERR_NOMEM;
    uint32_t *v = gl_realloc(b->v, bytes);
    if (!v) return GLIMPSE_ERR_NOMEM;
    b->v = v;
    b->cap = cap;
    return GLIMPSE_OK;
}

int tok_cps_push(tok_cps *b, uint32_t cp) {
    if (b->n == b->cap) {
        int rc = tok_cps_reserve(b, b->n + 1);
        if (rc) return rc;
    }
    b->v[b->n++] = cp;
    return GLIMPSE_OK;
}

void tok_cps_free(tok_cps *b) {
    gl_free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

int tok_utf8_to_cps(const uint8_t *s, size_t n, tok_cps *out, size_t *bad_off) {
    out->n = 0;
    int rc = tok_cps_reserve(out, n + 1); /* never more code points than bytes */
    if (rc) return rc;
    size_t i = 0, k = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII run: the common case */
            out->v[k++] = s[i++];
            continue;
        }
        uint32_t cp;
        int len = tok_utf8_decode(s + i, n - i, &cp);
        if (!len) {
            if (bad_off) *bad_off = i;
            return GLIMPSE_ERR_INVALID_ARG;
        }
        out->v[k++] = cp;
        i += (size_t)len;
    }
    out->n = k;
    return GLIMPSE_OK;
}

/* ---- properties ---- */

bool tok_uni_in(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

/* Binary search over rows of `width` uint32s whose first column is sorted; returns the row or NULL. */
static const uint32_t *find_row(const uint32_t *t, size_t n, size_t width, uint32_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t k = t[mid * width];
        if (key < k) hi = mid;
        else if (key > k) lo = mid + 1;
        else return t + mid * width;
    }
    return NULL;
}

int tok_uni_ccc_of(uint32_t cp) {
    if (cp < 0x300) return 0; /* no combining marks below U+0300 */
    size_t lo = 0, hi = tok_uni_ccc_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = tok_uni_ccc + 3 * mid;
        if (cp < r[0]) hi = mid;
        else if (cp > r[1]) lo = mid + 1;
        else return (int)r[2];
    }
    return 0;
}

static uint32_t lower1(uint32_t cp) {
    if (cp < 0x80) return (cp - 'A' < 26u) ? cp + 32 : cp;
    const uint32_t *r = find_row(tok_uni_lower, tok_uni_lower_n, 2, cp);
    return r ? r[1] : cp;
}

static bool is_cased(uint32_t cp) {
    return tok_uni_in(tok_uni_cased, tok_uni_cased_n, cp);
}
static bool is_case_ignorable(uint32_t cp) {
    return tok_uni_in(tok_uni_case_ignorable, tok_uni_case_ignorable_n, cp);
}

/* CPython's handle_capital_sigma: final form when a cased letter precedes (skipping
 * case-ignorables) and none follows. Each ignorable run is scanned by at most two sigmas. */
static uint32_t sigma_at(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return 0x3C3;
    j = i + 1;
    while (j < n && is_case_ignorable(s[j])) j++;
    return (j == n || !is_cased(s[j])) ? 0x3C2 : 0x3C3;
}

int tok_uni_lower_str(const tok_cps *in, tok_cps *out) {
    out->n = 0;
    int rc = tok_cps_reserve(out, in->n + 1);
    if (rc) return rc;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == 0x130) { /* the only one-to-many lowercase mapping */
            if ((rc = tok_cps_push(out, 'i')) || (rc = tok_cps_push(out, 0x307))) return rc;
            continue;
        }
        c = (c == 0x3A3) ? sigma_at(in->v, in->n, i) : lower1(c);
        if ((rc = tok_cps_push(out, c))) return rc;
    }
    return GLIMPSE_OK;
}

/* ---- NFC ---- */

enum { H_SBASE = 0xAC00, H_LBASE = 0x1100, H_VBASE = 0x1161, H_TBASE = 0x11A7,
       H_LCOUNT = 19, H_VCOUNT = 21, H_TCOUNT = 28, H_NCOUNT = 21 * 28, H_SCOUNT = 19 * 21 * 28 };

bool tok_uni_nfc_quick(const uint32_t *s, size_t n) {
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c < 0x300) {
            last = 0;
            continue;
        }
        int ccc = tok_uni_ccc_of(c);
        if (ccc && last > ccc) return false;
        if (tok_uni_in(tok_uni_nfc_no, tok_uni_nfc_no_n, c) ||
            tok_uni_in(tok_uni_nfc_maybe, tok_uni_nfc_maybe_n, c))
            return false;
        last = ccc;
    }
    return true;
}

static int decompose(uint32_t c, tok_cps *out, int depth) {
    if (c - H_SBASE < (uint32_t)H_SCOUNT) {
        uint32_t si = c - H_SBASE, t = si % H_TCOUNT;
        int rc = tok_cps_push(out, H_LBASE + si / H_NCOUNT);
        if (!rc) rc = tok_cps_push(out, H_VBASE + (si % H_NCOUNT) / H_TCOUNT);
        if (!rc && t) rc = tok_cps_push(out, H_TBASE + t);
        return rc;
    }
    const uint32_t *r = c < 0xC0 ? NULL : find_row(tok_uni_decomp, tok_uni_decomp_n, 3, c);
    if (!r || depth > 8) return tok_cps_push(out, c);
    int rc = decompose(r[1], out, depth + 1);
    if (!rc && r[2]) rc = decompose(r[2], out, depth + 1);
    return rc;
}

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a - H_LBASE < (uint32_t)H_LCOUNT && b - H_VBASE < (uint32_t)H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a - H_SBASE < (uint32_t)H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 &&
        b - H_TBASE - 1 < (uint32_t)(H_TCOUNT - 1))
        return a + (b - H_TBASE);
    size_t lo = 0, hi = tok_uni_comp_n;
    uint64_t key = ((uint64_t)a << 32) | b;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = tok_uni_comp + 3 * mid;
        uint64_t k = ((uint64_t)r[0] << 32) | r[1];
        if (key < k) hi = mid;
        else if (key > k) lo = mid + 1;
        else return r[2];
    }
    return 0;
}

/* Stable sort of v[0..n) by combining class: insertion sort for short runs, counting sort for
 * long ones so that a megabyte of combining marks stays linear. */
static int sort_marks(uint32_t *v, size_t n) {
    if (n < 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            int cx = tok_uni_ccc_of(x);
            size_t j = i;
            while (j > 0 && tok_uni_ccc_of(v[j - 1]) > cx) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return GLIMPSE_OK;
    }
    size_t count[257] = {0}, bytes;
    if (!gl_mul_ok(n, sizeof(uint32_t), &bytes)) return GLIMPSE_ERR_NOMEM;
    uint32_t *tmp = gl_malloc(bytes);
    if (!tmp) return GLIMPSE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) count[tok_uni_ccc_of(v[i]) + 1]++;
    for (int k = 1; k < 257; k++) count[k] += count[k - 1];
    for (size_t i = 0; i < n; i++) tmp[count[tok_uni_ccc_of(v[i])]++] = v[i];
    memcpy(v, tmp, bytes);
    gl_free(tmp);
    return GLIMPSE_OK;
}

int tok_uni_nfc(const tok_cps *in, tok_cps *out) {
    out->n = 0;
    int rc = tok_cps_reserve(out, in->n + 1);
    for (size_t i = 0; i < in->n && !rc; i++) rc = decompose(in->v[i], out, 0);
    if (rc) return rc;
    /* canonical ordering of each run of non-starters */
    uint32_t *v = out->v;
    size_t n = out->n;
    for (size_t i = 0; i < n;) {
        if (tok_uni_ccc_of(v[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && tok_uni_ccc_of(v[j]) != 0) j++;
        if (j - i > 1 && (rc = sort_marks(v + i, j - i))) return rc;
        i = j;
    }
    /* canonical composition, in place (the write index never passes the read index) */
    size_t w = 0, starter = SIZE_MAX;
    int last_class = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = v[i];
        int cc = tok_uni_ccc_of(c);
        if (starter != SIZE_MAX && (last_class < cc || last_class == 0)) {
            /* last_class == 0 here means c is adjacent to the starter */
            uint32_t comp = compose(v[starter], c);
            if (comp) {
                v[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = w;
            last_class = 0;
        } else {
            last_class = cc;
        }
        v[w++] = c;
    }
    out->n = w;
    return GLIMPSE_OK;
}
