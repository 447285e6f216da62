/* gemm.c — the GEMM driver: picks the ISA, splits work over threads, blocks the loops.
 *
 * Packed path (M > KN_GEMV_MAX_M), GotoBLAS/BLIS loops over one thread's columns of C:
 *   for jc in N by NC:            B block KC x NC lives in L2/L3
 *     for pc in K by KC:          pack B[pc, jc] (f16/bf16 -> f32 here)
 *       for ic in M by MC:        A block [ic, pc] (MC x KC) lives in L2
 *         for jr in NC by NR:     B micro-panel (KC x NR) in L1
 *           for ir in MC by MR:   microkernel: MR x NR tile in registers
 * The first K block writes C (or adds to it when accumulating), later ones add; the last adds
 * the bias and applies the activation to the tile while it is in cache.
 *
 * Threads, two ways (prefer_split_n picks by shape and thread count):
 *  - columns (usual): all threads pack A once into the workspace (a pool job), then take
 *    chunks of ~N/(4 threads) columns from a shared counter, packing that chunk of B. Each
 *    operand is packed once, and a thread slowed by other load on a shared machine simply
 *    takes fewer chunks. A larger than KN_GEMM_A_PACKED_MAX runs in rounds of rows.
 *  - rows (N too narrow to split evenly): a static split in MR-row units; each thread packs
 *    its A blocks and all of B.
 * Either way each output is computed by the same instructions in the same order whichever
 * thread computes it (K is never split, and its blocking does not depend on the split):
 * results are bitwise independent of the thread count.
 *
 * Workspace (plan.floats): the packed A and one B chunk per thread, or one A block and one B
 * block per thread; from the caller (ws) or allocated for the call. A caller workspace keeps
 * malloc out of the forward pass, and unlike static or TLS buffers it works for any number of
 * pools, and thread stacks stay small (a B block is up to 2 MB). */
#include "gemm.h"

#include <stdatomic.h>

static const kn_gemm_isa *pick_isa(const kn_env *env) {
#if defined(__x86_64__)
    if (kn_use_avx2(env)) return &kn_gemm_isa_avx2;
#endif
#if defined(__aarch64__)
    if (kn_use_neon(env)) return &kn_gemm_isa_neon;
#endif
    (void)env;
    return &kn_gemm_isa_scalar;
}

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Block sizes for one ISA, clipped to the problem. */
typedef struct blocking { int64_t kc, mc, nc; } blocking;

static blocking block_sizes(const kn_gemm_isa *isa, int64_t M, int64_t N, int64_t K) {
    blocking b;
    b.kc = GL_MIN(K, KN_GEMM_KC);
    if (b.kc < 1) b.kc = 1;
    b.mc = GL_MIN(round_up(M, isa->mr), KN_GEMM_MC / isa->mr * isa->mr);
    b.nc = GL_MIN(round_up(N, isa->nr), KN_GEMM_NC / isa->nr * isa->nr);
    return b;
}

/* Floats per thread: A block + B block, each rounded to a 64-byte line. */
static size_t thread_floats(const blocking *b) {
    return (size_t)round_up(b->mc * b->kc, 16) + (size_t)round_up(b->kc * b->nc, 16);
}

/* Splitting N (A packed once, shared; B packed per chunk) packs each operand once; splitting M
 * makes every thread pack all of B (with f16/bf16 conversion and, for trans_b,
 * transposition). So N is preferred unless its tiles divide much less evenly over the threads.
 * (Either way each output is computed identically: the choice only moves work between
 * threads.) */
static int prefer_split_n(const kn_gemm_isa *isa, int64_t M, int64_t N, int nth) {
    int64_t un = (N + isa->nr - 1) / isa->nr, um = (M + isa->mr - 1) / isa->mr;
    double wn = (double)((un + nth - 1) / nth) * nth / un; /* busiest thread's load vs the mean */
    double wm = (double)((um + nth - 1) / nth) * nth / um;
    return wn <= 1.05 || wn <= wm;
}

#define KN_GEMM_A_PACKED_MAX (2 << 20) /* floats of A packed at once when splitting N (8 MB) */

/* How one product runs, and the scratch it needs (a function of the shape and thread count
 * only, so kn_gemm_ws_size and kn_gemm agree). */
typedef struct plan {
    blocking b;
    int split_n;
    int64_t ms, w;  /* split_n: rows of A per round, columns per chunk */
    size_t floats;  /* workspace */
} plan;

static plan make_plan(const kn_gemm_isa *isa, int64_t M, int64_t N, int64_t K, int nth) {
    plan p;
    memset(&p, 0, sizeof p);
    p.b = block_sizes(isa, M, N, K);
    p.split_n = prefer_split_n(isa, M, N, nth);
    if (!p.split_n) {
        p.floats = (size_t)nth * thread_floats(&p.b);
        return p;
    }
    int64_t ms = KN_GEMM_A_PACKED_MAX / K / p.b.mc * p.b.mc;
    p.ms = GL_MIN(M, GL_MAX(ms, p.b.mc));
    /* ~4 chunks per thread for balance, but wide enough that each A block read into L2 serves
     * several B panels */
    int64_t w = round_up((N + 4 * nth - 1) / (4 * nth), isa->nr);
    w = GL_MAX(w, round_up(64, isa->nr));
    p.w = GL_MIN(w, p.b.nc);
    p.floats = (size_t)round_up(round_up(p.ms, isa->mr) * K, 16) + (size_t)nth * round_up(p.b.kc * p.w, 16);
    return p;
}

/* Reported size: the larger of both ways' needs, with the packed-A part bounded by
 * min(all of A, budget + one MC block row band), so it never shrinks as M, N or K grow
 * (callers size a scratch once for the largest shape) and always covers make_plan's need. */
size_t kn_gemm_ws_size(const kn_env *env, int64_t M, int64_t N, int64_t K) {
    if (M <= KN_GEMV_MAX_M || N <= 0 || K <= 0) return 0;
    const kn_gemm_isa *isa = pick_isa(env);
    int nth = gl_pool_size(env->pool);
    plan p = make_plan(isa, M, N, K, nth);
    size_t rows = (size_t)nth * thread_floats(&p.b);
    int64_t a_all = round_up(M, isa->mr) * K, a_cap = KN_GEMM_A_PACKED_MAX + p.b.mc * K;
    int64_t w = round_up((N + 4 * nth - 1) / (4 * nth), isa->nr);
    w = GL_MIN(GL_MAX(w, round_up(64, isa->nr)), p.b.nc);
    size_t cols = (size_t)round_up(GL_MIN(a_all, a_cap), 16) + (size_t)nth * round_up(p.b.kc * w, 16);
    return GL_MAX(rows, cols) * sizeof(float) + 64;
}

/* A[m0:m0+mc, k0:k0+kc] as panels of mr rows (kc x mr each, k-major), zero-padded rows. */
static void pack_a(const kn_gemm_args *a, int mr, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float *dst) {
    for (int64_t i = 0; i < mc; i += mr) {
        int64_t rows = GL_MIN(mr, mc - i);
        const float *src = a->A + (m0 + i) * a->lda + k0;
        if (rows == mr) {
            for (int64_t k = 0; k < kc; k++)
                for (int r = 0; r < mr; r++) dst[k * mr + r] = src[r * a->lda + k];
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int r = 0; r < mr; r++) dst[k * mr + r] = r < rows ? src[r * a->lda + k] : 0.0f;
        }
        dst += kc * mr;
    }
}

typedef struct job {
    const kn_gemm_args *a;
    const kn_gemm_isa *isa;
    blocking b;
    float *ws;        /* see plan_ws */
    int split_n;      /* 1: columns in chunks taken dynamically, A packed once; 0: rows split */
    /* split_n: rows [m0, m0 + ms) of A packed in ap, N in chunks of w columns */
    int64_t m0, ms, w, n_chunks;
    float *ap;
    atomic_long next_chunk;
} job;

/* C[ic:ic+mc, jc:jc+nc] (+)= packed A block (panels of mr rows, kc each) · packed B block
 * (panels of nr columns, kc each); bias and activation when this is the last K block. */
static void macro_kernel(const job *j, const float *wa, const float *wb, int64_t ic, int64_t mc, int64_t jc, int64_t nc,
                         int64_t kc, int load_c, int last, float *tile) {
    const kn_gemm_args *a = j->a;
    const kn_gemm_isa *isa = j->isa;
    const int mr = isa->mr, nr = isa->nr;
    float bm_pad[16], bn_pad[16];
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int64_t nv = GL_MIN(nr, nc - jr);
        const float *pb = wb + jr * kc;
        int64_t col = jc + jr;
        const float *bn = NULL;
        if (last && a->bias_n) {
            if (nv == nr) bn = a->bias_n + col;
            else {
                for (int x = 0; x < nr; x++) bn_pad[x] = x < nv ? a->bias_n[col + x] : 0.0f;
                bn = bn_pad;
            }
        }
        for (int64_t ir = 0; ir < mc; ir += mr) {
            int64_t mv = GL_MIN(mr, mc - ir);
            int64_t row = ic + ir;
            const float *pa = wa + ir * kc;
            const float *bm = NULL;
            if (last && a->bias_m) {
                if (mv == mr) bm = a->bias_m + row;
                else {
                    for (int x = 0; x < mr; x++) bm_pad[x] = x < mv ? a->bias_m[row + x] : 0.0f;
                    bm = bm_pad;
                }
            }
            float *c = a->C + row * a->ldc + col;
            if (mv == mr && nv == nr) {
                isa->kernel(kc, pa, pb, c, a->ldc, load_c, bm, bn);
            } else {
                /* edge tile: run the same kernel on a padded copy */
                if (load_c)
                    for (int64_t r = 0; r < mv; r++) memcpy(tile + r * nr, c + r * a->ldc, nv * sizeof(float));
                isa->kernel(kc, pa, pb, tile, nr, load_c, bm, bn);
                for (int64_t r = 0; r < mv; r++) memcpy(c + r * a->ldc, tile + r * nr, nv * sizeof(float));
            }
            if (last && a->act != KN_ACT_NONE && !a->accumulate) isa->act_tile(a->act, c, a->ldc, mv, nv);
        }
    }
}

/* Rows split: C[m0:m1, 0:N], packing A blocks into wa and B blocks into wb (m0 a multiple
 * of mr). */
static void gemm_rows(const job *j, float *wa, float *wb, int64_t m0, int64_t m1) {
    const kn_gemm_args *a = j->a;
    const blocking *b = &j->b;
    float tile[16 * 16] __attribute__((aligned(64)));  /* edge tiles: mr, nr <= 16 */
    memset(tile, 0, sizeof tile);
    for (int64_t jc = 0; jc < a->N; jc += b->nc) {
        int64_t nc = GL_MIN(b->nc, a->N - jc);
        for (int64_t pc = 0; pc < a->K; pc += b->kc) {
            int64_t kc = GL_MIN(b->kc, a->K - pc);
            int load_c = pc > 0 || a->accumulate, last = pc + kc >= a->K;
            j->isa->pack_b(a, pc, kc, jc, nc, wb);
            for (int64_t ic = m0; ic < m1; ic += b->mc) {
                int64_t mc = GL_MIN(b->mc, m1 - ic);
                pack_a(a, j->isa->mr, ic, mc, pc, kc, wa);
                macro_kernel(j, wa, wb, ic, mc, jc, nc, kc, load_c, last, tile);
            }
        }
    }
}

/* Columns split, step 1: rows [m0, m0+ms) of A packed once for all threads, as panels of mr
 * rows per K block (K block pc at ap + pc * round_up(ms, mr)). Static split over panels. */
static void run_pack_a(void *v, int ith, int nth) {
    const job *j = v;
    const int mr = j->isa->mr;
    int64_t ms_r = round_up(j->ms, mr), lo, hi;
    gl_split(ms_r / mr, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    for (int64_t pc = 0; pc < j->a->K; pc += j->b.kc) {
        int64_t kc = GL_MIN(j->b.kc, j->a->K - pc);
        int64_t r0 = lo * mr, r1 = GL_MIN(hi * mr, j->ms);
        pack_a(j->a, mr, j->m0 + r0, r1 - r0, pc, kc, j->ap + pc * ms_r + r0 * kc);
    }
}

/* Columns split, step 2: threads take chunks of w columns from a shared counter (so a thread
 * slowed by other load takes fewer), pack that chunk of B and run it against the packed A. */
static void run_chunks(void *v, int ith, int nth) {
    job *j = v;
    const kn_gemm_args *a = j->a;
    const blocking *b = &j->b;
    float *wb = j->ap + round_up(round_up(j->ms, j->isa->mr) * a->K, 16) + (size_t)ith * round_up(b->kc * j->w, 16);
    int64_t ms_r = round_up(j->ms, j->isa->mr);
    float tile[16 * 16] __attribute__((aligned(64)));
    memset(tile, 0, sizeof tile);
    for (;;) {
        int64_t ch = atomic_fetch_add(&j->next_chunk, 1);
        if (ch >= j->n_chunks) break;
        int64_t jc = ch * j->w, nc = GL_MIN(j->w, a->N - jc);
        for (int64_t pc = 0; pc < a->K; pc += b->kc) {
            int64_t kc = GL_MIN(b->kc, a->K - pc);
            int load_c = pc > 0 || a->accumulate, last = pc + kc >= a->K;
            j->isa->pack_b(a, pc, kc, jc, nc, wb);
            for (int64_t ic = 0; ic < j->ms; ic += b->mc) {
                int64_t mc = GL_MIN(b->mc, j->ms - ic);
                macro_kernel(j, j->ap + pc * ms_r + ic * kc, wb, j->m0 + ic, mc, jc, nc, kc, load_c, last, tile);
            }
        }
    }
    (void)nth;
}

static void run_rows(void *v, int ith, int nth) {
    const job *j = v;
    float *wa = j->ws + (size_t)ith * thread_floats(&j->b);
    float *wb = wa + round_up(j->b.mc * j->b.kc, 16);
    int64_t mr = j->isa->mr, lo, hi;
    gl_split((j->a->M + mr - 1) / mr, ith, nth, &lo, &hi);
    if (lo < hi) gemm_rows(j, wa, wb, lo * mr, GL_MIN(hi * mr, j->a->M));
}

/* GEMV path: the columns of up to GEMV_BATCH products in chunks claimed from one counter.
 * A chunk is a multiple of 16 columns (isa->gemv's unit) holding ~64 KB of weights: long
 * enough to stream, short enough that a descheduled thread leaves little behind. */
#define GEMV_BATCH 8
#define GEMV_CHUNK_BYTES 65536

typedef struct gemv_job {
    const kn_gemm_args *a[GEMV_BATCH];
    int n;
    const kn_gemm_isa *isa;
    int64_t first[GEMV_BATCH + 1]; /* product i owns chunks [first[i], first[i+1]) */
    int64_t w[GEMV_BATCH];         /* columns per chunk */
    atomic_long next;
} gemv_job;

static void run_gemv(void *v, int ith, int nth) {
    gemv_job *j = v;
    int i = 0;
    for (;;) {
        int64_t ch = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (ch >= j->first[j->n]) break;
        while (ch >= j->first[i + 1]) i++; /* chunks are claimed in increasing order */
        const kn_gemm_args *a = j->a[i];
        int64_t n0 = (ch - j->first[i]) * j->w[i];
        j->isa->gemv(a, n0, GL_MIN(n0 + j->w[i], a->N));
    }
    (void)ith, (void)nth;
}

static int on_gemv_path(const kn_gemm_args *a) { return a->M > 0 && a->M <= KN_GEMV_MAX_M && a->N > 0 && a->K > 0; }

/* Products a[0..n) all on the GEMV path, n <= GEMV_BATCH. */
static void gemv_batch(const kn_env *env, const kn_gemm_args *const *a, int n) {
    gemv_job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    j.isa = pick_isa(env);
    for (int i = 0; i < n; i++) {
        size_t row = (size_t)a[i]->K * gl_dtype_size(a[i]->b_type);
        int64_t w = round_up((int64_t)(GEMV_CHUNK_BYTES / (row ? row : 1)), 16);
        j.a[i] = a[i];
        j.w[i] = GL_MAX(w, 16);
        j.first[i + 1] = j.first[i] + (a[i]->N + j.w[i] - 1) / j.w[i];
    }
    atomic_init(&j.next, 0);
    gl_pool_run(env->pool, run_gemv, &j);
}

void kn_gemm_batch(const kn_env *env, const kn_gemm_args *a, int n) {
    const kn_gemm_args *g[GEMV_BATCH];
    int ng = 0;
    for (int i = 0; i < n; i++) {
        if (!on_gemv_path(&a[i])) {
            kn_gemm(env, &a[i]);
            continue;
        }
        g[ng++] = &a[i];
        if (ng == GEMV_BATCH) gemv_batch(env, g, ng), ng = 0;
    }
    if (ng) gemv_batch(env, g, ng);
}

/* K == 0: C = act(bias) (or C += bias). */
static void gemm_k0(const kn_gemm_args *a) {
    for (int64_t m = 0; m < a->M; m++)
        for (int64_t n = 0; n < a->N; n++) {
            float s = 0;
            if (a->bias_n) s += a->bias_n[n];
            if (a->bias_m) s += a->bias_m[m];
            float *c = &a->C[m * a->ldc + n];
            *c = a->accumulate ? *c + s : kn_gemm_act1(a->act, s);
        }
}

typedef struct ref_job { const kn_gemm_args *a; } ref_job;

static void run_ref_rows(void *v, int ith, int nth) {
    const kn_gemm_args *a = ((ref_job *)v)->a;
    int64_t lo, hi;
    gl_split(a->M, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    kn_gemm_args s = *a;
    s.M = hi - lo;
    s.A = a->A + lo * a->lda;
    s.C = a->C + lo * a->ldc;
    s.bias_m = a->bias_m ? a->bias_m + lo : NULL;
    kn_gemm_ref(&s);
}

void kn_gemm(const kn_env *env, const kn_gemm_args *a) {
    if (a->M <= 0 || a->N <= 0) return;
    if (a->K <= 0) {
        gemm_k0(a);
        return;
    }
    job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.next_chunk, 0);
    j.a = a;
    j.isa = pick_isa(env);
    if (a->M <= KN_GEMV_MAX_M) {
        gemv_batch(env, &a, 1);
        return;
    }
    int nth = gl_pool_size(env->pool);
    plan p = make_plan(j.isa, a->M, a->N, a->K, nth);
    size_t need = p.floats * sizeof(float) + 64; /* <= kn_gemm_ws_size() */
    void *own = NULL, *ws = a->ws;
    if (!ws || a->ws_size < need) ws = own = gl_malloc(need);
    if (!ws) {
        /* out of memory: still correct, just slow */
        ref_job r = {a};
        gl_pool_run(env->pool, run_ref_rows, &r);
        return;
    }
    j.ws = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    j.b = p.b;
    j.split_n = p.split_n;
    if (!j.split_n) {
        gl_pool_run(env->pool, run_rows, &j);
    } else {
        j.ap = j.ws;
        j.w = p.w;
        j.n_chunks = (a->N + p.w - 1) / p.w;
        for (int64_t m0 = 0; m0 < a->M; m0 += p.ms) {
            j.m0 = m0;
            j.ms = GL_MIN(p.ms, a->M - m0);
            gl_pool_run(env->pool, run_pack_a, &j); /* the end of a pool job is a barrier */
            atomic_store(&j.next_chunk, 0);
            gl_pool_run(env->pool, run_chunks, &j);
        }
    }
    gl_free(own);
}
