/* qgemm.h — products with quantized weights (ggml Q8_0 / Q4_0 blocks, see core/quant.h):
 *
 *   C[M,N] = act( A[M,K] · B[N,K]^T + bias_n )
 *
 * B is a Linear weight [out = N, in = K] stored as N rows of K/32 blocks (K % 32 == 0); A and C
 * are f32. The activations are quantized first, per row and per 32 values, to int8 with an f32
 * scale (kn_block_q8a: ggml's Q8_0 with the scale kept in f32, which costs nothing here and
 * drops one rounding), rounding to nearest even. Each output is then a sum over blocks of
 * d_w · d_a · (integer dot of 32 int8 pairs): int8 multiplies with int32 sums (AVX2
 * maddubs/madd, NEON smull/sadalp or sdot), f32 accumulation across blocks.
 *
 * Layouts: a_trans reads A[m,k] at A[k*lda + m] (a channel-major [K, M] feature map, as 1x1
 * convolutions see it); c_trans writes C[m,n] at C[n*ldc + m] (a [N, M] map). Decode (M = 1)
 * streams B once at memory bandwidth; prefill (M > 1) keeps a block of B rows in L2 and runs
 * 4 activation rows against each weight row, so each weight block is loaded and unpacked once
 * per 4 rows. Threads split N (output features); results do not depend on the thread count.
 *
 * Workspace: kn_qgemm_ws_size() bytes (the quantized activations); from ws/ws_size or, when
 * absent or too small, allocated for the call (on failure it still runs, one row at a time). */
#ifndef KN_QGEMM_H
#define KN_QGEMM_H

#include "core/quant.h"
#include "gemm.h"

typedef struct kn_block_q8a {
    float d;
    int32_t sum; /* Σ qs: lets 4-bit kernels multiply the unsigned nibbles (Σ(q-8)a = Σqa - 8Σa) */
    int8_t qs[GL_QK];
} kn_block_q8a;

/* B packed once, in the panels kn_qgemm_avx512vnni's rows layout would pack it into per call
 * (kn_qpack_avx512vnni): a lasting copy for models whose weights each serve few rows per call
 * (the CLIP text towers, 77 tokens), where packing per call was ~25% of the int8 GEMM time. */
typedef struct kn_qpacked {
    const uint8_t *p; /* NULL: not packed */
    int64_t N, K;
    int cm;           /* 0: for the rows layout (panels); 1: for the channel-major one (int8 rows) */
} kn_qpacked;

typedef struct kn_qgemm_args {
    int64_t M, N, K;
    const float *A; int64_t lda; int a_trans;
    const void *B; gl_dtype b_type; /* GL_Q8_0 or GL_Q4_0, rows of K/32 blocks */
    float *C; int64_t ldc; int c_trans;
    const float *bias_n; /* [N] or NULL */
    kn_act act;
    int accumulate;      /* C += result (act must be NONE) */
    void *ws;
    size_t ws_size;
    const kn_qpacked *Bq; /* or NULL; when set, the AVX512-VNNI rows layout reads it instead of B
                           * (B and b_type must still describe the same weights: other paths use them) */
    int int8_next;        /* C only feeds products that quantize it to int8: the AVX512-VNNI kernels
                           * may take GELU to 1e-6 absolute (gelu16_q8) instead of gelu16's bits */
} kn_qgemm_args;

/* Without int8 dot instructions (AVX-VNNI, sdot) int8 products are not faster than f32 FMAs, so
 * from KN_Q_DEQUANT_M activation rows on (prefill, image tokens, 1x1 convs over a map) it is
 * faster to dequantize B to f32 once and run the packed f32 GEMM: kn_gemm does that for
 * quantized B when M >= KN_Q_DEQUANT_M (the int8 path serves decode and small batches). */
#define KN_Q_DEQUANT_M 32
/* ... unless the f32 copy of B would exceed this many bytes (e.g. a 150k-row vocabulary head). */
#define KN_Q_DEQUANT_MAX_BYTES ((size_t)64 << 20)
/* Whether kn_gemm runs an M-row product with this quantized B as dequantize + f32 GEMM. */
static inline int kn_q_dequant(int64_t M, int64_t N, int64_t K) {
    return M >= KN_Q_DEQUANT_M && (size_t)N * (size_t)K * sizeof(float) <= KN_Q_DEQUANT_MAX_BYTES;
}
/* rows x K quantized weights (rows of K/32 blocks) -> f32 dst [rows, K], split over the pool. */
void kn_dequant_rows(const kn_env *env, const void *B, gl_dtype t, int64_t rows, int64_t K, float *dst);

/* GLIMPSE_ERR_INVALID_ARG when K is not a multiple of 32 or b_type is not quantized. */
int kn_qgemm(const kn_env *env, const kn_qgemm_args *a);
/* n products at once: the decode-sized ones (M <= KN_GEMV_MAX_M, A in rows) share one pool run
 * whose threads claim chunks of weight rows from one counter (a thread slowed by other load
 * takes fewer), and products reading the same A quantize it once. Results equal kn_qgemm's. */
int kn_qgemm_batch(const kn_env *env, const kn_qgemm_args *a, int n);
size_t kn_qgemm_ws_size(const kn_env *env, int64_t M, int64_t K, int a_trans);
/* The plain-C definition (single-threaded, same quantization of A): the spec. */
int kn_qgemm_ref(const kn_qgemm_args *a);

/* ---- internal: the per-ISA pieces (tests call them directly) ------------------------------ */
typedef struct kn_quant_isa {
    const char *name;
    /* nb blocks of 32 floats -> nb activation blocks: d = amax / 127, q = rint(x / d) (ties to
     * even; computed as x * (1 / d)), d = 0 for an all-zero block, sum = Σ q. Bitwise equal on
     * all ISAs. */
    void (*quantize_act)(const float *x, kn_block_q8a *y, int64_t nb);
    /* out[i] = sum over blocks b of d_w[b] * x[i*xs + b].d * sum_j w[b][j] * x[i*xs + b].qs[j]
     * for i < nx (1..4): one weight row (nb blocks of Q8_0 / Q4_0) against nx activation rows. */
    void (*dot_q8_0)(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out);
    void (*dot_q4_0)(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out);
    /* Decode: 4 weight rows (row i at w + i * row_bytes) against one activation row, each out[i]
     * bitwise equal to dot_*(nb, row i, x, .., 1, ..). May be NULL (then dot_* per row). */
    void (*dot4_q8_0)(int64_t nb, const void *w, size_t row_bytes, const kn_block_q8a *x, float *out);
    void (*dot4_q4_0)(int64_t nb, const void *w, size_t row_bytes, const kn_block_q8a *x, float *out);
} kn_quant_isa;

extern const kn_quant_isa kn_quant_isa_scalar;
#if defined(__x86_64__)
extern const kn_quant_isa kn_quant_isa_avx2;
extern const kn_quant_isa kn_quant_isa_vnni; /* AVX-VNNI dot products; only where cpu.avxvnni */
extern const kn_quant_isa kn_quant_isa_avx512vnni; /* 512-bit, two blocks per dpbusd; cpu.avx512vnni */
void kn_quantize_act_avx2(const float *x, kn_block_q8a *y, int64_t nb);
/* Many-row products (M >= KN_Q_DEQUANT_M) in int8 with AVX-VNNI (qgemm_big_vnni.c), any of
 * kn_qgemm's layouts; only where cpu.avxvnni. Results differ from kn_qgemm's by float rounding
 * only (the block dots are exact integers either way). */
int kn_qgemm_vnni(const kn_env *env, const kn_qgemm_args *a);
size_t kn_qgemm_vnni_ws_size(const kn_env *env, int64_t M, int64_t K);
/* The same with 512-bit AVX512-VNNI (qgemm_big_avx512vnni.c); only where
 * gl_cpu_has_avx512vnni. Rows layout, or channel-major (a_trans + c_trans; cm = 1 for its
 * workspace: 1x1 convolutions) with lanes over pixels; mixed layouts go to kn_qgemm. Results
 * do not depend on the thread count. */
int kn_qgemm_avx512vnni(const kn_env *env, const kn_qgemm_args *a);
size_t kn_qgemm_avx512vnni_ws_size(const kn_env *env, int64_t M, int64_t N, int64_t K, int cm);
/* Bytes of a kn_qpacked for [N, K] weights in the layout cm, and the packing into dst (64-byte
 * aligned). A packed B serves only products of its layout (others are refused). */
size_t kn_qpacked_bytes(int64_t N, int64_t K, int cm);
void kn_qpack_avx512vnni(const void *B, gl_dtype t, int64_t N, int64_t K, int cm, void *dst, kn_qpacked *out);

/* Pieces of the rows layout for model code that schedules its own threads (clip_text's fused
 * layers): there each core keeps the columns it produced, quantized where they were computed,
 * because on the build VM moving a cache line between the two cores costs ~260 ns.
 * Activations quantized for a product ("q8 rows"): row r of an [M, K] matrix as K bytes
 * q + 128 at u + r·K, and the scale of its block b at d[b·M + r] (by block, so that the
 * threads writing different blocks never share a cache line): quantize_act's q and d. */
typedef struct kn_qpanel_args {
    const kn_qpacked *B; /* rows layout (cm 0), [N, K] */
    int64_t M;
    const uint8_t *xu; const float *xd; /* A as q8 rows [M, K] */
    const float *bias;   /* [N] or NULL */
    float *C; int64_t ldc; /* f32 out, or NULL (then qu) */
    int accumulate;      /* C += */
    kn_act act;          /* KN_ACT_NONE or KN_ACT_GELU (not with accumulate; with qu and no C, a GELU
                          * within 1e-6 absolute instead of gelu16's bits: rounded to int8 next) */
    uint8_t *qu; float *qd; /* or NULL: the outputs as q8 rows [M, N] (the next product's A); */
    float *stats;        /* or (when qu is NULL) NULL: per 32 outputs b and row r, kn_ln_block_stats_avx512's partials
                          * at stats + 2·(b·M + r) (kn_ln_merge's layout) */
    int64_t next;        /* the panel the caller runs next (its weights are fetched meanwhile), or -1 */
    float *acc;          /* or NULL: [M][32] scratch; then K runs in chunks of 512 whose weights stay in L1 */
} kn_qpanel_args;
/* Output columns [32·pi, 32·pi + 32) for all M rows: kn_qgemm_avx512vnni's bits. qu and
 * stats need N % 32 == 0. */
void kn_qpanel_avx512vnni(const kn_qpanel_args *a, int64_t pi);
/* One 32-column block of x (M rows, row stride ldx; x points at the block) -> the same block
 * of q8 rows (qu points at it, row stride ldq; qd at the block's M scales). With mr ([M][2]:
 * mean, 1/std) the rows are layer-normalized first (w, b: the block's 32 weights and biases,
 * or NULL), computed as kn_layernorm_row_avx2 does. */
void kn_q8_block_avx512(const float *x, int64_t ldx, int64_t M, const float *mr, const float *w, const float *b,
                        uint8_t *qu, int64_t ldq, float *qd);
/* Layer-norm partials of one 32-column block: per row r (sum, Σ(x - block mean)²) at st + 2r. */
void kn_ln_block_stats_avx512(const float *x, int64_t ldx, int64_t M, float *st);
#endif
#if defined(__aarch64__)
extern const kn_quant_isa kn_quant_isa_neon;
extern const kn_quant_isa kn_quant_isa_dotprod; /* Armv8.2 sdot; only where cpu.dotprod */
#endif
const kn_quant_isa *kn_quant_pick(const kn_env *env);

#endif
