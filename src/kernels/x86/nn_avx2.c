/* nn_avx2.c — AVX2 row kernels of nn.h: activations, norms, softmax, dot/axpy for attention,
 * channel LayerNorm. Tails use masked loads/stores so every n works. */
#include "kernels/nn.h"
#include "nn_math_avx2.h"

void kn_act_avx2(kn_act act, const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, kn8_act(act, _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = kn8_tailmask(n - i);
        _mm256_maskstore_ps(y + i, m, kn8_act(act, _mm256_maskload_ps(x + i, m)));
    }
}

/* Sum of x in 4 accumulators (fixed order, so the result is deterministic). */
static float vsum(const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    if (i < n) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + i, kn8_tailmask(n - i)));
    return kn8_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* Σ (x - m)² ; m = 0 gives Σ x² */
static float vsumsq(const float *x, int64_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vm);
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vm);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        a1 = _mm256_fmadd_ps(d1, d1, a1);
        a2 = _mm256_fmadd_ps(d2, d2, a2);
        a3 = _mm256_fmadd_ps(d3, d3, a3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        a0 = _mm256_fmadd_ps(d, d, a0);
    }
    if (i < n) {
        __m256i mk = kn8_tailmask(n - i);
        __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), vm), _mm256_castsi256_ps(mk));
        a1 = _mm256_fmadd_ps(d, d, a1);
    }
    return kn8_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

void kn_layernorm_row_avx2(const float *x, float *y, const float *w, const float *b, int64_t n,
                           float eps) {
    float mean = vsum(x, n) / (float)n;
    float var = vsumsq(x, n, mean) / (float)n;
    __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(1.0f / sqrtf(var + eps));
    int64_t i = 0;
    for (; i < n; i += 8) {
        __m256i mk = kn8_tailmask(GL_MIN(n - i, 8));
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), vm), vr);
        if (w) v = _mm256_mul_ps(v, _mm256_maskload_ps(w + i, mk));
        if (b) v = _mm256_add_ps(v, _mm256_maskload_ps(b + i, mk));
        _mm256_maskstore_ps(y + i, mk, v);
    }
}

void kn_rmsnorm_row_avx2(const float *x, float *y, const float *w, int64_t n, float eps) {
    __m256 vr = _mm256_set1_ps(1.0f / sqrtf(vsumsq(x, n, 0.0f) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i mk = kn8_tailmask(GL_MIN(n - i, 8));
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, mk), vr);
        if (w) v = _mm256_mul_ps(v, _mm256_maskload_ps(w + i, mk));
        _mm256_maskstore_ps(y + i, mk, v);
    }
}

void kn_softmax_row_avx2(const float *x, float *y, int64_t n) {
    __m256 vmx = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + i));
    float mx = kn8_hmax(vmx);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    __m256 vm = _mm256_set1_ps(mx), s0 = _mm256_setzero_ps(), s1 = s0;
    for (i = 0; i + 16 <= n; i += 16) {
        __m256 e0 = kn8_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        __m256 e1 = kn8_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        _mm256_storeu_ps(y + i, e0);
        _mm256_storeu_ps(y + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; i < n; i += 8) {
        __m256i mk = kn8_tailmask(GL_MIN(n - i, 8));
        __m256 e = _mm256_and_ps(kn8_exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), vm)), _mm256_castsi256_ps(mk));
        _mm256_maskstore_ps(y + i, mk, e);
        s0 = _mm256_add_ps(s0, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / kn8_hsum(_mm256_add_ps(s0, s1)));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
    if (i < n) {
        __m256i mk = kn8_tailmask(n - i);
        _mm256_maskstore_ps(y + i, mk, _mm256_mul_ps(_mm256_maskload_ps(y + i, mk), inv));
    }
}

float kn_dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    if (i < n) {
        __m256i mk = kn8_tailmask(n - i);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mk), _mm256_maskload_ps(b + i, mk), a1);
    }
    return kn8_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

void kn_axpy_avx2(float *y, float a, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i mk = kn8_tailmask(n - i);
        _mm256_maskstore_ps(y + i, mk, _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, mk), _mm256_maskload_ps(y + i, mk)));
    }
}

/* Channel LayerNorm for pixels [p0, p1) of one image x [C, HW]: 8 pixels per vector, two passes
 * over the channels (mean, then centred variance) and a third to write. */
void kn_layernorm_ch_avx2(const float *x, float *y, const float *w, const float *b, int64_t C,
                          int64_t HW, int64_t p0, int64_t p1, float eps) {
    const __m256 rc = _mm256_set1_ps(1.0f / (float)C), ve = _mm256_set1_ps(eps);
    for (int64_t p = p0; p < p1; p += 8) {
        __m256i mk = kn8_tailmask(GL_MIN(p1 - p, 8));
        __m256 s = _mm256_setzero_ps();
        for (int64_t c = 0; c < C; c++) s = _mm256_add_ps(s, _mm256_maskload_ps(x + c * HW + p, mk));
        __m256 m = _mm256_mul_ps(s, rc), v = _mm256_setzero_ps();
        for (int64_t c = 0; c < C; c++) {
            __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + c * HW + p, mk), m);
            v = _mm256_fmadd_ps(d, d, v);
        }
        __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(_mm256_fmadd_ps(v, rc, ve)));
        for (int64_t c = 0; c < C; c++) {
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + c * HW + p, mk), m), r);
            if (w) d = _mm256_mul_ps(d, _mm256_set1_ps(w[c]));
            if (b) d = _mm256_add_ps(d, _mm256_set1_ps(b[c]));
            _mm256_maskstore_ps(y + c * HW + p, mk, d);
        }
    }
}
