/* Q8_0 / Q4_0: the reference quantizers' rounding and byte layout (ggml's), every ISA's
 * activation quantization (bitwise) and dot products (tolerance) against the scalar twins, and
 * kn_qgemm (all layouts, bias, act, accumulate, thread counts) against a double-accumulated
 * product of the same quantized values, plus its error against f32. */
#include "test.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "kernels/nn.h"
#include "kernels/qgemm.h"

/* Dot tolerance: |got - exact| <= TOL_DOT * sum over blocks of |d_w d_a| * sum |q_w q_a| (f32
 * rounding of the block products and their running sum, ~1e-7 per step with up to 300 steps). */
#define TOL_DOT 2e-5
/* Quantization error of a whole product vs f32, RMS relative to RMS of the exact result, for
 * uniform random inputs (Q8_0 steps are amax/127, Q4_0 steps amax/8; both sides quantized). */
#define TOL_Q8_REL 0.01
#define TOL_Q4_REL 0.12

static const kn_quant_isa *isas[5];
static int n_isas;

static void list_isas(void) {
    isas[n_isas++] = &kn_quant_isa_scalar;
    kn_env e = kn_env_native(NULL);
#if defined(__x86_64__)
    if (kn_use_avx2(&e)) isas[n_isas++] = &kn_quant_isa_avx2;
    if (kn_use_avx2(&e) && e.cpu.avxvnni) isas[n_isas++] = &kn_quant_isa_vnni;
    if (gl_cpu_has_avx512vnni(&e.cpu)) isas[n_isas++] = &kn_quant_isa_avx512vnni;
#endif
#if defined(__aarch64__)
    if (kn_use_neon(&e)) isas[n_isas++] = &kn_quant_isa_neon;
    if (kn_use_neon(&e) && e.cpu.dotprod) isas[n_isas++] = &kn_quant_isa_dotprod;
#endif
    (void)e;
}

static void test_formats(void) {
    float x[32];
    gl_block_q8_0 b8;
    gl_block_q4_0 b4;
    for (int j = 0; j < 32; j++) x[j] = (float)((j - 16) * 2);
    gl_quantize_row(GL_Q8_0, x, &b8, 32);
    CHECK_EQ_INT(b8.d, gl_f32_to_f16(32.0f / 127.0f));
    CHECK_EQ_INT(b8.qs[0], -127);
    CHECK_EQ_INT(b8.qs[16], 0);
    CHECK_EQ_INT(b8.qs[31], 119); /* 30 * 127 / 32 = 119.06 */
    gl_quantize_row(GL_Q4_0, x, &b4, 32);
    CHECK_EQ_INT(b4.d, gl_f32_to_f16(4.0f)); /* d = max / -8 with max = -32 (first largest |x|) */
    CHECK_EQ_INT(b4.qs[0], 0x80);            /* element 0 -> 0 (low nibble), element 16 -> 8 (high) */
    CHECK_EQ_INT(b4.qs[15] >> 4, 15);        /* element 31: 7.5 + 8.5 = 16, clamped to 15 */
    /* ties: ggml's Q8_0 rounds half away from zero (roundf) */
    memset(x, 0, sizeof x);
    x[0] = 127.0f; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.5f;
    gl_quantize_row(GL_Q8_0, x, &b8, 32);
    CHECK_EQ_INT(b8.qs[1], 3);
    CHECK_EQ_INT(b8.qs[2], -3);
    CHECK_EQ_INT(b8.qs[3], 1);
    /* zeros: d = 0, codes 0 (Q4_0: the +8 offset) */
    memset(x, 0, sizeof x);
    gl_quantize_row(GL_Q8_0, x, &b8, 32);
    gl_quantize_row(GL_Q4_0, x, &b4, 32);
    CHECK_EQ_INT(b8.d, 0);
    CHECK_EQ_INT(b8.qs[5], 0);
    CHECK_EQ_INT(b4.qs[5], 0x88);
    /* round trip: error within half a step (Q8_0) / one step (Q4_0, the clamp at +15), plus the
     * f16 rounding of d (quantization divides by the f32 d, as ggml does): 127 * 2^-11 steps */
    uint64_t seed = 7;
    float y[64], z[64];
    gl_block_q8_0 r8[2];
    gl_block_q4_0 r4[2];
    for (int j = 0; j < 64; j++) y[j] = t_rand_f32(&seed) * 3.0f;
    gl_quantize_row(GL_Q8_0, y, r8, 64);
    gl_dequantize_row(GL_Q8_0, r8, z, 64);
    for (int j = 0; j < 64; j++) CHECK_NEAR(z[j], y[j], gl_f16_to_f32(r8[j / 32].d) * 0.563 + 1e-6);
    gl_quantize_row(GL_Q4_0, y, r4, 64);
    gl_dequantize_row(GL_Q4_0, r4, z, 64);
    for (int j = 0; j < 64; j++) CHECK_NEAR(z[j], y[j], fabsf(gl_f16_to_f32(r4[j / 32].d)) * 1.004 + 1e-6);
}

/* Bytes written by ggml's own quantizer (gguf-py, tools/make_quant_golden.py) for 64 rows with
 * ties, zero and constant blocks, tiny and huge scales: ours must be identical. */
static int read_all(const char *name, void *buf, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/tests/data/quant/%s", GLIMPSE_SOURCE_DIR, name);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n ? 0 : -1;
}

static void test_ggml_golden(void) {
    static float x[64 * 64];
    static uint8_t want[64 * 2 * 34], got[64 * 2 * 34];
    CHECK(read_all("input_f32.bin", x, sizeof x) == 0);
    for (int t = 0; t < 2; t++) {
        gl_dtype dt = t ? GL_Q4_0 : GL_Q8_0;
        size_t n = 64 * 2 * (t ? 18 : 34);
        CHECK(read_all(t ? "q4_0.bin" : "q8_0.bin", want, n) == 0);
        for (int r = 0; r < 64; r++) gl_quantize_row(dt, x + r * 64, got + (size_t)r * n / 64, 64);
        size_t first = n;
        for (size_t i = 0; i < n && first == n; i++)
            if (got[i] != want[i]) first = i;
        CHECK_MSG(first == n, "%s: byte %zu differs from ggml's (block %zu)", gl_dtype_name(dt), first,
                  first / (t ? 18 : 34));
    }
}

static void test_quantize_act(uint64_t *seed) {
    static const int nbs[] = {1, 2, 3, 7, 28};
    for (size_t t = 0; t < GL_ARRAY_LEN(nbs); t++) {
        int nb = nbs[t];
        float *x = malloc(sizeof(float) * 32 * nb);
        for (int i = 0; i < 32 * nb; i++) x[i] = t_rand_f32(seed) * (i % 5 == 0 ? 10.0f : 1.0f);
        for (int j = 0; j < 32; j++) x[j] = 0.0f;                 /* an all-zero block */
        if (nb > 1) { x[32] = 127.0f; x[33] = 2.5f; x[34] = -0.5f; } /* exact ties: to even */
        kn_block_q8a *ref = malloc(sizeof *ref * nb), *got = malloc(sizeof *got * nb);
        kn_quant_isa_scalar.quantize_act(x, ref, nb);
        if (nb > 1) {
            CHECK_EQ_INT(ref[1].qs[1], 2);
            CHECK_EQ_INT(ref[1].qs[2], 0);
        }
        for (int s = 1; s < n_isas; s++) {
            memset(got, 0x55, sizeof *got * nb);
            isas[s]->quantize_act(x, got, nb);
            CHECK_MSG(!memcmp(ref, got, sizeof *got * nb), "%s quantize_act nb=%d differs from scalar", isas[s]->name, nb);
        }
        free(x); free(ref); free(got);
    }
}

/* Random weight row (nb blocks of t) and activation rows, with edge codes (-128 in Q8_0). */
static void *rand_row(gl_dtype t, int nb, uint64_t *seed) {
    float *x = malloc(sizeof(float) * 32 * nb);
    for (int i = 0; i < 32 * nb; i++) x[i] = t_rand_f32(seed);
    void *w = malloc((t == GL_Q8_0 ? 34 : 18) * (size_t)nb);
    gl_quantize_row(t, x, w, 32 * nb);
    if (t == GL_Q8_0) ((gl_block_q8_0 *)w)[0].qs[3] = -128; /* foreign files may hold it */
    free(x);
    return w;
}

static double exact_dot(gl_dtype t, int nb, const void *w, const kn_block_q8a *x, double *scale) {
    double s = 0, sc = 0;
    for (int k = 0; k < nb; k++) {
        double d, acc = 0, mag = 0;
        for (int j = 0; j < 32; j++) {
            int q;
            if (t == GL_Q8_0) q = ((const gl_block_q8_0 *)w)[k].qs[j];
            else {
                uint8_t b = ((const gl_block_q4_0 *)w)[k].qs[j % 16];
                q = (j < 16 ? (b & 15) : (b >> 4)) - 8;
            }
            acc += (double)q * x[k].qs[j];
            mag += fabs((double)q * x[k].qs[j]);
        }
        d = (double)gl_f16_to_f32(t == GL_Q8_0 ? ((const gl_block_q8_0 *)w)[k].d : ((const gl_block_q4_0 *)w)[k].d) * x[k].d;
        s += d * acc;
        sc += fabs(d) * mag;
    }
    *scale = sc;
    return s;
}

static void test_dots(uint64_t *seed) {
    static const int nbs[] = {1, 2, 3, 5, 28, 152};
    for (int ti = 0; ti < 2; ti++) {
        gl_dtype t = ti ? GL_Q4_0 : GL_Q8_0;
        for (size_t u = 0; u < GL_ARRAY_LEN(nbs); u++) {
            int nb = nbs[u];
            void *w = rand_row(t, nb, seed);
            int64_t xs = nb + 1; /* padded row stride */
            float *xf = malloc(sizeof(float) * 32 * xs * 4);
            for (int i = 0; i < 32 * xs * 4; i++) xf[i] = t_rand_f32(seed);
            kn_block_q8a *x = malloc(sizeof *x * xs * 4);
            kn_quant_isa_scalar.quantize_act(xf, x, xs * 4);
            for (int s = 0; s < n_isas; s++)
                for (int nx = 1; nx <= 4; nx++) {
                    float out[4];
                    (t == GL_Q8_0 ? isas[s]->dot_q8_0 : isas[s]->dot_q4_0)(nb, w, x, xs, nx, out);
#if defined(__x86_64__)
                    if (isas[s] == &kn_quant_isa_vnni) { /* exact integer sums: the same floats as AVX2 */
                        float o2[4];
                        (t == GL_Q8_0 ? kn_quant_isa_avx2.dot_q8_0 : kn_quant_isa_avx2.dot_q4_0)(nb, w, x, xs, nx, o2);
                        CHECK_MSG(!memcmp(out, o2, sizeof(float) * (size_t)nx), "vnni vs avx2 %s nb=%d nx=%d",
                                  gl_dtype_name(t), nb, nx);
                    }
#endif
                    for (int i = 0; i < nx; i++) {
                        double sc, e = exact_dot(t, nb, w, x + i * xs, &sc);
                        CHECK_MSG(fabs(out[i] - e) <= TOL_DOT * sc + 1e-30, "%s %s nb=%d nx=%d row %d: %.9g vs %.9g",
                                  isas[s]->name, gl_dtype_name(t), nb, nx, i, out[i], e);
                    }
                }
            /* 4-row decode kernels: each row bitwise equal to the one-row dot */
            size_t rb = (size_t)nb * (t == GL_Q8_0 ? sizeof(gl_block_q8_0) : sizeof(gl_block_q4_0));
            uint8_t *w4 = malloc(rb * 4);
            for (int r = 0; r < 4; r++) {
                void *wr = rand_row(t, nb, seed);
                memcpy(w4 + r * rb, wr, rb);
                free(wr);
            }
            for (int s = 0; s < n_isas; s++) {
                void (*d4)(int64_t, const void *, size_t, const kn_block_q8a *, float *) =
                    t == GL_Q8_0 ? isas[s]->dot4_q8_0 : isas[s]->dot4_q4_0;
                if (!d4) continue;
                float o4[4], o1;
                d4(nb, w4, rb, x, o4);
                for (int r = 0; r < 4; r++) {
                    (t == GL_Q8_0 ? isas[s]->dot_q8_0 : isas[s]->dot_q4_0)(nb, w4 + r * rb, x, xs, 1, &o1);
                    CHECK_MSG(!memcmp(&o1, &o4[r], sizeof o1), "%s %s dot4 nb=%d row %d: %.9g vs %.9g", isas[s]->name,
                              gl_dtype_name(t), nb, r, o4[r], o1);
                }
            }
            free(w4);
            free(w); free(xf); free(x);
        }
    }
}

/* kn_qgemm_batch (decode-sized products, some sharing A, one not batchable) equals kn_qgemm of
 * each product, bit for bit, for 1 and 3 threads. */
static void test_qgemm_batch(uint64_t *seed, gl_pool *p3) {
    enum { NP = 10 };
    kn_qgemm_args a[NP];
    float *A[NP], *C[NP], *Cb[NP], *bias = malloc(sizeof(float) * 400);
    void *W[NP];
    for (int i = 0; i < 400; i++) bias[i] = t_rand_f32(seed);
    for (int i = 0; i < NP; i++) {
        gl_dtype t = i % 3 ? GL_Q8_0 : GL_Q4_0;
        int64_t M = i == 7 ? 12 : 1 + (int64_t)(t_rand_u64(seed) % (i < 5 ? 1 : 4));
        int64_t K = 32 * (1 + (int64_t)(t_rand_u64(seed) % 40)), N = 1 + (int64_t)(t_rand_u64(seed) % 400);
        int share = i > 0 && i % 4 == 1 && a[i - 1].M == M; /* same A as the product before */
        if (share) K = a[i - 1].K;
        A[i] = malloc(sizeof(float) * M * (K + 3));
        for (int64_t k = 0; k < M * (K + 3); k++) A[i][k] = t_rand_f32(seed);
        float *wf = malloc(sizeof(float) * N * K);
        for (int64_t k = 0; k < N * K; k++) wf[k] = t_rand_f32(seed);
        size_t rb = (size_t)(K / 32) * (t == GL_Q8_0 ? 34 : 18);
        W[i] = malloc(rb * N);
        for (int64_t n = 0; n < N; n++) gl_quantize_row(t, wf + n * K, (uint8_t *)W[i] + n * rb, K);
        free(wf);
        C[i] = malloc(sizeof(float) * M * (N + 1)), Cb[i] = malloc(sizeof(float) * M * (N + 1));
        a[i] = (kn_qgemm_args){M, N, K, share ? A[i - 1] : A[i], share ? a[i - 1].lda : K + 3, 0, W[i], t, NULL, N + 1, 0,
                               i % 2 ? bias : NULL, i == 4 ? KN_ACT_SILU : KN_ACT_NONE, i == 6, NULL, 0, NULL, 0};
    }
    for (int th = 0; th < 2; th++) {
        kn_env e = kn_env_native(th ? p3 : NULL);
        for (int i = 0; i < NP; i++) {
            for (int64_t k = 0; k < a[i].M * (a[i].N + 1); k++) C[i][k] = Cb[i][k] = (float)k;
            kn_qgemm_args s = a[i];
            s.C = C[i];
            CHECK_EQ_INT(kn_qgemm(&e, &s), 0);
            a[i].C = Cb[i];
        }
        CHECK_EQ_INT(kn_qgemm_batch(&e, a, NP), 0);
        for (int i = 0; i < NP; i++)
            CHECK_MSG(!memcmp(C[i], Cb[i], sizeof(float) * a[i].M * (a[i].N + 1)), "batch %dt product %d (M=%lld N=%lld K=%lld)",
                      th ? 3 : 1, i, (long long)a[i].M, (long long)a[i].N, (long long)a[i].K);
    }
    for (int i = 0; i < NP; i++) free(A[i]), free(W[i]), free(C[i]), free(Cb[i]);
    free(bias);
}

static double act_d(kn_act act, double x) {
    if (act == KN_ACT_GELU) return 0.5 * x * erfc(-x * 0.70710678118654752);
    if (act == KN_ACT_SILU) return x / (1.0 + exp(-x));
    if (act == KN_ACT_RELU) return x > 0 ? x : 0;
    if (act == KN_ACT_GELU_TANH) return 0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    return x;
}

typedef struct shape { int64_t M, N, K; int a_trans, c_trans, bias, acc; kn_act act; } shape;

static void test_qgemm(uint64_t *seed, gl_pool *p3) {
    static const shape shapes[] = {
        {1, 1, 32, 0, 0, 0, 0, KN_ACT_NONE},   {1, 37, 96, 0, 0, 1, 0, KN_ACT_SILU}, {2, 5, 64, 0, 0, 1, 1, KN_ACT_NONE},
        {5, 9, 128, 1, 1, 1, 0, KN_ACT_GELU},  {9, 33, 64, 0, 1, 0, 1, KN_ACT_NONE}, {17, 70, 96, 1, 0, 1, 0, KN_ACT_NONE},
        {40, 300, 320, 1, 1, 1, 0, KN_ACT_GELU}, {3, 130, 896, 0, 0, 1, 0, KN_ACT_NONE},
        {37, 21, 64, 1, 1, 0, 1, KN_ACT_NONE},  {33, 50, 96, 0, 1, 1, 0, KN_ACT_SILU}, {45, 17, 128, 1, 0, 0, 1, KN_ACT_NONE},
        /* many-row tails of the int8 GEMMs' tiles (rows 6 x 32 columns; 6 channels x 32 pixels,
         * chunks of pixels), every activation, accumulate */
        {32, 32, 32, 0, 0, 0, 0, KN_ACT_NONE},   {71, 97, 160, 0, 0, 1, 0, KN_ACT_GELU}, {100, 65, 64, 0, 0, 1, 1, KN_ACT_NONE},
        {203, 131, 256, 0, 0, 1, 0, KN_ACT_SILU}, {61, 40, 96, 0, 0, 0, 0, KN_ACT_RELU},  {35, 33, 64, 0, 0, 1, 0, KN_ACT_GELU_TANH},
        {32, 6, 32, 1, 1, 0, 0, KN_ACT_NONE},    {47, 13, 96, 1, 1, 1, 0, KN_ACT_RELU},   {300, 71, 128, 1, 1, 1, 1, KN_ACT_NONE},
        {529, 50, 192, 1, 1, 1, 0, KN_ACT_SILU}, {97, 127, 64, 1, 1, 1, 0, KN_ACT_GELU_TANH}, {1030, 24, 1024, 1, 1, 1, 0, KN_ACT_GELU},
    };
    for (int ti = 0; ti < 2; ti++) {
        gl_dtype t = ti ? GL_Q4_0 : GL_Q8_0;
        for (size_t si = 0; si < GL_ARRAY_LEN(shapes); si++) {
            shape sh = shapes[si];
            int64_t M = sh.M, N = sh.N, K = sh.K, nb = K / 32;
            int64_t lda = sh.a_trans ? M + 3 : K + 5, ldc = sh.c_trans ? M + 2 : N + 1;
            int64_t arows = sh.a_trans ? K : M, crows = sh.c_trans ? N : M;
            float *A = malloc(sizeof(float) * arows * lda), *bias = malloc(sizeof(float) * N);
            float *Wf = malloc(sizeof(float) * N * K), *C0 = malloc(sizeof(float) * crows * ldc);
            for (int64_t i = 0; i < arows * lda; i++) A[i] = t_rand_f32(seed);
            for (int64_t i = 0; i < N * K; i++) Wf[i] = t_rand_f32(seed);
            for (int64_t i = 0; i < N; i++) bias[i] = t_rand_f32(seed);
            for (int64_t i = 0; i < crows * ldc; i++) C0[i] = t_rand_f32(seed);
            size_t rb = (size_t)nb * (t == GL_Q8_0 ? 34 : 18);
            uint8_t *W = malloc(rb * N);
            for (int64_t n = 0; n < N; n++) gl_quantize_row(t, Wf + n * K, W + n * rb, K);
            kn_qgemm_args a = {M, N, K, A, lda, sh.a_trans, W, t, NULL, ldc, sh.c_trans, sh.bias ? bias : NULL,
                               sh.act, sh.acc, NULL, 0, NULL, 0};
            float *Cr = malloc(sizeof(float) * crows * ldc), *C1 = malloc(sizeof(float) * crows * ldc);
            float *C3 = malloc(sizeof(float) * crows * ldc);
            memcpy(Cr, C0, sizeof(float) * crows * ldc);
            memcpy(C1, C0, sizeof(float) * crows * ldc);
            memcpy(C3, C0, sizeof(float) * crows * ldc);
            a.C = Cr;
            CHECK_EQ_INT(kn_qgemm_ref(&a), 0);
            kn_env e1 = kn_env_native(NULL), e3 = kn_env_native(p3);
            a.C = C1;
            CHECK_EQ_INT(kn_qgemm(&e1, &a), 0);
            a.C = C3;
            size_t wsn = kn_qgemm_ws_size(&e3, M, K, sh.a_trans);
            void *ws = malloc(wsn);
            a.ws = ws; a.ws_size = wsn;
            CHECK_EQ_INT(kn_qgemm(&e3, &a), 0);
            free(ws);
            /* the int8 VNNI GEMM (many rows; every layout), where the CPU has it */
            float *Cv = NULL;
#if defined(__x86_64__)
            if (M >= KN_Q_DEQUANT_M && kn_use_avx2(&e1) && e1.cpu.avxvnni) {
                Cv = malloc(sizeof(float) * crows * ldc);
                float *Cv3 = malloc(sizeof(float) * crows * ldc);
                memcpy(Cv, C0, sizeof(float) * crows * ldc);
                memcpy(Cv3, C0, sizeof(float) * crows * ldc);
                kn_qgemm_args v = a;
                v.ws = NULL, v.ws_size = 0, v.C = Cv;
                CHECK_EQ_INT(kn_qgemm_vnni(&e1, &v), 0);
                v.C = Cv3;
                CHECK_EQ_INT(kn_qgemm_vnni(&e3, &v), 0);
                CHECK_MSG(!memcmp(Cv, Cv3, sizeof(float) * crows * ldc), "%s shape %zu: vnni 1 vs 3 threads", gl_dtype_name(t), si);
                free(Cv3);
            }
            /* the AVX512-VNNI one (rows and channel-major layouts; mixed ones go to kn_qgemm) */
            float *Cz = NULL;
            if (gl_cpu_has_avx512vnni(&e1.cpu)) {
                Cz = malloc(sizeof(float) * crows * ldc);
                float *Cz3 = malloc(sizeof(float) * crows * ldc);
                memcpy(Cz, C0, sizeof(float) * crows * ldc);
                memcpy(Cz3, C0, sizeof(float) * crows * ldc);
                kn_qgemm_args v = a;
                v.ws = NULL, v.ws_size = 0, v.C = Cz;
                CHECK_EQ_INT(kn_qgemm_avx512vnni(&e1, &v), 0);
                size_t zn = kn_qgemm_avx512vnni_ws_size(&e3, M, N, K, sh.a_trans);
                void *zws = malloc(zn);
                v.ws = zws, v.ws_size = zn, v.C = Cz3;
                CHECK_EQ_INT(kn_qgemm_avx512vnni(&e3, &v), 0);
                CHECK_MSG(!memcmp(Cz, Cz3, sizeof(float) * crows * ldc), "%s shape %zu: avx512vnni 1 vs 3 threads", gl_dtype_name(t), si);
                if (sh.a_trans == sh.c_trans) { /* weights packed once (kn_qpack_avx512vnni): the same bits */
                    void *pk = gl_aligned_alloc(64, kn_qpacked_bytes(N, K, sh.a_trans));
                    kn_qpacked q;
                    kn_qpack_avx512vnni(W, t, N, K, sh.a_trans, pk, &q);
                    memcpy(Cz3, C0, sizeof(float) * crows * ldc);
                    v.Bq = &q, v.C = Cz3;
                    CHECK_EQ_INT(kn_qgemm_avx512vnni(&e3, &v), 0);
                    CHECK_MSG(!memcmp(Cz, Cz3, sizeof(float) * crows * ldc), "%s shape %zu: avx512vnni packed B", gl_dtype_name(t), si);
                    kn_qpacked wrong = {q.p, N, K + 32, q.cm}, other = {q.p, N, K, !q.cm};
                    v.Bq = &wrong;
                    CHECK_EQ_INT(kn_qgemm_avx512vnni(&e3, &v), GLIMPSE_ERR_INVALID_ARG);
                    v.Bq = &other; /* packed for the other layout */
                    CHECK_EQ_INT(kn_qgemm_avx512vnni(&e3, &v), GLIMPSE_ERR_INVALID_ARG);
                    gl_aligned_free(pk);
                }
                free(Cz3);
                free(zws);
            }
#else
            float *Cz = NULL;
#endif
            /* exact product of the quantized values, and the f32 product for the error bound */
            kn_block_q8a *xq = malloc(sizeof *xq * nb);
            float *row = malloc(sizeof(float) * K);
            double err2 = 0, ref2 = 0;
            int bad = 0;
            for (int64_t m = 0; m < M; m++) {
                for (int64_t k = 0; k < K; k++) row[k] = sh.a_trans ? A[k * lda + m] : A[m * lda + k];
                kn_quant_isa_scalar.quantize_act(row, xq, nb);
                for (int64_t n = 0; n < N; n++) {
                    double sc, e = exact_dot(t, (int)nb, W + n * rb, xq, &sc), f = 0;
                    for (int64_t k = 0; k < K; k++) f += (double)row[k] * Wf[n * K + k];
                    err2 += (e - f) * (e - f);
                    ref2 += f * f;
                    double bsum = (sh.bias ? bias[n] : 0);
                    int64_t ci = sh.c_trans ? n * ldc + m : m * ldc + n;
                    double want = sh.acc ? C0[ci] + e + bsum : act_d(sh.act, e + bsum);
                    double tol = TOL_DOT * sc + 1e-5 * (fabs(want) + fabs(C0[ci]) + fabs(bsum)) + 1e-6;
                    if (fabs(Cr[ci] - want) > tol || fabs(C1[ci] - want) > tol || (Cv && fabs(Cv[ci] - want) > tol) ||
                        (Cz && fabs(Cz[ci] - want) > tol)) {
                        if (!bad++)
                            fprintf(stderr, "%s shape %zu (m %lld n %lld): ref %.9g native %.9g vnni %.9g avx512vnni %.9g exact %.9g\n",
                                    gl_dtype_name(t), si, (long long)m, (long long)n, Cr[ci], C1[ci], Cv ? Cv[ci] : 0.0,
                                    Cz ? Cz[ci] : 0.0, want);
                    }
                }
            }
            CHECK_MSG(!bad, "%s shape %zu: %d outputs off", gl_dtype_name(t), si, bad);
            CHECK_MSG(!memcmp(C1, C3, sizeof(float) * crows * ldc), "%s shape %zu: 1 vs 3 threads differ", gl_dtype_name(t), si);
            double rel = sqrt(err2 / (ref2 + 1e-30));
            /* (an RMS over one or two outputs says nothing: shape 0 is a single one) */
            if (M * N >= 8) CHECK_MSG(rel <= (t == GL_Q8_0 ? TOL_Q8_REL : TOL_Q4_REL), "%s shape %zu: quantization error %.4f", gl_dtype_name(t), si, rel);
            /* kn_gemm with a quantized B runs the same product */
            /* (from KN_Q_DEQUANT_M rows on without int8 dot instructions it is the f32 product of
             * the dequantized weights: test_gemm_dequant) */
            if (!sh.a_trans && !sh.c_trans && (M < KN_Q_DEQUANT_M || Cz || Cv)) {
                float *Cg = malloc(sizeof(float) * crows * ldc);
                memcpy(Cg, C0, sizeof(float) * crows * ldc);
                kn_gemm_args g = {0};
                g.M = M; g.N = N; g.K = K; g.A = A; g.lda = lda; g.B = W; g.ldb = K; g.b_type = t; g.trans_b = 1;
                g.C = Cg; g.ldc = ldc; g.bias_n = a.bias_n; g.act = sh.act; g.accumulate = sh.acc;
                kn_gemm(&e1, &g);
                /* (from KN_Q_DEQUANT_M rows on: the int8 GEMM of the CPU, where it has one) */
                const float *Cw = M >= KN_Q_DEQUANT_M && Cz ? Cz : M >= KN_Q_DEQUANT_M && Cv ? Cv : C1;
                CHECK_MSG(!memcmp(Cw, Cg, sizeof(float) * crows * ldc), "%s shape %zu: kn_gemm differs", gl_dtype_name(t), si);
                free(Cg);
            }
            free(xq); free(row); free(A); free(bias); free(Wf); free(C0); free(W); free(Cr); free(C1); free(C3); free(Cv); free(Cz);
        }
    }
    /* bad arguments */
    kn_qgemm_args bad = {1, 1, 33, NULL, 33, 0, NULL, GL_Q8_0, NULL, 1, 0, NULL, KN_ACT_NONE, 0, NULL, 0, NULL, 0};
    kn_env e = kn_env_native(NULL);
    CHECK_EQ_INT(kn_qgemm(&e, &bad), GLIMPSE_ERR_INVALID_ARG);
    bad.K = 32;
    bad.b_type = GL_F16;
    CHECK_EQ_INT(kn_qgemm(&e, &bad), GLIMPSE_ERR_INVALID_ARG);
}

/* From KN_Q_DEQUANT_M rows on, kn_gemm with quantized B is the f32 GEMM of the dequantized
 * weights: bitwise equal to running that product directly (both thread counts); with AVX-VNNI
 * it is the int8 GEMM instead: within the int8 tolerance of the exact quantized product. */
static void test_gemm_dequant(uint64_t *seed, gl_pool *p3) {
    static const int64_t shapes[][3] = {{KN_Q_DEQUANT_M, 40, 64}, {70, 300, 320}, {281, 129, 96}};
    for (int ti = 0; ti < 2; ti++) {
        gl_dtype t = ti ? GL_Q4_0 : GL_Q8_0;
        for (size_t si = 0; si < GL_ARRAY_LEN(shapes); si++) {
            int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            size_t rb = (size_t)(K / 32) * (t == GL_Q8_0 ? 34 : 18);
            float *A = malloc(sizeof(float) * M * K), *Wf = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
            uint8_t *W = malloc(rb * N);
            for (int64_t i = 0; i < M * K; i++) A[i] = t_rand_f32(seed);
            for (int64_t i = 0; i < N * K; i++) Wf[i] = t_rand_f32(seed);
            for (int64_t i = 0; i < N; i++) bias[i] = t_rand_f32(seed);
            for (int64_t n = 0; n < N; n++) gl_quantize_row(t, Wf + n * K, W + n * rb, K);
            for (int64_t n = 0; n < N; n++) gl_dequantize_row(t, W + n * rb, Wf + n * K, K);
            float *C0 = malloc(sizeof(float) * M * N);
            for (int pass = 0; pass < 2; pass++) {
                kn_env e = kn_env_native(pass ? p3 : NULL);
                kn_gemm_args g = {0};
                g.M = M; g.N = N; g.K = K; g.A = A; g.lda = K; g.B = W; g.ldb = K; g.b_type = t; g.trans_b = 1;
                g.C = C1; g.ldc = N; g.bias_n = bias; g.act = KN_ACT_GELU;
                kn_gemm(&e, &g);
#if defined(__x86_64__)
                if (kn_use_avx2(&e) && (e.cpu.avxvnni || gl_cpu_has_avx512vnni(&e.cpu))) {
                    /* int8 with VNNI: the exact product of the quantized operands, and the
                     * same bits with 1 and 3 threads */
                    int64_t nb = K / 32;
                    kn_block_q8a *xq = malloc(sizeof *xq * nb);
                    int bad = 0;
                    for (int64_t m = 0; m < M; m++) {
                        kn_quant_isa_scalar.quantize_act(A + m * K, xq, nb);
                        for (int64_t n = 0; n < N; n++) {
                            double sc, ex = exact_dot(t, (int)nb, W + n * rb, xq, &sc), want = act_d(KN_ACT_GELU, ex + bias[n]);
                            if (fabs(C1[m * N + n] - want) > TOL_DOT * sc + 1e-5 * fabs(want) + 1e-6 && !bad++)
                                fprintf(stderr, "vnni %s m %lld n %lld: %.9g vs %.9g\n", gl_dtype_name(t), (long long)m,
                                        (long long)n, C1[m * N + n], want);
                        }
                    }
                    CHECK_MSG(!bad, "%s %lldx%lldx%lld: %d int8 outputs off", gl_dtype_name(t), (long long)M,
                              (long long)N, (long long)K, bad);
                    if (pass) CHECK_MSG(!memcmp(C0, C1, sizeof(float) * M * N), "vnni: 1 vs 3 threads differ");
                    else memcpy(C0, C1, sizeof(float) * M * N);
                    CHECK(kn_gemm_ws_size_t(&e, M, N, K, t) >= (gl_cpu_has_avx512vnni(&e.cpu) ? kn_qgemm_avx512vnni_ws_size(&e, M, N, K, 0)
                                                                                             : kn_qgemm_vnni_ws_size(&e, M, K)));
                    free(xq);
                    continue;
                }
#endif
                g.B = Wf; g.b_type = GL_F32; g.C = C2;
                kn_gemm(&e, &g);
                CHECK_MSG(!memcmp(C1, C2, sizeof(float) * M * N), "%s %lldx%lldx%lld: dequantized path differs",
                          gl_dtype_name(t), (long long)M, (long long)N, (long long)K);
                CHECK(kn_gemm_ws_size_t(&e, M, N, K, t) >= kn_gemm_ws_size(&e, M, N, K) + (size_t)N * K * 4);
            }
            free(C0);
            free(A); free(Wf); free(bias); free(C1); free(C2); free(W);
        }
    }
}

#if defined(__x86_64__)
/* The rows layout one panel at a time (kn_qpanel_avx512vnni, clip_text's fused layers): C
 * bitwise kn_qgemm_avx512vnni's (plain, GELU, accumulate); the activations' q8 rows from
 * kn_q8_block_avx512 bitwise quantize_act's; outputs quantized in the epilogue bitwise the
 * same blocks quantized afterwards; LayerNorm partials bitwise kn_ln_block_stats_avx512's,
 * merged (kn_ln_merge) to the rows' mean and variance; and the LN-then-quantize block within
 * half a quantization step of the exact normalized value. */
static void test_qpanel(uint64_t *seed) {
    kn_env e1 = kn_env_native(NULL);
    if (!gl_cpu_has_avx512vnni(&e1.cpu)) return;
    static const int64_t shapes[][3] = {{1, 32, 32}, {7, 96, 128}, {77, 64, 512}, {13, 32, 64}, {13, 64, 1056}, {77, 32, 2048}};
    for (int ti = 0; ti < 2; ti++) {
        const gl_dtype t = ti ? GL_Q4_0 : GL_Q8_0;
        for (size_t si = 0; si < GL_ARRAY_LEN(shapes); si++) {
            const int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2], nb = K / 32, nbo = N / 32;
            float *A = malloc(sizeof(float) * M * K), *Wf = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
            float *C0 = malloc(sizeof(float) * M * N), *Cr = malloc(sizeof(float) * M * N), *Cp = malloc(sizeof(float) * M * N);
            for (int64_t i = 0; i < M * K; i++) A[i] = t_rand_f32(seed) * 2;
            for (int64_t i = 0; i < N * K; i++) Wf[i] = t_rand_f32(seed) * 0.5f;
            for (int64_t i = 0; i < N; i++) bias[i] = t_rand_f32(seed) * 0.5f;
            for (int64_t i = 0; i < M * N; i++) C0[i] = t_rand_f32(seed);
            const size_t rb = (size_t)nb * (t == GL_Q8_0 ? sizeof(gl_block_q8_0) : sizeof(gl_block_q4_0));
            uint8_t *W = malloc(rb * (size_t)N);
            for (int64_t n = 0; n < N; n++) gl_quantize_row(t, Wf + n * K, W + (size_t)n * rb, K);
            void *pk = gl_aligned_alloc(64, kn_qpacked_bytes(N, K, 0));
            kn_qpacked q;
            kn_qpack_avx512vnni(W, t, N, K, 0, pk, &q);
            /* A as q8 rows, by block; against quantize_act */
            uint8_t *xu = malloc((size_t)(M * K)), *qu = malloc((size_t)(M * N)), *qu2 = malloc((size_t)(M * N));
            float *xd = malloc(sizeof(float) * M * nb), *qd = malloc(sizeof(float) * M * nbo), *qd2 = malloc(sizeof(float) * M * nbo);
            float *st = malloc(sizeof(float) * 2 * M * nbo), *st2 = malloc(sizeof(float) * 2 * M * nbo);
            float *acc = malloc(sizeof(float) * 32 * M); /* K in chunks (same bits) for variants 0 and 2 */
            float *Cpl = malloc(sizeof(float) * M * N); /* variant 0's result: before GELU */
            for (int64_t b = 0; b < nb; b++) kn_q8_block_avx512(A + b * 32, K, M, NULL, NULL, NULL, xu + b * 32, K, xd + b * M);
            int bad = 0;
            kn_block_q8a blk[64];
            for (int64_t m = 0; m < M; m++) {
                kn_quant_isa_scalar.quantize_act(A + m * K, blk, nb);
                for (int64_t b = 0; b < nb; b++) {
                    bad += blk[b].d != xd[b * M + m];
                    for (int j = 0; j < 32; j++) bad += (uint8_t)(blk[b].qs[j] + 128) != xu[m * K + b * 32 + j];
                }
            }
            CHECK_MSG(!bad, "%s shape %zu: kn_q8_block_avx512 differs from quantize_act in %d values", gl_dtype_name(t), si, bad);
            for (int v = 0; v < 3; v++) { /* plain + bias, GELU, accumulate with LN partials */
                kn_qgemm_args g = {0};
                g.M = M, g.N = N, g.K = K, g.A = A, g.lda = K, g.B = W, g.b_type = t, g.C = Cr, g.ldc = N;
                g.bias_n = bias, g.act = v == 1 ? KN_ACT_GELU : KN_ACT_NONE, g.accumulate = v == 2, g.Bq = &q;
                memcpy(Cr, C0, sizeof(float) * M * N);
                memcpy(Cp, C0, sizeof(float) * M * N);
                CHECK_EQ_INT(kn_qgemm_avx512vnni(&e1, &g), 0);
                kn_qpanel_args pa = {0};
                pa.B = &q, pa.M = M, pa.xu = xu, pa.xd = xd, pa.bias = bias, pa.C = Cp, pa.ldc = N;
                pa.act = g.act, pa.accumulate = g.accumulate, pa.stats = v == 2 ? st : NULL;
                pa.acc = v == 1 ? NULL : acc, pa.next = v == 1 ? -1 : 0;
                for (int64_t pi = nbo - 1; pi >= 0; pi--) kn_qpanel_avx512vnni(&pa, pi); /* any order */
                CHECK_MSG(!memcmp(Cr, Cp, sizeof(float) * M * N), "%s shape %zu variant %d: kn_qpanel differs from kn_qgemm",
                          gl_dtype_name(t), si, v);
                if (v == 0) memcpy(Cpl, Cr, sizeof(float) * M * N);
                if (v == 1) { /* quantized in the epilogue, no f32 written: with gelu16_q8 (1e-6 absolute),
                               * so within half a step of the exact GELU, and mostly the same q as gelu16's */
                    pa.C = NULL, pa.qu = qu, pa.qd = qd;
                    for (int64_t pi = 0; pi < nbo; pi++) kn_qpanel_avx512vnni(&pa, pi);
                    for (int64_t b = 0; b < nbo; b++) kn_q8_block_avx512(Cr + b * 32, N, M, NULL, NULL, NULL, qu2 + b * 32, N, qd2 + b * M);
                    int flips = 0, far = 0;
                    double worst = 0;
                    for (int64_t m = 0; m < M; m++)
                        for (int64_t i = 0; i < N; i++) {
                            int a1 = qu[m * N + i], a2 = qu2[m * N + i];
                            flips += a1 != a2, far += abs(a1 - a2) > 1;
                            double xv = Cpl[m * N + i], g = 0.5 * xv * (1 + erf(xv / sqrt(2.0)));
                            double d = qd[i / 32 * M + m];
                            worst = fmax(worst, (fabs((a1 - 128) * d - g) - 2e-6) / (0.5 * d));
                            CHECK_NEAR(d, qd2[i / 32 * M + m], 1e-5 * qd2[i / 32 * M + m]);
                        }
                    CHECK_MSG(!far && flips <= M * N / 100 + 1, "%s shape %zu: GELU epilogue: %d of %lld q differ from gelu16's, %d by more than 1",
                              gl_dtype_name(t), si, flips, (long long)(M * N), far);
                    CHECK_MSG(worst <= 1.0 + 1e-3, "%s shape %zu: GELU epilogue %.4f half-steps from the exact GELU", gl_dtype_name(t), si, worst);
                }
                if (v == 2) {
                    for (int64_t b = 0; b < nbo; b++) kn_ln_block_stats_avx512(Cr + b * 32, N, M, st2 + 2 * b * M);
                    CHECK_MSG(!memcmp(st, st2, sizeof(float) * 2 * M * nbo), "%s shape %zu: LN partials differ", gl_dtype_name(t), si);
                    float *mr = malloc(sizeof(float) * 2 * M), *lw = malloc(sizeof(float) * N), *lb = malloc(sizeof(float) * N);
                    for (int64_t i = 0; i < N; i++) lw[i] = t_rand_f32(seed) * 0.5f + 1.0f, lb[i] = t_rand_f32(seed) * 0.5f;
                    kn_ln_merge(st, M, nbo, 32, 1e-5f, mr);
                    for (int64_t b = 0; b < nbo; b++)
                        kn_q8_block_avx512(Cr + b * 32, N, M, mr, lw + b * 32, lb + b * 32, qu + b * 32, N, qd + b * M);
                    double worst = 0;
                    for (int64_t m = 0; m < M; m++) {
                        double mean = 0, var = 0;
                        for (int64_t i = 0; i < N; i++) mean += Cr[m * N + i];
                        mean /= (double)N;
                        for (int64_t i = 0; i < N; i++) var += (Cr[m * N + i] - mean) * (Cr[m * N + i] - mean);
                        var /= (double)N;
                        CHECK_NEAR(mr[2 * m], mean, 1e-5 * (1 + fabs(mean)));
                        CHECK_NEAR(mr[2 * m + 1], 1 / sqrt(var + 1e-5), 1e-5 / sqrt(var + 1e-5));
                        for (int64_t i = 0; i < N; i++) {
                            double y = (Cr[m * N + i] - mean) / sqrt(var + 1e-5) * lw[i] + lb[i];
                            double d = qd[i / 32 * M + m], deq = ((int)qu[m * N + i] - 128) * d;
                            worst = fmax(worst, fabs(deq - y) / (0.5 * d + 1e-6));
                        }
                    }
                    CHECK_MSG(worst <= 1.01, "%s shape %zu: LN + quantize off by %.3f half-steps", gl_dtype_name(t), si, worst);
                    free(mr), free(lw), free(lb);
                }
            }
            gl_aligned_free(pk);
            free(A), free(Wf), free(bias), free(C0), free(Cr), free(Cp), free(W), free(xu), free(qu), free(qu2);
            free(xd), free(qd), free(qd2), free(st), free(st2), free(acc), free(Cpl);
        }
    }
}
#endif

#if defined(__x86_64__)
/* int8_next (the output only feeds int8 products): GELU within 1e-6 absolute of gelu16's, in
 * the channel-major layout (MCi's ConvFFN fc1). */
static void test_int8_next(uint64_t *seed) {
    kn_env e1 = kn_env_native(NULL);
    if (!gl_cpu_has_avx512vnni(&e1.cpu)) return;
    const int64_t M = 200, N = 48, K = 96, nb = K / 32; /* M pixels, N output channels */
    float *A = malloc(sizeof(float) * K * M), *Wf = malloc(sizeof(float) * N * K), *C1 = malloc(sizeof(float) * N * M),
          *C2 = malloc(sizeof(float) * N * M);
    for (int64_t i = 0; i < K * M; i++) A[i] = t_rand_f32(seed) * 3;
    for (int64_t i = 0; i < N * K; i++) Wf[i] = t_rand_f32(seed) * 0.5f;
    uint8_t *W = malloc(sizeof(gl_block_q8_0) * (size_t)(N * nb));
    for (int64_t n = 0; n < N; n++) gl_quantize_row(GL_Q8_0, Wf + n * K, W + (size_t)n * nb * sizeof(gl_block_q8_0), K);
    kn_qgemm_args a = {0};
    a.M = M, a.N = N, a.K = K, a.A = A, a.lda = M, a.a_trans = 1, a.B = W, a.b_type = GL_Q8_0;
    a.C = C1, a.ldc = M, a.c_trans = 1, a.act = KN_ACT_GELU;
    CHECK_EQ_INT(kn_qgemm_avx512vnni(&e1, &a), 0);
    a.C = C2, a.int8_next = 1;
    CHECK_EQ_INT(kn_qgemm_avx512vnni(&e1, &a), 0);
    double worst = 0;
    int same = 0;
    for (int64_t i = 0; i < N * M; i++) worst = fmax(worst, fabs(C1[i] - C2[i])), same += C1[i] == C2[i];
    CHECK_MSG(worst <= 2e-6, "int8_next GELU off by %.3g", worst);
    CHECK_MSG(same < N * M, "int8_next changed nothing: the fast GELU did not run"); /* the test can fail */
    free(A), free(Wf), free(C1), free(C2), free(W);
}
#endif

int main(void) {
    uint64_t seed = 0x5eed0005;
    fprintf(stderr, "test_quant: seed %llu\n", (unsigned long long)seed);
    list_isas();
    for (int i = 0; i < n_isas; i++) fprintf(stderr, "  isa %s\n", isas[i]->name);
    gl_pool *p3 = gl_pool_new(3);
    test_formats();
    test_ggml_golden();
    test_quantize_act(&seed);
    test_dots(&seed);
    test_qgemm(&seed, p3);
    test_qgemm_batch(&seed, p3);
    test_gemm_dequant(&seed, p3);
#if defined(__x86_64__)
    test_qpanel(&seed);
    test_int8_next(&seed);
#endif
    gl_pool_free(p3);
    TEST_DONE();
}
