/* mapfile.h — read-only memory map of a whole file (weights are views into it). */
#ifndef GL_MAPFILE_H
#define GL_MAPFILE_H

#include "common.h"

typedef struct gl_mapfile {
    const uint8_t *data;
    size_t size;
    int fd;
} gl_mapfile;

/* Maps path read-only. An empty file maps to data == NULL, size == 0. */
int gl_mapfile_open(gl_mapfile *m, const char *path, gl_err *err);
void gl_mapfile_close(gl_mapfile *m);
/* Hint: builds the page tables for [p, p + n) of a mapping now (Linux MADV_POPULATE_READ),
 * in one pass instead of one page fault per page on first use. No-op where unsupported. */
void gl_map_prefault(const void *p, size_t n);

/* Reads a whole (small) file into a NUL-terminated heap buffer; max_size guards against huge files. */
int gl_read_file(const char *path, size_t max_size, char **out, size_t *out_len, gl_err *err);

#endif
