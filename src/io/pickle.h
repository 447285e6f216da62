/* pickle.h — the subset of Python's pickle that torch.save writes for a state_dict.
 *
 * Not a Python VM: it builds a tree of plain values (None, bool, int, float, str, bytes, tuple,
 * list, dict) plus the few torch objects a checkpoint needs (storage references from persistent
 * ids, tensors from torch._utils._rebuild_tensor_v2 / _rebuild_parameter). Any other callable
 * yields an opaque object, so extra checkpoint contents (epoch numbers, args) do not fail a load.
 * Hostile input is expected: the stack, memo, object count and item count are bounded, nothing
 * recurses, and every read is checked. */
#ifndef IO_PICKLE_H
#define IO_PICKLE_H

#include "core/tensor.h"

typedef enum io_pk_type {
    IO_PK_NONE, IO_PK_BOOL, IO_PK_INT, IO_PK_FLOAT, IO_PK_STR, IO_PK_BYTES, IO_PK_TUPLE, IO_PK_LIST,
    IO_PK_DICT, IO_PK_GLOBAL, IO_PK_STORAGE, IO_PK_TENSOR, IO_PK_OBJ,
    IO_PK_MARK /* internal: never in a result */
} io_pk_type;

typedef struct io_pk_val io_pk_val;

#define IO_PK_DTYPE_UNKNOWN 0xff /* io_pk_val.dtype of a storage whose torch type has no gl_dtype */

typedef struct io_pk_tensor {
    const io_pk_val *storage; /* an IO_PK_STORAGE */
    int64_t offset;           /* in elements */
    int ndim;
    int64_t size[GL_MAX_DIMS], stride[GL_MAX_DIMS];
} io_pk_tensor;

struct io_pk_val {
    uint8_t type;     /* io_pk_type */
    uint8_t dtype;    /* IO_PK_STORAGE: gl_dtype; IO_PK_GLOBAL: storage dtype + 1 for torch.*Storage, else 0 */
    int64_t i;        /* INT, BOOL; STORAGE: numel */
    double f;         /* FLOAT */
    const char *s;    /* STR/BYTES bytes; GLOBAL module; STORAGE key (in the pickle buffer, not NUL-terminated) */
    size_t slen;
    const char *s2;   /* GLOBAL name */
    size_t s2len;
    io_pk_val **items; /* TUPLE/LIST items; DICT keys and values interleaved */
    size_t n, cap;
    io_pk_tensor *tensor; /* TENSOR */
};

typedef struct io_pickle io_pickle;

/* Runs the pickle in buf (which must outlive the result: strings point into it). *root is the
 * value STOP returned; it and everything under it live until io_pickle_free. */
int io_pickle_load(const uint8_t *buf, size_t size, const char *name, io_pickle **out, const io_pk_val **root,
                   gl_err *err);
void io_pickle_free(io_pickle *p);

/* True when v is a str equal to s. */
bool io_pk_str_eq(const io_pk_val *v, const char *s);

#endif
