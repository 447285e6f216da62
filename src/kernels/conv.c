/* conv.c — convolution dispatch: depthwise/multiplier strips, 1×1 and im2col GEMM paths,
 * BN folding and pools. */
#include "conv.h"

#include <float.h>
#include <math.h>

#include "nn.h"

/* Output rows per depthwise task. A task stages (DW_ROWS−1)·s + kh padded input rows. */
#define DW_ROWS 18
/* im2col column chunk: at most this many floats of columns per GEMM call (4 MiB). */
#define IM2COL_MAX_FLOATS ((int64_t)1 << 20)

bool kn_conv2d_shape(const kn_conv2d_args *a, int64_t *Ho, int64_t *Wo) {
    if (!a || !a->x || !a->w || !a->y) return false;
    if (a->N < 1 || a->C_in < 1 || a->C_out < 1 || a->H < 1 || a->W < 1) return false;
    if (a->kh < 1 || a->kw < 1 || a->stride < 1 || a->groups < 1) return false;
    if (a->pad_h < 0 || a->pad_w < 0 || a->pad_h >= a->kh || a->pad_w >= a->kw) return false;
    if (a->C_in % a->groups || a->C_out % a->groups) return false;
    int64_t hp = a->H + 2 * (int64_t)a->pad_h, wp = a->W + 2 * (int64_t)a->pad_w;
    if (hp < a->kh || wp < a->kw) return false;
    *Ho = (hp - a->kh) / a->stride + 1;
    *Wo = (wp - a->kw) / a->stride + 1;
    return true;
}

static bool is_dw(const kn_conv2d_args *a) {
    return a->groups == a->C_in && a->C_out % a->C_in == 0 && a->kw <= 64;
}
static bool is_1x1(const kn_conv2d_args *a) {
    return a->kh == 1 && a->kw == 1 && a->stride == 1 && a->pad_h == 0 && a->pad_w == 0;
}

/* Floats per staged input row: `stride` phases of L floats each. Phase ph, index i holds padded
 * column i·s + ph, so tap kx of output column ox reads phase kx % s at index ox + kx / s and a
 * stride-s conv becomes s unit-stride reads. L leaves >= 8 zero floats after the last needed
 * element so SIMD rows may read a full vector past Wo. */
static int64_t dw_phase_len(const kn_conv2d_args *a) {
    int64_t wp = a->W + 2 * (int64_t)a->pad_w;
    int64_t L = (wp + a->stride - 1) / a->stride + 8;
    return (L + 7) & ~(int64_t)7;
}
static int64_t dw_stage_rows(const kn_conv2d_args *a) {
    return (int64_t)(DW_ROWS - 1) * a->stride + a->kh;
}

/* ---- dense convs with few taps: kn_conv_row (conv.h) -------------------------------------- */

static bool is_fewtap(const kn_env *env, const kn_conv2d_args *a) {
#if defined(__x86_64__)
    return kn_use_avx512(env) && a->groups == 1 && !is_dw(a) && !is_1x1(a) && !a->residual && a->C_out % 16 == 0 &&
           a->C_in * a->kh * a->kw <= KN_CONV_TAPS_MAX;
#else
    (void)env, (void)a;
    return false;
#endif
}

/* Workspace floats: the transposed weights [taps][C_out], then per thread the staged input rows
 * of one output row (C_in·kh rows, stride phases of dw_phase_len each). 0 on overflow. */
static size_t fewtap_per_thread(const kn_conv2d_args *a) {
    size_t f;
    if (!gl_mul_ok((size_t)(a->C_in * a->kh * a->stride), (size_t)dw_phase_len(a), &f)) return 0;
    return (f + 15) & ~(size_t)15;
}
static size_t fewtap_floats(const kn_env *env, const kn_conv2d_args *a) {
    size_t wt = ((size_t)(a->C_in * a->kh * a->kw) * (size_t)a->C_out + 15) & ~(size_t)15, per = fewtap_per_thread(a), t;
    if (!per || !gl_mul_ok(per, (size_t)gl_pool_size(env->pool), &t) || !gl_add_ok(t, wt + 16, &t)) return 0;
    return t;
}

size_t kn_conv2d_ws_size(const kn_env *env, const kn_conv2d_args *a) {
    int64_t Ho, Wo;
    if (!kn_conv2d_shape(a, &Ho, &Wo)) return SIZE_MAX;
    size_t f, t;
    if (is_fewtap(env, a)) {
        f = fewtap_floats(env, a);
        if (!f || !gl_mul_ok(f, sizeof(float), &t)) return SIZE_MAX;
        return t;
    }
    if (is_dw(a)) {
        /* staged rows, + 64 bytes so each thread's part can start 64-byte aligned */
        if (!gl_mul_ok((size_t)dw_stage_rows(a) * a->stride, (size_t)dw_phase_len(a), &f)) return SIZE_MAX;
        if (!gl_add_ok(f, 16, &f)) return SIZE_MAX;
        if (!gl_mul_ok(f, (size_t)gl_pool_size(env->pool), &t)) return SIZE_MAX;
        if (!gl_mul_ok(t, sizeof(float), &t)) return SIZE_MAX;
        return t;
    }
    /* GEMM paths: the im2col columns, then kn_gemm's packing scratch (64-byte aligned) */
    int64_t K = a->C_in / a->groups * a->kh * a->kw;
    int64_t chunk = is_1x1(a) ? Ho * Wo : GL_MIN(GL_MAX((int64_t)64, IM2COL_MAX_FLOATS / K), Ho * Wo);
    t = 0;
    if (!is_1x1(a) && (!gl_mul_ok((size_t)K, (size_t)chunk, &f) || !gl_mul_ok(f, sizeof(float), &t)))
        return SIZE_MAX;
    size_t g = kn_gemm_ws_size(env, a->C_out / a->groups, chunk, K);
    if (!g) return t;
    if (!gl_add_ok((t + 63) & ~(size_t)63, g, &t)) return SIZE_MAX;
    return t;
}

/* Bytes of im2col columns at the start of a GEMM-path workspace (the rest is kn_gemm's). */
static size_t cols_bytes(const kn_conv2d_args *a, int64_t Ho, int64_t Wo) {
    if (is_1x1(a)) return 0;
    int64_t K = a->C_in / a->groups * a->kh * a->kw;
    int64_t chunk = GL_MIN(GL_MAX((int64_t)64, IM2COL_MAX_FLOATS / K), Ho * Wo);
    return ((size_t)K * (size_t)chunk * sizeof(float) + 63) & ~(size_t)63;
}

/* ---- depthwise / channel-multiplier path ------------------------------------------------ */

typedef struct dw_job {
    const kn_conv2d_args *a;
    int64_t Ho, Wo, n_strips, L;
    char *ws;
    size_t ws_per_thread;
    kn_dwrows_fn rows;
    int plane;           /* stride 1, k 3 or 7, AVX-512: whole strips through kn_dwplane_avx512 */
    int64_t strip;       /* output rows per task: DW_ROWS, or 16 for the plane kernel (S0's maps are 16·2^i rows) */
    int64_t col_off[64]; /* per kx: phase (kx % s)·L + kx / s; kw <= 64 on this path */
    atomic_llong next;   /* tasks are taken from this counter (gl_grab) */
} dw_job;

static void dw_task(void *v, int ith, int nth) {
    dw_job *j = v;
    const kn_conv2d_args *a = j->a;
    const int s = a->stride, kh = a->kh, taps = kh * a->kw;
    const int64_t m = a->C_out / a->C_in, L = j->L, rowlen = (int64_t)s * L, P = j->Ho * j->Wo;
    float *stage = (float *)(j->ws + (size_t)ith * j->ws_per_thread);

    int64_t lo, hi, n_tasks = a->N * a->C_in * j->n_strips;
    while (gl_grab(&j->next, n_tasks, gl_grain(n_tasks, nth, 1), &lo, &hi))
        for (int64_t task = lo; task < hi; task++) {
            int64_t plane = task / j->n_strips, strip = task % j->n_strips;
            int64_t n = plane / a->C_in, c = plane % a->C_in;
            int64_t oy0 = strip * j->strip, oy1 = GL_MIN(oy0 + j->strip, j->Ho);
            int64_t iy0 = oy0 * s - a->pad_h, n_in = (oy1 - oy0 - 1) * s + kh;
            const float *xp = a->x + plane * a->H * a->W;
            /* stage the padded, phase-split input rows */
            for (int64_t r = 0; r < n_in; r++) {
                float *dst = stage + r * rowlen;
                int64_t iy = iy0 + r;
                memset(dst, 0, (size_t)rowlen * sizeof(float));
                if (iy < 0 || iy >= a->H) continue;
                const float *xr = xp + iy * a->W;
                if (s == 1) {
                    memcpy(dst + a->pad_w, xr, (size_t)a->W * sizeof(float));
                } else if (s == 2) { /* the same, with a constant stride the compiler vectorizes */
                    for (int ph = 0; ph < 2; ph++) {
                        int64_t ix0 = ((ph - a->pad_w) % 2 + 2) % 2, cnt = (a->W - ix0 + 1) / 2;
                        float *dd = dst + ph * L + (ix0 + a->pad_w) / 2;
                        const float *xs = xr + ix0;
                        for (int64_t k = 0; k < cnt; k++) dd[k] = xs[2 * k];
                    }
                } else {
                    /* phase ph holds input columns ix with (ix + pad) % s == ph */
                    for (int ph = 0; ph < s; ph++) {
                        int64_t ix = ((ph - a->pad_w) % s + s) % s;
                        float *dd = dst + ph * L + (ix + a->pad_w) / s;
                        for (; ix < a->W; ix += s) *dd++ = xr[ix];
                    }
                }
            }
            kn_dw_rows d;
            d.n = j->Wo;
            d.rowlen = rowlen;
            d.col_off = j->col_off;
            d.kh = kh;
            d.kw = a->kw;
            d.s = s;
            d.act = a->act;
#if defined(__x86_64__)
            if (j->plane) {
                for (int64_t mo = 0; mo < m; mo++) {
                    int64_t o = c * m + mo;
                    kn_dw_plane pd;
                    pd.y = a->y + (n * a->C_out + o) * P + oy0 * j->Wo;
                    pd.res = a->residual ? a->residual + (n * a->C_out + o) * P + oy0 * j->Wo : NULL;
                    pd.nr = (int)(oy1 - oy0);
                    pd.n = j->Wo;
                    pd.base = stage;
                    pd.rowlen = rowlen;
                    pd.w = a->w + o * taps;
                    pd.k = kh;
                    pd.bias = a->bias ? a->bias[o] : 0.0f;
                    pd.act = a->act;
                    kn_dwplane_avx512(&pd);
                }
                continue;
            }
#endif
            for (int64_t mo = 0; mo < m; mo++) {
                int64_t o = c * m + mo;
                float *yp = a->y + (n * a->C_out + o) * P;
                const float *rp = a->residual ? a->residual + (n * a->C_out + o) * P : NULL;
                d.w = a->w + o * taps;
                d.bias = a->bias ? a->bias[o] : 0.0f;
                for (int64_t oy = oy0; oy < oy1; oy += KN_DW_R) {
                    d.nr = (int)GL_MIN((int64_t)KN_DW_R, oy1 - oy);
                    d.base = stage + (oy - oy0) * rowlen * s;
                    for (int r = 0; r < d.nr; r++) {
                        d.y[r] = yp + (oy + r) * j->Wo;
                        d.res[r] = rp ? rp + (oy + r) * j->Wo : NULL;
                    }
                    j->rows(&d);
                }
            }
        }
}

static void conv_dw(const kn_env *env, const kn_conv2d_args *a, int64_t Ho, int64_t Wo, void *ws,
                    size_t ws_bytes) {
    dw_job j;
    atomic_init(&j.next, 0);
    j.a = a;
    j.Ho = Ho;
    j.Wo = Wo;
    j.plane = 0;
#if defined(__x86_64__)
    j.plane = kn_use_avx512(env) && a->stride == 1 && a->kh == a->kw && (a->kh == 3 || a->kh == 7);
#endif
    j.strip = j.plane ? 16 : DW_ROWS;
    j.n_strips = (Ho + j.strip - 1) / j.strip;
    j.L = dw_phase_len(a);
    j.ws = ws;
    j.ws_per_thread = ws_bytes / (size_t)gl_pool_size(env->pool) & ~(size_t)63;
    for (int kx = 0; kx < a->kw; kx++) j.col_off[kx] = (kx % a->stride) * j.L + kx / a->stride;
    j.rows = kn_dwrows_scalar;
#if defined(__x86_64__)
    if (kn_use_avx2(env)) j.rows = kn_dwrows_avx2;
    if (kn_use_avx512(env)) j.rows = kn_dwrows_avx512;
#elif defined(__aarch64__)
    if (kn_use_neon(env)) j.rows = kn_dwrows_neon;
#endif
    gl_pool_run(env->pool, dw_task, &j);
}

/* ---- GEMM paths -------------------------------------------------------------------------- */

typedef struct im2col_job {
    const kn_conv2d_args *a;
    const float *xg;   /* first input channel of the group, image n */
    float *cols;       /* [K, cnt] */
    int64_t Wo, p0, cnt;
} im2col_job;

static void im2col_task(void *v, int ith, int nth) {
    const im2col_job *j = v;
    const kn_conv2d_args *a = j->a;
    const int64_t s = a->stride, Wo = j->Wo;
    int64_t K = a->C_in / a->groups * a->kh * a->kw, lo, hi;
    gl_split(K, ith, nth, &lo, &hi);
    for (int64_t k = lo; k < hi; k++) {
        int64_t i = k / (a->kh * a->kw), ky = k / a->kw % a->kh, kx = k % a->kw;
        const float *xp = j->xg + i * a->H * a->W;
        float *col = j->cols + k * j->cnt;
        /* output columns ox with 0 <= ox·s + kx − pad_w < W: [ox_lo, ox_hi) */
        int64_t ox_lo = GL_MAX((int64_t)0, (a->pad_w - kx + s - 1) / s);
        int64_t ox_hi = a->W - 1 - kx + a->pad_w < 0 ? 0 : GL_MIN(Wo, (a->W - 1 - kx + a->pad_w) / s + 1);
        int64_t oy = j->p0 / Wo, ox = j->p0 % Wo;
        /* a row of output pixels at a time: one input row, valid columns a contiguous range */
        for (int64_t p = 0; p < j->cnt; oy++, ox = 0) {
            int64_t n = GL_MIN(Wo - ox, j->cnt - p), iy = oy * s + ky - a->pad_h;
            float *c = col + p - ox; /* c[x] is output column x of this row */
            if (iy < 0 || iy >= a->H) {
                memset(c + ox, 0, (size_t)n * sizeof(float));
            } else {
                const float *xr = xp + iy * a->W + kx - a->pad_w;
                int64_t e = ox + n, v0 = GL_MIN(GL_MAX(ox, ox_lo), e), v1 = GL_MAX(GL_MIN(e, ox_hi), v0);
                for (int64_t x = ox; x < v0; x++) c[x] = 0.0f;
                if (s == 1) memcpy(c + v0, xr + v0, (size_t)(v1 - v0) * sizeof(float));
                else if (s == 2) for (int64_t x = v0; x < v1; x++) c[x] = xr[2 * x];
                else for (int64_t x = v0; x < v1; x++) c[x] = xr[x * s];
                for (int64_t x = v1; x < e; x++) c[x] = 0.0f;
            }
            p += n;
        }
    }
}

static void conv_gemm(const kn_env *env, const kn_conv2d_args *a, int64_t Ho, int64_t Wo, float *ws,
                      size_t ws_bytes) {
    const int64_t cin_g = a->C_in / a->groups, cout_g = a->C_out / a->groups, P = Ho * Wo;
    const int64_t K = cin_g * a->kh * a->kw;
    const bool direct = is_1x1(a);
    int64_t chunk = direct ? P : GL_MIN(P, GL_MAX((int64_t)64, IM2COL_MAX_FLOATS / K));
    size_t cb = cols_bytes(a, Ho, Wo);
    char *gws = ws ? (char *)ws + cb : NULL; /* kn_gemm's scratch: keeps malloc out of the forward pass */
    size_t gws_bytes = ws_bytes - cb;
    /* y += conv when the residual is y itself and there is no activation: let the GEMM add */
    bool acc = a->residual && a->act == KN_ACT_NONE;
    for (int64_t n = 0; n < a->N; n++)
        for (int64_t g = 0; g < a->groups; g++) {
            const float *xg = a->x + (n * a->C_in + g * cin_g) * a->H * a->W;
            float *yg = a->y + (n * a->C_out + g * cout_g) * P;
            if (acc && a->residual != a->y)
                memcpy(yg, a->residual + (n * a->C_out + g * cout_g) * P, (size_t)(cout_g * P) * sizeof(float));
            for (int64_t p0 = 0; p0 < P; p0 += chunk) {
                int64_t cnt = GL_MIN(chunk, P - p0);
                kn_gemm_args ga;
                memset(&ga, 0, sizeof ga);
                ga.M = cout_g;
                ga.N = cnt;
                ga.K = K;
                ga.A = a->w + g * cout_g * K;
                ga.lda = K;
                if (direct) {
                    ga.B = xg + p0;
                    ga.ldb = P;
                } else {
                    im2col_job ij = {a, xg, ws, Wo, p0, cnt};
                    gl_pool_run(env->pool, im2col_task, &ij);
                    ga.B = ws;
                    ga.ldb = cnt;
                }
                ga.b_type = GL_F32;
                ga.C = yg + p0;
                ga.ldc = P;
                ga.bias_m = a->bias ? a->bias + g * cout_g : NULL;
                ga.act = acc ? KN_ACT_NONE : a->act;
                ga.accumulate = acc;
                ga.ws = gws_bytes ? gws : NULL;
                ga.ws_size = gws_bytes;
                kn_gemm(env, &ga);
            }
            if (a->residual && !acc)
                kn_add(env, yg, a->residual + (n * a->C_out + g * cout_g) * P, yg, cout_g * P);
        }
}

typedef struct ft_job {
    const kn_conv2d_args *a;
    int64_t Ho, Wo, L;
    const float *wt;
    float *stage;     /* per thread: per floats */
    size_t per;
    atomic_llong next; /* output rows (image, oy) */
} ft_job;

static void ft_task(void *v, int ith, int nth) {
    ft_job *j = v;
    const kn_conv2d_args *a = j->a;
    const int s = a->stride, kh = a->kh, kw = a->kw;
    const int64_t L = j->L, P = j->Ho * j->Wo;
    float *st = j->stage + (size_t)ith * j->per;
    kn_conv_row r;
    memset(&r, 0, sizeof r);
    r.ntaps = (int)(a->C_in * kh * kw), r.wt = j->wt, r.bias = a->bias, r.C_out = a->C_out;
    r.Wo = j->Wo, r.plane = P, r.act = a->act;
    int64_t lo, hi;
    (void)nth;
    while (gl_grab(&j->next, a->N * j->Ho, 2, &lo, &hi))
        for (int64_t t = lo; t < hi; t++) {
            int64_t n = t / j->Ho, oy = t % j->Ho;
            for (int64_t i = 0; i < a->C_in; i++)
                for (int ky = 0; ky < kh; ky++) {
                    /* phase p holds padded input column j·s + p of row iy (zeros outside the input) */
                    float *ph = st + (i * kh + ky) * s * L;
                    int64_t iy = oy * s + ky - a->pad_h;
                    const float *xr = iy >= 0 && iy < a->H ? a->x + ((n * a->C_in + i) * a->H + iy) * a->W : NULL;
                    for (int p = 0; p < s; p++)
                        for (int64_t c = 0; c < L; c++) {
                            int64_t q = c * s + p - a->pad_w;
                            ph[p * L + c] = xr && q >= 0 && q < a->W ? xr[q] : 0.0f;
                        }
                    for (int kx = 0; kx < kw; kx++) r.tap[(i * kh + ky) * kw + kx] = ph + (kx % s) * L + kx / s;
                }
            r.y = a->y + n * a->C_out * P + oy * j->Wo;
#if defined(__x86_64__)
            kn_conv_row_avx512(&r);
#endif
        }
}

static void conv_fewtap(const kn_env *env, const kn_conv2d_args *a, int64_t Ho, int64_t Wo, void *ws) {
    const int64_t taps = a->C_in * a->kh * a->kw;
    float *wt = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    for (int64_t o = 0; o < a->C_out; o++)
        for (int64_t t = 0; t < taps; t++) wt[t * a->C_out + o] = a->w[o * taps + t];
    ft_job j = {.a = a, .Ho = Ho, .Wo = Wo, .L = dw_phase_len(a), .wt = wt, .per = fewtap_per_thread(a)};
    j.stage = wt + ((taps * a->C_out + 15) & ~(int64_t)15);
    atomic_init(&j.next, 0);
    gl_pool_run(env->pool, ft_task, &j);
}

int kn_conv2d(const kn_env *env, const kn_conv2d_args *a, void *ws, size_t ws_bytes) {
    int64_t Ho, Wo;
    if (!kn_conv2d_shape(a, &Ho, &Wo)) return GLIMPSE_ERR_INVALID_ARG;
    size_t need = kn_conv2d_ws_size(env, a);
    if (need == SIZE_MAX || ws_bytes < need || (need && !ws)) return GLIMPSE_ERR_INVALID_ARG;
    if (is_fewtap(env, a)) {
        conv_fewtap(env, a, Ho, Wo, ws);
        return GLIMPSE_OK;
    }
    if (is_dw(a)) {
        conv_dw(env, a, Ho, Wo, ws, ws_bytes);
        return GLIMPSE_OK;
    }
    if (a->residual == a->y && a->act != KN_ACT_NONE) return GLIMPSE_ERR_INVALID_ARG;
    conv_gemm(env, a, Ho, Wo, ws, ws_bytes);
    return GLIMPSE_OK;
}

/* ---- BN folding, pools ------------------------------------------------------------------- */

void kn_fold_bn(float *w, const float *bias_in, float *bias_out, int64_t C_out, int64_t per_out,
                const float *gamma, const float *beta, const float *mean, const float *var,
                double eps) {
    for (int64_t o = 0; o < C_out; o++) {
        double t = (gamma ? (double)gamma[o] : 1.0) / sqrt((double)var[o] + eps);
        for (int64_t i = 0; i < per_out; i++) w[o * per_out + i] = (float)((double)w[o * per_out + i] * t);
        double b = bias_in ? (double)bias_in[o] : 0.0;
        bias_out[o] = (float)((beta ? (double)beta[o] : 0.0) + (b - (double)mean[o]) * t);
    }
}

typedef struct pool_job {
    const float *x;
    float *y;
    int64_t rows, H, W, Ho, Wo;
    int k, s, p, max;
} pool_job;

static void gap_task(void *v, int ith, int nth) {
    const pool_job *j = v;
    int64_t lo, hi;
    gl_split(j->rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * j->H;
        double s = 0; /* double: HW can be 64K+ pixels */
        for (int64_t i = 0; i < j->H; i++) s += x[i];
        j->y[r] = (float)(s / (double)j->H);
    }
}

void kn_global_avgpool(const kn_env *env, const float *x, float *y, int64_t N, int64_t C,
                       int64_t HW) {
    pool_job j = {x, y, N * C, HW, 0, 0, 0, 0, 0, 0, 0};
    gl_pool_run(env->pool, gap_task, &j);
}

static void pool2d_task(void *v, int ith, int nth) {
    const pool_job *j = v;
    int64_t lo, hi;
    gl_split(j->rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * j->H * j->W;
        float *y = j->y + r * j->Ho * j->Wo;
        for (int64_t oy = 0; oy < j->Ho; oy++)
            for (int64_t ox = 0; ox < j->Wo; ox++) {
                float acc = j->max ? -INFINITY : 0.0f;
                for (int ky = 0; ky < j->k; ky++) {
                    int64_t iy = oy * j->s + ky - j->p;
                    for (int kx = 0; kx < j->k; kx++) {
                        int64_t ix = ox * j->s + kx - j->p;
                        bool in = iy >= 0 && iy < j->H && ix >= 0 && ix < j->W;
                        float v2 = in ? x[iy * j->W + ix] : 0.0f;
                        if (j->max) { if (in && v2 > acc) acc = v2; }
                        else acc += v2;
                    }
                }
                y[oy * j->Wo + ox] = j->max ? acc : acc / (float)(j->k * j->k);
            }
    }
}

static void pool2d(const kn_env *env, const float *x, float *y, int64_t NC, int64_t H, int64_t W,
                   int k, int s, int p, int max) {
    pool_job j = {x, y, NC, H, W, (H + 2 * p - k) / s + 1, (W + 2 * p - k) / s + 1, k, s, p, max};
    gl_pool_run(env->pool, pool2d_task, &j);
}

void kn_maxpool2d(const kn_env *env, const float *x, float *y, int64_t NC, int64_t H, int64_t W,
                  int k, int s, int p) {
    pool2d(env, x, y, NC, H, W, k, s, p, 1);
}
void kn_avgpool2d(const kn_env *env, const float *x, float *y, int64_t NC, int64_t H, int64_t W,
                  int k, int s, int p) {
    pool2d(env, x, y, NC, H, W, k, s, p, 0);
}
