/* kernels.h — what every op needs to run: the thread pool and the CPU's ISA choice.
 *
 * Ops live in families (gemm.h, conv.h, nn.h, ...). Each family's public ops take a
 * `const kn_env *` and pick the ISA version from env->cpu (AVX2+FMA+F16C on x86-64, NEON on
 * arm64, else the plain-C scalar twin, which is the spec). Tests run the same op with a
 * scalar env and a native env and compare. A scalar env: kn_env_scalar(pool). */
#ifndef KN_KERNELS_H
#define KN_KERNELS_H

#include "core/common.h"
#include "core/cpu.h"
#include "core/pool.h"

#include <string.h>

/* Grow-only scratch memory owned by a context: kernel workspaces (GEMM packing, im2col,
 * attention scores) come from here, so after the first call of a given shape a forward pass
 * allocates nothing. One context = one thread at a time, so no locking. */
typedef struct kn_scratch {
    void *p;
    size_t size;
} kn_scratch;

typedef struct kn_env {
    gl_pool *pool;       /* may be NULL: single-threaded */
    gl_cpu cpu;
    kn_scratch *scratch; /* may be NULL: ops allocate per call (tests, tools) */
} kn_env;

static inline kn_env kn_env_native(gl_pool *pool) {
    kn_env e;
    memset(&e, 0, sizeof e);
    e.pool = pool;
    e.cpu = gl_cpu_detect();
    return e;
}
static inline kn_env kn_env_scalar(gl_pool *pool) {
    kn_env e;
    memset(&e, 0, sizeof e);
    e.pool = pool;
    e.cpu.forced_scalar = true;
    return e;
}
/* At least n bytes of 64-byte aligned scratch from env (grown if needed), or NULL if env has
 * no scratch or the allocation fails. Invalidated by the next call. */
static inline void *kn_scratch_get(const kn_env *env, size_t n) {
    kn_scratch *s = env->scratch;
    if (!s) return NULL;
    if (s->size < n) {
        gl_aligned_free(s->p);
        s->size = 0;
        s->p = gl_aligned_alloc(64, n);
        if (!s->p) return NULL;
        s->size = n;
    }
    return s->p;
}
static inline void kn_scratch_free(kn_scratch *s) {
    if (!s) return;
    gl_aligned_free(s->p);
    s->p = NULL;
    s->size = 0;
}

static inline bool kn_use_avx2(const kn_env *e) { return gl_cpu_has_avx2(&e->cpu); }
static inline bool kn_use_avx512(const kn_env *e) { return gl_cpu_has_avx512(&e->cpu); }
static inline bool kn_use_neon(const kn_env *e) { return e->cpu.neon; }

#endif
