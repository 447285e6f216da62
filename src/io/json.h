/* json.h — small conveniences over cJSON for config.json, tokenizer.json and index files.
 *
 *   cJSON *cfg;
 *   if (io_json_load(path, IO_JSON_MAX_DEFAULT, &cfg, err)) return err->code;
 *   int64_t dim = io_json_int(cfg, "hidden_size", 0);
 *   const char *act = io_json_str(io_json_path(cfg, "text_config.hidden_act"), NULL, "gelu");
 *   cJSON_Delete(cfg);
 *
 * Lookups are NULL-safe: a NULL object or a missing / mistyped key gives the default. */
#ifndef IO_JSON_H
#define IO_JSON_H

#include <cjson/cJSON.h>

#include "core/common.h"

#define IO_JSON_MAX_DEFAULT ((size_t)64 << 20)

/* Reads and parses a JSON file of at most max_size bytes. *out is freed with cJSON_Delete. */
int io_json_load(const char *path, size_t max_size, cJSON **out, gl_err *err);
/* Parses len bytes (need not be NUL-terminated); name is for messages. */
int io_json_parse(const char *text, size_t len, const char *name, cJSON **out, gl_err *err);

/* Member key of object o (key NULL: o itself). Integers must be exact (no fraction, within
 * int64); floats accept any number; bools accept true/false only. */
int64_t io_json_int(const cJSON *o, const char *key, int64_t def);
double io_json_num(const cJSON *o, const char *key, double def);
const char *io_json_str(const cJSON *o, const char *key, const char *def);
bool io_json_bool(const cJSON *o, const char *key, bool def);

/* Follows a dotted path: object keys and array indices, e.g. "vision_config.layers.0.dim".
 * NULL when any step is missing. Keys containing '.' cannot be reached this way. */
const cJSON *io_json_path(const cJSON *root, const char *path);

#endif
