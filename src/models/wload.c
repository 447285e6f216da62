#include "wload.h"

#include "core/quant.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_BLOB ((size_t)2 << 20)

void *gl_blobs_alloc_raw(gl_blobs *b, size_t bytes) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        void **np = gl_realloc(b->p, nc * sizeof *np);
        if (!np) return NULL;
        b->p = np;
        b->cap = nc;
    }
    /* big blobs (repacked weights: hundreds of MB for a model) on 2 MB pages where the kernel
     * allows it: loading is otherwise dominated by one page fault per 4 KB */
    void *m = gl_aligned_alloc(bytes >= HUGE_BLOB ? HUGE_BLOB : 64, bytes ? bytes : 1);
    if (!m) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_BLOB) madvise(m, bytes / HUGE_BLOB * HUGE_BLOB, MADV_HUGEPAGE);
#endif
    b->p[b->n++] = m;
    b->bytes += bytes;
    return m;
}

void *gl_blobs_alloc(gl_blobs *b, size_t bytes) {
    void *m = gl_blobs_alloc_raw(b, bytes);
    if (m) memset(m, 0, bytes);
    return m;
}

void gl_blobs_free(gl_blobs *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) gl_aligned_free(b->p[i]);
    gl_free(b->p);
    memset(b, 0, sizeof *b);
}

static const gl_tensor *vfind(wl *l, const char *fmt, va_list ap, char *name, size_t n) {
    int k = snprintf(name, n, "%s", l->prefix);
    if (l->rename) {
        char in[256];
        vsnprintf(in, sizeof in, fmt, ap);
        l->rename(l, in, name + k, n - (size_t)k);
    } else {
        vsnprintf(name + k, n - (size_t)k, fmt, ap);
    }
    return gl_weights_find(l->w, name);
}

const gl_tensor *wl_find(wl *l, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    const gl_tensor *t = vfind(l, fmt, ap, name, sizeof name);
    va_end(ap);
    return t;
}

const gl_tensor *wl_need(wl *l, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    const gl_tensor *t = vfind(l, fmt, ap, name, sizeof name);
    va_end(ap);
    if (!t && l->err && !l->err->code)
        gl_err_set(l->err, GLIMPSE_ERR_MISSING, "%s: missing tensor '%s'", l->file ? l->file : "model", name);
    return t;
}

static float *load_f32(wl *l, const gl_tensor *t, int64_t expect, int tmp) {
    if (!t) return NULL;
    int64_t n = gl_tensor_numel(t);
    if (expect >= 0 && n != expect) {
        char s[96];
        gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' has shape %s (%lld elements), expected %lld elements",
                   l->file ? l->file : "model", t->name, gl_tensor_shape_str(t, s, sizeof s), (long long)n,
                   (long long)expect);
        return NULL;
    }
    float *d = tmp ? gl_malloc((size_t)GL_MAX(n, 1) * sizeof(float)) : gl_blobs_alloc_raw(l->blobs, (size_t)n * sizeof(float));
    if (!d) {
        gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory loading '%s'", t->name);
        return NULL;
    }
    if (gl_tensor_to_f32(t, d, l->err)) {
        if (tmp) gl_free(d);
        return NULL;
    }
    return d;
}

float *wl_f32(wl *l, const gl_tensor *t, int64_t expect) { return load_f32(l, t, expect, 0); }
float *wl_f32_tmp(wl *l, const gl_tensor *t, int64_t expect) { return load_f32(l, t, expect, 1); }

int wl_pack_a(wl *l, const float *w, int64_t M, int64_t K, kn_packed_a *out) {
    kn_env env = kn_env_native(NULL);
    float *d = gl_blobs_alloc_raw(l->blobs, kn_gemm_packed_a_floats(&env, M, K) * sizeof(float)); /* all written */
    if (!d) return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    kn_gemm_pack_a(&env, w, K, M, K, d, out);
    return 0;
}

int wl_load_bn(wl *l, const char *name, int c, double eps, wl_bn *bn) {
    memset(bn, 0, sizeof *bn);
    const gl_tensor *tm = wl_need(l, "%s.running_mean", name), *tv = wl_need(l, "%s.running_var", name);
    if (!tm || !tv) return l->err->code;
    const gl_tensor *tw = wl_find(l, "%s.weight", name), *tb = wl_find(l, "%s.bias", name);
    float *m = wl_f32(l, tm, c), *v = wl_f32(l, tv, c);
    float *w = tw ? wl_f32(l, tw, c) : NULL, *b = tb ? wl_f32(l, tb, c) : NULL;
    if (!m || !v || (tw && !w) || (tb && !b)) return l->err->code ? l->err->code : GLIMPSE_ERR_NOMEM;
    bn->scale = gl_malloc(sizeof(double) * (size_t)c);
    bn->shift = gl_malloc(sizeof(double) * (size_t)c);
    if (!bn->scale || !bn->shift) {
        wl_bn_free(bn);
        return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    }
    bn->c = c;
    for (int i = 0; i < c; i++) {
        if (!(v[i] >= 0)) return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: negative or NaN running_var in '%s'",
                                            l->file ? l->file : "model", name);
        double t = (w ? w[i] : 1.0) / sqrt((double)v[i] + eps);
        bn->scale[i] = t;
        bn->shift[i] = (b ? b[i] : 0.0) - m[i] * t;
    }
    return 0;
}

void wl_bn_free(wl_bn *bn) {
    gl_free(bn->scale);
    gl_free(bn->shift);
    bn->scale = bn->shift = NULL;
}

int wl_matrix(wl *l, const gl_tensor *t, int64_t rows, int64_t cols, wl_mat *out) {
    if (!t) return l->err->code ? l->err->code : GLIMPSE_ERR_MISSING;
    if (gl_tensor_numel(t) != rows * cols || t->ndim < 1 || t->shape[0] != rows) {
        char s[96];
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected [%lld, %lld]",
                          l->file ? l->file : "model", t->name, gl_tensor_shape_str(t, s, sizeof s), (long long)rows,
                          (long long)cols);
    }
    out->rows = rows;
    out->cols = cols;
    if (gl_dtype_is_quant(t->dtype)) {
        /* blocks run along the rows: each row must be whole blocks (2-byte aligned in the file) */
        if (cols % GL_QK || ((uintptr_t)t->data % 2))
            return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' is %s with rows of %lld (not whole blocks of %d)",
                              l->file ? l->file : "model", t->name, gl_dtype_name(t->dtype), (long long)cols, GL_QK);
        out->data = t->data;
        out->type = t->dtype;
        return 0;
    }
    size_t al = t->dtype == GL_F32 ? 4 : 2;
    if ((t->dtype == GL_F32 || t->dtype == GL_F16 || t->dtype == GL_BF16) && ((uintptr_t)t->data % al) == 0) {
        out->data = t->data;
        out->type = t->dtype;
        return 0;
    }
    float *d = wl_f32(l, t, rows * cols);
    if (!d) return l->err->code;
    out->data = d;
    out->type = GL_F32;
    return 0;
}

int wl_pack_b(wl *l, const float *w, int64_t N, int64_t K, kn_packed_b *out) {
    kn_env env = kn_env_native(NULL);
    kn_gemm_args a;
    memset(&a, 0, sizeof a);
    a.K = K, a.N = N, a.B = w, a.ldb = K, a.b_type = GL_F32, a.trans_b = 1;
    float *d = gl_blobs_alloc_raw(l->blobs, kn_gemm_packed_b_floats(&env, K, N) * sizeof(float)); /* all written */
    if (!d) return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    kn_gemm_pack_b(&env, &a, d, out);
    return 0;
}
