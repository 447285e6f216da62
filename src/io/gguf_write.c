/* gguf_write.c — GGUF v3 writer (see gguf.h). KVs are serialized as they are set; tensors are
 * laid out in the order added, each at an aligned offset of the data section. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "io/gguf.h"

typedef struct gw_tensor {
    char *name;
    uint32_t ggml_type;
    int ndim;
    int64_t shape[GL_MAX_DIMS];
    const void *data;
    size_t nbytes;
    uint64_t offset;
} gw_tensor;

struct io_gguf_writer {
    uint32_t alignment;
    uint8_t *kv; /* serialized KV section */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;
    gw_tensor *t;
    size_t n_t, cap_t;
    uint64_t data_len;
};

io_gguf_writer *io_gguf_writer_new(uint32_t alignment) {
    if (!alignment) alignment = 32;
    if (alignment & (alignment - 1)) return NULL;
    io_gguf_writer *gw = gl_calloc(1, sizeof *gw);
    if (gw) gw->alignment = alignment;
    return gw;
}

void io_gguf_writer_free(io_gguf_writer *gw) {
    if (!gw) return;
    for (uint64_t i = 0; i < gw->n_kv; i++) gl_free(gw->keys[i]);
    for (size_t i = 0; i < gw->n_t; i++) gl_free(gw->t[i].name);
    gl_free(gw->keys);
    gl_free(gw->kv);
    gl_free(gw->t);
    gl_free(gw);
}

static bool put(io_gguf_writer *gw, const void *p, size_t n) {
    if (gw->kv_len + n > gw->kv_cap) {
        size_t nc = gw->kv_cap ? gw->kv_cap : 256;
        while (nc < gw->kv_len + n) nc *= 2;
        uint8_t *q = gl_realloc(gw->kv, nc);
        if (!q) return false;
        gw->kv = q;
        gw->kv_cap = nc;
    }
    memcpy(gw->kv + gw->kv_len, p, n);
    gw->kv_len += n;
    return true;
}
static bool put_le(io_gguf_writer *gw, uint64_t v, int n) {
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    return put(gw, b, (size_t)n);
}
static bool put_str(io_gguf_writer *gw, const char *s) {
    size_t n = strlen(s);
    return put_le(gw, n, 8) && put(gw, s, n);
}

/* Starts a KV: refuses repeated keys, writes key and type. On failure the buffer is rolled back. */
static int begin_kv(io_gguf_writer *gw, const char *key, io_gguf_type t, size_t *mark) {
    if (!key) return GLIMPSE_ERR_INVALID_ARG;
    for (uint64_t i = 0; i < gw->n_kv; i++)
        if (!strcmp(gw->keys[i], key)) return GLIMPSE_ERR_INVALID_ARG;
    *mark = gw->kv_len;
    if (!put_str(gw, key) || !put_le(gw, (uint64_t)t, 4)) return GLIMPSE_ERR_NOMEM;
    return 0;
}
static int end_kv(io_gguf_writer *gw, const char *key, size_t mark, bool ok) {
    char **nk = ok ? gl_realloc(gw->keys, sizeof *gw->keys * (size_t)(gw->n_kv + 1)) : NULL;
    char *k = nk ? gl_strdup(key) : NULL;
    if (nk) gw->keys = nk;
    if (!k) {
        gw->kv_len = mark;
        return GLIMPSE_ERR_NOMEM;
    }
    gw->keys[gw->n_kv++] = k;
    return 0;
}

static bool put_scalar_int(io_gguf_writer *gw, io_gguf_type t, int64_t v) {
    size_t s = io_gguf_type_size(t);
    return s && t != IO_GGUF_F32 && t != IO_GGUF_F64 && put_le(gw, (uint64_t)v, (int)s);
}

int io_gguf_writer_set_int(io_gguf_writer *gw, const char *key, io_gguf_type type, int64_t v) {
    if (type == IO_GGUF_F32 || type == IO_GGUF_F64 || !io_gguf_type_size(type)) return GLIMPSE_ERR_INVALID_ARG;
    size_t mark;
    int rc = begin_kv(gw, key, type, &mark);
    return rc ? rc : end_kv(gw, key, mark, put_scalar_int(gw, type, v));
}

int io_gguf_writer_set_float(io_gguf_writer *gw, const char *key, io_gguf_type type, double v) {
    if (type != IO_GGUF_F32 && type != IO_GGUF_F64) return GLIMPSE_ERR_INVALID_ARG;
    size_t mark;
    int rc = begin_kv(gw, key, type, &mark);
    if (rc) return rc;
    bool ok;
    if (type == IO_GGUF_F32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        ok = put_le(gw, u, 4);
    } else {
        uint64_t u;
        memcpy(&u, &v, 8);
        ok = put_le(gw, u, 8);
    }
    return end_kv(gw, key, mark, ok);
}

int io_gguf_writer_set_str(io_gguf_writer *gw, const char *key, const char *v) {
    if (!v) return GLIMPSE_ERR_INVALID_ARG;
    size_t mark;
    int rc = begin_kv(gw, key, IO_GGUF_STRING, &mark);
    return rc ? rc : end_kv(gw, key, mark, put_str(gw, v));
}

int io_gguf_writer_set_arr(io_gguf_writer *gw, const char *key, io_gguf_type et, const void *data, size_t n) {
    size_t s = io_gguf_type_size(et), bytes;
    if (!s || (n && !data) || !gl_mul_ok(n, s, &bytes)) return GLIMPSE_ERR_INVALID_ARG;
    size_t mark;
    int rc = begin_kv(gw, key, IO_GGUF_ARRAY, &mark);
    if (rc) return rc;
    bool ok = put_le(gw, (uint64_t)et, 4) && put_le(gw, n, 8) && put(gw, data, bytes);
    return end_kv(gw, key, mark, ok);
}

int io_gguf_writer_set_arr_str(io_gguf_writer *gw, const char *key, const char *const *strs, size_t n) {
    if (n && !strs) return GLIMPSE_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++)
        if (!strs[i]) return GLIMPSE_ERR_INVALID_ARG;
    size_t mark;
    int rc = begin_kv(gw, key, IO_GGUF_ARRAY, &mark);
    if (rc) return rc;
    bool ok = put_le(gw, IO_GGUF_STRING, 4) && put_le(gw, n, 8);
    for (size_t i = 0; i < n && ok; i++) ok = put_str(gw, strs[i]);
    return end_kv(gw, key, mark, ok);
}

int io_gguf_writer_add_tensor(io_gguf_writer *gw, const char *name, gl_dtype dt, int ndim, const int64_t *shape,
                              const void *data, size_t nbytes) {
    int gt = io_gguf_dtype_to_ggml(dt);
    if (!name || gt < 0 || ndim < 0 || ndim > GL_MAX_DIMS || (nbytes && !data)) return GLIMPSE_ERR_INVALID_ARG;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel)) return GLIMPSE_ERR_INVALID_ARG;
    size_t need;
    if (!gl_dtype_nbytes(dt, numel, &need) || need != nbytes) return GLIMPSE_ERR_INVALID_ARG;
    if (ndim && shape[ndim - 1] % gl_dtype_block(dt)) return GLIMPSE_ERR_INVALID_ARG; /* ggml rows hold whole blocks */
    for (size_t i = 0; i < gw->n_t; i++)
        if (!strcmp(gw->t[i].name, name)) return GLIMPSE_ERR_INVALID_ARG;
    if (gw->n_t == gw->cap_t) {
        size_t nc = gw->cap_t ? gw->cap_t * 2 : 16;
        gw_tensor *q = gl_realloc(gw->t, nc * sizeof *q);
        if (!q) return GLIMPSE_ERR_NOMEM;
        gw->t = q;
        gw->cap_t = nc;
    }
    gw_tensor *t = &gw->t[gw->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = gl_strdup(name))) return GLIMPSE_ERR_NOMEM;
    t->ggml_type = (uint32_t)gt;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof *shape * (size_t)ndim);
    t->data = data;
    t->nbytes = nbytes;
    t->offset = gw->data_len;
    gw->data_len = (t->offset + nbytes + gw->alignment - 1) / gw->alignment * gw->alignment;
    gw->n_t++;
    return 0;
}

static bool wr_le(FILE *f, uint64_t v, int n) {
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    return fwrite(b, 1, (size_t)n, f) == (size_t)n;
}

static bool wr_pad(FILE *f, uint64_t pos, uint32_t align) {
    static const uint8_t zeros[256];
    uint64_t pad = (align - pos % align) % align;
    while (pad) {
        size_t k = (size_t)GL_MIN(pad, sizeof zeros);
        if (fwrite(zeros, 1, k, f) != k) return false;
        pad -= k;
    }
    return true;
}

int io_gguf_writer_write(io_gguf_writer *gw, const char *path, gl_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    /* general.alignment is written only when it differs from the default, as llama.cpp does. */
    uint64_t n_kv = gw->n_kv + (gw->alignment != 32);
    bool ok = fwrite("GGUF", 1, 4, f) == 4 && wr_le(f, 3, 4) && wr_le(f, gw->n_t, 8) && wr_le(f, n_kv, 8) &&
              fwrite(gw->kv, 1, gw->kv_len, f) == gw->kv_len;
    uint64_t pos = 24 + gw->kv_len;
    if (ok && gw->alignment != 32) {
        const char *k = "general.alignment";
        ok = wr_le(f, strlen(k), 8) && fwrite(k, 1, strlen(k), f) == strlen(k) && wr_le(f, IO_GGUF_U32, 4) &&
             wr_le(f, gw->alignment, 4);
        pos += 8 + strlen(k) + 4 + 4;
    }
    for (size_t i = 0; i < gw->n_t && ok; i++) {
        const gw_tensor *t = &gw->t[i];
        size_t nl = strlen(t->name);
        ok = wr_le(f, nl, 8) && fwrite(t->name, 1, nl, f) == nl && wr_le(f, (uint64_t)t->ndim, 4);
        for (int d = t->ndim - 1; d >= 0 && ok; d--) ok = wr_le(f, (uint64_t)t->shape[d], 8); /* ggml order */
        ok = ok && wr_le(f, t->ggml_type, 4) && wr_le(f, t->offset, 8);
        pos += 8 + nl + 4 + 8 * (uint64_t)t->ndim + 4 + 8;
    }
    ok = ok && wr_pad(f, pos, gw->alignment);
    uint64_t dpos = 0;
    for (size_t i = 0; i < gw->n_t && ok; i++) {
        const gw_tensor *t = &gw->t[i];
        ok = wr_pad(f, dpos, gw->alignment) && fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
        dpos = t->offset + t->nbytes;
    }
    ok = ok && wr_pad(f, dpos, gw->alignment);
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        remove(path);
        return gl_err_set(err, GLIMPSE_ERR_IO, "%s: write failed", path);
    }
    return 0;
}
