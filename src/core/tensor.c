#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "fp16.h"
#include "quant.h"

static const struct { const char *name; size_t size; int block; } g_types[GL_DTYPE_COUNT] = {
    [GL_F32] = {"F32", 4, 1},   [GL_F16] = {"F16", 2, 1},  [GL_BF16] = {"BF16", 2, 1},
    [GL_I64] = {"I64", 8, 1},   [GL_I32] = {"I32", 4, 1},  [GL_I16] = {"I16", 2, 1},
    [GL_I8] = {"I8", 1, 1},     [GL_U8] = {"U8", 1, 1},    [GL_F64] = {"F64", 8, 1},
    [GL_BOOL] = {"BOOL", 1, 1}, [GL_Q8_0] = {"Q8_0", 34, 32}, [GL_Q4_0] = {"Q4_0", 18, 32},
};

size_t gl_dtype_size(gl_dtype t) { return (unsigned)t < GL_DTYPE_COUNT ? g_types[t].size : 0; }
int gl_dtype_block(gl_dtype t) { return (unsigned)t < GL_DTYPE_COUNT ? g_types[t].block : 0; }
const char *gl_dtype_name(gl_dtype t) { return (unsigned)t < GL_DTYPE_COUNT ? g_types[t].name : "?"; }

bool gl_dtype_nbytes(gl_dtype t, uint64_t n, size_t *out) {
    if ((unsigned)t >= GL_DTYPE_COUNT) return false;
    uint64_t b = (uint64_t)g_types[t].block;
    if (n % b) return false;
    return gl_mul_ok((size_t)(n / b), g_types[t].size, out) && n / b <= SIZE_MAX;
}

int64_t gl_tensor_numel(const gl_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "cpu.h"
/* F16 -> F32 with F16C, 8 at a time (checkpoints converted at load: ~10x the bit-twiddling). */
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint8_t *p, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = gl_f16_to_f32(h); }
}
static int have_f16c(void) {
    gl_cpu c = gl_cpu_detect(); /* cpuid: cheap next to converting a tensor */
    return gl_cpu_has_avx2(&c);
}
#endif

int gl_tensor_to_f32(const gl_tensor *t, float *dst, gl_err *err) {
    int64_t n = gl_tensor_numel(t);
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case GL_F32: memcpy(dst, p, (size_t)n * 4); return 0;
    case GL_F16:
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        if (have_f16c()) {
            f16_to_f32_f16c(p, dst, n);
            return 0;
        }
#endif
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = gl_f16_to_f32(h); }
        return 0;
    case GL_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = gl_bf16_to_f32(h); }
        return 0;
    case GL_F64:
        for (int64_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; }
        return 0;
    case GL_I64:
        for (int64_t i = 0; i < n; i++) { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
        return 0;
    case GL_I32:
        for (int64_t i = 0; i < n; i++) { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; }
        return 0;
    case GL_Q8_0:
    case GL_Q4_0:
        if (n % GL_QK) break;
        gl_dequantize_row(t->dtype, p, dst, n); /* 2-byte aligned blocks: read as structs */
        return 0;
    default:
        break;
    }
    return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: cannot convert %s to F32", t->name ? t->name : "tensor",
                      gl_dtype_name(t->dtype));
}

int gl_tensor_rows_to_f32(const gl_tensor *t, const int32_t *rows, int n, float *dst, gl_err *err) {
    int64_t C = t->ndim == 2 ? t->shape[1] : 0;
    if (C <= 0) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "%s: rows of a 2-D tensor only", t->name ? t->name : "tensor");
    size_t rb = (size_t)(C / gl_dtype_block(t->dtype)) * gl_dtype_size(t->dtype);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* one cpuid per call, not per row: in a VM cpuid exits to the hypervisor (~20 us each, 6% of
     * a q8_0 text forward measured when every token's row asked) */
    if (t->dtype == GL_F16 && have_f16c()) {
        for (int i = 0; i < n; i++) f16_to_f32_f16c((const uint8_t *)t->data + (size_t)rows[i] * rb, dst + (size_t)i * C, C);
        return 0;
    }
#endif
    for (int i = 0; i < n; i++) {
        gl_tensor r = {.dtype = t->dtype, .ndim = 1, .shape = {C}, .name = t->name,
                       .data = (const uint8_t *)t->data + (size_t)rows[i] * rb};
        if (gl_tensor_to_f32(&r, dst + (size_t)i * C, err)) return err->code;
    }
    return 0;
}

const char *gl_tensor_shape_str(const gl_tensor *t, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - GL_MIN(off, n), "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}
