/* arena.h — bump allocator for activations. Sized once (a first pass with base == NULL only
 * measures), then every forward pass allocates from it with no malloc. */
#ifndef GL_ARENA_H
#define GL_ARENA_H

#include "common.h"

#define GL_ARENA_ALIGN 64

typedef struct gl_arena {
    uint8_t *base; /* NULL: measuring pass, allocations return NULL but are counted */
    size_t size;   /* capacity in bytes */
    size_t used;
    size_t peak;
    bool owned;
} gl_arena;

/* Allocates an owned arena of size bytes. */
int gl_arena_init(gl_arena *a, size_t size, gl_err *err);
/* A measuring arena: counts what would be allocated. */
void gl_arena_init_measure(gl_arena *a);
void gl_arena_free(gl_arena *a);
/* Returns 64-byte aligned memory, or NULL when measuring or when full (a bug: sizes are computed
 * up front). */
void *gl_arena_alloc(gl_arena *a, size_t n);
static inline size_t gl_arena_mark(const gl_arena *a) { return a->used; }
static inline void gl_arena_reset(gl_arena *a, size_t mark) { a->used = mark; }

#endif
