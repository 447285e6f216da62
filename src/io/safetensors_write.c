#include "safetensors_write.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

typedef struct st_entry {
    char *name;
    gl_dtype dt;
    int ndim;
    int64_t shape[GL_MAX_DIMS];
    size_t nbytes;
} st_entry;

struct io_st_writer {
    st_entry *e;
    size_t n, cap;
};

io_st_writer *io_st_writer_new(void) { return gl_calloc(1, sizeof(io_st_writer)); }

void io_st_writer_free(io_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) gl_free(w->e[i].name);
    gl_free(w->e);
    gl_free(w);
}

size_t io_st_writer_count(const io_st_writer *w) { return w->n; }

long io_st_writer_add(io_st_writer *w, const char *name, gl_dtype dt, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > GL_MAX_DIMS || gl_dtype_block(dt) != 1) return -1;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        numel *= (uint64_t)shape[i];
    }
    size_t nb;
    if (!gl_dtype_nbytes(dt, numel, &nb)) return -1;
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 64;
        st_entry *ne = gl_realloc(w->e, nc * sizeof *ne);
        if (!ne) return -1;
        w->e = ne;
        w->cap = nc;
    }
    st_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = gl_strdup(name))) return -1;
    e->dt = dt;
    e->ndim = ndim;
    if (ndim) memcpy(e->shape, shape, sizeof(int64_t) * (size_t)ndim);
    e->nbytes = nb;
    return (long)w->n++;
}

int io_st_writer_write(io_st_writer *w, const char *path, io_st_fill_fn fill, void *user, gl_err *err) {
    cJSON *h = cJSON_CreateObject();
    size_t off = 0, maxb = 1;
    for (size_t i = 0; i < w->n; i++) {
        st_entry *e = &w->e[i];
        cJSON *t = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *of = cJSON_CreateArray();
        cJSON_AddStringToObject(t, "dtype", gl_dtype_name(e->dt));
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON_AddItemToObject(t, "shape", sh);
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + e->nbytes)));
        cJSON_AddItemToObject(t, "data_offsets", of);
        cJSON_AddItemToObject(h, e->name, t);
        off += e->nbytes;
        if (e->nbytes > maxb) maxb = e->nbytes;
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    size_t hl = strlen(js), padded = (hl + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    void *buf = gl_malloc(maxb);
    int rc = 0;
    if (!f) rc = gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    else if (!buf) rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    if (!rc) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        int ok = fwrite(le, 1, 8, f) == 8 && fwrite(js, 1, hl, f) == hl;
        for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
        for (size_t i = 0; ok && i < w->n; i++) {
            if ((rc = fill(user, i, buf, w->e[i].nbytes))) {
                gl_err_set(err, rc, "%s: cannot produce tensor '%s'", path, w->e[i].name);
                break;
            }
            ok = fwrite(buf, 1, w->e[i].nbytes, f) == w->e[i].nbytes;
        }
        if (!rc && !ok) rc = gl_err_set(err, GLIMPSE_ERR_IO, "%s: write failed", path);
    }
    if (f && fclose(f) != 0 && !rc) rc = gl_err_set(err, GLIMPSE_ERR_IO, "%s: write failed", path);
    gl_free(buf);
    cJSON_free(js);
    return rc;
}
