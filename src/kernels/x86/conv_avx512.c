/* conv_avx512.c — depthwise conv kernel, AVX-512: up to 3 output rows × 64 output pixels per
 * block (conv_avx2.c's design at twice the width; only called behind kn_use_avx512).
 *
 * Input rows outermost: each loaded input vector feeds every one of the block's rows that uses
 * it (loads, not FMAs, limit a depthwise conv). A block of NV vectors per row keeps 3·NV
 * accumulators; with one vector per row (the 16- and 8-pixel-wide maps of MCi's last stages)
 * three chains would leave the FMA pipes waiting on latency, so each row then sums its even and
 * odd taps separately (6 chains) and adds the two at the end. conv.c stages zero padding, so
 * there are no edge branches; a partial last vector reads and writes through masks. */
#include <immintrin.h>

#include "kernels/conv.h"
#include "nn_math_avx2.h"
#include "nn_math_avx512.h"

static inline __attribute__((always_inline)) __m512 act16(kn_act act, __m512 v) {
    if (act == KN_ACT_NONE) return v;
    if (act == KN_ACT_GELU) return gelu16(v); /* the GEMM epilogue's erfc form, 16 lanes */
    __m256 lo = kn8_act(act, _mm512_castps512_ps256(v));
    __m256 hi = kn8_act(act, _mm512_extractf32x8_ps(v, 1));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

static inline __attribute__((always_inline)) void put(float *y, const float *res, __m512 v, kn_act act, __mmask16 m) {
    v = act16(act, v);
    if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res));
    _mm512_mask_storeu_ps(y, m, v);
}

/* first and last of the block's rows (< nr) that input row iy serves */
static inline void row_range(int iy, int kh, int s, int nr, int *lo, int *hi) {
    int l = iy - kh + 1 <= 0 ? 0 : (iy - kh + s) / s;
    int h = iy / s;
    *lo = l;
    *hi = h < nr - 1 ? h : nr - 1;
}

/* NV (1, 2 or 4) vectors of each row from column i; m masks the last vector (all ones unless
 * the row ends inside it). Named accumulators: an array indexed by a run-time row would live in
 * memory. */
static inline __attribute__((always_inline)) void block_nv(const kn_dw_rows *d, int64_t i, const int NV, __mmask16 m) {
    const int kh = d->kh, kw = d->kw, s = d->s, nr = d->nr;
    const int64_t *off = d->col_off;
    const __m512 b = _mm512_set1_ps(d->bias), z = _mm512_setzero_ps();
    /* aRV: row R, vector V; with NV == 1, aR1 sums the odd taps */
    __m512 a00 = b, a01 = NV == 1 ? z : b, a02 = b, a03 = b;
    __m512 a10 = b, a11 = NV == 1 ? z : b, a12 = b, a13 = b;
    __m512 a20 = b, a21 = NV == 1 ? z : b, a22 = b, a23 = b;
    const __mmask16 ml = NV == 1 ? m : (__mmask16)0xffff; /* mask of the first vector's loads */
    const int span = (nr - 1) * s + kh;
    for (int iy = 0; iy < span; iy++) {
        int lo, hi;
        row_range(iy, kh, s, nr, &lo, &hi);
        const int f0 = lo <= 0 && 0 <= hi, f1 = lo <= 1 && 1 <= hi, f2 = lo <= 2 && 2 <= hi;
        const float *row = d->base + iy * d->rowlen + i;
        const float *w0 = d->w + iy * kw, *w1 = w0 - s * kw, *w2 = w1 - s * kw;
#define TAP(kx, A0, A1, A2)                                                                       \
    {                                                                                             \
        const float *p = row + off[kx];                                                           \
        __m512 x0 = _mm512_maskz_loadu_ps(ml, p), x1 = z, x2 = z, x3 = z;                         \
        if (NV > 1) x1 = NV == 2 ? _mm512_maskz_loadu_ps(m, p + 16) : _mm512_loadu_ps(p + 16);   \
        if (NV > 2) x2 = _mm512_loadu_ps(p + 32), x3 = _mm512_maskz_loadu_ps(m, p + 48);          \
        if (f0) {                                                                                 \
            __m512 w = _mm512_set1_ps(w0[kx]);                                                    \
            A0##0 = _mm512_fmadd_ps(w, x0, A0##0);                                                \
            if (NV > 1) a01 = _mm512_fmadd_ps(w, x1, a01);                                        \
            if (NV > 2) a02 = _mm512_fmadd_ps(w, x2, a02), a03 = _mm512_fmadd_ps(w, x3, a03);     \
        }                                                                                         \
        if (f1) {                                                                                 \
            __m512 w = _mm512_set1_ps(w1[kx]);                                                    \
            A1##0 = _mm512_fmadd_ps(w, x0, A1##0);                                                \
            if (NV > 1) a11 = _mm512_fmadd_ps(w, x1, a11);                                        \
            if (NV > 2) a12 = _mm512_fmadd_ps(w, x2, a12), a13 = _mm512_fmadd_ps(w, x3, a13);     \
        }                                                                                         \
        if (f2) {                                                                                 \
            __m512 w = _mm512_set1_ps(w2[kx]);                                                    \
            A2##0 = _mm512_fmadd_ps(w, x0, A2##0);                                                \
            if (NV > 1) a21 = _mm512_fmadd_ps(w, x1, a21);                                        \
            if (NV > 2) a22 = _mm512_fmadd_ps(w, x2, a22), a23 = _mm512_fmadd_ps(w, x3, a23);     \
        }                                                                                         \
    }
        int kx = 0;
        if (NV == 1) {
            /* even taps into aR0, odd taps into aR1 */
            for (; kx + 2 <= kw; kx += 2) {
                TAP(kx, a0, a1, a2)
                {
                    const float *p = row + off[kx + 1];
                    __m512 x0 = _mm512_maskz_loadu_ps(ml, p);
                    if (f0) a01 = _mm512_fmadd_ps(_mm512_set1_ps(w0[kx + 1]), x0, a01);
                    if (f1) a11 = _mm512_fmadd_ps(_mm512_set1_ps(w1[kx + 1]), x0, a11);
                    if (f2) a21 = _mm512_fmadd_ps(_mm512_set1_ps(w2[kx + 1]), x0, a21);
                }
            }
        }
        for (; kx < kw; kx++) TAP(kx, a0, a1, a2)
#undef TAP
    }
    if (NV == 1) {
        a00 = _mm512_add_ps(a00, a01);
        a10 = _mm512_add_ps(a10, a11);
        a20 = _mm512_add_ps(a20, a21);
    }
    const kn_act act = d->act;
#define PUT_ROW(r)                                                                                 \
    {                                                                                              \
        float *y = d->y[r] + i;                                                                    \
        const float *res = d->res[r] ? d->res[r] + i : NULL;                                       \
        put(y, res, a##r##0, act, ml);                                                             \
        if (NV > 1) put(y + 16, res ? res + 16 : NULL, a##r##1, act, NV == 2 ? m : 0xffff);        \
        if (NV > 2) {                                                                              \
            put(y + 32, res ? res + 32 : NULL, a##r##2, act, 0xffff);                              \
            put(y + 48, res ? res + 48 : NULL, a##r##3, act, m);                                   \
        }                                                                                          \
    }
    PUT_ROW(0)
    if (nr > 1) PUT_ROW(1)
    if (nr > 2) PUT_ROW(2)
#undef PUT_ROW
}

static void block64(const kn_dw_rows *d, int64_t i) { block_nv(d, i, 4, 0xffff); }
static void block32(const kn_dw_rows *d, int64_t i, __mmask16 m) { block_nv(d, i, 2, m); }
static void block16(const kn_dw_rows *d, int64_t i, __mmask16 m) { block_nv(d, i, 1, m); }

void kn_dwrows_avx512(const kn_dw_rows *d) {
    int64_t i = 0, n = d->n;
    for (; i + 64 <= n; i += 64) block64(d, i);
    /* the rest: 32 (last vector possibly partial) while more than 16 are left, then 16 */
    for (; n - i > 16; i += 32) {
        int64_t left = n - i - 16;
        block32(d, i, left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1));
    }
    for (; i < n; i += 16) {
        int64_t left = n - i;
        block16(d, i, left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1));
    }
}

/* ---- stride 1, a whole strip of rows: kn_dwplane_avx512 ----------------------------------
 * R rows × NV vectors of accumulators (R·NV <= 16; R up to 8) with R, NV and the kernel size K
 * known at compile time, so every loop unrolls and each loaded input vector feeds all of the R
 * rows that use it from registers (the 3-row blocks above reload it for every 3 rows and test
 * at run time which rows it serves). S0, 1 thread: its 7×7 ConvFFN convs 3.2 -> 2.3 ms, the
 * 3×3 RepMixers 1.4 -> 0.8 ms. (R = 16 for 16-pixel rows spilled and was no faster.) Per
 * output, the taps are summed in block_nv's order (ky, then kx), starting from the bias. */
/* One function per (R, NV, K), the sizes literal, so the arrays are fixed-size and, with every
 * loop unrolled, live in registers. */
#define DEF_PLANE(R, NV, K)                                                                          \
    static void plane_##R##_##NV##_##K(const kn_dw_plane *d, float *y, const float *res, const float *base, \
                                       int64_t i, __mmask16 m) {                                     \
        __m512 acc[R][NV];                                                                           \
        const __m512 b = _mm512_set1_ps(d->bias);                                                    \
        const float *wt = d->w;                                                                      \
        const int64_t rowlen = d->rowlen;                                                            \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                         \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = b;                      \
        _Pragma("GCC unroll 32") for (int iy = 0; iy < R + K - 1; iy++) {                            \
            const float *row = base + iy * rowlen + i;                                               \
            _Pragma("GCC unroll 8") for (int kx = 0; kx < K; kx++) {                                 \
                __m512 x[NV];                                                                        \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) x[v] =                          \
                    v == NV - 1 ? _mm512_maskz_loadu_ps(m, row + kx + 16 * v) : _mm512_loadu_ps(row + kx + 16 * v); \
                _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                               \
                    const int ky = iy - r;                                                           \
                    if (ky < 0 || ky >= K) continue;                                                 \
                    const __m512 w = _mm512_set1_ps(wt[ky * K + kx]);                                \
                    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] =                 \
                        _mm512_fmadd_ps(w, x[v], acc[r][v]);                                         \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                         \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                   \
                __mmask16 mv = v == NV - 1 ? m : (__mmask16)0xffff;                                  \
                put(y + r * d->n + i + 16 * v, res ? res + r * d->n + i + 16 * v : NULL, acc[r][v], d->act, mv); \
            }                                                                                        \
    }
#define DEF_PLANES(K)                                                                                \
    DEF_PLANE(4, 4, K) DEF_PLANE(2, 4, K) DEF_PLANE(1, 4, K)                                         \
    DEF_PLANE(8, 2, K) DEF_PLANE(4, 2, K) DEF_PLANE(2, 2, K) DEF_PLANE(1, 2, K)                      \
    DEF_PLANE(8, 1, K) DEF_PLANE(4, 1, K) DEF_PLANE(2, 1, K) DEF_PLANE(1, 1, K)
DEF_PLANES(3)
DEF_PLANES(7)
#undef DEF_PLANES
#undef DEF_PLANE

/* rows [0, nr) of one column block of NV (4, 2, 1) vectors: groups of the largest R, then 4, 2, 1 */
#define PB(R, NV, K) plane_##R##_##NV##_##K(d, d->y + r0 * d->n, RES(r0), d->base + r0 * d->rowlen, i, m), r0 += R
#define GROUPS4(K)                                                                                   \
    {                                                                                                \
        int r0 = 0;                                                                                  \
        while (r0 + 4 <= nr) PB(4, 4, K);                                                            \
        if (nr - r0 >= 2) PB(2, 4, K);                                                               \
        if (nr - r0 >= 1) PB(1, 4, K);                                                               \
    }
#define GROUPS2(K)                                                                                   \
    {                                                                                                \
        int r0 = 0;                                                                                  \
        while (r0 + 8 <= nr) PB(8, 2, K);                                                            \
        if (nr - r0 >= 4) PB(4, 2, K);                                                               \
        if (nr - r0 >= 2) PB(2, 2, K);                                                               \
        if (nr - r0 >= 1) PB(1, 2, K);                                                               \
    }
#define GROUPS1(K)                                                                                   \
    {                                                                                                \
        int r0 = 0;                                                                                  \
        while (r0 + 8 <= nr) PB(8, 1, K);                                                            \
        if (nr - r0 >= 4) PB(4, 1, K);                                                               \
        if (nr - r0 >= 2) PB(2, 1, K);                                                               \
        if (nr - r0 >= 1) PB(1, 1, K);                                                               \
    }
#define RES(r0) (d->res ? d->res + (r0) * d->n : NULL)

#define PLANE_K(K)                                                                                   \
    static void plane##K(const kn_dw_plane *d) {                                                     \
        const int nr = d->nr;                                                                        \
        const int64_t n = d->n;                                                                      \
        int64_t i = 0;                                                                               \
        __mmask16 m = 0xffff;                                                                        \
        for (; i + 64 <= n; i += 64) GROUPS4(K)                                                      \
        if (n - i > 16) {                                                                            \
            int64_t left = n - i - 16;                                                               \
            m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);                      \
            GROUPS2(K)                                                                               \
            i += 32;                                                                                 \
        }                                                                                            \
        for (; i < n; i += 16) {                                                                     \
            int64_t left = n - i;                                                                    \
            m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);                      \
            GROUPS1(K)                                                                               \
        }                                                                                            \
    }
PLANE_K(3)
PLANE_K(7)
#undef PLANE_K
#undef PB
#undef RES
#undef GROUPS4
#undef GROUPS2
#undef GROUPS1

bool kn_dwplane_avx512(const kn_dw_plane *d) {
    if (d->k == 3) plane3(d);
    else if (d->k == 7) plane7(d);
    else return false;
    return true;
}

/* ---- dense convs with few taps (kn_conv_row) ---- */

void kn_conv_row_avx512(const kn_conv_row *r) {
    for (int64_t o0 = 0; o0 < r->C_out; o0 += 16) {
        const float *w = r->wt + o0;
        for (int64_t x0 = 0; x0 < r->Wo; x0 += 16) {
            const int64_t n = r->Wo - x0;
            const __mmask16 m = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
            __m512 acc[16];
#pragma GCC unroll 16
            for (int c = 0; c < 16; c++) acc[c] = _mm512_set1_ps(r->bias ? r->bias[o0 + c] : 0.0f);
            for (int t = 0; t < r->ntaps; t++) {
                const __m512 v = _mm512_maskz_loadu_ps(m, r->tap[t] + x0);
                const float *wt = w + (int64_t)t * r->C_out;
#pragma GCC unroll 16
                for (int c = 0; c < 16; c++) acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(wt[c]), v, acc[c]);
            }
#pragma GCC unroll 16
            for (int c = 0; c < 16; c++) put(r->y + (o0 + c) * r->plane + x0, NULL, acc[c], r->act, m);
        }
    }
}
