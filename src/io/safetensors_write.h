/* safetensors_write.h — writes .safetensors files (8-byte LE header size, JSON header padded
 * with spaces to 8 bytes, raw little-endian data). Tensor data is produced by a callback while
 * writing, so multi-GB files (random models for benchmarks, conversions) never sit in memory. */
#ifndef IO_SAFETENSORS_WRITE_H
#define IO_SAFETENSORS_WRITE_H

#include "core/tensor.h"

typedef struct io_st_writer io_st_writer;

/* Fills buf (nbytes) with the data of tensor index i. Returns 0 or an error code. */
typedef int (*io_st_fill_fn)(void *user, size_t i, void *buf, size_t nbytes);

io_st_writer *io_st_writer_new(void);
void io_st_writer_free(io_st_writer *w);
/* Adds a tensor (F32, F16, BF16, I64, I32, U8...). Returns its index, or -1 (out of memory or
 * a bad shape). Shape in PyTorch order; ndim 0 is a scalar. */
long io_st_writer_add(io_st_writer *w, const char *name, gl_dtype dt, int ndim, const int64_t *shape);
size_t io_st_writer_count(const io_st_writer *w);
int io_st_writer_write(io_st_writer *w, const char *path, io_st_fill_fn fill, void *user, gl_err *err);

#endif
