/* pool.h — a persistent thread pool. One job at a time runs as n tasks (ith = 0..n-1); work is
 * split by ith/nth inside the job, as ggml splits rows. Each task runs exactly once, but not
 * necessarily on its own thread: threads claim tasks, so when a worker is late (asleep, or
 * descheduled on a loaded machine) the caller runs its task too rather than wait for it.
 * Workers spin briefly after a job (decode issues many small jobs back to back), then sleep on
 * a condition variable. */
#ifndef GL_POOL_H
#define GL_POOL_H

#include "common.h"

#include <stdatomic.h>

typedef struct gl_pool gl_pool;
typedef void (*gl_task_fn)(void *arg, int ith, int nth);

/* Creates a pool of n_threads (>= 1; 1 means the caller alone, no threads are started). */
gl_pool *gl_pool_new(int n_threads);
void gl_pool_free(gl_pool *p);
int gl_pool_size(const gl_pool *p);
/* Runs fn(arg, ith, nth) for ith = 0..nth-1 (nth = gl_pool_size), concurrently when threads are
 * free; returns when all have returned. Tasks must not wait for each other (one thread may run
 * several tasks in turn); per-ith workspaces are safe (one task per ith, one at a time).
 * p may be NULL: fn runs once on the caller with nth = 1. Not reentrant: a task must not call
 * gl_pool_run on the same pool. */
void gl_pool_run(gl_pool *p, gl_task_fn fn, void *arg);

/* Dynamic alternative to gl_split: each call takes the next part of [0, n), `grain` items long,
 * from the job's shared counter (starting at 0); false when none is left. Use it as
 *     while (gl_grab(&j->next, n, grain, &lo, &hi)) for (i = lo; i < hi; i++) ...
 * On a machine with other load a descheduled thread then holds up at most one part of a job:
 * with a static split the other threads wait, at the end of the job, for its whole share. */
static inline bool gl_grab(atomic_llong *next, int64_t n, int64_t grain, int64_t *lo, int64_t *hi) {
    int64_t s = (int64_t)atomic_fetch_add_explicit(next, (long long)grain, memory_order_relaxed);
    if (s >= n) return false;
    *lo = s;
    *hi = GL_MIN(s + grain, n);
    return true;
}
/* A grain giving ~8 parts per thread, at least `min` items. */
static inline int64_t gl_grain(int64_t n, int nth, int64_t min) {
    int64_t g = n / (8 * (int64_t)nth);
    return g > min ? g : min;
}

/* [*lo, *hi) = the ith of nth near-equal parts of [0, n). */
static inline void gl_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t q = n / nth, r = n % nth;
    *lo = ith * q + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}

/* Items with an owner: [0, n) split as gl_split does, part t owned by task t (which the pool
 * runs on thread t unless that thread is late). A task takes its own items from the front,
 * then the other parts' from the back, so an item stays on the core that handled it in the
 * previous job of the same split, while a core that falls behind still gets help. Up to
 * GL_OWNED_MAX parts (one cache line each: the counters are what the cores share). */
#define GL_OWNED_MAX 32
typedef struct gl_owned {
    int nth;
    struct {
        _Alignas(64) atomic_ullong lohi; /* lo << 32 | hi: items [lo, hi) are left */
    } part[GL_OWNED_MAX];
} gl_owned;
/* False (and nothing set) when nth > GL_OWNED_MAX or n >= 2^31. */
bool gl_owned_init(gl_owned *q, int64_t n, int nth);
/* The next item for task ith, or -1 when none is left. */
int64_t gl_owned_next(gl_owned *q, int ith);

#endif
