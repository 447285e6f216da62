/* tok_file.h — reading tokenizer files: whole files (plain or gzip) and flat JSON objects
 * of the form {"token": id, ...} (vocab.json, added_tokens.json). */
#ifndef TOK_FILE_H
#define TOK_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* Reads a whole file into a NUL-terminated buffer (free with gl_free). With gz set the file is
 * gunzipped (zlib; plain files pass through unchanged). Errors name the path. */
int tok_read_file(const char *path, int gz, char **buf, size_t *len, gl_err *err);

/* Called once per member; key is decoded (escapes resolved) UTF-8, not NUL-terminated.
 * Return non-zero to stop (that status is returned). */
typedef int (*tok_json_member_fn)(void *ud, const char *key, size_t klen, int64_t val);

/* Parses a JSON object whose values are all integers, calling fn for each member in order.
 * Anything else (nested values, bad escapes, invalid UTF-8 in keys, trailing junk) is
 * GLIMPSE_ERR_FORMAT with the byte offset; name is used in messages. */
int tok_json_flat_object(const char *buf, size_t len, tok_json_member_fn fn, void *ud,
                         const char *name, gl_err *err);

/* Inverse of GPT-2's bytes_to_unicode: code point -> byte, or -1 if cp is not in the image. */
int tok_byte_of_unicode(uint32_t cp);
/* GPT-2's bytes_to_unicode: byte -> code point. */
uint32_t tok_unicode_of_byte(uint8_t b);

#endif
