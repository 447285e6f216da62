/* weights_impl.h — what the format readers share: the gl_weights container they fill.
 * Internal to src/io/. A reader maps its file(s) with io_w_map, adds tensors with io_w_add
 * (views into a map) or io_w_alloc (owned bytes), and gl_weights_open builds the name index
 * (which also rejects duplicate names) once the reader returns. */
#ifndef IO_WEIGHTS_IMPL_H
#define IO_WEIGHTS_IMPL_H

#include "core/mapfile.h"
#include "io/weights.h"

struct io_gguf;

struct gl_weights {
    gl_weights_format fmt;
    char *path;
    gl_mapfile *maps; /* one per file; pointers into these stay valid until close */
    size_t n_maps, cap_maps;
    gl_tensor *tensors;
    size_t n, cap;
    void **owned; /* buffers owned by the container: copied/inflated tensor data */
    size_t n_owned, cap_owned;
    uint32_t *index; /* open-addressing hash over tensor names: slot -> tensor index + 1 */
    size_t index_cap;
    struct io_gguf *gguf; /* GGUF metadata, NULL for other formats */
};

/* Maps path and returns the map (owned by w). */
int io_w_map(gl_weights *w, const char *path, const gl_mapfile **out, gl_err *err);
/* Adds a tensor; name is copied (name_len bytes, need not be NUL-terminated). data must stay
 * valid for w's lifetime (a map or an io_w_alloc buffer). Shape checked: 0..8 dims, each >= 0. */
int io_w_add(gl_weights *w, const char *name, size_t name_len, gl_dtype dt, int ndim, const int64_t *shape,
             const void *data, size_t nbytes, gl_err *err);
/* n bytes owned by w (freed at close); NULL when out of memory. 64-byte aligned. */
void *io_w_alloc(gl_weights *w, size_t n);

/* Builds the name index (done by gl_weights_open after the reader; readers may call it
 * earlier). Rejects duplicate names. Does nothing when already built. */
int io_w_build_index(gl_weights *w, gl_err *err);

/* Readers. Each appends to w (w->path is the user's path, for messages). */
int io_safetensors_load_file(gl_weights *w, const char *path, gl_err *err);
int io_safetensors_load_dir(gl_weights *w, const char *dir, gl_err *err);
int io_ptzip_load(gl_weights *w, const char *path, gl_err *err);
int io_gguf_load(gl_weights *w, const char *path, gl_err *err);

/* Checked product of dims (each >= 0) into *numel; false on overflow or a negative dim. */
bool io_shape_numel(int ndim, const int64_t *shape, uint64_t *numel);

#endif
