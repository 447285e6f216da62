/* zip.h — read-only view of a zip archive held in memory (PyTorch checkpoints).
 *
 * Parses the end-of-central-directory record (zip64 too), the central directory and each
 * entry's local header. Stored entries are views into the buffer; deflated ones are inflated
 * on request into memory the caller owns. Every offset is checked against the buffer. */
#ifndef IO_ZIP_H
#define IO_ZIP_H

#include "core/common.h"

typedef struct io_zip_entry {
    const char *name; /* not NUL-terminated: name_len bytes inside the archive buffer */
    size_t name_len;
    int method;       /* 0 stored, 8 deflated */
    const uint8_t *data; /* compressed bytes (== the content when stored) */
    uint64_t comp_size, size;
} io_zip_entry;

typedef struct io_zip {
    io_zip_entry *entries; /* sorted by name */
    size_t n;
} io_zip;

/* Parses the archive in buf; name is used in messages. io_zip_free releases the index. */
int io_zip_open(io_zip *z, const uint8_t *buf, size_t size, const char *name, gl_err *err);
void io_zip_free(io_zip *z);
/* Entry by exact name (binary search), NULL when absent. */
const io_zip_entry *io_zip_find(const io_zip *z, const char *name, size_t name_len);
/* Inflates a deflated entry into dst (e->size bytes). Checks the inflated size matches. */
int io_zip_inflate(const io_zip_entry *e, uint8_t *dst, const char *name, gl_err *err);

#endif
