/* gemm.h — dense matrix products, the op most of the time goes into.
 *
 *   C[M,N] = act( A[M,K] · op(B) + bias )
 *
 * Row-major with leading dimensions. op(B) = B[K,N] (trans_b == 0) or B[N,K]^T (trans_b == 1:
 * a PyTorch Linear weight [out,in] used as y = x·W^T). Bias is per column (bias_n, length N,
 * Linear) or per row (bias_m, length M, conv weights as A); either may be NULL.
 * B may be F32, F16 or BF16 (weights as stored); A and C are F32; accumulation is F32.
 * B may also be GL_Q8_0 / GL_Q4_0 as a Linear weight (trans_b = 1, ldb = K, K % 32 == 0, no
 * bias_m): small M runs kn_qgemm (qgemm.h; int8 activations), larger M dequantizes B to f32
 * and runs the packed path; kn_gemm_ws_size_t() covers both, so models call one op whatever
 * the weight type. A quantized B that breaks these conditions computes nothing (loaders check
 * them: wl_matrix).
 * Threads: split over the pool in env. Results do not depend on the thread count.
 *
 * How it runs (gemm.c): M <= KN_GEMV_MAX_M goes to a GEMV path that streams B once (decode:
 * y = x·W^T at memory bandwidth), threads split over N. Larger M runs a packed, cache-blocked
 * GEMM (GotoBLAS/BLIS loops): B panels are packed to f32 (converting f16/bf16 on the way), A
 * panels are packed, an ISA microkernel (AVX2 6x16, NEON 8x12, plain C 4x8) computes register
 * tiles; bias is added to each tile and the activation applied to each block while they are in
 * cache. Threads take column chunks (split into row ranges when there are too few) from a shared
 * counter (or static row ranges when N is narrow and A is not pre-packed), never parts of K, and K is always blocked the same way, so every output is summed in the same order
 * whatever the thread count.
 *
 * Workspace: the packed path needs kn_gemm_ws_size() bytes of scratch (packed A, up to 8 MB,
 * and B packing buffers per thread). Pass it in ws/ws_size (e.g. from a scratch arena sized once for
 * the largest shape: the size only grows with M, N, K and the thread count). With ws == NULL
 * (or too small) kn_gemm allocates it for the call, which is fine for tools and tests but not
 * for the forward pass. */
#ifndef KN_GEMM_H
#define KN_GEMM_H

#include "core/tensor.h"
#include "kernels.h"

typedef enum kn_act {
    KN_ACT_NONE = 0,
    KN_ACT_RELU = 1,
    KN_ACT_GELU = 2, /* exact erf GELU */
    KN_ACT_SILU = 3,
    KN_ACT_GELU_TANH = 4,
} kn_act;

typedef struct kn_packed_a kn_packed_a;
typedef struct kn_packed_b kn_packed_b;
typedef struct kn_qpacked kn_qpacked;

typedef struct kn_gemm_args {
    int64_t M, N, K;
    const float *A; int64_t lda;
    const kn_packed_a *Ap; /* or A pre-packed by kn_gemm_pack_a (then A and lda are unused) */
    const void *B; int64_t ldb; gl_dtype b_type; int trans_b;
    const kn_packed_b *Bp; /* or op(B) pre-packed by kn_gemm_pack_b (then B, ldb, b_type, trans_b are unused) */
    const kn_qpacked *Bq;  /* quantized B also packed for the int8 kernels (qgemm.h), or NULL */
    float *C; int64_t ldc;
    const float *bias_n; /* [N] or NULL */
    const float *bias_m; /* [M] or NULL */
    kn_act act;
    int accumulate;      /* 1: C += result (before act is not allowed: act must be NONE) */
    void *ws;            /* scratch of ws_size bytes for the packed path, or NULL (see above) */
    size_t ws_size;
} kn_gemm_args;

void kn_gemm(const kn_env *env, const kn_gemm_args *a);

/* n independent products, each exactly as kn_gemm computes it (bit for bit). Those on the GEMV
 * path (M <= KN_GEMV_MAX_M) share one pool job: their columns are cut into chunks that threads
 * claim from one counter, so e.g. a decode step's q/k/v projections cost one barrier, not
 * three, and a thread slowed by other load does less of the work. Others run one by one
 * through kn_gemm (with their own ws). */
void kn_gemm_batch(const kn_env *env, const kn_gemm_args *a, int n);

/* Scratch bytes kn_gemm needs for an M x N x K product on env's pool (0 for the GEMV path).
 * Monotonic in M, N, K: the size for the largest shape serves all smaller ones. */
size_t kn_gemm_ws_size(const kn_env *env, int64_t M, int64_t N, int64_t K);

/* A constant A (1x1 conv weights) packed once, at load, the way env's microkernel reads it, so
 * that kn_gemm does not repack it on every call: for each K block of kc, panels of mr rows
 * (kc x mr each, k-major, the last zero-padded). kn_gemm takes it through args.Ap; if the
 * running ISA's tile differs (a scalar env on a model packed for AVX2) it unpacks a copy for
 * the call (slow: for tests). kn_gemm_packed_a_floats: the floats dst must hold (64-byte
 * aligned, as for kn_gemm_pack_b). */
struct kn_packed_a {
    const float *p;
    int64_t M, K;
    int mr, kc;
};
size_t kn_gemm_packed_a_floats(const kn_env *env, int64_t M, int64_t K);
void kn_gemm_pack_a(const kn_env *env, const float *A, int64_t lda, int64_t M, int64_t K, float *dst, kn_packed_a *out);
/* A[m, k] of a packed A. */
float kn_packed_a_at(const kn_packed_a *ap, int64_t m, int64_t k);

/* The same for a constant op(B) (Linear weights, f32/f16/bf16 in, f32 out): for each K block of
 * kc, panels of nr columns (kc x nr each, k-major, the last zero-padded). The args' B fields say
 * what to pack (B, ldb, b_type, trans_b, K, N). */
struct kn_packed_b {
    const float *p;
    int64_t K, N;
    int nr, kc;
};
size_t kn_gemm_packed_b_floats(const kn_env *env, int64_t K, int64_t N);
void kn_gemm_pack_b(const kn_env *env, const kn_gemm_args *a, float *dst, kn_packed_b *out);
float kn_packed_b_at(const kn_packed_b *bp, int64_t k, int64_t n);

/* The same for a B of type b_type (quantized types included). */
size_t kn_gemm_ws_size_t(const kn_env *env, int64_t M, int64_t N, int64_t K, gl_dtype b_type);

/* The plain-C definition (the spec the SIMD paths are tested against). Single-threaded. */
void kn_gemm_ref(const kn_gemm_args *a);

/* ---- internal: the per-ISA pieces gemm.c drives (not for models) ------------------------ */

#define KN_GEMV_MAX_M 8  /* M up to this takes the GEMV path */
#ifndef KN_GEMM_KC
#define KN_GEMM_KC 256   /* K block: a KC x NR B micro-panel (16 KB) stays in L1 */
#endif
#ifndef KN_GEMM_MC
#define KN_GEMM_MC 144   /* M block: the MC x KC A block (144 KB) stays in L2 */
#endif
#ifndef KN_GEMM_NC
#define KN_GEMM_NC 2048  /* N block: the KC x NC B block (2 MB) stays in L3 */
#endif

typedef struct kn_gemm_isa {
    int mr, nr; /* register tile */
    int kc;     /* K block (KN_GEMM_KC unless the ISA's L1 and tile favour another) */
    /* c[mr, nr] (row stride ldc) = (load_c ? c : 0) + pa·pb over kc, then + bias_m[r] and
     * + bias_n[j] where those are not NULL (mr / nr values). pa: kc x mr (k-major), pb: kc x nr. */
    void (*kernel)(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load_c,
                   const float *bias_m, const float *bias_n);
    /* dst = op(B)[k0:k0+kc, n0:n0+nc] as f32 panels of nr columns (kc x nr each, k-major),
     * the last panel zero-padded to nr. */
    void (*pack_b)(const kn_gemm_args *a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst);
    /* c[r*ldc + j] = act(c[r*ldc + j]) for r < rows, j < n; each element's result must not
     * depend on its position or the tile's size. */
    void (*act_tile)(kn_act act, float *c, int64_t ldc, int64_t rows, int64_t n);
    /* M <= KN_GEMV_MAX_M: all rows of C for columns [n0, n1), bias, accumulate and act included.
     * n0 is a multiple of 16. */
    void (*gemv)(const kn_gemm_args *a, int64_t n0, int64_t n1);
} kn_gemm_isa;

extern const kn_gemm_isa kn_gemm_isa_scalar;
#if defined(__x86_64__)
extern const kn_gemm_isa kn_gemm_isa_avx2;
/* AVX-512F: its own microkernel (a taller tile of 16-wide rows) and K block, the AVX2 table's
 * packing, activations and GEMV. */
extern const kn_gemm_isa kn_gemm_isa_avx512;
void kn_gemm_avx2_pack_b(const kn_gemm_args *a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst);
void kn_gemm_avx2_act_tile(kn_act act, float *c, int64_t ldc, int64_t rows, int64_t n);
/* One 16-row A panel: dst[k·16 + r] = src[r·lda + k] for r < rows (<= 16), 0 below, k < kc;
 * AVX-512 only. */
void kn_gemm_avx512_pack_a16(const float *src, int64_t lda, int rows, int64_t kc, float *dst);
void kn_gemm_avx2_gemv(const kn_gemm_args *a, int64_t n0, int64_t n1);
#endif
#if defined(__aarch64__)
extern const kn_gemm_isa kn_gemm_isa_neon;
#endif
/* The table env's CPU features select (scalar when forced or nothing better is present). */
const kn_gemm_isa *kn_gemm_isa_pick(const kn_env *env);

/* Shared by the scalar and NEON pieces: act on one value (libm, as kn_gemm_ref). */
float kn_gemm_act1(kn_act act, float x);
void kn_gemm_act_tile_scalar(kn_act act, float *c, int64_t ldc, int64_t rows, int64_t n);
/* Loads op(B)[k, n] as f32 (slow; for packing tails). */
float kn_gemm_load_b(const kn_gemm_args *a, int64_t k, int64_t n);

#endif
