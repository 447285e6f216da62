/* tensor.h — dtypes and read-only tensor views over mapped files or owned buffers. */
#ifndef GL_TENSOR_H
#define GL_TENSOR_H

#include "common.h"

#define GL_MAX_DIMS 8

/* Only ever appended to. Quantized block types follow ggml's layouts (added with GGUF). */
typedef enum gl_dtype {
    GL_F32 = 0,
    GL_F16 = 1,
    GL_BF16 = 2,
    GL_I64 = 3,
    GL_I32 = 4,
    GL_I16 = 5,
    GL_I8 = 6,
    GL_U8 = 7,
    GL_F64 = 8,
    GL_BOOL = 9,
    GL_Q8_0 = 10, /* 32 weights: f16 scale + 32 x int8 (34 bytes) */
    GL_Q4_0 = 11, /* 32 weights: f16 scale + 16 bytes of nibbles (18 bytes) */
    GL_DTYPE_COUNT
} gl_dtype;

/* Bytes per element for plain types; for block types, bytes per block (see gl_dtype_block). */
size_t gl_dtype_size(gl_dtype t);
/* Elements per block: 1 for plain types, 32 for Q8_0/Q4_0. */
int gl_dtype_block(gl_dtype t);
const char *gl_dtype_name(gl_dtype t);
/* Bytes for n elements (n must be a multiple of the block size); false on overflow/misfit. */
bool gl_dtype_nbytes(gl_dtype t, uint64_t n, size_t *out);

/* A tensor view. Shape is in PyTorch order (outermost first); data is contiguous row-major. */
typedef struct gl_tensor {
    const char *name;
    gl_dtype dtype;
    int ndim;
    int64_t shape[GL_MAX_DIMS];
    const void *data;
    size_t nbytes;
} gl_tensor;

int64_t gl_tensor_numel(const gl_tensor *t);
/* Converts any float/int plain dtype to f32 (dst holds numel floats). Returns 0 or an error for
 * types that have no f32 meaning here. */
int gl_tensor_to_f32(const gl_tensor *t, float *dst, gl_err *err);
/* Rows rows[0..n) of a 2-D tensor [R, C] to dst [n, C] (rows not checked against R). */
int gl_tensor_rows_to_f32(const gl_tensor *t, const int32_t *rows, int n, float *dst, gl_err *err);
/* "[768, 3, 16, 16]" into buf. */
const char *gl_tensor_shape_str(const gl_tensor *t, char *buf, size_t n);

#endif
