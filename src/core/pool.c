#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Waiting, a thread spins WAIT_SPIN_ITERS pauses (tens of microseconds), then yields its core
 * between checks: on a machine with more runnable threads than cores, the thread it waits for
 * may be descheduled and need that core (2-thread forwards ran 4x slower than 1-thread ones
 * under a load of 10 when the caller spun; spinning instead of yielding is still 2-3x slower
 * there). An idle worker sleeps after SPIN_ITERS checks (~1-2 ms on an idle machine), long
 * enough to bridge the gap between consecutive ops without burning a core when idle. */
#define SPIN_ITERS 4000
#define WAIT_SPIN_ITERS 2000

typedef struct worker {
    gl_pool *pool;
    int ith;
    pthread_t th;
} worker;

struct gl_pool {
    int n;
    worker *w;
    gl_task_fn fn;
    void *arg;
    atomic_uint gen;      /* incremented per job */
    atomic_int pending;   /* workers still running the current job */
    atomic_int sleeping;  /* workers blocked on cv */
    atomic_bool quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *worker_main(void *v) {
    worker *w = v;
    gl_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) {
            if (++spins < SPIN_ITERS) {
                if (spins < WAIT_SPIN_ITERS) cpu_relax();
                else sched_yield(); /* the caller may be the one waiting for this core */
                continue;
            }
            atomic_fetch_add(&p->sleeping, 1);
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            atomic_fetch_sub(&p->sleeping, 1);
            spins = 0;
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        p->fn(p->arg, w->ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

gl_pool *gl_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    gl_pool *p = gl_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->w = gl_calloc((size_t)n_threads, sizeof *p->w);
        if (!p->w) {
            gl_pool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            p->w[i].pool = p;
            p->w[i].ith = i;
            if (pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]) != 0) {
                p->n = i; /* run with the threads we got */
                break;
            }
        }
    }
    return p;
}

void gl_pool_free(gl_pool *p) {
    if (!p) return;
    atomic_store(&p->quit, true);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->w[i].th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    gl_free(p->w);
    gl_free(p);
}

int gl_pool_size(const gl_pool *p) { return p ? p->n : 1; }

void gl_pool_run(gl_pool *p, gl_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the worker's sleeping++ then gen check */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < WAIT_SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
}
