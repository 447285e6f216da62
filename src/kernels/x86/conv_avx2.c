/* conv_avx2.c — depthwise conv kernel: up to 3 output rows × 32 output pixels per block.
 *
 * A one-row kernel needs a load for every FMA (plus a weight broadcast per tap), and loads, not
 * FMAs, were the limit (~20% of peak measured). Here each loaded input vector feeds the up to 3
 * output rows that use it, so a block does 12 FMAs per 4 loads + 3 broadcasts. 12 accumulators +
 * 3 weights + 1 input = all 16 ymm registers. conv.c stages zero padding, so there are no edge
 * branches: only which of the 3 rows an input row serves (a contiguous range) varies. */
#include "kernels/conv.h"
#include "nn_math_avx2.h"

#define LD(v) _mm256_loadu_ps(p + 8 * (v))
#define BC(r) (_mm256_broadcast_ss(d->w + wo##r + kx))

/* One input row iy for rows (F0, F1, F2) of the block; row R uses w[woR + kx], woR = (iy − R·s)·kw. */
#define ROW_STEP(F0, F1, F2)                                                      \
    for (int kx = 0; kx < kw; kx++) {                                             \
        const float *p = row + off[kx];                                           \
        __m256 w0 = F0 ? BC(0) : z, w1 = F1 ? BC(1) : z, w2 = F2 ? BC(2) : z;     \
        __m256 x;                                                                 \
        x = LD(0);                                                                \
        if (F0) a00 = _mm256_fmadd_ps(w0, x, a00);                                \
        if (F1) a10 = _mm256_fmadd_ps(w1, x, a10);                                \
        if (F2) a20 = _mm256_fmadd_ps(w2, x, a20);                                \
        x = LD(1);                                                                \
        if (F0) a01 = _mm256_fmadd_ps(w0, x, a01);                                \
        if (F1) a11 = _mm256_fmadd_ps(w1, x, a11);                                \
        if (F2) a21 = _mm256_fmadd_ps(w2, x, a21);                                \
        x = LD(2);                                                                \
        if (F0) a02 = _mm256_fmadd_ps(w0, x, a02);                                \
        if (F1) a12 = _mm256_fmadd_ps(w1, x, a12);                                \
        if (F2) a22 = _mm256_fmadd_ps(w2, x, a22);                                \
        x = LD(3);                                                                \
        if (F0) a03 = _mm256_fmadd_ps(w0, x, a03);                                \
        if (F1) a13 = _mm256_fmadd_ps(w1, x, a13);                                \
        if (F2) a23 = _mm256_fmadd_ps(w2, x, a23);                                \
    }

static inline void put(float *y, const float *res, __m256 v, kn_act act) {
    v = kn8_act(act, v);
    if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
    _mm256_storeu_ps(y, v);
}

/* first and last of the block's rows (< nr) that input row iy serves */
static inline void row_range(int iy, int kh, int s, int nr, int *lo, int *hi) {
    int l = iy - kh + 1 <= 0 ? 0 : (iy - kh + s) / s;
    int h = iy / s;
    *lo = l;
    *hi = h < nr - 1 ? h : nr - 1;
}

static void block32(const kn_dw_rows *d, int64_t i) {
    const int kh = d->kh, kw = d->kw, s = d->s, nr = d->nr;
    const int64_t *off = d->col_off;
    const __m256 z = _mm256_setzero_ps(), b = _mm256_set1_ps(d->bias);
    __m256 a00 = b, a01 = b, a02 = b, a03 = b, a10 = b, a11 = b, a12 = b, a13 = b;
    __m256 a20 = b, a21 = b, a22 = b, a23 = b;
    const int span = (nr - 1) * s + kh;
    for (int iy = 0; iy < span; iy++) {
        int lo, hi;
        row_range(iy, kh, s, nr, &lo, &hi);
        const float *row = d->base + iy * d->rowlen + i;
        const int wo0 = iy * kw, wo1 = (iy - s) * kw, wo2 = (iy - 2 * s) * kw;
        switch (lo * 3 + hi) {
        case 0: ROW_STEP(1, 0, 0) break;
        case 1: ROW_STEP(1, 1, 0) break;
        case 2: ROW_STEP(1, 1, 1) break;
        case 4: ROW_STEP(0, 1, 0) break;
        case 5: ROW_STEP(0, 1, 1) break;
        case 8: ROW_STEP(0, 0, 1) break;
        default: break; /* no row uses it (possible for s > kh) */
        }
    }
    const kn_act act = d->act;
#define PUT_ROW(r)                                                                           \
    {                                                                                        \
        float *y = d->y[r] + i;                                                              \
        const float *res = d->res[r] ? d->res[r] + i : NULL;                                 \
        put(y, res, a##r##0, act);                                                           \
        put(y + 8, res ? res + 8 : NULL, a##r##1, act);                                      \
        put(y + 16, res ? res + 16 : NULL, a##r##2, act);                                    \
        put(y + 24, res ? res + 24 : NULL, a##r##3, act);                                    \
    }
    PUT_ROW(0)
    if (nr > 1) PUT_ROW(1)
    if (nr > 2) PUT_ROW(2)
#undef PUT_ROW
}

/* NV (1 or 2) vectors of each row, input rows outermost as in block32 so each loaded vector
 * feeds every row that uses it (a row at a time needed two loads per FMA: the narrow maps of
 * the late stages, 16 and 8 pixels wide, ran at a third of block32's speed). The same sums in
 * the same order as block32. The last vector may be partial (masked store, NV == 1 only). */
static inline __attribute__((always_inline)) void block_nv(const kn_dw_rows *d, int64_t i, const int NV) {
    const int kh = d->kh, kw = d->kw, s = d->s, nr = d->nr;
    const int64_t *off = d->col_off;
    /* named accumulators (an array indexed by a run-time row would live in memory) */
    __m256 a00 = _mm256_set1_ps(d->bias), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    const int span = (nr - 1) * s + kh;
    for (int iy = 0; iy < span; iy++) {
        int lo, hi;
        row_range(iy, kh, s, nr, &lo, &hi);
        const int f0 = lo <= 0 && 0 <= hi, f1 = lo <= 1 && 1 <= hi, f2 = lo <= 2 && 2 <= hi;
        const float *row = d->base + iy * d->rowlen + i;
        const float *w0 = d->w + iy * kw, *w1 = w0 - s * kw, *w2 = w1 - s * kw;
        for (int kx = 0; kx < kw; kx++) {
            __m256 x0 = _mm256_loadu_ps(row + off[kx]);
            __m256 x1 = NV > 1 ? _mm256_loadu_ps(row + off[kx] + 8) : x0;
            if (f0) {
                __m256 w = _mm256_broadcast_ss(w0 + kx);
                a00 = _mm256_fmadd_ps(w, x0, a00);
                if (NV > 1) a01 = _mm256_fmadd_ps(w, x1, a01);
            }
            if (f1) {
                __m256 w = _mm256_broadcast_ss(w1 + kx);
                a10 = _mm256_fmadd_ps(w, x0, a10);
                if (NV > 1) a11 = _mm256_fmadd_ps(w, x1, a11);
            }
            if (f2) {
                __m256 w = _mm256_broadcast_ss(w2 + kx);
                a20 = _mm256_fmadd_ps(w, x0, a20);
                if (NV > 1) a21 = _mm256_fmadd_ps(w, x1, a21);
            }
        }
    }
    __m256 acc[KN_DW_R][2] = {{a00, a01}, {a10, a11}, {a20, a21}};
    int64_t left = d->n - i;
    __m256i m = kn8_tailmask(left < 8 ? left : 8);
    for (int r = 0; r < nr; r++) {
        if (NV > 1) {
            put(d->y[r] + i, d->res[r] ? d->res[r] + i : NULL, acc[r][0], d->act);
            put(d->y[r] + i + 8, d->res[r] ? d->res[r] + i + 8 : NULL, acc[r][1], d->act);
            continue;
        }
        __m256 v = kn8_act(d->act, acc[r][0]);
        if (d->res[r]) v = _mm256_add_ps(v, _mm256_maskload_ps(d->res[r] + i, m));
        _mm256_maskstore_ps(d->y[r] + i, m, v);
    }
}

static void block16(const kn_dw_rows *d, int64_t i) { block_nv(d, i, 2); }
static void block8(const kn_dw_rows *d, int64_t i) { block_nv(d, i, 1); }

void kn_dwrows_avx2(const kn_dw_rows *d) {
    int64_t i = 0;
    for (; i + 32 <= d->n; i += 32) block32(d, i);
    for (; i + 16 <= d->n; i += 16) block16(d, i);
    for (; i < d->n; i += 8) block8(d, i);
}
