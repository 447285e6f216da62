/* weights.h — one interface over every weights format users download: a set of named tensors.
 *
 *   gl_weights_open(path): a .safetensors file, a folder with model.safetensors (or shards listed
 *   in model.safetensors.index.json, or open_clip_model.safetensors), a PyTorch zip checkpoint
 *   (.pt / .bin, `{"state_dict": ...}` and `module.` prefixes unwrapped), or a .gguf file.
 *
 * Tensors are zero-copy views into read-only mmaps wherever the stored layout is contiguous;
 * strided .pt storages, deflated zip entries and misaligned data are copied once into owned
 * memory. Every tensor's data is aligned to at least its element size (2 for Q8_0/Q4_0 blocks).
 * Tensor pointers and names stay valid until gl_weights_close. Every offset and size is checked
 * against the file; errors name the file and the problem. */
#ifndef GL_WEIGHTS_H
#define GL_WEIGHTS_H

#include "core/tensor.h"

typedef struct gl_weights gl_weights;

typedef enum gl_weights_format {
    GL_FMT_SAFETENSORS = 1,
    GL_FMT_SAFETENSORS_SHARDED = 2,
    GL_FMT_PYTORCH_ZIP = 3,
    GL_FMT_GGUF = 4,
} gl_weights_format;

int gl_weights_open(const char *path, gl_weights **out, gl_err *err);
void gl_weights_close(gl_weights *w);
gl_weights_format gl_weights_get_format(const gl_weights *w);
const char *gl_weights_format_name(gl_weights_format f);
size_t gl_weights_count(const gl_weights *w);
const gl_tensor *gl_weights_at(const gl_weights *w, size_t i);
/* NULL when absent. Lookup is by exact name (hashed). */
const gl_tensor *gl_weights_find(const gl_weights *w, const char *name);
/* The GGUF metadata (see io/gguf.h) of a weights set opened from a .gguf file; NULL otherwise.
 * Owned by w. */
struct io_gguf;
const struct io_gguf *gl_weights_gguf(const gl_weights *w);

#endif
