#include "arena.h"

#include <string.h>

int gl_arena_init(gl_arena *a, size_t size, gl_err *err) {
    memset(a, 0, sizeof *a);
    a->base = gl_aligned_alloc(GL_ARENA_ALIGN, size);
    if (!a->base) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "arena: cannot allocate %zu bytes", size);
    a->size = size;
    a->owned = true;
    return 0;
}

void gl_arena_init_measure(gl_arena *a) { memset(a, 0, sizeof *a); }

void gl_arena_free(gl_arena *a) {
    if (a && a->owned) gl_aligned_free(a->base);
    if (a) memset(a, 0, sizeof *a);
}

void *gl_arena_alloc(gl_arena *a, size_t n) {
    size_t start = (a->used + GL_ARENA_ALIGN - 1) & ~(size_t)(GL_ARENA_ALIGN - 1);
    size_t end;
    if (!gl_add_ok(start, n, &end)) return NULL;
    a->used = end;
    if (end > a->peak) a->peak = end;
    if (!a->base || end > a->size) return NULL;
    return a->base + start;
}
