/* pool.h — a persistent thread pool. One job at a time runs on all threads (the caller is
 * thread 0); work is split by ith/nth inside the job, as ggml splits rows. Workers spin briefly
 * after a job (decode issues many small jobs back to back), then sleep on a condition variable. */
#ifndef GL_POOL_H
#define GL_POOL_H

#include "common.h"

typedef struct gl_pool gl_pool;
typedef void (*gl_task_fn)(void *arg, int ith, int nth);

/* Creates a pool of n_threads (>= 1; 1 means the caller alone, no threads are started). */
gl_pool *gl_pool_new(int n_threads);
void gl_pool_free(gl_pool *p);
int gl_pool_size(const gl_pool *p);
/* Runs fn(arg, ith, nth) for ith = 0..nth-1 concurrently; returns when all have returned.
 * p may be NULL: fn runs once on the caller with nth = 1. Not reentrant: a task must not call
 * gl_pool_run on the same pool. */
void gl_pool_run(gl_pool *p, gl_task_fn fn, void *arg);

/* [*lo, *hi) = the ith of nth near-equal parts of [0, n). */
static inline void gl_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t q = n / nth, r = n % nth;
    *lo = ith * q + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}

#endif
