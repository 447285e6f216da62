/* safetensors.c — .safetensors files and model folders (single file or index.json shards).
 *
 * Layout: u64 LE header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets":
 * [begin, end]}, "__metadata__": {...}}, then the data section; offsets are relative to it.
 * Tensors are views into the mmap. Everything in the header is untrusted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "io/json.h"
#include "io/weights_impl.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's own limit */

static const struct { const char *name; gl_dtype dt; } g_st_dtypes[] = {
    {"F32", GL_F32}, {"F16", GL_F16}, {"BF16", GL_BF16}, {"I64", GL_I64}, {"I32", GL_I32},
    {"I16", GL_I16}, {"I8", GL_I8},   {"U8", GL_U8},     {"F64", GL_F64}, {"BOOL", GL_BOOL},
};

typedef struct st_span { uint64_t begin, end; size_t tensor; } st_span;

static int span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* A JSON number that is an exact non-negative integer <= 2^53 (doubles hold those exactly). */
static bool json_u53(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

static int parse_tensor(gl_weights *w, const char *path, const cJSON *e, const uint8_t *data, uint64_t data_size,
                        st_span *span, gl_err *err) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e)) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': not an object", path, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': needs dtype, shape and data_offsets", path, nm);
    int dt = -1;
    for (size_t i = 0; i < GL_ARRAY_LEN(g_st_dtypes); i++)
        if (!strcmp(jd->valuestring, g_st_dtypes[i].name)) dt = (int)g_st_dtypes[i].dt;
    if (dt < 0)
        return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: tensor '%.200s': unsupported dtype '%.32s'", path, nm,
                          jd->valuestring);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > GL_MAX_DIMS)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': %d dims (max %d)", path, nm, ndim, GL_MAX_DIMS);
    int64_t shape[GL_MAX_DIMS];
    int k = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (!json_u53(d, &v))
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': bad dimension %d", path, nm, k);
        shape[k] = (int64_t)v;
    }
    uint64_t numel;
    size_t nbytes;
    if (!io_shape_numel(ndim, shape, &numel) || !gl_dtype_nbytes((gl_dtype)dt, numel, &nbytes))
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': shape too large", path, nm);
    uint64_t b, en;
    if (cJSON_GetArraySize(jo) != 2 || !json_u53(jo->child, &b) || !json_u53(jo->child->next, &en))
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': bad data_offsets", path, nm);
    if (en < b || en > data_size)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT,
                          "%s: tensor '%.200s': data_offsets [%llu, %llu] outside the data section (%llu bytes)", path,
                          nm, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_size);
    if (en - b != nbytes)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': %llu bytes stored, shape needs %zu", path, nm,
                          (unsigned long long)(en - b), nbytes);
    span->begin = b;
    span->end = en;
    span->tensor = w->n;
    return io_w_add(w, nm, strlen(nm), (gl_dtype)dt, ndim, shape, data + b, nbytes, err);
}

int io_safetensors_load_file(gl_weights *w, const char *path, gl_err *err) {
    const gl_mapfile *m;
    int rc = io_w_map(w, path, &m, err);
    if (rc) return rc;
    if (m->size < 8) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: truncated (%zu bytes)", path, m->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | m->data[i];
    if (hlen > m->size - 8)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: header length %llu beyond the file (%zu bytes)", path,
                          (unsigned long long)hlen, m->size);
    if (hlen > ST_MAX_HEADER)
        return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "%s: header of %llu bytes", path, (unsigned long long)hlen);
    const char *hdr = (const char *)m->data + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: header is not valid JSON", path);
    for (const char *p = end; p && p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: bytes after the JSON header", path);
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    const uint8_t *data = m->data + 8 + hlen;
    uint64_t data_size = m->size - 8 - hlen;
    int n = cJSON_GetArraySize(root);
    st_span *spans = gl_malloc(sizeof *spans * (size_t)(n ? n : 1));
    if (!spans) {
        cJSON_Delete(root);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
    }
    int ns = 0;
    for (const cJSON *e = root->child; e && !rc; e = e->next) {
        if (!e->string) rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: header entry without a name", path);
        else if (!strcmp(e->string, "__metadata__")) continue;
        else rc = parse_tensor(w, path, e, data, data_size, &spans[ns++], err);
    }
    /* Overlap check: sorted by begin, each non-empty tensor must start at or after the end of
     * the previous one. Empty tensors occupy nothing and may sit anywhere. */
    if (!rc) {
        qsort(spans, (size_t)ns, sizeof *spans, span_cmp);
        uint64_t last_end = 0;
        size_t last = 0;
        for (int i = 0; i < ns && !rc; i++) {
            if (spans[i].begin == spans[i].end) continue;
            if (spans[i].begin < last_end)
                rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensors '%.100s' and '%.100s' overlap", path,
                                w->tensors[last].name, w->tensors[spans[i].tensor].name);
            last_end = spans[i].end;
            last = spans[i].tensor;
        }
    }
    gl_free(spans);
    cJSON_Delete(root);
    if (!rc && !w->fmt) w->fmt = GL_FMT_SAFETENSORS;
    return rc;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A shard name from index.json: a plain file name in the same folder, nothing else. */
static bool safe_shard_name(const char *s) {
    return *s && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") && strcmp(s, "..");
}

static int load_sharded(gl_weights *w, const char *dir, const char *index_path, gl_err *err) {
    cJSON *root;
    int rc = io_json_load(index_path, (size_t)64 << 20, &root, err);
    if (rc) return rc;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    }
    size_t dlen = strlen(dir);
    /* Each distinct shard is loaded once, in the order the map first names it. */
    const char **shards = NULL;
    size_t n_shards = 0;
    int n_map = cJSON_GetArraySize(map);
    if (n_map > 0 && !(shards = gl_malloc(sizeof *shards * (size_t)n_map))) {
        cJSON_Delete(root);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", index_path);
    }
    for (const cJSON *e = map->child; e && !rc; e = e->next) {
        if (!cJSON_IsString(e) || !safe_shard_name(e->valuestring)) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: tensor '%.200s': bad shard file name", index_path,
                            e->string ? e->string : "");
            break;
        }
        bool seen = false;
        for (size_t i = 0; i < n_shards && !seen; i++) seen = !strcmp(shards[i], e->valuestring);
        if (seen) continue;
        shards[n_shards++] = e->valuestring;
        size_t len = dlen + 1 + strlen(e->valuestring) + 1;
        char *sp = gl_malloc(len);
        if (!sp) {
            rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", index_path);
            break;
        }
        snprintf(sp, len, "%s/%s", dir, e->valuestring);
        rc = io_safetensors_load_file(w, sp, err);
        gl_free(sp);
    }
    gl_free(shards);
    if (!rc) rc = io_w_build_index(w, err);
    /* Every tensor the index promises must be in the shards (a missing shard or a stale index). */
    for (const cJSON *e = map->child; e && !rc; e = e->next) {
        if (!gl_weights_find(w, e->string))
            rc = gl_err_set(err, GLIMPSE_ERR_MISSING, "%s: tensor '%.200s' listed for %.100s is not in it", index_path,
                            e->string, e->valuestring);
    }
    cJSON_Delete(root);
    if (!rc) w->fmt = GL_FMT_SAFETENSORS_SHARDED;
    return rc;
}

int io_safetensors_load_dir(gl_weights *w, const char *dir, gl_err *err) {
    static const char *const singles[] = {"model.safetensors", "open_clip_model.safetensors"};
    size_t len = strlen(dir) + 64;
    char *p = gl_malloc(len);
    if (!p) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", dir);
    int rc = 0;
    bool found = false;
    snprintf(p, len, "%s/model.safetensors.index.json", dir);
    if ((found = file_exists(p))) rc = load_sharded(w, dir, p, err);
    for (size_t i = 0; !found && i < GL_ARRAY_LEN(singles); i++) {
        snprintf(p, len, "%s/%s", dir, singles[i]);
        if ((found = file_exists(p))) rc = io_safetensors_load_file(w, p, err);
    }
    gl_free(p);
    if (!found)
        rc = gl_err_set(err, GLIMPSE_ERR_MISSING,
                        "%s: no model.safetensors, model.safetensors.index.json or open_clip_model.safetensors", dir);
    return rc;
}
