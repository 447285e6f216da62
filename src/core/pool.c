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

/* Spin iterations before a worker sleeps: ~tens of microseconds, enough to bridge the gap
 * between consecutive ops of a forward pass without burning a core when idle. */
#define SPIN_ITERS 20000
/* The caller waiting for a task still running elsewhere yields its core after this many spins:
 * on a loaded machine the thread it waits for may be queued behind it. */
#define YIELD_AFTER 2000

typedef struct worker {
    gl_pool *pool;
    int ith;
    pthread_t th;
} worker;

/* A job's n tasks (ith = 0..n-1) are claimed by whichever threads are running: normally each
 * thread runs one, but when a worker is late (asleep, or descheduled on a machine with more
 * runnable threads than cores) the caller runs its task too instead of waiting for it.
 * Thread t (the caller is 0) claims task t first: a split by ith then lands on the same core
 * job after job, so a row range one op writes is in that core's cache when the next op reads
 * it (moving a cache line between this VM's two vCPUs costs ~260 ns). claim = generation << 32
 * | bitmask of claimed tasks (pools of up to 32 threads; larger ones count instead), so a
 * worker still looking at an earlier job can never claim a task of the next one. */
struct gl_pool {
    int n;
    worker *w;
    gl_task_fn fn;
    void *arg;
    atomic_uint gen;        /* incremented per job (workers wait on it) */
    atomic_ullong claim;    /* gen << 32 | claimed tasks (bitmask, or a count for n > 32) */
    atomic_int done;        /* tasks of the current job finished */
    atomic_int sleeping;    /* workers blocked on cv */
    atomic_bool quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* The task thread `self` should claim given the claimed set c, or -1 when none is left. */
static int pick_task(const gl_pool *p, unsigned long long c, int self) {
    unsigned low = (unsigned)(c & 0xffffffffu);
    if (p->n > 32) return (int)low < p->n ? (int)low : -1;
    unsigned all = p->n == 32 ? ~0u : (1u << p->n) - 1, left = all & ~low;
    if (!left) return -1;
    return left >> self & 1 ? self : __builtin_ctz(left);
}

/* Runs the tasks of job `g` this thread can still claim. fn/arg are read after a successful
 * claim: the job cannot end (and they cannot change) before the claimed task is done. */
static void run_tasks(gl_pool *p, unsigned g, int self) {
    unsigned long long c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if ((unsigned)(c >> 32) != g) return;
        int i = pick_task(p, c, self);
        if (i < 0) return;
        unsigned long long nc = p->n > 32 ? c + 1 : c | 1ull << i;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, nc, memory_order_acq_rel, memory_order_acquire))
            continue;
        p->fn(p->arg, i, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker_main(void *v) {
    worker *w = v;
    gl_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
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
        run_tasks(p, g, w->ith);
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
    /* the previous job is over (done == n), so no thread reads fn/arg now */
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->claim, (unsigned long long)g << 32, memory_order_release);
    atomic_store(&p->gen, g); /* seq_cst: pairs with the worker's sleeping++ then gen check */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, g, 0);
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < p->n;) {
        if (++spins < YIELD_AFTER) cpu_relax();
        else sched_yield();
    }
}

bool gl_owned_init(gl_owned *q, int64_t n, int nth) {
    if (nth < 1 || nth > GL_OWNED_MAX || n < 0 || n >= ((int64_t)1 << 31)) return false;
    q->nth = nth;
    for (int t = 0; t < nth; t++) {
        int64_t lo, hi;
        gl_split(n, t, nth, &lo, &hi);
        atomic_init(&q->part[t].lohi, (unsigned long long)lo << 32 | (unsigned long long)hi);
    }
    return true;
}

/* From the front of part t (front = 1) or its back. */
static int64_t owned_take(gl_owned *q, int t, int front) {
    unsigned long long c = atomic_load_explicit(&q->part[t].lohi, memory_order_relaxed);
    for (;;) {
        unsigned lo = (unsigned)(c >> 32), hi = (unsigned)c;
        if (lo >= hi) return -1;
        unsigned long long nc = front ? c + (1ull << 32) : c - 1;
        if (atomic_compare_exchange_weak_explicit(&q->part[t].lohi, &c, nc, memory_order_relaxed, memory_order_relaxed))
            return front ? (int64_t)lo : (int64_t)hi - 1;
    }
}

int64_t gl_owned_next(gl_owned *q, int ith) {
    int64_t i = owned_take(q, ith % q->nth, 1);
    for (int k = 1; i < 0 && k < q->nth; k++) i = owned_take(q, (ith + k) % q->nth, 0);
    return i;
}
