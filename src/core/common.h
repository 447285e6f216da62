/* common.h — status, error messages, allocation gate and checked size arithmetic.
 * Every module under src/ includes this; nothing here prints or exits. */
#ifndef GL_COMMON_H
#define GL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "glimpse.h"

#define GL_ERRMSG_LEN 256

/* An error slot: a code and a one-line message. Handles embed one; readers take a pointer. */
typedef struct gl_err {
    int code;
    char msg[GL_ERRMSG_LEN];
} gl_err;

/* Fills err (if not NULL) and returns code, so a failure path is one line:
 *   return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: truncated header", path); */
int gl_err_set(gl_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void gl_err_clear(gl_err *err);
/* Copies an error's message into a caller buffer (errbuf may be NULL). */
void gl_err_copy(const gl_err *err, char *errbuf, size_t errlen);

/* All memory goes through these, so tests can count and fail allocations.
 * gl_alloc_fail_after(n): the n-th allocation from now fails (n < 0 disables). Test-only. */
void *gl_malloc(size_t n);
void *gl_calloc(size_t count, size_t size);
void *gl_realloc(void *p, size_t n);
void gl_free(void *p);
char *gl_strdup(const char *s);
void *gl_aligned_alloc(size_t align, size_t n); /* free with gl_aligned_free */
void gl_aligned_free(void *p);
void gl_alloc_fail_after(long n);

/* Overflow-checked size arithmetic for sizes read from untrusted files. Return false on overflow. */
static inline bool gl_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool gl_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

#define GL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define GL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
