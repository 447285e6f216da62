/* kn_gemm: every ISA path vs a double-accumulated reference (and kn_gemm_ref vs the same),
 * over shapes that hit tile edges, all B dtypes, both layouts, padded leading dimensions, bias
 * kinds, activations and accumulate; results must be bitwise equal across thread counts. */
#include "test.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/gemm.h"

/* Tolerance: |got - exact| <= (TOL_DOT * sqrt(K) + TOL_ACT) * scale, where scale is the sum of
 * the magnitudes that went into the output (sum |a·b| + |bias| + |C before|): the usual bound for
 * f32 dot products (with a random-walk sqrt(K) growth instead of the worst-case K) plus the
 * activations' own error (~1e-6 relative; their slopes are <= 1.13). */
#define TOL_DOT 1e-6
#define TOL_ACT 2e-6

static double act_d(kn_act act, double x) {
    switch (act) {
    case KN_ACT_RELU: return x > 0 ? x : 0;
    case KN_ACT_GELU: return 0.5 * x * erfc(-x * 0.70710678118654752);
    case KN_ACT_SILU: return x / (1.0 + exp(-x));
    case KN_ACT_GELU_TANH: return x / (1.0 + exp(-2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x)));
    default: return x;
    }
}

typedef struct prob {
    int64_t M, N, K, lda, ldb, ldc;
    gl_dtype bt;
    int trans_b, bias_kind, accumulate; /* bias_kind: 0 none, 1 n, 2 m, 3 both */
    kn_act act;
    float *A, *Cinit, *bias_n, *bias_m;
    void *B;
    double *exact, *scale;
} prob;

static float b_at(const prob *p, int64_t k, int64_t n) {
    int64_t idx = p->trans_b ? n * p->ldb + k : k * p->ldb + n;
    if (p->bt == GL_F16) return gl_f16_to_f32(((uint16_t *)p->B)[idx]);
    if (p->bt == GL_BF16) return gl_bf16_to_f32(((uint16_t *)p->B)[idx]);
    return ((float *)p->B)[idx];
}

static void prob_init(prob *p, uint64_t *seed) {
    int64_t brows = p->trans_b ? p->N : p->K, bcols = p->trans_b ? p->K : p->N;
    p->A = malloc(sizeof(float) * (p->M * p->lda + 1));
    p->Cinit = malloc(sizeof(float) * (p->M * p->ldc + 1));
    p->bias_n = malloc(sizeof(float) * (p->N + 1));
    p->bias_m = malloc(sizeof(float) * (p->M + 1));
    size_t esz = p->bt == GL_F32 ? 4 : 2;
    p->B = malloc(esz * (brows * p->ldb + 1));
    for (int64_t i = 0; i < p->M * p->lda; i++) p->A[i] = t_rand_f32(seed);
    for (int64_t i = 0; i < p->M * p->ldc; i++) p->Cinit[i] = t_rand_f32(seed);
    for (int64_t i = 0; i < p->N; i++) p->bias_n[i] = t_rand_f32(seed);
    for (int64_t i = 0; i < p->M; i++) p->bias_m[i] = t_rand_f32(seed);
    for (int64_t i = 0; i < brows * p->ldb; i++) {
        float v = t_rand_f32(seed);
        if (p->bt == GL_F16) ((uint16_t *)p->B)[i] = gl_f32_to_f16(v);
        else if (p->bt == GL_BF16) ((uint16_t *)p->B)[i] = gl_f32_to_bf16(v);
        else ((float *)p->B)[i] = v;
    }
    (void)bcols;
    p->exact = malloc(sizeof(double) * (p->M * p->N + 1));
    p->scale = malloc(sizeof(double) * (p->M * p->N + 1));
    for (int64_t m = 0; m < p->M; m++)
        for (int64_t n = 0; n < p->N; n++) {
            double s = 0, sc = 0;
            for (int64_t k = 0; k < p->K; k++) {
                double t = (double)p->A[m * p->lda + k] * b_at(p, k, n);
                s += t;
                sc += fabs(t);
            }
            if (p->bias_kind & 1) s += p->bias_n[n], sc += fabs(p->bias_n[n]);
            if (p->bias_kind & 2) s += p->bias_m[m], sc += fabs(p->bias_m[m]);
            double c0 = p->Cinit[m * p->ldc + n];
            if (p->accumulate) s += c0, sc += fabs(c0);
            p->exact[m * p->N + n] = p->accumulate ? s : act_d(p->act, s);
            p->scale[m * p->N + n] = sc + 1e-30;
        }
}

static void prob_free(prob *p) {
    free(p->A), free(p->Cinit), free(p->bias_n), free(p->bias_m), free(p->B), free(p->exact), free(p->scale);
}

static kn_gemm_args prob_args(const prob *p, float *C) {
    kn_gemm_args a;
    memset(&a, 0, sizeof a);
    a.M = p->M, a.N = p->N, a.K = p->K;
    a.A = p->A, a.lda = p->lda;
    a.B = p->B, a.ldb = p->ldb, a.b_type = p->bt, a.trans_b = p->trans_b;
    a.C = C, a.ldc = p->ldc;
    a.bias_n = p->bias_kind & 1 ? p->bias_n : NULL;
    a.bias_m = p->bias_kind & 2 ? p->bias_m : NULL;
    a.act = p->act;
    a.accumulate = p->accumulate;
    return a;
}

static const char *dt_name(gl_dtype t) { return t == GL_F16 ? "f16" : t == GL_BF16 ? "bf16" : "f32"; }

/* Checks C against the exact result; padding columns of C must be untouched. */
static int check_c(const prob *p, const float *C, const char *what) {
    double tol = TOL_DOT * sqrt((double)p->K) + TOL_ACT;
    double worst = 0;
    int64_t wm = 0, wn = 0;
    int bad_pad = 0;
    for (int64_t m = 0; m < p->M; m++) {
        for (int64_t n = 0; n < p->N; n++) {
            double e = fabs(C[m * p->ldc + n] - p->exact[m * p->N + n]) / p->scale[m * p->N + n];
            if (!(e <= worst)) worst = e, wm = m, wn = n;
        }
        for (int64_t n = p->N; n < p->ldc; n++)
            if (C[m * p->ldc + n] != p->Cinit[m * p->ldc + n]) bad_pad = 1;
    }
    CHECK_MSG(worst <= tol && !bad_pad,
              "%s M=%lld N=%lld K=%lld %s trans_b=%d bias=%d act=%d acc=%d: worst rel err %.3g at [%lld,%lld] "
              "(%.9g vs %.9g, tol %.3g) pad_ok=%d",
              what, (long long)p->M, (long long)p->N, (long long)p->K, dt_name(p->bt), p->trans_b, p->bias_kind,
              p->act, p->accumulate, worst, (long long)wm, (long long)wn, C[wm * p->ldc + wn],
              p->exact[wm * p->N + wn], tol, !bad_pad);
    return worst <= tol && !bad_pad;
}

static gl_pool *pools[4];

/* Runs one problem through the reference and every env x thread count; ws_mode 0: NULL ws,
 * 1: exact-size caller ws with a guard zone after it. */
static void run_prob(prob *p, int ws_mode) {
    size_t n = (size_t)(p->M * p->ldc);
    float *C = malloc(sizeof(float) * (n + 1)), *C1 = malloc(sizeof(float) * (n + 1));
    memcpy(C, p->Cinit, n * sizeof(float));
    kn_gemm_args a = prob_args(p, C);
    kn_gemm_ref(&a);
    check_c(p, C, "ref");
    for (int isa = 0; isa < 2; isa++) {
        for (int t = 1; t <= 3; t++) {
            kn_env env = isa ? kn_env_native(pools[t]) : kn_env_scalar(pools[t]);
            memcpy(C, p->Cinit, n * sizeof(float));
            a = prob_args(p, C);
            size_t ws_size = kn_gemm_ws_size(&env, p->M, p->N, p->K);
            unsigned char *ws = NULL;
            if (ws_mode) {
                ws = malloc(ws_size + 256);
                memset(ws + ws_size, 0xA5, 256);
                a.ws = ws, a.ws_size = ws_size;
            }
            /* with a caller workspace of the reported size kn_gemm must not allocate: make any
             * allocation fail, so it would fall back to the reference path and the bitwise
             * comparison with an unhindered ws == NULL run (1 thread) or with the 1-thread
             * result (2, 3 threads) would catch it */
            if (ws) gl_alloc_fail_after(0);
            kn_gemm(&env, &a);
            gl_alloc_fail_after(-1);
            if (ws) {
                int ok = 1;
                for (int i = 0; i < 256; i++) ok &= ws[ws_size + i] == 0xA5;
                CHECK_MSG(ok, "workspace overrun (size %zu)", ws_size);
                free(ws);
            }
            if (ws_mode && t == 1) {
                float *C2 = malloc(sizeof(float) * (n + 1));
                memcpy(C2, p->Cinit, n * sizeof(float));
                a.C = C2, a.ws = NULL, a.ws_size = 0;
                kn_gemm(&env, &a);
                CHECK_MSG(memcmp(C, C2, n * sizeof(float)) == 0, "caller workspace vs own differ (M=%lld N=%lld K=%lld)",
                          (long long)p->M, (long long)p->N, (long long)p->K);
                free(C2);
            }
            char what[64];
            snprintf(what, sizeof what, "%s/%dt", isa ? gl_cpu_isa_name(&env.cpu) : "scalar", t);
            check_c(p, C, what);
            if (t == 1) memcpy(C1, C, n * sizeof(float));
            else CHECK_MSG(memcmp(C1, C, n * sizeof(float)) == 0, "%s: result differs from 1 thread (M=%lld N=%lld K=%lld)",
                           what, (long long)p->M, (long long)p->N, (long long)p->K);
        }
    }
    /* out of memory for the workspace: kn_gemm still computes (the reference path; small
     * problems only, it is slow under qemu) */
    if (p->M * p->N * p->K > (1 << 21)) {
        free(C), free(C1);
        return;
    }
    kn_env env = kn_env_native(pools[2]);
    memcpy(C, p->Cinit, n * sizeof(float));
    a = prob_args(p, C);
    gl_alloc_fail_after(0);
    kn_gemm(&env, &a);
    gl_alloc_fail_after(-1);
    check_c(p, C, "no-memory");
    free(C), free(C1);
}

static void random_case(uint64_t *seed, int64_t M, int64_t N, int64_t K) {
    prob p;
    memset(&p, 0, sizeof p);
    p.M = M, p.N = N, p.K = K;
    static const gl_dtype dts[3] = {GL_F32, GL_F16, GL_BF16};
    p.bt = dts[t_rand_u64(seed) % 3];
    p.trans_b = (int)(t_rand_u64(seed) & 1);
    int pad = (int)(t_rand_u64(seed) % 3); /* 0: tight, else padded leading dims */
    p.lda = K + (pad ? (int64_t)(t_rand_u64(seed) % 9) : 0);
    p.ldb = (p.trans_b ? K : N) + (pad ? (int64_t)(t_rand_u64(seed) % 9) : 0);
    p.ldc = N + (pad ? (int64_t)(t_rand_u64(seed) % 9) : 0);
    p.bias_kind = (int)(t_rand_u64(seed) % 4);
    p.accumulate = t_rand_u64(seed) % 5 == 0;
    p.act = p.accumulate ? KN_ACT_NONE : (kn_act)(t_rand_u64(seed) % 5);
    prob_init(&p, seed);
    run_prob(&p, (int)(t_rand_u64(seed) & 1));
    prob_free(&p);
}

/* A and/or op(B) pre-packed by kn_gemm_pack_a/_b (native ISA): the same result, bit for bit, as
 * the unpacked call on the same env, for every thread count (row-split tasks included: narrow
 * N); a scalar env unpacks them (another tile size); kn_gemm_ref reads them element by element. */
static void prepacked_case(uint64_t *seed, int64_t M, int64_t N, int64_t K) {
    prob p;
    memset(&p, 0, sizeof p);
    p.trans_b = (int)(t_rand_u64(seed) & 1);
    p.M = M, p.N = N, p.K = K, p.lda = K + (int64_t)(t_rand_u64(seed) % 3), p.ldc = N;
    p.ldb = (p.trans_b ? K : N) + (int64_t)(t_rand_u64(seed) % 3);
    p.bt = t_rand_u64(seed) % 3 ? GL_F32 : GL_F16;
    p.bias_kind = 2;
    p.accumulate = t_rand_u64(seed) % 3 == 0;
    p.act = p.accumulate ? KN_ACT_NONE : KN_ACT_GELU;
    prob_init(&p, seed);
    kn_env native = kn_env_native(NULL);
    float *pk = gl_aligned_alloc(64, sizeof(float) * kn_gemm_packed_a_floats(&native, M, K));
    kn_packed_a ap;
    kn_gemm_pack_a(&native, p.A, p.lda, M, K, pk, &ap);
    int same = 1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) same &= kn_packed_a_at(&ap, m, k) == p.A[m * p.lda + k];
    CHECK_MSG(same, "kn_packed_a_at does not give A back (M=%lld K=%lld)", (long long)M, (long long)K);
    float *pkb = gl_aligned_alloc(64, sizeof(float) * kn_gemm_packed_b_floats(&native, K, N));
    kn_packed_b bp;
    kn_gemm_args ab = prob_args(&p, NULL);
    kn_gemm_pack_b(&native, &ab, pkb, &bp);
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++) same &= kn_packed_b_at(&bp, k, j) == b_at(&p, k, j);
    CHECK_MSG(same, "kn_packed_b_at does not give B back (K=%lld N=%lld)", (long long)K, (long long)N);
    size_t n = (size_t)(M * N);
    float *C = malloc(sizeof(float) * n), *C0 = malloc(sizeof(float) * n);
    for (int isa = 0; isa < 2; isa++)
        for (int t = 1; t <= 3; t++)
            for (int mode = 1; mode <= 3; mode++) { /* 1: A packed, 2: B packed, 3: both */
                kn_env env = isa ? kn_env_native(pools[t]) : kn_env_scalar(pools[t]);
                memcpy(C0, p.Cinit, n * sizeof(float));
                kn_gemm_args a = prob_args(&p, C0);
                kn_gemm(&env, &a);
                memcpy(C, p.Cinit, n * sizeof(float));
                a = prob_args(&p, C);
                if (mode & 1) a.A = NULL, a.lda = 0, a.Ap = &ap;
                if (mode & 2) a.B = NULL, a.ldb = 0, a.Bp = &bp;
                kn_gemm(&env, &a);
                char what[64];
                snprintf(what, sizeof what, "prepacked(%d) %s/%dt", mode, isa ? gl_cpu_isa_name(&env.cpu) : "scalar", t);
                check_c(&p, C, what);
                /* (M <= 8 runs the GEMV path on an unpacked f32 [K, N] B: another summation order) */
                CHECK_MSG(M <= KN_GEMV_MAX_M || memcmp(C, C0, n * sizeof(float)) == 0,
                          "%s: differs from the unpacked call (M=%lld N=%lld K=%lld)", what, (long long)M, (long long)N,
                          (long long)K);
            }
    memcpy(C, p.Cinit, n * sizeof(float));
    kn_gemm_args a = prob_args(&p, C);
    a.A = NULL, a.Ap = &ap, a.B = NULL, a.Bp = &bp;
    kn_gemm_ref(&a);
    check_c(&p, C, "prepacked ref");
    free(C), free(C0);
    gl_aligned_free(pk), gl_aligned_free(pkb);
    prob_free(&p);
}

/* Activation accuracy through the public op: K = 1, A = x, B = 1, so C = act(x); M = 4 takes
 * the GEMV path, M = 64 the packed one. */
static void t_act_accuracy(void) {
    static const kn_act acts[4] = {KN_ACT_RELU, KN_ACT_GELU, KN_ACT_SILU, KN_ACT_GELU_TANH};
    const int64_t n = 200;
    float *x = malloc(sizeof(float) * 64 * n), *c = malloc(sizeof(float) * 64 * n), one = 1.0f;
    for (int64_t i = 0; i < 64 * n; i++) x[i] = -14.0f + 28.0f * (float)i / (64 * n); /* dense grid */
    /* (with lda = 1, row m of A is x[m]) */
    for (int isa = 0; isa < 2; isa++)
        for (int ai = 0; ai < 4; ai++)
            for (int path = 0; path < 2; path++) {
                int64_t M = path ? 64 * n : 4 * n; /* one column: each row is one x */
                kn_env env = isa ? kn_env_native(pools[2]) : kn_env_scalar(pools[2]);
                kn_gemm_args a;
                memset(&a, 0, sizeof a);
                a.M = M, a.N = 1, a.K = 1, a.A = x, a.lda = 1, a.B = &one, a.ldb = 1, a.b_type = GL_F32;
                a.C = c, a.ldc = 1, a.act = acts[ai];
                /* the GEMV path needs M <= 8: run it in chunks of 4 rows */
                if (!path) {
                    for (int64_t m0 = 0; m0 < M; m0 += 4) {
                        kn_gemm_args s = a;
                        s.M = 4, s.A = x + m0 * 16, s.C = c + m0; /* 4 of every 64 grid points */
                        kn_gemm(&env, &s);
                    }
                } else {
                    kn_gemm(&env, &a);
                }
                double worst = 0, wx = 0;
                for (int64_t i = 0; i < M; i++) {
                    double xv = path ? x[i] : x[(i / 4) * 64 + i % 4];
                    double r = act_d(acts[ai], xv);
                    /* relative error beyond what the function's conditioning makes of one
                     * rounding of the input (cond·eps: in the exponential tails x/sqrt(2) or
                     * x·x is rounded before the exp); absolute (2e-36) near the f32 underflow */
                    double cond = 0;
                    if (r != 0) cond = fabs((act_d(acts[ai], xv * (1 + 1e-6)) - act_d(acts[ai], xv * (1 - 1e-6))) / (2e-6 * r));
                    double e = fabs(c[i] - r) / (fabs(r) > 1e-30 ? fabs(r) : 1e-30) - 1.2e-7 * cond;
                    if (e > worst) worst = e, wx = xv;
                }
                /* relative error bound of the vector activations (and of libm's for scalar) */
                CHECK_MSG(worst <= 2e-6, "act %d isa %d path %d: worst rel err %.3g at x=%.9g", acts[ai], isa, path,
                          worst, wx);
                if (isa && path) fprintf(stderr, "  act %d (%s): max rel err %.3g\n", acts[ai], gl_cpu_isa_name(&env.cpu), worst);
            }
    free(x), free(c);
}

/* kn_gemm_ws_size never shrinks as M, N or K grow (callers size a scratch once for the largest
 * shape), for every ISA and thread count. */
static void t_ws_monotonic(void) {
    static const int64_t v[] = {1, 8, 9, 17, 48, 100, 300, 1000, 4000, 7281, 7282, 20000};
    const int nv = (int)GL_ARRAY_LEN(v);
    int bad = 0;
    for (int isa = 0; isa < 2; isa++)
        for (int t = 1; t <= 3; t++) {
            kn_env env = isa ? kn_env_native(pools[t]) : kn_env_scalar(pools[t]);
            for (int i = 0; i < nv; i++)
                for (int j = 0; j < nv; j++)
                    for (int k = 0; k < nv; k++) {
                        size_t w = kn_gemm_ws_size(&env, v[i], v[j], v[k]);
                        if (i + 1 < nv && kn_gemm_ws_size(&env, v[i + 1], v[j], v[k]) < w) bad++;
                        if (j + 1 < nv && kn_gemm_ws_size(&env, v[i], v[j + 1], v[k]) < w) bad++;
                        if (k + 1 < nv && kn_gemm_ws_size(&env, v[i], v[j], v[k + 1]) < w) bad++;
                    }
        }
    CHECK_EQ_INT(bad, 0);
}

/* kn_gemm_batch: 11 random products (more than one job's worth; mostly GEMV-path shapes, one
 * packed) must equal kn_gemm of each, bit for bit, for every ISA and thread count. */
static void t_batch(uint64_t *seed) {
    enum { NP = 11 };
    prob p[NP];
    float *C[NP], *Cb[NP];
    static const gl_dtype dts[3] = {GL_F32, GL_F16, GL_BF16};
    for (int i = 0; i < NP; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].M = i == 3 ? 13 : 1 + (int64_t)(t_rand_u64(seed) % KN_GEMV_MAX_M);
        p[i].N = 1 + (int64_t)(t_rand_u64(seed) % 300);
        p[i].K = i == 5 ? 2000 : 1 + (int64_t)(t_rand_u64(seed) % 200); /* one with several chunks of 16 */
        p[i].bt = dts[t_rand_u64(seed) % 3];
        p[i].trans_b = i % 4 != 1;
        p[i].lda = p[i].K, p[i].ldb = (p[i].trans_b ? p[i].K : p[i].N) + (int64_t)(i & 1);
        p[i].ldc = p[i].N + (int64_t)(i & 2);
        p[i].bias_kind = (int)(t_rand_u64(seed) % 4);
        p[i].accumulate = i % 5 == 2;
        p[i].act = p[i].accumulate ? KN_ACT_NONE : (kn_act)(t_rand_u64(seed) % 5);
        prob_init(&p[i], seed);
        size_t n = (size_t)(p[i].M * p[i].ldc) + 1;
        C[i] = malloc(n * sizeof(float)), Cb[i] = malloc(n * sizeof(float));
    }
    for (int isa = 0; isa < 2; isa++)
        for (int t = 1; t <= 3; t++) {
            kn_env env = isa ? kn_env_native(pools[t]) : kn_env_scalar(pools[t]);
            kn_gemm_args a[NP];
            for (int i = 0; i < NP; i++) {
                size_t n = (size_t)(p[i].M * p[i].ldc);
                memcpy(C[i], p[i].Cinit, n * sizeof(float));
                memcpy(Cb[i], p[i].Cinit, n * sizeof(float));
                a[i] = prob_args(&p[i], C[i]);
                kn_gemm(&env, &a[i]);
                a[i].C = Cb[i];
            }
            kn_gemm_batch(&env, a, NP);
            for (int i = 0; i < NP; i++) {
                size_t n = (size_t)(p[i].M * p[i].ldc);
                CHECK_MSG(memcmp(C[i], Cb[i], n * sizeof(float)) == 0,
                          "batch %s/%dt product %d (M=%lld N=%lld K=%lld %s): differs from kn_gemm", isa ? "native" : "scalar",
                          t, i, (long long)p[i].M, (long long)p[i].N, (long long)p[i].K, dt_name(p[i].bt));
                check_c(&p[i], Cb[i], "batch");
            }
        }
    for (int i = 0; i < NP; i++) prob_free(&p[i]), free(C[i]), free(Cb[i]);
}

/* The AVX-512 microkernel runs the AVX2 kernel's FMA chain per output: the same bits across tile
 * edges while K fits in one K block of both (their K blocks differ, and so does the rounding
 * where a longer K is cut). */
static void t_avx512_matches_avx2(uint64_t *seed) {
    kn_env e512 = kn_env_native(pools[2]), e2 = e512;
    if (!kn_use_avx512(&e512)) return;
    e2.cpu.avx512f = false;
#if defined(__x86_64__)
    CHECK_MSG(kn_gemm_isa_pick(&e512) == &kn_gemm_isa_avx512 && kn_gemm_isa_pick(&e2) == &kn_gemm_isa_avx2,
              "the ISA picker does not pick the AVX-512 kernel");
#endif
    const int64_t M = 77, N = 70, K = KN_GEMM_KC - 6;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (int64_t i = 0; i < M * K; i++) A[i] = t_rand_f32(seed);
    for (int64_t i = 0; i < N * K; i++) B[i] = t_rand_f32(seed);
    for (int64_t i = 0; i < N; i++) bias[i] = t_rand_f32(seed);
    for (int act = KN_ACT_NONE; act <= KN_ACT_RELU; act++) { /* (GELU's reciprocal differs) */
        kn_gemm_args a = {0};
        a.M = M, a.N = N, a.K = K, a.A = A, a.lda = K, a.B = B, a.ldb = K, a.b_type = GL_F32, a.trans_b = 1;
        a.ldc = N, a.bias_n = bias, a.act = (kn_act)act;
        a.C = C1;
        kn_gemm(&e2, &a);
        a.C = C2;
        kn_gemm(&e512, &a);
        CHECK_MSG(memcmp(C1, C2, sizeof(float) * M * N) == 0, "avx512 differs from avx2 (act %d)", act);
    }
    free(A), free(B), free(bias), free(C1), free(C2);
}

static void run_all(uint64_t seed) {
    t_act_accuracy();
    t_ws_monotonic();
    t_batch(&seed);

    static const int64_t sizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 64, 100, 129};
    const int ns = (int)GL_ARRAY_LEN(sizes);
    /* every M with a few random N, K (small M exercises the GEMV path, large the packed one) */
    for (int i = 0; i < ns; i++)
        for (int r = 0; r < 3; r++) random_case(&seed, sizes[i], sizes[t_rand_u64(&seed) % ns], sizes[t_rand_u64(&seed) % ns]);
    /* random triples */
    for (int r = 0; r < 30; r++)
        random_case(&seed, sizes[t_rand_u64(&seed) % ns], sizes[t_rand_u64(&seed) % ns], sizes[t_rand_u64(&seed) % ns]);
    /* K spanning several KC blocks, N spanning NC blocks, M several MC blocks */
    random_case(&seed, 300, 260, 515);
    random_case(&seed, 20, 2100, 40);
    random_case(&seed, 150, 40, 600);
    random_case(&seed, 150, 9, 14000); /* M·K over the packed-A budget: A packed in two rounds */
    random_case(&seed, 1, 600, 700);
    random_case(&seed, 8, 333, 260);
    random_case(&seed, 0, 5, 5);
    random_case(&seed, 5, 7, 0);
    random_case(&seed, 17, 19, 0);
    /* pre-packed A: GEMV-sized M (unpacked), tile edges, several K blocks, narrow N (row tasks) */
    static const int64_t pk[][3] = {{5, 40, 30}, {13, 33, 17}, {64, 70, 300}, {100, 16, 64}, {192, 300, 64}, {67, 9, 520}};
    for (size_t i = 0; i < GL_ARRAY_LEN(pk); i++) prepacked_case(&seed, pk[i][0], pk[i][1], pk[i][2]);
    t_avx512_matches_avx2(&seed);
}

int main(void) {
    uint64_t seed = 0x5eed6e33ull;
    const char *s = getenv("GLIMPSE_TEST_SEED");
    if (s) seed = strtoull(s, NULL, 0);
    fprintf(stderr, "test_gemm: seed 0x%llx (set GLIMPSE_TEST_SEED to replay)\n", (unsigned long long)seed);
    for (int t = 1; t <= 3; t++) pools[t] = gl_pool_new(t);
    run_all(seed);
    /* on an AVX-512 CPU, everything again on the AVX2 kernels (GLIMPSE_ISA=avx2) */
    kn_env native = kn_env_native(NULL);
    if (kn_use_avx512(&native)) {
        fprintf(stderr, "test_gemm: again with GLIMPSE_ISA=avx2\n");
        setenv("GLIMPSE_ISA", "avx2", 1);
        run_all(seed);
        unsetenv("GLIMPSE_ISA");
    }
    for (int t = 1; t <= 3; t++) gl_pool_free(pools[t]);
    TEST_DONE();
}
