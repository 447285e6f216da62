/* ops.h — the model-level operations the architectures are written in. Thin wrappers that
 * bind model layouts (NCHW feature maps, [tokens, features] sequences, PyTorch weight
 * layouts) to the kernels in src/kernels. No allocation: callers pass buffers. */
#ifndef GL_OPS_H
#define GL_OPS_H

#include "kernels/gemm.h"
#include "kernels/qgemm.h"

/* A convolution as used at inference: weights folded to f32 [cout, cin/groups, k, k]. */
typedef struct op_conv {
    float *w;       /* [cout, cin/groups, k, k] */
    float *b;       /* [cout] (always present after folding) */
    int cin, cout, k, stride, groups;
    kn_act act;
    /* A 1x1, stride 1, groups 1 conv may instead carry quantized weights [cout, cin] (Q8_0 or
     * Q4_0, cin % 32 == 0): then w is NULL and op_conv2d runs op_pointwise_q. */
    const void *wq;
    gl_dtype wqt;
    kn_qpacked wqp; /* wq packed for the int8 conv GEMM (mci_pack_quant), or p == NULL */
} op_conv;

static inline int op_conv_out(int n, int k, int stride) { return (n + 2 * (k / 2) - k) / stride + 1; }

/* Workspaces of all ops come from env->scratch (see kernels.h). */

/* y[cout, Ho, Wo] = act(conv(x[cin, H, W]) + b), padding k/2. */
int op_conv2d(const kn_env *env, const op_conv *c, const float *x, int H, int W, float *y);

/* y[M, N] (+)= act(W[M, K] · x[K, N] + b[M]): 1x1 conv over a [K, N=H*W] map; W pre-packed
 * (wl_pack_a). */
void op_pointwise(const kn_env *env, const kn_packed_a *w, const float *b, const float *x, int N, float *y,
                  kn_act act, int accumulate);
/* The same on N columns of wider maps: x rows ldx apart, y rows ldy apart. */
void op_pointwise_ld(const kn_env *env, const kn_packed_a *w, const float *b, const float *x, int64_t ldx, int N,
                     float *y, int64_t ldy, kn_act act, int accumulate);
/* The same with W [M, K] as stored, unpacked: F32, or Q8_0 / Q4_0 (K % 32 == 0: the int8
 * product of kernels/qgemm.h, or f32 after dequantizing for wide maps). */
void op_pointwise_t(const kn_env *env, const void *w, gl_dtype wt, const float *b, int M, int K, const float *x,
                    int N, float *y, kn_act act, int accumulate);
/* The same with quantized w also packed as wq (kn_qpack_avx512vnni, channel-major), or NULL. */
void op_pointwise_tq(const kn_env *env, const void *w, gl_dtype wt, const kn_qpacked *wq, const float *b, int M, int K,
                     const float *x, int N, float *y, kn_act act, int accumulate);
/* ... on N columns (pixels) of maps with row strides ldx and ldy (a band of a larger map). */
void op_pointwise_tq_ld(const kn_env *env, const void *w, gl_dtype wt, const kn_qpacked *wq, const float *b, int M,
                        int K, const float *x, int64_t ldx, int N, float *y, int64_t ldy, kn_act act, int accumulate,
                        int int8_next);
/* Scratch bytes op_pointwise_tq_ld takes from env for these sizes (0: none or allocated). */
size_t op_pointwise_tq_ws(const kn_env *env, gl_dtype wt, int M, int K, int N);
/* y[T, out] (+)= act(x[T, in] · W[out, in]^T + b): a Linear layer; W may be F32/F16/BF16/Q8_0/Q4_0. */
void op_linear(const kn_env *env, const float *x, int T, int in, const void *w, gl_dtype wt, const float *b,
               int out, float *y, kn_act act, int accumulate);

/* op_linear with W pre-packed (wl_pack_b). */
void op_linear_p(const kn_env *env, const float *x, int T, const kn_packed_b *w, const float *b, float *y, kn_act act,
                 int accumulate);
/* op_linear with quantized weights w [out, in] (type wt) also packed as wq for the int8 kernels
 * (used where they apply: AVX512-VNNI, T >= KN_Q_DEQUANT_M rows; wq NULL or unpacked: as op_linear). */
void op_linear_q(const kn_env *env, const float *x, int T, int in, const void *w, gl_dtype wt, const kn_qpacked *wq,
                 const float *b, int out, float *y, kn_act act, int accumulate);

/* One Linear layer of op_linear_multi: y[T, out] (+)= act(x · W^T + b). */
typedef struct op_lin {
    const void *w; gl_dtype wt; const float *b;
    int out; float *y; kn_act act; int accumulate;
} op_lin;
/* Several Linear layers over the same x[T, in] (q/k/v, gate/up): one pool job for all of them
 * when T is small (decode), else op_linear each. */
void op_linear_multi(const kn_env *env, const float *x, int T, int in, const op_lin *l, int n);

/* y[T, N] = x[T, K] · w[K, N] (w row-major, right-multiplied: CLIP's text_projection). */
void op_matmul(const kn_env *env, const float *x, int T, int K, const float *w, int N, float *y);

/* Depthwise convolution along the rows of a token sequence (a 1 x T image with C channels, as
 * MCt's text RepMixer sees it): y[t, c] = b[c] + sum_j w[j, c] x[t + j - k/2, c], zero padding.
 * w is [k, C] (tap-major, so the inner loop runs over contiguous channels). y must not alias x. */
void op_dwconv_seq(const kn_env *env, const float *x, int T, int C, const float *w, int k, const float *b, float *y);
void op_gelu(const kn_env *env, float *x, size_t n);
/* Squeeze-excite: x[C, HW] *= sigmoid(W2 relu(W1 mean(x) + b1) + b2). tmp: C + R floats. */
void op_se(const kn_env *env, float *x, int C, int HW, const float *w1, const float *b1, int R, const float *w2,
           const float *b2, float *tmp);
/* out[C] = mean over HW of x[C, HW]. */
void op_mean_hw(const kn_env *env, const float *x, int C, int HW, float *out);
/* y[N, C] = x[C, N]^T (and back with the sizes swapped). */
void op_transpose(const kn_env *env, const float *x, int rows, int cols, float *y);
/* Row LayerNorm: y[r, :] = (x - mean) / sqrt(var + eps) * w + b over n features. */
void op_layernorm(const kn_env *env, const float *x, int rows, int n, const float *w, const float *b, float eps,
                  float *y);
/* Multi-head attention over a fused qkv[T, 3*nh*hd] (q | k | v, heads contiguous within each):
 * out[T, nh*hd] = softmax(q k^T * scale (+ causal mask)) v. */
int op_attention(const kn_env *env, const float *qkv, int T, int n_head, int head_dim, int causal, float *out);
/* Causal attention of n new queries q[n, nh*hd] at positions pos..pos+n-1 against a KV cache
 * k/v [pos+n, nkv*hd] (grouped-query: query head h reads kv head h / (nh/nkv)).
 * out[n, nh*hd]. */
int op_attention_kv(const kn_env *env, const float *q, int n, const float *k, const float *v, int pos, int nh,
                    int nkv, int hd, float *out);
/* The same with the cache's keys also kept transposed (kt, kt_ld: see kn_attn_args.kt). */
int op_attention_kvt(const kn_env *env, const float *q, int n, const float *k, const float *kt, int64_t kt_ld,
                     const float *v, int pos, int nh, int nkv, int hd, float *out);
/* x *= y (n floats). */
void op_mul(const kn_env *env, float *x, const float *y, size_t n);
/* x += y (n floats). */
void op_add(const kn_env *env, float *x, const float *y, size_t n);
void op_l2_normalize(float *x, int n);

#endif
