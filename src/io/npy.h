/* npy.h — write float32 arrays as NumPy .npy files (format 1.0), for --npy and --dump. */
#ifndef GL_NPY_H
#define GL_NPY_H

#include "core/common.h"

int io_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, gl_err *err);

#endif
