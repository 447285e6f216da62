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

typedef struct kn_env {
    gl_pool *pool; /* may be NULL: single-threaded */
    gl_cpu cpu;
} kn_env;

static inline kn_env kn_env_native(gl_pool *pool) {
    kn_env e;
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
static inline bool kn_use_avx2(const kn_env *e) { return gl_cpu_has_avx2(&e->cpu); }
static inline bool kn_use_neon(const kn_env *e) { return e->cpu.neon; }

#endif
