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
#include "qgemm.h"

#include <stdatomic.h>

const kn_gemm_isa *kn_gemm_isa_pick(const kn_env *env) {
#if defined(__x86_64__)
    if (kn_use_avx512(env)) return &kn_gemm_isa_avx512;
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
    b.kc = GL_MIN(K, isa->kc);
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

static plan make_plan(const kn_gemm_isa *isa, int64_t M, int64_t N, int64_t K, int nth, int packs_b) {
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
    /* a chunk's packed B (kc x w) within ~128 KB, so it is still in L2 when the kernels read it
     * (pre-packed B is not copied, and macro_kernel prefetches its panels only within a chunk:
     * narrow chunks there made the text tower slower on 2 threads) */
    if (packs_b) w = GL_MIN(w, GL_MAX(round_up(64, isa->nr), (32768 / p.b.kc) / isa->nr * isa->nr));
    p.w = GL_MIN(w, p.b.nc);
    p.floats = (size_t)round_up(round_up(p.ms, isa->mr) * K, 16) + (size_t)nth * round_up(p.b.kc * p.w, 16);
    return p;
}

/* Reported size: the larger of both ways' needs, with the packed-A part bounded by
 * min(all of A, budget + one MC block row band), so it never shrinks as M, N or K grow
 * (callers size a scratch once for the largest shape) and always covers make_plan's need. */
size_t kn_gemm_ws_size(const kn_env *env, int64_t M, int64_t N, int64_t K) {
    if (M <= KN_GEMV_MAX_M || N <= 0 || K <= 0) return 0;
    const kn_gemm_isa *isa = kn_gemm_isa_pick(env);
    int nth = gl_pool_size(env->pool);
    plan p = make_plan(isa, M, N, K, nth, 1);
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
#if defined(__x86_64__)
        if (mr == 16) { /* only the AVX-512 table has 16-row tiles */
            kn_gemm_avx512_pack_a16(src, a->lda, (int)rows, kc, dst);
            dst += kc * mr;
            continue;
        }
#endif
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
    int64_t rows_per_task, n_row_tasks; /* each column chunk is split into row ranges (narrow N) */
    const float *ap;
    float *bws;       /* per-thread B chunk buffers */
    atomic_long next_chunk;
    atomic_llong next_pack;
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
        /* pre-packed weights stream from DRAM (panels packed per call are in cache already):
         * the next panel towards L2 while this one runs over the rows. With few rows per weight
         * (77 text tokens) that saved ~3% of the text tower's CPU time on 1 and 2 threads. */
        if (a->Bp && jr + nr < nc) {
            const char *nx = (const char *)(pb + nr * kc);
            for (int64_t o = 0; o < nr * kc * (int64_t)sizeof(float); o += 64) __builtin_prefetch(nx + o, 0, 2);
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
        }
    }
    /* the activation over the whole block (still in L2) in one call: per tile, setting up the
     * activation's constants cost as much as the arithmetic */
    if (last && a->act != KN_ACT_NONE && !a->accumulate) isa->act_tile(a->act, a->C + ic * a->ldc + jc, a->ldc, mc, nc);
}

/* op(B)[pc:pc+kc, jc:jc+nc] as panels: the pre-packed ones where they are, else packed into wb
 * (jc is a multiple of nr: chunks and NC blocks are). */
static const float *b_panels(const job *j, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float *wb) {
    const kn_packed_b *bp = j->a->Bp;
    if (bp) return bp->p + pc * round_up(bp->N, bp->nr) + jc * kc;
    j->isa->pack_b(j->a, pc, kc, jc, nc, wb);
    return wb;
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
            const float *pb = b_panels(j, pc, kc, jc, nc, wb);
            for (int64_t ic = m0; ic < m1; ic += b->mc) {
                int64_t mc = GL_MIN(b->mc, m1 - ic);
                pack_a(a, j->isa->mr, ic, mc, pc, kc, wa);
                macro_kernel(j, wa, pb, ic, mc, jc, nc, kc, load_c, last, tile);
            }
        }
    }
}

/* Rows [m0, m0+mc) of A as panels of mr rows per K block (K block pc at dst + pc * round_up(mc, mr)),
 * panels [lo, hi) only: the layout run_chunks reads and kn_gemm_pack_a stores. */
static void pack_a_blocks(const kn_gemm_args *a, int mr, int64_t kcb, int64_t m0, int64_t mc, int64_t lo, int64_t hi,
                          float *dst) {
    int64_t mc_r = round_up(mc, mr);
    for (int64_t pc = 0; pc < a->K; pc += kcb) {
        int64_t kc = GL_MIN(kcb, a->K - pc);
        int64_t r0 = lo * mr, r1 = GL_MIN(hi * mr, mc);
        pack_a(a, mr, m0 + r0, r1 - r0, pc, kc, dst + pc * mc_r + r0 * kc);
    }
}

/* Columns split, step 1: rows [m0, m0+ms) of A packed once for all threads, a few panels at a
 * time from a shared counter. */
static void run_pack_a(void *v, int ith, int nth) {
    job *j = v;
    const int mr = j->isa->mr;
    int64_t lo, hi, panels = round_up(j->ms, mr) / mr;
    while (gl_grab(&j->next_pack, panels, gl_grain(panels, nth, 2), &lo, &hi))
        pack_a_blocks(j->a, mr, j->b.kc, j->m0, j->ms, lo, hi, (float *)j->ap);
    (void)ith;
}

/* Columns split, step 2: threads take tasks from a shared counter (so a thread slowed by other
 * load takes fewer): a chunk of w columns and a range of rows of it; each packs its chunk of B
 * and runs it against the packed A. */
static void run_chunks(void *v, int ith, int nth) {
    job *j = v;
    const kn_gemm_args *a = j->a;
    const blocking *b = &j->b;
    float *wb = j->bws + (size_t)ith * round_up(b->kc * j->w, 16);
    int64_t ms_r = round_up(j->ms, j->isa->mr);
    float tile[16 * 16] __attribute__((aligned(64)));
    memset(tile, 0, sizeof tile);
    for (;;) {
        int64_t t = atomic_fetch_add(&j->next_chunk, 1);
        if (t >= j->n_chunks * j->n_row_tasks) break;
        int64_t ch = t / j->n_row_tasks, r0 = t % j->n_row_tasks * j->rows_per_task;
        int64_t r1 = GL_MIN(r0 + j->rows_per_task, j->ms);
        int64_t jc = ch * j->w, nc = GL_MIN(j->w, a->N - jc);
        for (int64_t pc = 0; pc < a->K; pc += b->kc) {
            int64_t kc = GL_MIN(b->kc, a->K - pc);
            int load_c = pc > 0 || a->accumulate, last = pc + kc >= a->K;
            const float *pb = b_panels(j, pc, kc, jc, nc, wb);
            for (int64_t ic = r0; ic < r1; ic += b->mc) {
                int64_t mc = GL_MIN(b->mc, r1 - ic);
                macro_kernel(j, j->ap + pc * ms_r + ic * kc, pb, j->m0 + ic, mc, jc, nc, kc, load_c, last, tile);
            }
        }
    }
    (void)nth;
}

/* Splits each column chunk into row ranges (multiples of mr, so tiles stay where they are) when
 * there are too few chunks to keep every thread busy. */
static void split_rows(job *j, int nth) {
    int64_t mr = j->isa->mr, panels = round_up(j->ms, mr) / mr;
    int64_t want = (2 * nth + j->n_chunks - 1) / j->n_chunks;
    want = GL_MAX((int64_t)1, GL_MIN(want, panels / 4)); /* >= 4 panels of rows per task */
    j->rows_per_task = (panels + want - 1) / want * mr;
    j->n_row_tasks = (round_up(j->ms, mr) + j->rows_per_task - 1) / j->rows_per_task;
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

/* Quantized B (kernels/qgemm.h) and pre-packed operands take kn_gemm's own routes. */
static int on_gemv_path(const kn_gemm_args *a) {
    return a->M > 0 && a->M <= KN_GEMV_MAX_M && a->N > 0 && a->K > 0 && !gl_dtype_is_quant(a->b_type) && !a->Ap &&
           !a->Bp;
}

/* Products a[0..n) all on the GEMV path, n <= GEMV_BATCH. */
static void gemv_batch(const kn_env *env, const kn_gemm_args *const *a, int n) {
    gemv_job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    j.isa = kn_gemm_isa_pick(env);
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

/* A product with quantized B (trans_b, ldb == K, no bias_m) as qgemm.h takes it. */
static kn_qgemm_args qargs_of(const kn_gemm_args *a) {
    return (kn_qgemm_args){.M = a->M, .N = a->N, .K = a->K, .A = a->A, .lda = a->lda, .B = a->B, .b_type = a->b_type, .Bq = a->Bq,
                           .C = a->C, .ldc = a->ldc, .bias_n = a->bias_n, .act = a->act,
                           .accumulate = a->accumulate, .ws = a->ws, .ws_size = a->ws_size};
}

/* Decode-sized products with quantized B (as gemm_quant would run them): one kn_qgemm_batch. */
static int on_qgemv_path(const kn_gemm_args *a) {
    return a->M > 0 && a->M <= KN_GEMV_MAX_M && a->N > 0 && gl_dtype_is_quant(a->b_type) && a->trans_b &&
           a->ldb == a->K && !a->bias_m && a->K % GL_QK == 0 && !a->Ap && !a->Bp;
}

void kn_gemm_batch(const kn_env *env, const kn_gemm_args *a, int n) {
    const kn_gemm_args *g[GEMV_BATCH];
    kn_qgemm_args q[GEMV_BATCH];
    int ng = 0, nq = 0;
    for (int i = 0; i < n; i++) {
        if (on_qgemv_path(&a[i])) {
            q[nq++] = qargs_of(&a[i]);
            if (nq == GEMV_BATCH) kn_qgemm_batch(env, q, nq), nq = 0;
            continue;
        }
        if (!on_gemv_path(&a[i])) {
            kn_gemm(env, &a[i]);
            continue;
        }
        g[ng++] = &a[i];
        if (ng == GEMV_BATCH) gemv_batch(env, g, ng), ng = 0;
    }
    if (ng) gemv_batch(env, g, ng);
    if (nq) kn_qgemm_batch(env, q, nq);
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
    if (a->Ap) { /* rows of a packed A are not addressable by pointer: one thread does all */
        if (ith == 0) kn_gemm_ref(a);
        return;
    }
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

size_t kn_gemm_packed_a_floats(const kn_env *env, int64_t M, int64_t K) {
    return (size_t)(round_up(M, kn_gemm_isa_pick(env)->mr) * K);
}

void kn_gemm_pack_a(const kn_env *env, const float *A, int64_t lda, int64_t M, int64_t K, float *dst, kn_packed_a *out) {
    const kn_gemm_isa *isa = kn_gemm_isa_pick(env);
    kn_gemm_args a;
    memset(&a, 0, sizeof a);
    a.M = M, a.K = K, a.A = A, a.lda = lda;
    pack_a_blocks(&a, isa->mr, isa->kc, 0, M, 0, round_up(M, isa->mr) / isa->mr, dst);
    *out = (kn_packed_a){.p = dst, .M = M, .K = K, .mr = isa->mr, .kc = isa->kc};
}

float kn_packed_a_at(const kn_packed_a *ap, int64_t m, int64_t k) {
    int64_t pc = k / ap->kc * ap->kc, kc = GL_MIN((int64_t)ap->kc, ap->K - pc);
    return ap->p[pc * round_up(ap->M, ap->mr) + m / ap->mr * ap->mr * kc + (k - pc) * ap->mr + m % ap->mr];
}

size_t kn_gemm_packed_b_floats(const kn_env *env, int64_t K, int64_t N) {
    return (size_t)(round_up(N, kn_gemm_isa_pick(env)->nr) * K);
}

void kn_gemm_pack_b(const kn_env *env, const kn_gemm_args *a, float *dst, kn_packed_b *out) {
    const kn_gemm_isa *isa = kn_gemm_isa_pick(env);
    int64_t N_r = round_up(a->N, isa->nr);
    for (int64_t pc = 0; pc < a->K; pc += isa->kc) {
        int64_t kc = GL_MIN((int64_t)isa->kc, a->K - pc);
        isa->pack_b(a, pc, kc, 0, a->N, dst + pc * N_r);
    }
    *out = (kn_packed_b){.p = dst, .K = a->K, .N = a->N, .nr = isa->nr, .kc = isa->kc};
}

float kn_packed_b_at(const kn_packed_b *bp, int64_t k, int64_t n) {
    int64_t pc = k / bp->kc * bp->kc, kc = GL_MIN((int64_t)bp->kc, bp->K - pc);
    return bp->p[pc * round_up(bp->N, bp->nr) + n / bp->nr * bp->nr * kc + (k - pc) * bp->nr + n % bp->nr];
}

/* A or B packed for another tile size (or A for the GEMV path): unpack for this call. */
static void gemm_unpacked(const kn_env *env, const kn_gemm_args *a, int un_a, int un_b) {
    float *A = un_a ? gl_malloc(sizeof(float) * (size_t)(a->M * a->K)) : NULL;
    float *B = un_b ? gl_malloc(sizeof(float) * (size_t)(a->K * a->N)) : NULL;
    if ((un_a && !A) || (un_b && !B)) {
        gl_free(A);
        gl_free(B);
        kn_gemm_ref(a); /* out of memory: still correct, just slow */
        return;
    }
    kn_gemm_args u = *a;
    if (un_a) {
        for (int64_t m = 0; m < a->M; m++)
            for (int64_t k = 0; k < a->K; k++) A[m * a->K + k] = kn_packed_a_at(a->Ap, m, k);
        u.Ap = NULL, u.A = A, u.lda = a->K;
    }
    if (un_b) {
        for (int64_t k = 0; k < a->K; k++)
            for (int64_t n = 0; n < a->N; n++) B[k * a->N + n] = kn_packed_b_at(a->Bp, k, n);
        u.Bp = NULL, u.B = B, u.ldb = a->N, u.b_type = GL_F32, u.trans_b = 0;
    }
    kn_gemm(env, &u);
    gl_free(A);
    gl_free(B);
}

size_t kn_gemm_ws_size_t(const kn_env *env, int64_t M, int64_t N, int64_t K, gl_dtype b_type) {
    if (!gl_dtype_is_quant(b_type)) return kn_gemm_ws_size(env, M, N, K);
#if defined(__x86_64__)
    if (M >= KN_Q_DEQUANT_M && gl_cpu_has_avx512vnni(&env->cpu)) return kn_qgemm_avx512vnni_ws_size(env, M, N, K, 0);
    if (M >= KN_Q_DEQUANT_M && kn_use_avx2(env) && env->cpu.avxvnni) return kn_qgemm_vnni_ws_size(env, M, K);
#endif
    if (!kn_q_dequant(M, N, K)) return kn_qgemm_ws_size(env, M, K, 0);
    return kn_gemm_ws_size(env, M, N, K) + (size_t)N * (size_t)K * sizeof(float) + 128;
}

/* Quantized B: a Linear weight [N, K] of blocks (trans_b, ldb == K, no bias_m). Large M:
 * dequantize to f32 (after the GEMM workspace) and run the f32 path; small M: qgemm.h. */
static void gemm_quant(const kn_env *env, const kn_gemm_args *a) {
#if defined(__x86_64__)
    if (a->M >= KN_Q_DEQUANT_M && gl_cpu_has_avx512vnni(&env->cpu)) {
        kn_qgemm_args q = qargs_of(a);
        if (kn_qgemm_avx512vnni(env, &q) == 0) return;
    }
    if (a->M >= KN_Q_DEQUANT_M && kn_use_avx2(env) && env->cpu.avxvnni) {
        kn_qgemm_args q = qargs_of(a);
        if (kn_qgemm_vnni(env, &q) == 0) return;
    }
#endif
    if (kn_q_dequant(a->M, a->N, a->K)) {
        size_t gws = kn_gemm_ws_size(env, a->M, a->N, a->K), off = (gws + 63) / 64 * 64;
        size_t need = off + (size_t)a->N * (size_t)a->K * sizeof(float) + 64;
        void *own = NULL, *ws = a->ws;
        if (!ws || a->ws_size < need) ws = own = gl_malloc(need);
        if (ws) {
            float *bf = (float *)(((uintptr_t)ws + off + 63) & ~(uintptr_t)63);
            kn_dequant_rows(env, a->B, a->b_type, a->N, a->K, bf);
            kn_gemm_args f = *a;
            f.B = bf;
            f.b_type = GL_F32;
            f.ws = ws;
            f.ws_size = gws;
            kn_gemm(env, &f);
            gl_free(own);
            return;
        }
        /* out of memory: the int8 path needs less */
    }
    kn_qgemm_args q = qargs_of(a);
    kn_qgemm(env, &q);
}

void kn_gemm(const kn_env *env, const kn_gemm_args *a) {
    if (a->M <= 0 || a->N <= 0) return;
    if (gl_dtype_is_quant(a->b_type)) {
        if (a->trans_b && a->ldb == a->K && !a->bias_m && a->K % GL_QK == 0) gemm_quant(env, a);
        return;
    }
    if (a->K <= 0) {
        gemm_k0(a);
        return;
    }
    job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.next_chunk, 0);
    atomic_init(&j.next_pack, 0);
    j.a = a;
    j.isa = kn_gemm_isa_pick(env);
    const int prepacked = a->Ap && a->M > KN_GEMV_MAX_M && a->Ap->mr == j.isa->mr && a->Ap->kc == j.isa->kc;
    const int b_ok = !a->Bp || (a->M > KN_GEMV_MAX_M && a->Bp->nr == j.isa->nr && a->Bp->kc == j.isa->kc);
    if ((a->Ap && !prepacked) || !b_ok) {
        gemm_unpacked(env, a, a->Ap && !prepacked, !b_ok);
        return;
    }
    if (a->M <= KN_GEMV_MAX_M) {
        gemv_batch(env, &a, 1);
        return;
    }
    int nth = gl_pool_size(env->pool);
    plan p = make_plan(j.isa, a->M, a->N, a->K, nth, a->Bp == NULL);
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
    if (prepacked) {
        /* A is ready: one round of column chunks (split into row ranges when N is narrow);
         * the B buffers take the workspace's start */
        p.w = round_up(GL_MAX((a->N + 4 * nth - 1) / (4 * nth), 64), j.isa->nr);
        j.w = GL_MIN(p.w, p.b.nc);
        j.ap = a->Ap->p;
        j.bws = j.ws;
        j.ms = a->M;
        j.n_chunks = (a->N + j.w - 1) / j.w;
        split_rows(&j, nth);
        gl_pool_run(env->pool, run_chunks, &j);
    } else if (!j.split_n) {
        gl_pool_run(env->pool, run_rows, &j);
    } else {
        j.ap = j.ws;
        j.bws = j.ws + round_up(round_up(p.ms, j.isa->mr) * a->K, 16);
        j.w = p.w;
        j.n_chunks = (a->N + p.w - 1) / p.w;
        for (int64_t m0 = 0; m0 < a->M; m0 += p.ms) {
            j.m0 = m0;
            j.ms = GL_MIN(p.ms, a->M - m0);
            split_rows(&j, nth);
            atomic_store(&j.next_pack, 0);
            gl_pool_run(env->pool, run_pack_a, &j); /* the end of a pool job is a barrier */
            atomic_store(&j.next_chunk, 0);
            gl_pool_run(env->pool, run_chunks, &j);
        }
    }
    gl_free(own);
}
