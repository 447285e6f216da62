/* wload.h — helpers for model loaders: tensor lookup by formatted name with shape checks, f32
 * copies owned by the model, and BatchNorm folding (done once at load, in double). */
#ifndef GL_WLOAD_H
#define GL_WLOAD_H

#include "io/weights.h"
#include "kernels/gemm.h"

/* Owned buffers of one model, freed together. */
typedef struct gl_blobs {
    void **p;
    size_t n, cap;
    size_t bytes;
} gl_blobs;

void *gl_blobs_alloc(gl_blobs *b, size_t bytes); /* zeroed; NULL on OOM */
void *gl_blobs_alloc_raw(gl_blobs *b, size_t bytes); /* the same, not zeroed: for blobs written whole */
void gl_blobs_free(gl_blobs *b);

typedef struct wl wl;
struct wl {
    const gl_weights *w;
    char prefix[64];  /* prepended to every name, e.g. "visual.trunk." */
    gl_blobs *blobs;
    gl_err *err;
    const char *file; /* for messages */
    /* Optional name translation (e.g. timm names -> Apple names), applied after the prefix is
     * stripped: writes the stored name of `in` into out. */
    void (*rename)(const struct wl *l, const char *in, char *out, size_t n);
    const void *rename_ctx;
};

/* Finds prefix+name; NULL when absent (no error). */
const gl_tensor *wl_find(wl *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Finds prefix+name or sets a MISSING error naming the tensor. */
const gl_tensor *wl_need(wl *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* f32 copy of t owned by the model; checks numel == expect (if expect >= 0). */
float *wl_f32(wl *l, const gl_tensor *t, int64_t expect);
/* The same as a temporary the caller frees with gl_free (weights that are repacked at load). */
float *wl_f32_tmp(wl *l, const gl_tensor *t, int64_t expect);
/* W [M, K] (row-major) packed into the model's blobs as kn_gemm's pre-packed A for the native
 * ISA (1x1 conv weights: op_pointwise). 0 or an error code. */
int wl_pack_a(wl *l, const float *w, int64_t M, int64_t K, kn_packed_a *out);

/* BatchNorm in eval mode: y = x * scale + shift. Reads <name>.weight/.bias/.running_mean/
 * .running_var (weight/bias optional: affine=False). */
typedef struct wl_bn { double *scale, *shift; int c; } wl_bn;
int wl_load_bn(wl *l, const char *name, int c, double eps, wl_bn *bn);
void wl_bn_free(wl_bn *bn);



/* A matrix used as stored (F32/F16/BF16, or Q8_0/Q4_0 with rows of whole blocks), zero-copy from the mapping when its alignment allows,
 * else copied once into model memory. Checks the shape [rows, cols]. */
typedef struct wl_mat { const void *data; gl_dtype type; int64_t rows, cols; } wl_mat;
int wl_matrix(wl *l, const gl_tensor *t, int64_t rows, int64_t cols, wl_mat *out);
/* A Linear weight W [N, K] packed into the model's blobs as kn_gemm's pre-packed B for x·W^T on
 * the native ISA (op_linear_p). For weights the model holds a folded f32 copy of anyway: packing
 * mmapped checkpoint weights would cost fresh memory and load time. 0 or an error code. */
int wl_pack_b(wl *l, const float *w, int64_t N, int64_t K, kn_packed_b *out);
#endif
