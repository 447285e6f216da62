#define _GNU_SOURCE
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int gl_mapfile_open(gl_mapfile *m, const char *path, gl_err *err) {
    memset(m, 0, sizeof *m);
    m->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return gl_err_set(err, GLIMPSE_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return gl_err_set(err, GLIMPSE_ERR_IO, "%s: mmap: %s", path, strerror(e));
        }
        m->data = p;
    }
    m->size = (size_t)st.st_size;
    m->fd = fd;
    return 0;
}

void gl_mapfile_close(gl_mapfile *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, m->size);
    if (m->fd >= 0) close(m->fd);
    memset(m, 0, sizeof *m);
    m->fd = -1;
}

int gl_read_file(const char *path, size_t max_size, char **out, size_t *out_len, gl_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    /* read at most max_size + 1 bytes: one more than allowed proves the file is too large */
    size_t limit = max_size < SIZE_MAX - 1 ? max_size + 1 : max_size;
    size_t cap = GL_MIN((size_t)4096, limit), len = 0;
    char *buf = gl_malloc(cap + 1);
    int rc = buf ? 0 : gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
    while (!rc) {
        if (len == cap) {
            if (cap >= limit) break;
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            char *nb = gl_realloc(buf, ncap + 1);
            if (!nb) {
                rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (!rc && ferror(f)) rc = gl_err_set(err, GLIMPSE_ERR_IO, "%s: read error", path);
    if (!rc && len > max_size) rc = gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "%s: larger than %zu bytes", path, max_size);
    fclose(f);
    if (rc) {
        gl_free(buf);
        return rc;
    }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return 0;
}

void gl_map_prefault(const void *p, size_t n) {
#ifdef MADV_POPULATE_READ
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p & ~(pg - 1);
    if (p && n) madvise((void *)a, (uintptr_t)p + n - a, MADV_POPULATE_READ);
#else
    (void)p, (void)n;
#endif
}
