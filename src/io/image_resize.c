/* image_resize.c — Pillow-exact resampling of RGB8 images (Image.resize, reducing_gap=None).
 *
 * Written from the description of Pillow's src/libImaging/Resample.c (two-pass, 8 bpc path) and
 * Geometry.c (ImagingScaleAffine for NEAREST); no code copied. The details that decide the
 * last bit, all reproduced here:
 *  - coefficients are computed in double with the same operation order as Pillow: centre
 *    (i + 0.5) * scale, taps from (int)(centre - support + 0.5) to (int)(centre + support + 0.5)
 *    clamped to the image, weight filter((x + xmin - centre + 0.5) / filterscale) (as a multiply
 *    by 1/filterscale), each weight divided by the sum;
 *  - weights go to fixed point with 22 fractional bits, rounding half away from zero;
 *  - each output sample is (2^21 + sum(pixel * weight)) >> 22 clamped to 0..255, so the
 *    intermediate after the horizontal pass is uint8;
 *  - the horizontal pass runs first, only over the rows the vertical pass reads; a pass whose
 *    dimension is unchanged is skipped; same size in both is a plain copy.
 * FP contraction must stay off in the coefficient code: a fused multiply-add changes roundings
 * (Pillow's x86-64 builds never fuse; an arm64 GCC build of this file without the attribute
 * below emits fmadd). The pixel passes are integer-only, so the AVX2 twins are exact too.
 * Checked: x86-64 scalar and AVX2 (tests), arm64 GCC under qemu (96 resize/pipeline goldens). */
#include "io/image.h"

#include "core/cpu.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define GL_NO_FMA
#elif defined(__GNUC__)
#define GL_NO_FMA __attribute__((optimize("fp-contract=off")))
#else
#define GL_NO_FMA
#endif

#define PREC_BITS 22 /* 32 - 8 - 2: 8 bits of pixel, 2 of headroom for negative lobes */

typedef double (*filter_fn)(double);

static double filt_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

GL_NO_FMA static double filt_bicubic(double x) {
    /* Keys cubic with a = -0.5, evaluated in Pillow's order. */
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* One axis of coefficients: for output i, taps in [first[i], first[i] + count[i]) with weights
 * w[i * ksize + t]. */
typedef struct axis_coeffs {
    int ksize;   /* Pillow's tap bound, ceil(support) * 2 + 1 */
    int kstride; /* ksize rounded up to 8, zero-padded, so SIMD loops read whole groups of 8 */
    int *first, *count;
    int32_t *w;
} axis_coeffs;

static void axis_free(axis_coeffs *a) {
    gl_free(a->first);
    gl_free(a->count);
    gl_free(a->w);
    memset(a, 0, sizeof *a);
}

GL_NO_FMA static int axis_init(axis_coeffs *a, int in_size, int out_size, io_filter f, gl_err *err) {
    filter_fn fn = f == IO_FILTER_BICUBIC ? filt_bicubic : filt_bilinear;
    double fsupport = f == IO_FILTER_BICUBIC ? 2.0 : 1.0;
    double scale = (double)(float)in_size / out_size; /* Pillow: box edges are floats */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = fsupport * filterscale;
    double ss = 1.0 / filterscale;
    memset(a, 0, sizeof *a);
    if (support > (double)(1 << 28)) return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "resize: scale factor too large");
    a->ksize = (int)ceil(support) * 2 + 1;
    a->kstride = (a->ksize + 7) & ~7;
    size_t nk;
    if (!gl_mul_ok((size_t)out_size, (size_t)a->kstride, &nk) || !gl_mul_ok(nk, sizeof(int32_t), &nk))
        return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "resize: %d x %d taps overflow", out_size, a->ksize);
    double *tmp = gl_malloc((size_t)a->ksize * sizeof(double));
    a->first = gl_malloc((size_t)out_size * sizeof(int));
    a->count = gl_malloc((size_t)out_size * sizeof(int));
    a->w = gl_malloc(nk);
    if (!tmp || !a->first || !a->count || !a->w) {
        gl_free(tmp);
        axis_free(a);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "resize: out of memory for coefficients");
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double sum = 0.0;
        for (int t = 0; t < n; t++) {
            double w = fn((t + lo - center + 0.5) * ss);
            tmp[t] = w;
            sum += w;
        }
        int32_t *k = a->w + (size_t)i * a->kstride;
        for (int t = 0; t < a->kstride; t++) {
            double v = t < n ? (sum != 0.0 ? tmp[t] / sum : tmp[t]) : 0.0;
            k[t] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC_BITS)) : (int32_t)(0.5 + v * (1 << PREC_BITS));
        }
        a->first[i] = lo;
        a->count[i] = n < 0 ? 0 : n;
    }
    gl_free(tmp);
    return GLIMPSE_OK;
}

/* A row of one colour c resamples to c exactly: the fixed-point weights of an output sum to
 * 2^22 + d with |d| <= taps / 2, so (2^21 + c * (2^22 + d)) >> 22 = c while 255 * |d| < 2^21,
 * i.e. for fewer than 16448 taps. Padded (expand2square) images have many such rows. */
static int uniform_row(const uint8_t *src, int w, const axis_coeffs *a) {
    return a->ksize < 16000 && (w < 2 || !memcmp(src, src + 3, (size_t)(w - 1) * 3));
}

static void fill_row(uint8_t *dst, const uint8_t *px, int w) {
    for (int x = 0; x < w; x++) dst[3 * x] = px[0], dst[3 * x + 1] = px[1], dst[3 * x + 2] = px[2];
}

static inline uint8_t clip8(int32_t v) {
    v >>= PREC_BITS; /* arithmetic shift: floor, as Pillow's lookup-table index */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [y0, y1) of in, resampled horizontally into out (out row 0 = in row y0). */
static void pass_horizontal(const uint8_t *in, int in_w, int y0, int y1, const axis_coeffs *a,
                            uint8_t *out, int out_w) {
    for (int y = y0; y < y1; y++) {
        const uint8_t *src = in + (size_t)y * in_w * 3;
        uint8_t *dst = out + (size_t)(y - y0) * out_w * 3;
        if (uniform_row(src, in_w, a)) {
            fill_row(dst, src, out_w);
            continue;
        }
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = a->w + (size_t)x * a->kstride;
            const uint8_t *p = src + (size_t)a->first[x] * 3;
            int n = a->count[x];
            int32_t s0 = 1 << (PREC_BITS - 1), s1 = s0, s2 = s0;
            for (int t = 0; t < n; t++) {
                s0 += p[3 * t + 0] * k[t];
                s1 += p[3 * t + 1] * k[t];
                s2 += p[3 * t + 2] * k[t];
            }
            dst[3 * x + 0] = clip8(s0);
            dst[3 * x + 1] = clip8(s1);
            dst[3 * x + 2] = clip8(s2);
        }
    }
}

/* Vertical pass; in row 0 corresponds to source row `offset` of the coefficient bounds. Sums
 * run row by row into an int32 line buffer: integer addition is exact, so the order of the
 * terms does not matter and the inner loop is a contiguous multiply-add the compiler vectorises. */
static void pass_vertical(const uint8_t *in, int w, int offset, const axis_coeffs *a, uint8_t *out,
                          int out_h, int32_t *acc) {
    size_t n = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = a->w + (size_t)y * a->kstride;
        for (size_t i = 0; i < n; i++) acc[i] = 1 << (PREC_BITS - 1);
        for (int t = 0; t < a->count[y]; t++) {
            const uint8_t *src = in + (size_t)(a->first[y] - offset + t) * n;
            int32_t kt = k[t];
            for (size_t i = 0; i < n; i++) acc[i] += src[i] * kt;
        }
        uint8_t *dst = out + (size_t)y * n;
        for (size_t i = 0; i < n; i++) dst[i] = clip8(acc[i]);
    }
}

/* ---- AVX2 twins (exact: the same integer sums, only regrouped) ---------------------------- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GL_HAVE_AVX2_RESIZE 1
#define GL_AVX2 __attribute__((target("avx2")))

/* 8 consecutive uint8 -> 8 int32. */
GL_AVX2 static inline __m256i load8_u8(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

GL_AVX2 static inline int32_t hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Horizontal pass: each source row is split into three zero-padded planes, so the taps of one
 * output sample are 8 contiguous bytes at a time against 8 weights (the weights past count[x]
 * are zero, the plane padding covers the over-read). planes: 3 * (in_w + 8) bytes. */
GL_AVX2 static void pass_horizontal_avx2(const uint8_t *in, int in_w, int y0, int y1, const axis_coeffs *a,
                                         uint8_t *out, int out_w, uint8_t *planes) {
    size_t ps = (size_t)in_w + 8;
    uint8_t *pr = planes, *pg = planes + ps, *pb = planes + 2 * ps;
    memset(planes, 0, 3 * ps);
    for (int y = y0; y < y1; y++) {
        const uint8_t *src = in + (size_t)y * in_w * 3;
        uint8_t *dst = out + (size_t)(y - y0) * out_w * 3;
        if (uniform_row(src, in_w, a)) {
            fill_row(dst, src, out_w);
            continue;
        }
        for (int x = 0; x < in_w; x++) pr[x] = src[3 * x], pg[x] = src[3 * x + 1], pb[x] = src[3 * x + 2];
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = a->w + (size_t)x * a->kstride;
            int f = a->first[x], n = a->count[x];
            __m256i sr = _mm256_setzero_si256(), sg = sr, sb = sr;
            for (int t = 0; t < n; t += 8) {
                __m256i kv = _mm256_loadu_si256((const __m256i *)(k + t));
                sr = _mm256_add_epi32(sr, _mm256_mullo_epi32(load8_u8(pr + f + t), kv));
                sg = _mm256_add_epi32(sg, _mm256_mullo_epi32(load8_u8(pg + f + t), kv));
                sb = _mm256_add_epi32(sb, _mm256_mullo_epi32(load8_u8(pb + f + t), kv));
            }
            int32_t r0 = 1 << (PREC_BITS - 1);
            dst[3 * x + 0] = clip8(r0 + hsum8(sr));
            dst[3 * x + 1] = clip8(r0 + hsum8(sg));
            dst[3 * x + 2] = clip8(r0 + hsum8(sb));
        }
    }
}

/* Vertical pass: 32 bytes of a row at a time in four int32 accumulators, all taps, then
 * shift, saturate to int16 and uint8 (= clip8) and undo the per-lane order of the packs. */
GL_AVX2 static void pass_vertical_avx2(const uint8_t *in, int w, int offset, const axis_coeffs *a, uint8_t *out,
                                       int out_h) {
    size_t n = (size_t)w * 3;
    const __m256i r0 = _mm256_set1_epi32(1 << (PREC_BITS - 1));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = a->w + (size_t)y * a->kstride;
        const uint8_t *base = in + (size_t)(a->first[y] - offset) * n;
        int cnt = a->count[y];
        uint8_t *dst = out + (size_t)y * n;
        size_t i = 0;
        for (; i + 32 <= n; i += 32) {
            __m256i s0 = r0, s1 = r0, s2 = r0, s3 = r0;
            for (int t = 0; t < cnt; t++) {
                const uint8_t *p = base + (size_t)t * n + i;
                __m256i kt = _mm256_set1_epi32(k[t]);
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(load8_u8(p), kt));
                s1 = _mm256_add_epi32(s1, _mm256_mullo_epi32(load8_u8(p + 8), kt));
                s2 = _mm256_add_epi32(s2, _mm256_mullo_epi32(load8_u8(p + 16), kt));
                s3 = _mm256_add_epi32(s3, _mm256_mullo_epi32(load8_u8(p + 24), kt));
            }
            s0 = _mm256_srai_epi32(s0, PREC_BITS), s1 = _mm256_srai_epi32(s1, PREC_BITS);
            s2 = _mm256_srai_epi32(s2, PREC_BITS), s3 = _mm256_srai_epi32(s3, PREC_BITS);
            __m256i p01 = _mm256_packs_epi32(s0, s1), p23 = _mm256_packs_epi32(s2, s3);
            __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p01, p23), perm);
            _mm256_storeu_si256((__m256i *)(dst + i), b);
        }
        for (; i < n; i++) {
            int32_t s = 1 << (PREC_BITS - 1);
            for (int t = 0; t < cnt; t++) s += base[(size_t)t * n + i] * k[t];
            dst[i] = clip8(s);
        }
    }
}
#endif

/* Pillow NEAREST (ImagingScaleAffine): source positions accumulate in double, starting at half
 * a step; positions that fall outside the source stay 0. */
static int resize_nearest(const glimpse_image *in, glimpse_image *out, gl_err *err) {
    int ow = out->width, oh = out->height;
    int *xtab = gl_malloc((size_t)ow * sizeof(int));
    if (!xtab) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "resize: out of memory");
    double ax = (double)(float)in->width / ow, ay = (double)(float)in->height / oh;
    double xo = ax * 0.5, yo = ay * 0.5;
    for (int x = 0; x < ow; x++) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xtab[x] = xi < in->width ? xi : -1;
        xo += ax;
    }
    for (int y = 0; y < oh; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        uint8_t *dst = out->rgb + (size_t)y * ow * 3;
        if (yi < 0 || yi >= in->height) {
            memset(dst, 0, (size_t)ow * 3);
        } else {
            const uint8_t *src = in->rgb + (size_t)yi * in->width * 3;
            for (int x = 0; x < ow; x++) {
                if (xtab[x] < 0) {
                    dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = 0;
                } else {
                    memcpy(dst + 3 * x, src + 3 * xtab[x], 3);
                }
            }
        }
        yo += ay;
    }
    gl_free(xtab);
    return GLIMPSE_OK;
}

int io_image_resize(const glimpse_image *in, int w, int h, io_filter filter, glimpse_image *out,
                    gl_err *err) {
    glimpse_image res = {0, 0, NULL};
    if (out) *out = res;
    if (!in || !out || !in->rgb || in->width < 1 || in->height < 1 || w < 1 || h < 1)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "resize: bad image or size %dx%d", w, h);
    if (filter != IO_FILTER_NEAREST && filter != IO_FILTER_BILINEAR && filter != IO_FILTER_BICUBIC)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "resize: unknown filter %d", (int)filter);
    int rc = io_image_alloc(&res, w, h, err);
    if (rc) return rc;
    if (w == in->width && h == in->height) {
        memcpy(res.rgb, in->rgb, (size_t)w * h * 3);
        *out = res;
        return GLIMPSE_OK;
    }
    if (filter == IO_FILTER_NEAREST) {
        rc = resize_nearest(in, &res, err);
        if (rc) io_image_free(&res);
        else *out = res;
        return rc;
    }
    int need_h = w != in->width, need_v = h != in->height;
    axis_coeffs ah = {0}, av = {0};
    uint8_t *tmp = NULL, *planes = NULL;
    int32_t *acc = NULL;
    int simd = 0;
#ifdef GL_HAVE_AVX2_RESIZE
    gl_cpu cpu = gl_cpu_detect(); /* honours GLIMPSE_ISA=scalar */
    simd = gl_cpu_has_avx2(&cpu);
#endif
    if (need_h && (rc = axis_init(&ah, in->width, w, filter, err))) goto done;
    if (need_v && (rc = axis_init(&av, in->height, h, filter, err))) goto done;
    acc = gl_malloc((size_t)w * 3 * sizeof(int32_t));
    if (need_h && simd) planes = gl_malloc(3 * ((size_t)in->width + 8));
    if (!acc || (need_h && simd && !planes)) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "resize: out of memory");
        goto done;
    }
    /* Horizontal pass first, over the rows the vertical pass reads, into a uint8 buffer. */
    const uint8_t *vsrc = in->rgb;
    int y0 = 0;
    if (need_h) {
        int y1 = in->height;
        uint8_t *hdst = res.rgb;
        if (need_v) {
            y0 = av.first[0], y1 = av.first[h - 1] + av.count[h - 1];
            hdst = tmp = gl_malloc((size_t)w * (size_t)(y1 - y0) * 3);
            if (!tmp) {
                rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "resize: out of memory");
                goto done;
            }
        }
#ifdef GL_HAVE_AVX2_RESIZE
        if (simd) pass_horizontal_avx2(in->rgb, in->width, y0, y1, &ah, hdst, w, planes);
        else
#endif
            pass_horizontal(in->rgb, in->width, y0, y1, &ah, hdst, w);
        vsrc = tmp;
    }
    if (need_v) {
#ifdef GL_HAVE_AVX2_RESIZE
        if (simd) pass_vertical_avx2(vsrc, w, y0, &av, res.rgb, h);
        else
#endif
            pass_vertical(vsrc, w, y0, &av, res.rgb, h, acc);
    }
done:
    axis_free(&ah);
    axis_free(&av);
    gl_free(tmp);
    gl_free(planes);
    gl_free(acc);
    if (rc) io_image_free(&res);
    else *out = res;
    return rc;
}
