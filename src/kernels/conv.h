/* conv.h — 2-D convolutions and pools over NCHW f32 activations.
 *
 *   y[n, o, oy, ox] = act( bias[o] + Σ_{i,ky,kx} w[o, i, ky, kx] · x[n, g·Cg + i, oy·s + ky − pad_h, ox·s + kx − pad_w] )
 *                     + residual[n, o, oy, ox]          (residual optional, added after act)
 *
 * with g = o / (C_out/groups), Cg = C_in/groups, zero padding, dilation 1. Weights are laid out
 * as PyTorch stores them: [C_out, C_in/groups, kh, kw], f32 (folded at load). Output size:
 * Ho = (H + 2·pad_h − kh)/stride + 1, Wo likewise.
 *
 * kn_conv2d picks the path from the shape:
 *  - groups == C_in and C_out == m·C_in (depthwise, m = 1; "channel multiplier" m = 2 in
 *    FastViT's ReparamLargeKernelConv and conv_exp): a direct kernel vectorised along W that
 *    stages padded input strips in the workspace (bias, act and residual fused);
 *  - 1×1, stride 1, no padding: one GEMM per image and group (x is already the B matrix);
 *  - anything else: im2col into the workspace in column chunks, then GEMM per chunk.
 * Threads: the depthwise path splits (image, channel, row strip) tasks over env->pool; the GEMM
 * paths use kn_gemm's threading. Results do not depend on the thread count.
 * y must not overlap x or w. residual may be y itself (in-place "y += conv(x)"), except for a
 * non-depthwise conv with an activation, which returns GLIMPSE_ERR_INVALID_ARG then. */
#ifndef KN_CONV_H
#define KN_CONV_H

#include "gemm.h"
#include "kernels.h"

typedef struct kn_conv2d_args {
    int64_t N, C_in, H, W;   /* input  [N, C_in, H, W] */
    int64_t C_out;           /* output [N, C_out, Ho, Wo] */
    int kh, kw, stride, pad_h, pad_w, groups;
    const float *x;
    const float *w;          /* [C_out, C_in/groups, kh, kw] */
    const float *bias;       /* [C_out] or NULL */
    const float *residual;   /* [N, C_out, Ho, Wo] or NULL; may equal y */
    float *y;
    kn_act act;
} kn_conv2d_args;

/* Ho, Wo for the args; false when the shape is invalid (non-positive sizes, C not divisible by
 * groups, kernel larger than the padded input, stride < 1, pad < 0 or pad >= k). */
bool kn_conv2d_shape(const kn_conv2d_args *a, int64_t *Ho, int64_t *Wo);

/* Workspace bytes kn_conv2d needs for these args with env's thread count (0 = none): staged
 * rows (depthwise), or im2col columns plus kn_gemm's packing scratch (GEMM paths). Returns
 * SIZE_MAX for invalid args or on overflow. */
size_t kn_conv2d_ws_size(const kn_env *env, const kn_conv2d_args *a);

/* Runs the convolution. ws: at least kn_conv2d_ws_size bytes, 32-byte aligned is best (may be
 * NULL when the size is 0). Returns GLIMPSE_OK, or GLIMPSE_ERR_INVALID_ARG for a bad shape or
 * a too-small workspace (nothing is written then). */
int kn_conv2d(const kn_env *env, const kn_conv2d_args *a, void *ws, size_t ws_bytes);

/* The plain definition above as a direct 7-deep loop (single-threaded, no workspace): the spec
 * the fast paths are tested against. Same validation and return codes. */
int kn_conv2d_ref(const kn_conv2d_args *a);

/* BatchNorm folding for a conv (or linear) followed by BN in inference mode:
 *   t_o = gamma_o / sqrt(var_o + eps);  w'[o, :] = t_o · w[o, :];  b'_o = beta_o + (b_o − mean_o) · t_o
 * w: [C_out, per_out] (in place), bias_in: [C_out] or NULL (treated as 0), bias_out: [C_out]
 * (may equal bias_in). gamma may be NULL (1) and beta NULL (0). Computed in double. */
void kn_fold_bn(float *w, const float *bias_in, float *bias_out, int64_t C_out, int64_t per_out,
                const float *gamma, const float *beta, const float *mean, const float *var,
                double eps);

/* Global average pool: y[n, c] = mean over H·W of x[n, c]. x [N, C, HW], y [N, C]. */
void kn_global_avgpool(const kn_env *env, const float *x, float *y, int64_t N, int64_t C,
                       int64_t HW);
/* k×k pools with stride s and zero padding p over [N·C, H, W] planes (max pool pads with -inf,
 * average pool counts padded zeros, i.e. PyTorch's count_include_pad=True). Ho/Wo as for conv. */
void kn_maxpool2d(const kn_env *env, const float *x, float *y, int64_t NC, int64_t H, int64_t W,
                  int k, int s, int p);
void kn_avgpool2d(const kn_env *env, const float *x, float *y, int64_t NC, int64_t H, int64_t W,
                  int k, int s, int p);

/* ---- internals shared by conv.c and the ISA files ---------------------------------------- */

/* Up to KN_DW_R output rows of one depthwise channel from staged (zero-padded, phase-split)
 * input rows. Output row r (< nr), tap (ky, kx) reads
 *     base + (r·s + ky)·rowlen + col_off[kx] + i,   i in [0, n)
 * and y[r][i] = act(bias + Σ w[ky·kw + kx] · that) + (res[r] ? res[r][i] : 0). Every staged row is
 * readable to n rounded up to 8 (zero slack). Sharing each loaded input vector among the rows
 * that use it is what makes the SIMD versions fast (loads, not FMAs, are the limit). */
#define KN_DW_R 3
typedef struct kn_dw_rows {
    float *y[KN_DW_R];
    const float *res[KN_DW_R];
    int nr;
    int64_t n;
    const float *base;
    int64_t rowlen;
    const int64_t *col_off; /* [kw] */
    const float *w;         /* [kh·kw] */
    int kh, kw, s;
    float bias;
    kn_act act;
} kn_dw_rows;
typedef void (*kn_dwrows_fn)(const kn_dw_rows *r);
void kn_dwrows_scalar(const kn_dw_rows *r);
void kn_dwrows_avx2(const kn_dw_rows *r);
void kn_dwrows_avx512(const kn_dw_rows *r);

/* Stride 1, k×k (k = 3 or 7): nr consecutive output rows of one depthwise channel, y row r at
 * y + r·n, residual likewise (or NULL); output row r, tap (ky, kx) reads
 * base + (r + ky)·rowlen + kx + i, i in [0, n). Same result definition as kn_dw_rows.
 * kn_dwplane_avx512 returns false (and does nothing) for other k. */
typedef struct kn_dw_plane {
    float *y;
    const float *res;
    int nr;
    int64_t n;
    const float *base;
    int64_t rowlen;
    const float *w;
    int k;
    float bias;
    kn_act act;
} kn_dw_plane;
bool kn_dwplane_avx512(const kn_dw_plane *d);
void kn_dwrows_neon(const kn_dw_rows *r);

/* Dense convs with few taps (C_in·kh·kw <= KN_CONV_TAPS_MAX: the stems' 3×3 stride-2 conv on
 * RGB), one output row of every output channel per call: lanes over 16 output pixels, blocks
 * of 16 output channels (16 accumulators, each tap's 16 weights broadcast). tap[t] is tap t's
 * staged input for output pixel 0 (stride phases and zero padding done by the caller), readable
 * for Wo values; acc = bias, then taps in (i, ky, kx) order. Replaces im2col + GEMM there, whose
 * K = 27 left the GEMM mostly packing and tile overhead (10% of the int8 S0 image tower). */
#define KN_CONV_TAPS_MAX 64
typedef struct kn_conv_row {
    const float *tap[KN_CONV_TAPS_MAX];
    int ntaps;
    const float *wt;     /* [ntaps][C_out] */
    const float *bias;   /* [C_out] or NULL */
    int64_t C_out, Wo;   /* C_out % 16 == 0 */
    int64_t plane;       /* floats from one output channel to the next in y */
    float *y;            /* output channel 0 of this row */
    kn_act act;
} kn_conv_row;
void kn_conv_row_avx512(const kn_conv_row *r);

#endif
