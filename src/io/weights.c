/* weights.c — the gl_weights container, format detection and the name index. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/gguf.h"
#include "io/weights_impl.h"

bool io_shape_numel(int ndim, const int64_t *shape, uint64_t *numel) {
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return false;
        if (__builtin_mul_overflow(n, (uint64_t)shape[i], &n)) return false;
    }
    if (n > (uint64_t)INT64_MAX) return false;
    *numel = n;
    return true;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 16, bytes;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return false;
        nc *= 2;
    }
    if (!gl_mul_ok(nc, elem, &bytes)) return false;
    void *q = gl_realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

int io_w_map(gl_weights *w, const char *path, const gl_mapfile **out, gl_err *err) {
    if (!grow((void **)&w->maps, &w->cap_maps, w->n_maps + 1, sizeof *w->maps))
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
    int rc = gl_mapfile_open(&w->maps[w->n_maps], path, err);
    if (rc) return rc;
    *out = &w->maps[w->n_maps++];
    return 0;
}

void *io_w_alloc(gl_weights *w, size_t n) {
    if (!grow((void **)&w->owned, &w->cap_owned, w->n_owned + 1, sizeof *w->owned)) return NULL;
    void *p = gl_aligned_alloc(64, n ? n : 1);
    if (p) w->owned[w->n_owned++] = p;
    return p;
}

int io_w_add(gl_weights *w, const char *name, size_t name_len, gl_dtype dt, int ndim, const int64_t *shape,
             const void *data, size_t nbytes, gl_err *err) {
    if (ndim < 0 || ndim > GL_MAX_DIMS)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.*s': %d dims (max %d)", w->path,
                          (int)GL_MIN(name_len, 200), name, ndim, GL_MAX_DIMS);
    if (!grow((void **)&w->tensors, &w->cap, w->n + 1, sizeof *w->tensors))
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", w->path);
    char *nm = gl_malloc(name_len + 1);
    if (!nm) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", w->path);
    memcpy(nm, name, name_len);
    nm[name_len] = 0;
    if (strlen(nm) != name_len) {
        gl_free(nm);
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor name with a NUL byte", w->path);
    }
    /* Views keep at least element alignment (f16 scale for block types), so consumers may load
     * elements directly. Files that break it (an unpadded safetensors header, a zip written
     * without torch's 64-byte padding) cost one copy of the affected tensors. */
    size_t al = gl_dtype_block(dt) > 1 ? 2 : gl_dtype_size(dt);
    if (nbytes && al > 1 && (uintptr_t)data % al) {
        void *copy = io_w_alloc(w, nbytes);
        if (!copy) {
            gl_free(nm);
            return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", w->path);
        }
        memcpy(copy, data, nbytes);
        data = copy;
    }
    gl_tensor *t = &w->tensors[w->n];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int io_w_build_index(gl_weights *w, gl_err *err) {
    if (w->index) return 0;
    size_t cap = 16;
    while (cap < w->n * 2) cap *= 2;
    w->index = gl_calloc(cap, sizeof *w->index);
    if (!w->index) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", w->path);
    w->index_cap = cap;
    for (size_t i = 0; i < w->n; i++) {
        size_t s = (size_t)hash_name(w->tensors[i].name) & (cap - 1);
        while (w->index[s]) {
            if (!strcmp(w->tensors[w->index[s] - 1].name, w->tensors[i].name))
                return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: duplicate tensor name '%.200s'", w->path,
                                  w->tensors[i].name);
            s = (s + 1) & (cap - 1);
        }
        w->index[s] = (uint32_t)(i + 1);
    }
    return 0;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Picks a reader by magic bytes (extensions lie: .bin is used for both zip and safetensors). */
static int open_file(gl_weights *w, const char *path, gl_err *err) {
    uint8_t magic[9] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got >= 4 && !memcmp(magic, "PK\x03\x04", 4)) return io_ptzip_load(w, path, err);
    if (got >= 4 && !memcmp(magic, "GGUF", 4)) return io_gguf_load(w, path, err);
    if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5)
        return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED,
                          "%s: legacy (pre-1.6, non-zip) PyTorch checkpoint; re-save it with torch.save", path);
    /* safetensors has no magic: a length, then the JSON header's '{' */
    if ((got == 9 && magic[8] == '{') || has_suffix(path, ".safetensors")) return io_safetensors_load_file(w, path, err);
    return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: not a safetensors, PyTorch zip or GGUF file", path);
}

/* A folder without safetensors (Apple's .pt folders, a converted .gguf) holding exactly one
 * checkpoint file: its path in out. 0 = found, 1 = none, -1 = several (err says which). */
static int single_checkpoint(const char *dir, char *out, size_t n, gl_err *err) {
    static const char *const exts[] = {".pt", ".pth", ".bin", ".gguf"};
    DIR *d = opendir(dir);
    if (!d) return 1;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        bool ok = false;
        for (size_t i = 0; i < GL_ARRAY_LEN(exts); i++) ok = ok || has_suffix(e->d_name, exts[i]);
        if (!ok || e->d_name[0] == '.' || !strncmp(e->d_name, "mmproj", 6)) continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (found++) {
            gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "%s: several checkpoints (%s, %s): name the file", dir,
                       out + strlen(dir) + 1, e->d_name);
            closedir(d);
            return -1;
        }
        snprintf(out, n, "%s", p);
    }
    closedir(d);
    return found ? 0 : 1;
}

int gl_weights_open(const char *path, gl_weights **out, gl_err *err) {
    if (!path || !out) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "gl_weights_open: NULL argument");
    gl_weights *w = gl_calloc(1, sizeof *w);
    if (!w || !(w->path = gl_strdup(path))) {
        gl_free(w);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
    }
    struct stat st;
    int rc;
    if (stat(path, &st) != 0)
        rc = gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode)) {
        rc = io_safetensors_load_dir(w, path, err);
        char one[4096];
        int sc;
        if (rc == GLIMPSE_ERR_MISSING && (sc = single_checkpoint(path, one, sizeof one, err)) != 1)
            rc = sc ? GLIMPSE_ERR_INVALID_ARG : open_file(w, one, err);
    }
    else if (!S_ISREG(st.st_mode)) /* a FIFO or device would block or never end */
        rc = gl_err_set(err, GLIMPSE_ERR_IO, "%s: not a regular file or folder", path);
    else
        rc = open_file(w, path, err);
    if (!rc) rc = io_w_build_index(w, err);
    if (rc) {
        gl_weights_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void gl_weights_close(gl_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) gl_free((void *)w->tensors[i].name);
    for (size_t i = 0; i < w->n_owned; i++) gl_aligned_free(w->owned[i]);
    for (size_t i = 0; i < w->n_maps; i++) gl_mapfile_close(&w->maps[i]);
    io_gguf_free(w->gguf);
    gl_free(w->tensors);
    gl_free(w->owned);
    gl_free(w->maps);
    gl_free(w->index);
    gl_free(w->path);
    gl_free(w);
}

gl_weights_format gl_weights_get_format(const gl_weights *w) { return w->fmt; }

const char *gl_weights_format_name(gl_weights_format f) {
    switch (f) {
    case GL_FMT_SAFETENSORS: return "safetensors";
    case GL_FMT_SAFETENSORS_SHARDED: return "safetensors (sharded)";
    case GL_FMT_PYTORCH_ZIP: return "pytorch-zip";
    case GL_FMT_GGUF: return "gguf";
    }
    return "unknown";
}

size_t gl_weights_count(const gl_weights *w) { return w ? w->n : 0; }

const gl_tensor *gl_weights_at(const gl_weights *w, size_t i) { return w && i < w->n ? &w->tensors[i] : NULL; }

const gl_tensor *gl_weights_find(const gl_weights *w, const char *name) {
    if (!w || !name || !w->index_cap) return NULL;
    size_t s = (size_t)hash_name(name) & (w->index_cap - 1);
    while (w->index[s]) {
        const gl_tensor *t = &w->tensors[w->index[s] - 1];
        if (!strcmp(t->name, name)) return t;
        s = (s + 1) & (w->index_cap - 1);
    }
    return NULL;
}

const struct io_gguf *gl_weights_gguf(const gl_weights *w) { return w ? w->gguf : NULL; }
