/* tok_file.c — whole-file reads (with gzip), a flat JSON object parser, and the GPT-2 byte
 * <-> unicode mapping used by both byte-level BPE vocabularies. */
#include "text/tok_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "text/unicode.h"

/* Plain files: one allocation of the exact size, one read. */
static int read_plain(const char *path, char **buf, size_t *len, gl_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return gl_err_set(err, GLIMPSE_ERR_IO, "%s: cannot seek", path);
    }
    char *b = gl_malloc((size_t)size + 1);
    if (!b) {
        fclose(f);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, (size_t)size, f);
    int bad = ferror(f) || got != (size_t)size;
    fclose(f);
    if (bad) {
        gl_free(b);
        return gl_err_set(err, GLIMPSE_ERR_IO, "%s: read error", path);
    }
    b[got] = 0;
    *buf = b;
    *len = got;
    return GLIMPSE_OK;
}

int tok_read_file(const char *path, int gz, char **buf, size_t *len, gl_err *err) {
    if (!gz) return read_plain(path, buf, len, err);
    /* gzread reads plain files transparently too, so a .gz path may hold either. */
    gzFile f = gzopen(path, "rb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = gl_malloc(cap);
    if (!b) {
        gzclose(f);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (cap - n < 2) {
            size_t nc;
            char *nb = gl_mul_ok(cap, 2, &nc) ? gl_realloc(b, nc) : NULL;
            if (!nb) {
                gl_free(b);
                gzclose(f);
                return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap = nc;
        }
        size_t want = cap - n - 1;
        if (want > (1u << 30)) want = 1u << 30;
        int r = gzread(f, b + n, (unsigned)want);
        if (r < 0) {
            gl_free(b);
            gzclose(f);
            return gl_err_set(err, gz ? GLIMPSE_ERR_FORMAT : GLIMPSE_ERR_IO, "%s: read error", path);
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    gzclose(f);
    b[n] = 0;
    *buf = b;
    *len = n;
    return GLIMPSE_OK;
}

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

static int hex4(const char *s, uint32_t *v) {
    uint32_t x = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

/* Parses a JSON string at s[i] == '"' into key (cap bytes); returns the index after the
 * closing quote, or 0 on error. */
static size_t parse_string(const char *s, size_t i, size_t n, char *key, size_t cap, size_t *klen) {
    size_t k = 0;
    i++;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            *klen = k;
            return i + 1;
        }
        if (c < 0x20) return 0;
        if (k + 4 > cap) return 0;
        if (c != '\\') {
            if (c >= 0x80) { /* copy one validated UTF-8 sequence */
                uint32_t cp;
                int l = tok_utf8_decode((const uint8_t *)s + i, n - i, &cp);
                if (!l) return 0;
                memcpy(key + k, s + i, (size_t)l);
                k += (size_t)l;
                i += (size_t)l;
            } else {
                key[k++] = (char)c;
                i++;
            }
            continue;
        }
        if (i + 1 >= n) return 0;
        char e = s[i + 1];
        i += 2;
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'u':
            if (i + 4 > n || hex4(s + i, &cp)) return 0;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* surrogate pair */
                uint32_t lo;
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' || hex4(s + i + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return 0;
            }
            break;
        default: return 0;
        }
        k += (size_t)tok_utf8_encode(cp, (uint8_t *)key + k);
    }
    return 0;
}

int tok_json_flat_object(const char *s, size_t n, tok_json_member_fn fn, void *ud, const char *name,
                         gl_err *err) {
    char key[1024];
    size_t i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{') return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: expected '{'", name);
    i = skip_ws(s, i + 1, n);
    if (i < n && s[i] == '}') {
        i = skip_ws(s, i + 1, n);
        goto end;
    }
    for (;;) {
        size_t klen;
        if (i >= n || s[i] != '"') break;
        size_t j = parse_string(s, i, n, key, sizeof key, &klen);
        if (!j) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: bad string at byte %zu", name, i);
        i = skip_ws(s, j, n);
        if (i >= n || s[i] != ':') break;
        i = skip_ws(s, i + 1, n);
        int neg = 0;
        if (i < n && s[i] == '-') {
            neg = 1;
            i++;
        }
        if (i >= n || s[i] < '0' || s[i] > '9')
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: expected an integer at byte %zu", name, i);
        int64_t v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: integer too large at byte %zu", name, i);
            v = v * 10 + (s[i++] - '0');
        }
        if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: expected an integer at byte %zu", name, i);
        int rc = fn(ud, key, klen, neg ? -v : v);
        if (rc) return rc;
        i = skip_ws(s, i, n);
        if (i < n && s[i] == ',') {
            i = skip_ws(s, i + 1, n);
            continue;
        }
        if (i < n && s[i] == '}') {
            i = skip_ws(s, i + 1, n);
            goto end;
        }
        break;
    }
    return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: malformed object at byte %zu", name, i);
end:
    if (i != n) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: trailing data at byte %zu", name, i);
    return GLIMPSE_OK;
}

/* bytes_to_unicode: the 188 printable Latin-1 bytes (33..126, 161..172, 174..255) map to
 * themselves; the other 68 map to 256, 257, ... in byte order. */
static int printable(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
}

/* The 68 non-printable bytes are 0..32, 127..160 and 173, numbered 0..67 in that order. */
uint32_t tok_unicode_of_byte(uint8_t b) {
    if (printable(b)) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 256u + 33 + (b - 127u);
    return 256u + 67; /* 173, soft hyphen */
}

int tok_byte_of_unicode(uint32_t cp) {
    if (cp < 256) return printable(cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(127 + k - 33);
    return k == 67 ? 173 : -1;
}
