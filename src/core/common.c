#include "common.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

int gl_err_set(gl_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void gl_err_clear(gl_err *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
}

void gl_err_copy(const gl_err *err, char *errbuf, size_t errlen) {
    if (!errbuf || errlen == 0) return;
    snprintf(errbuf, errlen, "%s", err && err->msg[0] ? err->msg : glimpse_status_str(err ? err->code : 0));
}

/* Fault injection for tests. A process-wide counter is acceptable here: it is a test hook that
 * production never sets, and it is atomic. */
static atomic_long g_fail_after = -1;

void gl_alloc_fail_after(long n) { atomic_store(&g_fail_after, n); }

static bool should_fail(void) {
    long v = atomic_load(&g_fail_after);
    if (v < 0) return false;
    v = atomic_fetch_sub(&g_fail_after, 1);
    return v == 0;
}

void *gl_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }
void *gl_calloc(size_t c, size_t s) { return should_fail() ? NULL : calloc(c ? c : 1, s ? s : 1); }
void *gl_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }
void gl_free(void *p) { free(p); }

char *gl_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = gl_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Blocks this large (feature maps, KV caches, folded weights) start on a 2 MB boundary and ask
 * for transparent huge pages (Linux, THP in "madvise" mode as on Debian): one page fault per
 * 2 MB instead of 512 when first touched, and far fewer TLB misses when a GEMM walks a
 * [channels, H*W] map row by row. The madvise is a hint: failure changes nothing. */
#define HUGE_MIN ((size_t)8 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

void *gl_aligned_alloc(size_t align, size_t n) {
    if (should_fail()) return NULL;
    void *p = NULL;
#ifdef MADV_HUGEPAGE
    if (n >= HUGE_MIN && align <= HUGE_PAGE) {
        if (posix_memalign(&p, HUGE_PAGE, n) != 0) return NULL;
        madvise(p, n & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
        return p;
    }
#endif
    if (posix_memalign(&p, align, n ? n : align) != 0) return NULL;
    return p;
}
void gl_aligned_free(void *p) { free(p); }

const char *glimpse_status_str(int s) {
    switch (s) {
    case GLIMPSE_OK: return "ok";
    case GLIMPSE_ERR_INVALID_ARG: return "invalid argument";
    case GLIMPSE_ERR_IO: return "I/O error";
    case GLIMPSE_ERR_FORMAT: return "corrupt or malformed input";
    case GLIMPSE_ERR_UNSUPPORTED: return "unsupported";
    case GLIMPSE_ERR_NOMEM: return "out of memory";
    case GLIMPSE_ERR_TOO_LARGE: return "input too large";
    case GLIMPSE_ERR_MODEL_KIND: return "wrong model kind";
    case GLIMPSE_ERR_MISSING: return "missing file, tensor or key";
    case GLIMPSE_ERR_CANCELLED: return "cancelled";
    case GLIMPSE_ERR_CONTEXT_FULL: return "context full";
    case GLIMPSE_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *glimpse_version(void) { return GLIMPSE_VERSION_STRING; }
