/* gemm.c — the GEMM driver: picks the ISA, splits work over threads, blocks the loops.
 *
 * Packed path (M > KN_GEMV_MAX_M), per thread, on its share of C:
 *   for jc in N by NC:            B block KC x NC lives in L3
 *     for pc in K by KC:          pack B[pc, jc] (f16/bf16 -> f32 here)
 *       for ic in M by MC:        pack A[ic, pc]; A block lives in L2
 *         for jr in NC by NR:     B micro-panel in L1
 *           for ir in MC by MR:   microkernel: MR x NR tile in registers
 * The first K block writes C (or adds to it when accumulating), later ones add; the last adds
 * the bias and applies the activation to the tile while it is in cache.
 *
 * Threads take whole MR rows or NR columns of C (see prefer_split_n), and each output is
 * computed by the same instructions in the same order whichever thread computes it: results
 * are bitwise independent of the thread count.
 *
 * Workspace: one A block and one B block per thread, from the caller (ws) or allocated for the
 * call. A caller workspace keeps malloc out of the forward pass, and unlike static or TLS
 * buffers it works for any number of pools, and stacks stay small (the B block is 2 MB). */
#include "gemm.h"

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

size_t kn_gemm_ws_size(const kn_env *env, int64_t M, int64_t N, int64_t K) {
    if (M <= KN_GEMV_MAX_M || N <= 0 || K <= 0) return 0;
    const kn_gemm_isa *isa = pick_isa(env);
    blocking b = block_sizes(isa, M, N, K);
    return (size_t)gl_pool_size(env->pool) * thread_floats(&b) * sizeof(float) + 64;
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
    float *ws;        /* thread_floats(b) per thread */
    int split_n;      /* 1: threads split columns, 0: rows */
} job;

/* One thread's part: C[m0:m1, n0:n1] (m0 a multiple of mr, n0 of nr). */
static void gemm_part(const job *j, float *wa, float *wb, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const kn_gemm_args *a = j->a;
    const kn_gemm_isa *isa = j->isa;
    const int mr = isa->mr, nr = isa->nr;
    const blocking *b = &j->b;
    float tile[16 * 16] __attribute__((aligned(64)));  /* edge tiles: mr, nr <= 16 */
    float bm_pad[16], bn_pad[16];
    memset(tile, 0, sizeof tile);

    for (int64_t jc = n0; jc < n1; jc += b->nc) {
        int64_t nc = GL_MIN(b->nc, n1 - jc);
        for (int64_t pc = 0; pc < a->K; pc += b->kc) {
            int64_t kc = GL_MIN(b->kc, a->K - pc);
            int first = pc == 0, last = pc + kc >= a->K;
            int load_c = !first || a->accumulate;
            isa->pack_b(a, pc, kc, jc, nc, wb);
            for (int64_t ic = m0; ic < m1; ic += b->mc) {
                int64_t mc = GL_MIN(b->mc, m1 - ic);
                pack_a(a, mr, ic, mc, pc, kc, wa);
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
        }
    }
}

/* Splitting N makes every thread pack all of A (f32 copies); splitting M makes every thread
 * pack all of B (with f16/bf16 conversion and, for trans_b, transposition), so N is preferred
 * unless its tiles divide much less evenly over the threads. (Either way each output is
 * computed identically: the choice only moves work between threads.) */
static int prefer_split_n(const kn_gemm_isa *isa, int64_t M, int64_t N, int nth) {
    int64_t un = (N + isa->nr - 1) / isa->nr, um = (M + isa->mr - 1) / isa->mr;
    double wn = (double)((un + nth - 1) / nth) * nth / un; /* busiest thread's load vs the mean */
    double wm = (double)((um + nth - 1) / nth) * nth / um;
    return wn <= 1.05 || wn <= wm;
}

static void run_packed(void *v, int ith, int nth) {
    const job *j = v;
    const kn_gemm_args *a = j->a;
    float *wa = j->ws + (size_t)ith * thread_floats(&j->b);
    float *wb = wa + round_up(j->b.mc * j->b.kc, 16);
    int64_t lo, hi;
    if (j->split_n) {
        int64_t nr = j->isa->nr;
        gl_split((a->N + nr - 1) / nr, ith, nth, &lo, &hi);
        if (lo < hi) gemm_part(j, wa, wb, 0, a->M, lo * nr, GL_MIN(hi * nr, a->N));
    } else {
        int64_t mr = j->isa->mr;
        gl_split((a->M + mr - 1) / mr, ith, nth, &lo, &hi);
        if (lo < hi) gemm_part(j, wa, wb, lo * mr, GL_MIN(hi * mr, a->M), 0, a->N);
    }
}

static void run_gemv(void *v, int ith, int nth) {
    const job *j = v;
    int64_t lo, hi;
    gl_split((j->a->N + 15) / 16, ith, nth, &lo, &hi); /* 16-column units: see isa->gemv */
    if (lo < hi) j->isa->gemv(j->a, lo * 16, GL_MIN(hi * 16, j->a->N));
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
    j.a = a;
    j.isa = pick_isa(env);
    if (a->M <= KN_GEMV_MAX_M) {
        gl_pool_run(env->pool, run_gemv, &j);
        return;
    }
    j.b = block_sizes(j.isa, a->M, a->N, a->K);
    size_t need = kn_gemm_ws_size(env, a->M, a->N, a->K);
    void *own = NULL, *ws = a->ws;
    if (!ws || a->ws_size < need) ws = own = gl_malloc(need);
    if (!ws) {
        /* out of memory: still correct, just slow */
        ref_job r = {a};
        gl_pool_run(env->pool, run_ref_rows, &r);
        return;
    }
    j.ws = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    j.split_n = prefer_split_n(j.isa, a->M, a->N, gl_pool_size(env->pool));
    gl_pool_run(env->pool, run_packed, &j);
    gl_free(own);
}
