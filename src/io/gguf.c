/* gguf.c — GGUF reader (see gguf.h) and the gl_weights adapter. */
#include "io/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "io/weights_impl.h"

#define GGUF_MAGIC "GGUF"

typedef struct rd {
    const uint8_t *buf;
    size_t size, pos;
    const char *name;
    gl_err *err;
} rd;

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static bool take(rd *r, size_t n, const uint8_t **p) {
    if (r->size - r->pos < n) return false;
    *p = r->buf + r->pos;
    r->pos += n;
    return true;
}
static bool u32(rd *r, uint32_t *v) {
    const uint8_t *p;
    if (!take(r, 4, &p)) return false;
    *v = (uint32_t)le(p, 4);
    return true;
}
static bool u64(rd *r, uint64_t *v) {
    const uint8_t *p;
    if (!take(r, 8, &p)) return false;
    *v = le(p, 8);
    return true;
}
static bool str(rd *r, const uint8_t **s, uint64_t *len) {
    return u64(r, len) && *len <= r->size - r->pos && take(r, (size_t)*len, s);
}
static char *dup_n(const uint8_t *s, size_t n) {
    char *d = gl_malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

size_t io_gguf_type_size(io_gguf_type t) {
    static const uint8_t sz[IO_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < IO_GGUF_TYPE_COUNT ? sz[t] : 0;
}

int io_gguf_ggml_to_dtype(uint32_t t) {
    switch (t) {
    case IO_GGML_F32: return GL_F32;
    case IO_GGML_F16: return GL_F16;
    case IO_GGML_BF16: return GL_BF16;
    case IO_GGML_Q4_0: return GL_Q4_0;
    case IO_GGML_Q8_0: return GL_Q8_0;
    case IO_GGML_I8: return GL_I8;
    case IO_GGML_I16: return GL_I16;
    case IO_GGML_I32: return GL_I32;
    case IO_GGML_I64: return GL_I64;
    case IO_GGML_F64: return GL_F64;
    }
    return -1;
}

int io_gguf_dtype_to_ggml(gl_dtype dt) {
    for (uint32_t t = 0; t <= IO_GGML_BF16; t++)
        if (io_gguf_ggml_to_dtype(t) == (int)dt) return (int)t;
    return -1;
}

static int bad(rd *r, const char *what) {
    return gl_err_set(r->err, GLIMPSE_ERR_FORMAT, "%s: %s at byte %zu", r->name, what, r->pos);
}

/* Skips one value of type t (not an array), checking it fits. */
static bool skip_scalar(rd *r, io_gguf_type t) {
    const uint8_t *p;
    uint64_t len;
    if (t == IO_GGUF_STRING) return str(r, &p, &len);
    size_t s = io_gguf_type_size(t);
    return s && take(r, s, &p);
}

static int read_kv(rd *r, io_gguf_kv *kv) {
    const uint8_t *k, *p;
    uint64_t klen;
    uint32_t t;
    if (!str(r, &k, &klen)) return bad(r, "truncated key");
    if (!(kv->key = dup_n(k, (size_t)klen))) return gl_err_set(r->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", r->name);
    if (!u32(r, &t)) return bad(r, "truncated value type");
    if (t >= IO_GGUF_TYPE_COUNT)
        return gl_err_set(r->err, GLIMPSE_ERR_FORMAT, "%s: key '%.100s': unknown value type %u", r->name, kv->key, t);
    kv->type = (io_gguf_type)t;
    if (t == IO_GGUF_STRING) {
        if (!str(r, &p, &kv->n)) return bad(r, "truncated string");
        kv->data = p;
        if (!(kv->str = dup_n(p, (size_t)kv->n))) return gl_err_set(r->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", r->name);
        return 0;
    }
    if (t != IO_GGUF_ARRAY) {
        kv->data = r->buf + r->pos;
        kv->n = 1;
        return skip_scalar(r, kv->type) ? 0 : bad(r, "truncated value");
    }
    uint32_t et;
    if (!u32(r, &et) || !u64(r, &kv->n)) return bad(r, "truncated array");
    if (et >= IO_GGUF_TYPE_COUNT || et == IO_GGUF_ARRAY)
        return gl_err_set(r->err, GLIMPSE_ERR_UNSUPPORTED, "%s: key '%.100s': array of type %u", r->name, kv->key, et);
    kv->arr_type = (io_gguf_type)et;
    kv->data = r->buf + r->pos;
    if (et != IO_GGUF_STRING) {
        size_t s = io_gguf_type_size(kv->arr_type), bytes;
        if (!gl_mul_ok((size_t)kv->n, s, &bytes) || kv->n > SIZE_MAX || !take(r, bytes, &p)) return bad(r, "truncated array");
        return 0;
    }
    if (kv->n > (r->size - r->pos) / 8) return bad(r, "truncated string array");
    if (!(kv->str_offs = gl_malloc(sizeof *kv->str_offs * (size_t)(kv->n ? kv->n : 1))))
        return gl_err_set(r->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", r->name);
    for (uint64_t i = 0; i < kv->n; i++) {
        kv->str_offs[i] = (uint64_t)(r->buf + r->pos - kv->data);
        uint64_t len;
        if (!str(r, &p, &len)) return bad(r, "truncated string array");
    }
    return 0;
}

static int read_tensor_info(rd *r, io_gguf_tensor_info *ti) {
    const uint8_t *s;
    uint64_t len, ne[GL_MAX_DIMS];
    uint32_t nd;
    if (!str(r, &s, &len)) return bad(r, "truncated tensor name");
    if (!(ti->name = dup_n(s, (size_t)len))) return gl_err_set(r->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", r->name);
    if (!u32(r, &nd)) return bad(r, "truncated tensor info");
    if (nd > GL_MAX_DIMS)
        return gl_err_set(r->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': %u dims", r->name, ti->name, nd);
    for (uint32_t i = 0; i < nd; i++)
        if (!u64(r, &ne[i])) return bad(r, "truncated tensor info");
    if (!u32(r, &ti->ggml_type) || !u64(r, &ti->offset)) return bad(r, "truncated tensor info");
    int dt = io_gguf_ggml_to_dtype(ti->ggml_type);
    if (dt < 0)
        return gl_err_set(r->err, GLIMPSE_ERR_UNSUPPORTED, "%s: tensor '%.200s': unsupported ggml type %u", r->name,
                          ti->name, ti->ggml_type);
    ti->dtype = (gl_dtype)dt;
    ti->ndim = (int)nd;
    for (uint32_t i = 0; i < nd; i++) {
        if (ne[i] > (uint64_t)INT64_MAX)
            return gl_err_set(r->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': bad dimension", r->name, ti->name);
        ti->shape[nd - 1 - i] = (int64_t)ne[i]; /* ggml ne[0] is the innermost dimension */
    }
    uint64_t numel;
    int blk = gl_dtype_block(ti->dtype);
    if (!io_shape_numel(ti->ndim, ti->shape, &numel) || (nd && ne[0] % (uint64_t)blk) || (!nd && blk > 1) ||
        !gl_dtype_nbytes(ti->dtype, numel, &ti->nbytes))
        return gl_err_set(r->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': bad shape for %s", r->name, ti->name,
                          gl_dtype_name(ti->dtype));
    return 0;
}

static int kv_key_cmp(const void *a, const void *b) {
    return strcmp((*(const io_gguf_kv *const *)a)->key, (*(const io_gguf_kv *const *)b)->key);
}

typedef struct span { uint64_t b, e; size_t i; } span;
static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b;
}

int io_gguf_parse(const uint8_t *buf, size_t size, const char *name, io_gguf **out, gl_err *err) {
    rd r = {buf, size, 0, name, err};
    const uint8_t *p;
    uint64_t nt, nkv;
    io_gguf *g = gl_calloc(1, sizeof *g);
    if (!g) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    int rc = 0;
    const io_gguf_kv **sorted = NULL;
    span *spans = NULL;
    if (!take(&r, 4, &p) || memcmp(p, GGUF_MAGIC, 4)) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: not a GGUF file (bad magic)", name);
        goto fail;
    }
    if (!u32(&r, &g->version) || !u64(&r, &nt) || !u64(&r, &nkv)) {
        rc = bad(&r, "truncated header");
        goto fail;
    }
    if (g->version != 2 && g->version != 3) {
        rc = gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: GGUF version %u (only 2 and 3 are read)", name, g->version);
        goto fail;
    }
    /* Counts bounded by the smallest encoding of each entry, before allocating. */
    if (nkv > (size - r.pos) / 13 || nt > (size - r.pos) / 24) {
        rc = bad(&r, "tensor or key count larger than the file");
        goto fail;
    }
    g->kvs = gl_calloc((size_t)nkv + 1, sizeof *g->kvs);
    g->tensors = gl_calloc((size_t)nt + 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    for (uint64_t i = 0; i < nkv && !rc; i++, g->n_kvs++) rc = read_kv(&r, &g->kvs[i]);
    if (rc) goto fail;
    if (nkv > 1) {
        if (!(sorted = gl_malloc(sizeof *sorted * (size_t)nkv))) {
            rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        for (size_t i = 0; i < nkv; i++) sorted[i] = &g->kvs[i];
        qsort(sorted, (size_t)nkv, sizeof *sorted, kv_key_cmp);
        for (size_t i = 1; i < nkv && !rc; i++)
            if (!strcmp(sorted[i]->key, sorted[i - 1]->key))
                rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: duplicate key '%.200s'", name, sorted[i]->key);
        if (rc) goto fail;
    }
    g->alignment = 32;
    const io_gguf_kv *al = io_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != IO_GGUF_U32 && al->type != IO_GGUF_U64 && al->type != IO_GGUF_I32) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: general.alignment is not an integer", name);
            goto fail;
        }
        int64_t a = io_gguf_get_int(g, "general.alignment", 0);
        if (a <= 0 || a > (1 << 20) || (a & (a - 1))) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: general.alignment %lld is not a power of two", name, (long long)a);
            goto fail;
        }
        g->alignment = (uint64_t)a;
    }
    for (uint64_t i = 0; i < nt && !rc; i++, g->n_tensors++) rc = read_tensor_info(&r, &g->tensors[i]);
    if (rc) goto fail;
    g->data_offset = (r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->data_offset > size && nt == 0) g->data_offset = size; /* metadata-only file, end not padded */
    if (g->data_offset > size) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: truncated before the data section", name);
        goto fail;
    }
    uint64_t data_size = size - g->data_offset;
    if (!(spans = gl_malloc(sizeof *spans * (size_t)(nt + 1)))) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    for (size_t i = 0; i < nt; i++) {
        const io_gguf_tensor_info *ti = &g->tensors[i];
        if (ti->offset % g->alignment) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': offset %llu not aligned to %llu", name,
                            ti->name, (unsigned long long)ti->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (ti->offset > data_size || ti->nbytes > data_size - ti->offset) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': data past the end of the file (truncated?)",
                            name, ti->name);
            goto fail;
        }
        spans[i] = (span){ti->offset, ti->offset + ti->nbytes, i};
    }
    qsort(spans, (size_t)nt, sizeof *spans, span_cmp);
    uint64_t last_end = 0;
    size_t last = 0;
    for (size_t i = 0; i < nt; i++) {
        if (spans[i].b == spans[i].e) continue;
        if (spans[i].b < last_end) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensors '%.100s' and '%.100s' overlap", name,
                            g->tensors[last].name, g->tensors[spans[i].i].name);
            goto fail;
        }
        last_end = spans[i].e;
        last = spans[i].i;
    }
    gl_free(spans);
    gl_free(sorted);
    *out = g;
    return 0;
fail:
    gl_free(spans);
    gl_free(sorted);
    io_gguf_free(g);
    return rc;
}

void io_gguf_free(io_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kvs; i++) { /* n_kvs counts a half-read entry too */
        gl_free((void *)g->kvs[i].key);
        gl_free(g->kvs[i].str);
        gl_free(g->kvs[i].str_offs);
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        gl_free((void *)g->tensors[i].name);
    gl_free(g->kvs);
    gl_free(g->tensors);
    gl_free(g);
}

const io_gguf_kv *io_gguf_find_kv(const io_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    for (size_t i = 0; i < g->n_kvs; i++)
        if (!strcmp(g->kvs[i].key, key)) return &g->kvs[i];
    return NULL;
}

static bool scalar_int(io_gguf_type t, const uint8_t *p, int64_t *v) {
    switch (t) {
    case IO_GGUF_U8: case IO_GGUF_BOOL: *v = p[0]; return true;
    case IO_GGUF_I8: *v = (int8_t)p[0]; return true;
    case IO_GGUF_U16: *v = (int64_t)le(p, 2); return true;
    case IO_GGUF_I16: *v = (int16_t)le(p, 2); return true;
    case IO_GGUF_U32: *v = (int64_t)le(p, 4); return true;
    case IO_GGUF_I32: *v = (int32_t)le(p, 4); return true;
    case IO_GGUF_U64: case IO_GGUF_I64: *v = (int64_t)le(p, 8); return true;
    default: return false;
    }
}

static bool scalar_float(io_gguf_type t, const uint8_t *p, double *v) {
    if (t == IO_GGUF_F32) {
        uint32_t u = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        *v = f;
        return true;
    }
    if (t == IO_GGUF_F64) {
        uint64_t u = le(p, 8);
        memcpy(v, &u, 8);
        return true;
    }
    int64_t i;
    if (!scalar_int(t, p, &i)) return false;
    *v = (double)i;
    return true;
}

int64_t io_gguf_get_int(const io_gguf *g, const char *key, int64_t def) {
    const io_gguf_kv *kv = io_gguf_find_kv(g, key);
    int64_t v;
    return kv && kv->type != IO_GGUF_ARRAY && scalar_int(kv->type, kv->data, &v) ? v : def;
}

double io_gguf_get_float(const io_gguf *g, const char *key, double def) {
    const io_gguf_kv *kv = io_gguf_find_kv(g, key);
    double v;
    return kv && kv->type != IO_GGUF_ARRAY && kv->type != IO_GGUF_STRING && scalar_float(kv->type, kv->data, &v) ? v : def;
}

const char *io_gguf_get_str(const io_gguf *g, const char *key, const char *def) {
    const io_gguf_kv *kv = io_gguf_find_kv(g, key);
    return kv && kv->type == IO_GGUF_STRING ? kv->str : def;
}

int64_t io_gguf_arr_int(const io_gguf_kv *kv, uint64_t i) {
    int64_t v;
    if (!kv || kv->type != IO_GGUF_ARRAY || i >= kv->n || kv->arr_type == IO_GGUF_STRING) return 0;
    return scalar_int(kv->arr_type, kv->data + i * io_gguf_type_size(kv->arr_type), &v) ? v : 0;
}

double io_gguf_arr_float(const io_gguf_kv *kv, uint64_t i) {
    double v;
    if (!kv || kv->type != IO_GGUF_ARRAY || i >= kv->n || kv->arr_type == IO_GGUF_STRING) return 0;
    return scalar_float(kv->arr_type, kv->data + i * io_gguf_type_size(kv->arr_type), &v) ? v : 0;
}

const char *io_gguf_arr_str(const io_gguf_kv *kv, uint64_t i, size_t *len) {
    if (!kv || kv->type != IO_GGUF_ARRAY || kv->arr_type != IO_GGUF_STRING || i >= kv->n) return NULL;
    const uint8_t *p = kv->data + kv->str_offs[i];
    if (len) *len = (size_t)le(p, 8);
    return (const char *)p + 8;
}

int io_gguf_load(gl_weights *w, const char *path, gl_err *err) {
    const gl_mapfile *m;
    int rc = io_w_map(w, path, &m, err);
    if (rc) return rc;
    io_gguf *g;
    if ((rc = io_gguf_parse(m->data, m->size, path, &g, err))) return rc;
    w->gguf = g;
    for (size_t i = 0; i < g->n_tensors && !rc; i++) {
        const io_gguf_tensor_info *ti = &g->tensors[i];
        rc = io_w_add(w, ti->name, strlen(ti->name), ti->dtype, ti->ndim, ti->shape,
                      m->data + g->data_offset + ti->offset, ti->nbytes, err);
    }
    if (!rc) w->fmt = GL_FMT_GGUF;
    return rc;
}
