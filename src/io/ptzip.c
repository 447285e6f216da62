/* ptzip.c — PyTorch zip checkpoints (torch.save since 1.6): <prefix>/data.pkl holds the pickled
 * object, <prefix>/data/<key> the raw bytes of each storage (little-endian, stored uncompressed
 * and 64-byte aligned by torch). The tensor dict is found in the pickle (top level, or under
 * state_dict / model / model_state_dict / module, or deeper), and "module." prefixes dropped. */
#include <stdio.h>
#include <string.h>

#include "io/pickle.h"
#include "io/weights_impl.h"
#include "io/zip.h"

#define PT_MAX_VISITS 100000 /* bound on the dict search (pickles may contain cycles) */
#define PT_MAX_DEPTH 8

typedef struct pt_ctx {
    gl_weights *w;
    const char *path;
    io_zip zip;
    const char *prefix;
    size_t prefix_len;
    const uint8_t **inflated; /* per zip entry: inflated contents (owned by w), lazily */
    int visits;
} pt_ctx;

static size_t dict_tensor_count(const io_pk_val *d) {
    size_t c = 0;
    for (size_t i = 0; i + 1 < d->n; i += 2) c += d->items[i + 1]->type == IO_PK_TENSOR;
    return c;
}

/* The dict holding the tensors: v itself if it holds any, else the preferred keys first, then
 * any other dict-valued member, depth first. Bounded in depth and total work. */
static const io_pk_val *find_tensor_dict(pt_ctx *c, const io_pk_val *v, int depth) {
    if (!v || v->type != IO_PK_DICT || depth > PT_MAX_DEPTH || ++c->visits > PT_MAX_VISITS) return NULL;
    if (dict_tensor_count(v)) return v;
    static const char *const pref[] = {"state_dict", "model", "model_state_dict", "module"};
    for (size_t k = 0; k < GL_ARRAY_LEN(pref); k++)
        for (size_t i = 0; i + 1 < v->n; i += 2)
            if (io_pk_str_eq(v->items[i], pref[k])) {
                const io_pk_val *r = find_tensor_dict(c, v->items[i + 1], depth + 1);
                if (r) return r;
            }
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const io_pk_val *r = find_tensor_dict(c, v->items[i + 1], depth + 1);
        if (r) return r;
    }
    return NULL;
}

static const uint8_t *storage_bytes(pt_ctx *c, const io_pk_val *st, size_t need_bytes, gl_err *err, int *rc) {
    char name[512];
    int nl = snprintf(name, sizeof name, "%.*sdata/%.*s", (int)c->prefix_len, c->prefix, (int)GL_MIN(st->slen, 256),
                      st->s);
    const io_zip_entry *e = nl > 0 && (size_t)nl < sizeof name ? io_zip_find(&c->zip, name, (size_t)nl) : NULL;
    if (!e || st->slen > 256) {
        *rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: storage '%.64s' has no zip entry", c->path, name);
        return NULL;
    }
    if (e->size < need_bytes) {
        *rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: storage '%.64s' holds %llu bytes, needs %zu", c->path, name,
                         (unsigned long long)e->size, need_bytes);
        return NULL;
    }
    if (e->method == 0) return e->data;
    size_t idx = (size_t)(e - c->zip.entries);
    if (!c->inflated[idx]) {
        uint8_t *buf = e->size <= SIZE_MAX ? io_w_alloc(c->w, (size_t)e->size) : NULL;
        if (!buf) {
            *rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory inflating '%.64s'", c->path, name);
            return NULL;
        }
        if ((*rc = io_zip_inflate(e, buf, c->path, err))) return NULL;
        c->inflated[idx] = buf;
    }
    return c->inflated[idx];
}

/* One tensor: checks size/stride/offset against the storage, then a view (contiguous) or a
 * gathered copy (strided). */
static int add_tensor(pt_ctx *c, const char *name, size_t name_len, const io_pk_tensor *t, gl_err *err) {
    const io_pk_val *st = t->storage;
    if (st->dtype == IO_PK_DTYPE_UNKNOWN)
        return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: tensor '%.*s': unsupported storage type", c->path,
                          (int)GL_MIN(name_len, 200), name);
    gl_dtype dt = (gl_dtype)st->dtype;
    size_t es = gl_dtype_size(dt), nbytes, st_bytes;
    uint64_t numel;
    if (!io_shape_numel(t->ndim, t->size, &numel) || !gl_dtype_nbytes(dt, numel, &nbytes) ||
        !gl_mul_ok((size_t)st->i, es, &st_bytes) || t->offset < 0)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.*s': bad size or offset", c->path,
                          (int)GL_MIN(name_len, 200), name);
    /* Highest element index reachable: offset + sum (size_i - 1) * stride_i, all checked. */
    bool contiguous = true;
    uint64_t hi = (uint64_t)t->offset, expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->stride[d] < 0)
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.*s': negative stride", c->path,
                              (int)GL_MIN(name_len, 200), name);
        if (t->size[d] > 1 && (uint64_t)t->stride[d] != expect) contiguous = false;
        uint64_t span;
        if (numel && (__builtin_mul_overflow((uint64_t)(t->size[d] - 1), (uint64_t)t->stride[d], &span) ||
                      __builtin_add_overflow(hi, span, &hi)))
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.*s': stride overflow", c->path,
                              (int)GL_MIN(name_len, 200), name);
        if (__builtin_mul_overflow(expect, (uint64_t)GL_MAX(t->size[d], 1), &expect)) expect = UINT64_MAX;
    }
    if (numel && hi >= (uint64_t)st->i)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.*s': reaches element %llu of a %lld-element storage",
                          c->path, (int)GL_MIN(name_len, 200), name, (unsigned long long)hi, (long long)st->i);
    int rc = 0;
    const uint8_t *base = storage_bytes(c, st, st_bytes, err, &rc);
    if (!base) return rc;
    if (contiguous || numel == 0)
        return io_w_add(c->w, name, name_len, dt, t->ndim, t->size, numel ? base + (size_t)t->offset * es : base, nbytes,
                        err);
    uint8_t *dst = io_w_alloc(c->w, nbytes);
    if (!dst) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", c->path);
    /* Odometer over the index space; the source index stays <= hi, checked above. */
    int64_t idx[GL_MAX_DIMS] = {0};
    uint64_t src = (uint64_t)t->offset;
    for (uint64_t k = 0; k < numel; k++) {
        memcpy(dst + k * es, base + src * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->size[d]) {
                src += (uint64_t)t->stride[d];
                break;
            }
            src -= (uint64_t)t->stride[d] * (uint64_t)(t->size[d] - 1);
            idx[d] = 0;
        }
    }
    return io_w_add(c->w, name, name_len, dt, t->ndim, t->size, dst, nbytes, err);
}

int io_ptzip_load(gl_weights *w, const char *path, gl_err *err) {
    const gl_mapfile *m;
    int rc = io_w_map(w, path, &m, err);
    if (rc) return rc;
    pt_ctx c = {.w = w, .path = path};
    if ((rc = io_zip_open(&c.zip, m->data, m->size, path, err))) return rc;
    /* data.pkl at the shallowest level: "<prefix>/data.pkl" with the prefix free of '/'. */
    const io_zip_entry *pkl = NULL;
    for (size_t i = 0; i < c.zip.n; i++) {
        const io_zip_entry *e = &c.zip.entries[i];
        if (e->name_len >= 8 && !memcmp(e->name + e->name_len - 8, "data.pkl", 8) &&
            (e->name_len == 8 || e->name[e->name_len - 9] == '/') &&
            (!pkl || e->name_len < pkl->name_len))
            pkl = e;
    }
    io_pickle *pk = NULL;
    const io_pk_val *root = NULL;
    uint8_t *pkl_buf = NULL;
    if (!pkl) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: zip without data.pkl (not a torch.save checkpoint)", path);
        goto done;
    }
    c.prefix = pkl->name;
    c.prefix_len = pkl->name_len - 8;
    if (!(c.inflated = gl_calloc(c.zip.n, sizeof *c.inflated))) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    /* torch >= 2.1 records the byte order of storages; we read little-endian only. */
    char bo[300];
    int bl = snprintf(bo, sizeof bo, "%.*sbyteorder", (int)GL_MIN(c.prefix_len, 256), c.prefix);
    const io_zip_entry *boe = io_zip_find(&c.zip, bo, (size_t)GL_MAX(bl, 0));
    if (boe && boe->method == 0 && boe->size >= 3 && !memcmp(boe->data, "big", 3)) {
        rc = gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: big-endian checkpoint", path);
        goto done;
    }
    const uint8_t *pdata = pkl->data;
    if (pkl->method) {
        if (pkl->size > ((size_t)1 << 30) || !(pkl_buf = gl_malloc((size_t)pkl->size + 1))) {
            rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: data.pkl too large", path);
            goto done;
        }
        if ((rc = io_zip_inflate(pkl, pkl_buf, path, err))) goto done;
        pdata = pkl_buf;
    }
    if ((rc = io_pickle_load(pdata, (size_t)pkl->size, path, &pk, &root, err))) goto done;
    const io_pk_val *d = find_tensor_dict(&c, root, 0);
    if (!d) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: no dict of tensors in the checkpoint", path);
        goto done;
    }
    for (size_t i = 0; i + 1 < d->n && !rc; i += 2) {
        const io_pk_val *k = d->items[i], *v = d->items[i + 1];
        if (v->type != IO_PK_TENSOR) continue; /* e.g. an int step counter next to the weights */
        if (k->type != IO_PK_STR) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor key is not a string", path);
            break;
        }
        const char *nm = k->s;
        size_t nl = k->slen;
        if (nl > 7 && !memcmp(nm, "module.", 7)) nm += 7, nl -= 7; /* DataParallel / DDP wrappers */
        rc = add_tensor(&c, nm, nl, v->tensor, err);
    }
    if (!rc) w->fmt = GL_FMT_PYTORCH_ZIP;
done:
    io_pickle_free(pk);
    gl_free(pkl_buf);
    gl_free(c.inflated);
    io_zip_free(&c.zip);
    return rc;
}
