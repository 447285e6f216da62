/* json.c — see json.h. */
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

#include "core/mapfile.h"

int io_json_parse(const char *text, size_t len, const char *name, cJSON **out, gl_err *err) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: invalid JSON near byte %zu", name ? name : "json", at);
    }
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            cJSON_Delete(j);
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: text after the JSON value", name ? name : "json");
        }
    *out = j;
    return 0;
}

int io_json_load(const char *path, size_t max_size, cJSON **out, gl_err *err) {
    char *buf;
    size_t len;
    int rc = gl_read_file(path, max_size, &buf, &len, err);
    if (rc) return rc;
    if (len > max_size) { /* gl_read_file reads in whole chunks and may overshoot a small limit */
        gl_free(buf);
        return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "%s: larger than %zu bytes", path, max_size);
    }
    rc = io_json_parse(buf, len, path, out, err);
    gl_free(buf);
    return rc;
}

static const cJSON *member(const cJSON *o, const char *key) {
    if (!o) return NULL;
    return key ? cJSON_GetObjectItemCaseSensitive(o, key) : o;
}

int64_t io_json_int(const cJSON *o, const char *key, int64_t def) {
    const cJSON *j = member(o, key);
    if (!cJSON_IsNumber(j)) return def;
    double d = j->valuedouble;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(int64_t)d) return def;
    return (int64_t)d;
}

double io_json_num(const cJSON *o, const char *key, double def) {
    const cJSON *j = member(o, key);
    return cJSON_IsNumber(j) ? j->valuedouble : def;
}

const char *io_json_str(const cJSON *o, const char *key, const char *def) {
    const cJSON *j = member(o, key);
    return cJSON_IsString(j) && j->valuestring ? j->valuestring : def;
}

bool io_json_bool(const cJSON *o, const char *key, bool def) {
    const cJSON *j = member(o, key);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

const cJSON *io_json_path(const cJSON *root, const char *path) {
    const cJSON *cur = root;
    const char *p = path;
    char key[256];
    while (cur && p && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key) return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        if (cJSON_IsArray(cur)) {
            char *e;
            long idx = strtol(key, &e, 10);
            if (!n || *e || idx < 0 || idx > 0x7fffffff) return NULL;
            cur = cJSON_GetArrayItem(cur, (int)idx);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        } else {
            return NULL;
        }
        p = dot ? dot + 1 : NULL;
    }
    return cur;
}
