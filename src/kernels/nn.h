/* nn.h — row-wise and elementwise ops of the transformer and conv blocks (f32).
 *
 * Row ops work on [rows, n] row-major buffers (row stride n unless stated) and split rows over
 * env->pool; elementwise ops split the range. y may equal x for every op (in place) unless a
 * comment says otherwise. Each op has a plain-C scalar twin (the spec, using libm's expf/erff/
 * tanhf) and AVX2 / NEON versions picked at run time; results never depend on the thread count.
 *
 * Activations: GELU is the exact erf form (PyTorch nn.GELU default), GELU_TANH the tanh
 * approximation (= x·sigmoid(2u), u = √(2/π)(x + 0.044715x³)), SiLU x·sigmoid(x). */
#ifndef KN_NN_H
#define KN_NN_H

#include <math.h>

#include "gemm.h"
#include "kernels.h"

/* An activation code for the nn ops only (kn_gemm's epilogue does not take it). */
#define KN_ACT_SIGMOID ((kn_act)16)

/* The scalar definition of each activation (used by the scalar twins and tests). */
static inline float kn_act1(kn_act act, float x) {
    switch ((int)act) {
    case KN_ACT_RELU: return x > 0 ? x : 0;
    case KN_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case KN_ACT_SILU: return x / (1.0f + expf(-x));
    case KN_ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case KN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    default: return x;
    }
}

/* ---- elementwise (n elements) ---------------------------------------------------------- */
void kn_act_apply(const kn_env *env, kn_act act, const float *x, float *y, int64_t n);
void kn_gelu(const kn_env *env, const float *x, float *y, int64_t n);
void kn_gelu_tanh(const kn_env *env, const float *x, float *y, int64_t n);
void kn_silu(const kn_env *env, const float *x, float *y, int64_t n);
void kn_relu(const kn_env *env, const float *x, float *y, int64_t n);
void kn_sigmoid(const kn_env *env, const float *x, float *y, int64_t n);
void kn_add(const kn_env *env, const float *a, const float *b, float *y, int64_t n); /* a + b */
void kn_mul(const kn_env *env, const float *a, const float *b, float *y, int64_t n); /* a * b */
void kn_scale(const kn_env *env, const float *x, float s, float *y, int64_t n);      /* s * x */
/* SwiGLU gate: y = silu(g) * u (Qwen2 MLP). */
void kn_swiglu(const kn_env *env, const float *g, const float *u, float *y, int64_t n);

/* ---- per-channel ops on NCHW [N, C, HW] ---------------------------------------------------- */
/* y = x + gamma[c] · f   (layer scale residual: x + γ ⊙ block(x)); gamma NULL means 1. */
void kn_add_scaled_ch(const kn_env *env, const float *x, const float *f, const float *gamma,
                      float *y, int64_t N, int64_t C, int64_t HW);
/* y = x · s[n·C + c]  (squeeze-excite gate: s is [N, C]). */
void kn_mul_ch(const kn_env *env, const float *x, const float *s, float *y, int64_t N, int64_t C,
               int64_t HW);

/* ---- row ops ([rows, n]) -------------------------------------------------------------------- */
/* LayerNorm over each row: (x − mean)/sqrt(var + eps) · w + b (biased variance; w, b may be NULL). */
void kn_layernorm(const kn_env *env, const float *x, float *y, const float *w, const float *b,
                  int64_t rows, int64_t n, float eps);
/* A LayerNorm's row statistics from per-block partials, for code that normalizes a row whose
 * parts were computed on different cores: st[2·(b·rows + r)] holds block b of row r's (sum,
 * Σ(x − block mean)²) over bs values; out [rows][2] gets (mean, 1/sqrt(var + eps)), the
 * variance as Σ_b [M2_b + bs·(mean_b − mean)²] / n (exact, and stable where Σx² − n·mean² is
 * not). Blocks are summed in order, so the result does not depend on who computed which. */
void kn_ln_merge(const float *st, int64_t rows, int64_t nb, int64_t bs, float eps, float *out);
/* RMSNorm (Qwen2): x / sqrt(mean(x²) + eps) · w (w may be NULL). */
void kn_rmsnorm(const kn_env *env, const float *x, float *y, const float *w, int64_t rows,
                int64_t n, float eps);
/* Softmax over each row (max-subtracted; exact exp to ~2 ulp). */
void kn_softmax(const kn_env *env, const float *x, float *y, int64_t rows, int64_t n);
/* Each row divided by max(‖row‖₂, eps) (torch.nn.functional.normalize; eps 1e-12 there). */
void kn_l2norm(const kn_env *env, const float *x, float *y, int64_t rows, int64_t n, float eps);
/* Channel LayerNorm on NCHW (timm LayerNorm2d / FastViT LayerNormChannel): each pixel normalised
 * across its C channels, then y = x̂ · w[c] + b[c]. x, y [N, C, HW]. */
void kn_layernorm_ch(const kn_env *env, const float *x, float *y, const float *w, const float *b,
                     int64_t N, int64_t C, int64_t HW, float eps);
/* Transpose each of `batch` [rows, cols] matrices to [cols, rows] (NCHW <-> tokens). y != x. */
void kn_transpose(const kn_env *env, const float *x, float *y, int64_t batch, int64_t rows,
                  int64_t cols);

/* ---- attention ------------------------------------------------------------------------------ */
typedef struct kn_attn_args {
    int64_t n_q, n_kv;       /* query tokens; key/value tokens (incl. a KV cache) */
    int n_heads, n_kv_heads; /* GQA: query head h reads kv head h / (n_heads / n_kv_heads) */
    int head_dim;
    float scale;             /* usually 1/sqrt(head_dim) */
    int causal;              /* query i (absolute position pos0 + i) sees keys j <= pos0 + i */
    int64_t pos0;            /* position of query 0 among the keys (n_kv - n_q when decoding) */
    /* Token t, head h of q is q[t·q_stride + h·head_dim + d]; k, v likewise with the kv head;
     * out[t·o_stride + h·head_dim + d]. Strides let q/k/v live in one fused qkv buffer. */
    const float *q; int64_t q_stride;
    const float *k; int64_t k_stride;
    const float *v; int64_t v_stride;
    float *out; int64_t o_stride;
    /* Optional K transposed per kv head, as a KV cache can keep it: key j, dim d of kv head h at
     * kt[(h·head_dim + d)·kt_ld + j], kt_ld a multiple of 16 and columns readable (any finite
     * values) up to n_kv rounded up to 16. Spares the blocked paths their per-call transpose;
     * k is still needed (the plain path reads rows). */
    const float *kt; int64_t kt_ld;
} kn_attn_args;

/* Workspace floats kn_attention needs with env's thread count. */
size_t kn_attention_ws_floats(const kn_env *env, const kn_attn_args *a);
/* An upper bound of kn_attention_ws_floats on any ISA, for n_kv keys of head_dim and n_threads. */
size_t kn_attention_ws_floats_max(int64_t n_kv, int head_dim, int n_threads);
/* out = softmax(scale · q kᵀ (+ causal mask)) v per head. out must not overlap q, k, v.
 * Returns GLIMPSE_ERR_INVALID_ARG for bad shapes or a short workspace. A fully masked row
 * (causal with pos0 + i < 0) gives zeros. */
int kn_attention(const kn_env *env, const kn_attn_args *a, float *ws, size_t ws_floats);

/* RoPE, Hugging Face "rotate_half" form (Qwen2): for each token t (position pos[t]), head h and
 * i < head_dim/2, with θ_i = pos · base^(−2i/head_dim):
 *   x1 = x[i], x2 = x[i + d/2];  x[i] = x1·cos θ − x2·sin θ;  x[i + d/2] = x2·cos θ + x1·sin θ.
 * x is [n_tok, ...] with row stride `stride` floats, heads packed at h·head_dim. In place.
 * Angles are computed in double, so positions up to the 32K context stay accurate. */
void kn_rope(const kn_env *env, float *x, int64_t n_tok, int64_t stride, int n_heads,
             int head_dim, const int64_t *pos, double theta_base);

/* ---- scalar twins (the spec; single-threaded) and ISA row kernels -------------------------- */

/* Blocked attention for up to KN_ATTN_QB queries of one head (used when n_q is large): scores
 * against K packed transposed ([hd, ldkt], zero beyond the keys), so the score loop broadcasts
 * q and needs no horizontal sums; then softmax per query over its own lim[i] keys; then
 * out_i = Σ_j p_ij v_j. s is [KN_ATTN_QB, ldkt] scratch; ldkt is a multiple of 16 and every
 * lim[i] (>= 1) is <= ldkt. */
#define KN_ATTN_QB 4
typedef struct kn_attn_blk {
    const float *q; int64_t q_stride; int nq;
    const float *kt; int64_t ldkt;
    const float *v; int64_t v_stride;
    const int64_t *lim;
    int hd;
    float scale;
    float *s;
    float *out; int64_t o_stride;
} kn_attn_blk;
void kn_attn_blk_scalar(const kn_attn_blk *b);
void kn_attn_blk_avx2(const kn_attn_blk *b);
/* Keys any of the block's queries sees (the largest lim). */
static inline int64_t kn_attn_blk_nk(const kn_attn_blk *b) {
    int64_t nk = 0;
    for (int i = 0; i < b->nq; i++) nk = b->lim[i] > nk ? b->lim[i] : nk;
    return nk;
}
/* The x86 block kernels' middle step: each query's scores [0, lim) -> softmax, then zeros to nk. */
void kn_attn_blk_softmax_avx2(const kn_attn_blk *b, int64_t nk);
void kn_attn_blk_avx512(const kn_attn_blk *b); /* the AVX2 kernel's bits, 512-bit wide */
/* K^T as the block kernels read it: keys [0, n) of k (row stride k_stride, hd dims) -> kt
 * [hd][ldkt], zeros from n to the next multiple of 16 (<= ldkt). */
void kn_attn_pack_kt_avx512(const float *k, int64_t k_stride, int hd, int64_t n, int64_t ldkt, float *kt);

void kn_act_scalar(kn_act act, const float *x, float *y, int64_t n);
void kn_layernorm_row_scalar(const float *x, float *y, const float *w, const float *b, int64_t n, float eps);
void kn_rmsnorm_row_scalar(const float *x, float *y, const float *w, int64_t n, float eps);
void kn_softmax_row_scalar(const float *x, float *y, int64_t n);
float kn_dot_scalar(const float *a, const float *b, int64_t n);
void kn_axpy_scalar(float *y, float a, const float *x, int64_t n);
void kn_layernorm_ch_scalar(const float *x, float *y, const float *w, const float *b, int64_t C,
                            int64_t HW, int64_t p0, int64_t p1, float eps);

void kn_act_avx2(kn_act act, const float *x, float *y, int64_t n);
void kn_layernorm_row_avx2(const float *x, float *y, const float *w, const float *b, int64_t n, float eps);
void kn_rmsnorm_row_avx2(const float *x, float *y, const float *w, int64_t n, float eps);
void kn_softmax_row_avx2(const float *x, float *y, int64_t n);
float kn_dot_avx2(const float *a, const float *b, int64_t n);
void kn_axpy_avx2(float *y, float a, const float *x, int64_t n); /* y += a·x */
void kn_layernorm_ch_avx2(const float *x, float *y, const float *w, const float *b, int64_t C,
                          int64_t HW, int64_t p0, int64_t p1, float eps);

void kn_act_neon(kn_act act, const float *x, float *y, int64_t n);
void kn_layernorm_row_neon(const float *x, float *y, const float *w, const float *b, int64_t n, float eps);
void kn_rmsnorm_row_neon(const float *x, float *y, const float *w, int64_t n, float eps);
void kn_softmax_row_neon(const float *x, float *y, int64_t n);
float kn_dot_neon(const float *a, const float *b, int64_t n);
void kn_axpy_neon(float *y, float a, const float *x, int64_t n);
void kn_layernorm_ch_neon(const float *x, float *y, const float *w, const float *b, int64_t C,
                          int64_t HW, int64_t p0, int64_t p1, float eps);

#endif
