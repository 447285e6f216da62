/* zip.c — see zip.h. Format: PKWARE APPNOTE 6.3 (sections 4.3.7 local header, 4.3.12 central
 * directory, 4.3.14-16 zip64 and end records, 4.5.3 zip64 extra field). */
#include "io/zip.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int name_cmp(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, GL_MIN(an, bn));
    return c ? c : (an < bn ? -1 : an > bn);
}

static int entry_cmp(const void *x, const void *y) {
    const io_zip_entry *a = x, *b = y;
    return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* Overrides 32-bit fields that hold 0xFFFFFFFF with the zip64 extra field's values, which appear
 * in a fixed order but only for the fields that overflowed. */
static bool apply_zip64(const uint8_t *extra, size_t len, uint64_t *size, uint64_t *csize, uint64_t *off) {
    size_t p = 0;
    while (p + 4 <= len) {
        uint16_t id = rd16(extra + p), n = rd16(extra + p + 2);
        if (p + 4 + n > len) return false;
        if (id == 1) {
            const uint8_t *q = extra + p + 4;
            size_t k = 0;
            uint64_t *f[3] = {size, csize, off};
            for (int i = 0; i < 3; i++) {
                if (*f[i] != 0xFFFFFFFFu) continue;
                if (k + 8 > n) return false;
                *f[i] = rd64(q + k);
                k += 8;
            }
            return true;
        }
        p += 4 + (size_t)n;
    }
    return *size != 0xFFFFFFFFu && *csize != 0xFFFFFFFFu && *off != 0xFFFFFFFFu;
}

int io_zip_open(io_zip *z, const uint8_t *buf, size_t size, const char *name, gl_err *err) {
    memset(z, 0, sizeof *z);
    if (size < 22) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: truncated zip (%zu bytes)", name, size);
    /* The end record is the last 22 bytes plus a comment of up to 65535 bytes. */
    size_t eocd = SIZE_MAX;
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t p = size - 22 + 1; p-- > lo;)
        if (rd32(buf + p) == SIG_EOCD && p + 22 + rd16(buf + p + 20) == size) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: zip end record not found (truncated?)", name);
    uint64_t n = rd16(buf + eocd + 10), cd_size = rd32(buf + eocd + 12), cd_off = rd32(buf + eocd + 16);
    if (eocd >= 20 && rd32(buf + eocd - 20) == SIG_LOC64) {
        uint64_t r = rd64(buf + eocd - 20 + 8);
        if (size < 56 || r > size - 56 || rd32(buf + r) != SIG_EOCD64)
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: bad zip64 end record", name);
        n = rd64(buf + r + 32);
        cd_size = rd64(buf + r + 40);
        cd_off = rd64(buf + r + 48);
    }
    if (cd_off > size || cd_size > size - cd_off)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: central directory outside the file", name);
    if (n > cd_size / 46) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: zip entry count %llu too large", name,
                                            (unsigned long long)n);
    z->entries = gl_calloc(n ? (size_t)n : 1, sizeof *z->entries);
    if (!z->entries) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    const uint8_t *cd = buf + cd_off, *cd_end = cd + cd_size;
    for (uint64_t i = 0; i < n; i++) {
        if (cd_end - cd < 46 || rd32(cd) != SIG_CENTRAL) goto bad_cd;
        size_t nl = rd16(cd + 28), xl = rd16(cd + 30), cl = rd16(cd + 32);
        if ((size_t)(cd_end - cd) < 46 + nl + xl + cl) goto bad_cd;
        io_zip_entry *e = &z->entries[i];
        e->method = rd16(cd + 10);
        e->comp_size = rd32(cd + 20);
        e->size = rd32(cd + 24);
        uint64_t loff = rd32(cd + 42);
        e->name = (const char *)cd + 46;
        e->name_len = nl;
        if (!apply_zip64(cd + 46 + nl, xl, &e->size, &e->comp_size, &loff)) goto bad_cd;
        if (rd16(cd + 8) & 1) {
            io_zip_free(z);
            return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: encrypted zip entry '%.*s'", name, (int)GL_MIN(nl, 200),
                              (const char *)cd + 46);
        }
        if (rd16(cd + 10) != 0 && rd16(cd + 10) != 8) {
            int method = rd16(cd + 10);
            io_zip_free(z);
            return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: zip entry '%.*s' uses compression method %d", name,
                              (int)GL_MIN(nl, 200), (const char *)cd + 46, method);
        }
        if (e->method == 0 && e->comp_size != e->size) goto bad_cd;
        /* deflate cannot expand more than ~1032:1; a bigger claim would only make us allocate */
        if (e->method == 8 && e->size / 1032 > e->comp_size + 64) goto bad_cd;
        /* The local header repeats the name and has its own extra field; data follows it. */
        if (loff > size || size - loff < 30 || rd32(buf + loff) != SIG_LOCAL) goto bad_entry;
        uint64_t dstart = loff + 30 + rd16(buf + loff + 26) + (uint64_t)rd16(buf + loff + 28);
        if (dstart > size || e->comp_size > size - dstart) goto bad_entry;
        e->data = buf + dstart;
        cd += 46 + nl + xl + cl;
        continue;
    bad_entry:
        io_zip_free(z); /* e is gone; its name points into buf */
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: zip entry '%.*s' points outside the file", name,
                          (int)GL_MIN(nl, 200), (const char *)cd + 46);
    }
    z->n = (size_t)n;
    qsort(z->entries, z->n, sizeof *z->entries, entry_cmp);
    for (size_t i = 1; i < z->n; i++)
        if (!entry_cmp(&z->entries[i - 1], &z->entries[i])) {
            int nl = (int)GL_MIN(z->entries[i].name_len, 200);
            const char *nm = z->entries[i].name;
            io_zip_free(z);
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: duplicate zip entry '%.*s'", name, nl, nm);
        }
    return 0;
bad_cd:
    io_zip_free(z);
    return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: corrupt zip central directory", name);
}

void io_zip_free(io_zip *z) {
    if (!z) return;
    gl_free(z->entries);
    memset(z, 0, sizeof *z);
}

const io_zip_entry *io_zip_find(const io_zip *z, const char *name, size_t name_len) {
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(z->entries[mid].name, z->entries[mid].name_len, name, name_len);
        if (!c) return &z->entries[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int io_zip_inflate(const io_zip_entry *e, uint8_t *dst, const char *name, gl_err *err) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: zlib init failed", name);
    const uint8_t *in = e->data;
    uint64_t in_left = e->comp_size, out_left = e->size;
    uint8_t *out = dst, sink[1];
    int zr = Z_OK;
    /* zlib counts in uInt; feed and drain in chunks so entries over 4 GiB work. */
    while (zr == Z_OK) {
        if (!s.avail_in && in_left) {
            s.next_in = (Bytef *)in;
            s.avail_in = (uInt)GL_MIN(in_left, (uint64_t)1 << 30);
            in += s.avail_in;
            in_left -= s.avail_in;
        }
        if (!s.avail_out && out_left) {
            s.next_out = out;
            s.avail_out = (uInt)GL_MIN(out_left, (uint64_t)1 << 30);
            out += s.avail_out;
            out_left -= s.avail_out;
        } else if (!s.avail_out) {
            /* Output is full: zlib still needs room to reach the end of the stream (an empty
             * entry's final block). Anything it writes here is excess and fails the size check. */
            s.next_out = sink;
            s.avail_out = sizeof sink;
        }
        uInt ai = s.avail_in, ao = s.avail_out;
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && (ai == s.avail_in && ao == s.avail_out)) break; /* no progress possible */
        if (zr == Z_BUF_ERROR) zr = Z_OK;
    }
    bool ok = zr == Z_STREAM_END && s.total_out == e->size && !out_left;
    inflateEnd(&s);
    if (!ok)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: zip entry '%.*s' does not inflate to %llu bytes", name,
                          (int)GL_MIN(e->name_len, 200), e->name, (unsigned long long)e->size);
    return 0;
}
