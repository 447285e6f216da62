/* nn ops: the native ISA against the scalar twins (libm expf/erff/tanhf), and the scalar
 * twins / attention / RoPE against naive double-precision definitions written here.
 * Fixed seed (printed). Tolerances are named below with where they come from. */
#include "test.h"
#include "core/pool.h"
#include "kernels/nn.h"

static uint64_t seed = 0xa77e5710;

/* erf-based GELU: the vector erf is within 2e-7 of erff, times 0.5|x| */
#define TOL_ACT 2e-6
/* norms/softmax: float accumulation order differs from the double-accumulated spec */
#define TOL_ROW 2e-5

static const int64_t sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 67, 257, 1000, 4099};

static float *rnd(int64_t n, float scale) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = t_rand_f32(&seed) * scale;
    return p;
}

static double maxdiff(const float *a, const float *b, int64_t n, int64_t *at) {
    double w = 0;
    *at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > w || isnan(d)) { w = isnan(d) ? 1e30 : d; *at = i; }
    }
    return w;
}

static void t_acts(const kn_env *nat, const kn_env *sc) {
    static const kn_act acts[] = {KN_ACT_RELU, KN_ACT_GELU, KN_ACT_SILU, KN_ACT_GELU_TANH, KN_ACT_SIGMOID};
    for (int ai = 0; ai < 5; ai++)
        for (int si = 0; si < 14; si++) {
            int64_t n = sizes[si];
            float scale = si % 3 == 0 ? 12.0f : si % 3 == 1 ? 4.0f : 100.0f;
            float *x = rnd(n, scale), *y = rnd(n, 1), *r = rnd(n, 1);
            if (n > 8) { x[0] = 0; x[1] = -0.0f; x[2] = 1e-30f; x[3] = -87.5f; x[4] = 88.0f; x[5] = -200; x[6] = 200; }
            kn_act_apply(nat, acts[ai], x, y, n);
            kn_act_apply(sc, acts[ai], x, r, n);
            for (int64_t i = 0; i < n; i++) {
                double tol = TOL_ACT * fmax(1.0, fabs(x[i]));
                if (acts[ai] == KN_ACT_SIGMOID) tol = 1e-6;
                CHECK_MSG(fabs((double)y[i] - r[i]) <= tol, "act %d n %lld x %.9g: %.9g vs %.9g", (int)acts[ai],
                          (long long)n, x[i], y[i], r[i]);
            }
            free(x); free(y); free(r);
        }
    /* the scalar twins against double-precision math, and a dense sweep of the vector erf */
    int64_t n = 20001;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
    kn_gelu(nat, x, y, n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        worst = fmax(worst, fabs(g - y[i]));
    }
    CHECK_MSG(worst <= 1.5e-6, "gelu sweep vs double erf: %g", worst);
    kn_silu(nat, x, y, n);
    worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(x[i] / (1.0 + exp(-(double)x[i])) - y[i]));
    CHECK_MSG(worst <= 2e-6, "silu sweep: %g", worst);
    free(x); free(y);
}

static void t_elementwise(const kn_env *e) {
    int64_t n = 5003;
    float *a = rnd(n, 3), *b = rnd(n, 3), *y = rnd(n, 1);
    kn_add(e, a, b, y, n);
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(y[i], a[i] + b[i], 0);
    kn_mul(e, a, b, y, n);
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(y[i], a[i] * b[i], 0);
    kn_scale(e, a, 0.25f, y, n);
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(y[i], a[i] * 0.25f, 0);
    kn_swiglu(e, a, b, y, n);
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(y[i], a[i] / (1 + exp(-(double)a[i])) * b[i], 1e-5);
    /* per channel: N 2, C 3, HW 7 */
    float g[3] = {0.5f, -2.0f, 3.0f}, s[6] = {1, 2, 3, 4, 5, 6};
    kn_add_scaled_ch(e, a, b, g, y, 2, 3, 7);
    for (int i = 0; i < 42; i++) CHECK_NEAR(y[i], a[i] + g[i / 7 % 3] * b[i], 1e-6);
    kn_mul_ch(e, a, s, y, 2, 3, 7);
    for (int i = 0; i < 42; i++) CHECK_NEAR(y[i], a[i] * s[i / 7], 0);
    /* transpose 2 × [37, 45] */
    kn_transpose(e, a, y, 2, 37, 45);
    for (int bi = 0; bi < 2; bi++)
        for (int r = 0; r < 37; r++)
            for (int c = 0; c < 45; c++) CHECK(y[bi * 1665 + c * 37 + r] == a[bi * 1665 + r * 45 + c]);
    free(a); free(b); free(y);
}

static void t_rows(const kn_env *nat, const kn_env *sc) {
    for (int si = 0; si < 14; si++) {
        int64_t n = sizes[si], rows = si % 4 + 1, at;
        float *x = rnd(rows * n, 3), *w = rnd(n, 1), *b = rnd(n, 1), *y = rnd(rows * n, 1), *r = rnd(rows * n, 1);
        for (int64_t i = 0; i < rows * n; i++) x[i] += 5.0f; /* an offset mean tests the centring */
        kn_layernorm(nat, x, y, w, b, rows, n, 1e-5f);
        kn_layernorm(sc, x, r, w, b, rows, n, 1e-5f);
        CHECK_MSG(maxdiff(y, r, rows * n, &at) <= TOL_ROW, "layernorm n %lld: %g", (long long)n, maxdiff(y, r, rows * n, &at));
        kn_layernorm(nat, x, y, NULL, NULL, rows, n, 1e-6f);
        kn_layernorm(sc, x, r, NULL, NULL, rows, n, 1e-6f);
        CHECK(maxdiff(y, r, rows * n, &at) <= TOL_ROW);
        kn_rmsnorm(nat, x, y, w, rows, n, 1e-6f);
        kn_rmsnorm(sc, x, r, w, rows, n, 1e-6f);
        CHECK_MSG(maxdiff(y, r, rows * n, &at) <= TOL_ROW, "rmsnorm n %lld", (long long)n);
        kn_softmax(nat, x, y, rows, n);
        kn_softmax(sc, x, r, rows, n);
        for (int64_t i = 0; i < rows * n; i++) CHECK_MSG(fabs(y[i] - r[i]) <= 2e-6 * r[i] + 1e-12, "softmax n %lld", (long long)n);
        kn_l2norm(nat, x, y, rows, n, 1e-12f);
        kn_l2norm(sc, x, r, rows, n, 1e-12f);
        CHECK(maxdiff(y, r, rows * n, &at) <= 1e-6);
        /* scalar twins against the definition in double */
        for (int64_t q = 0; q < rows; q++) {
            const float *xr = x + q * n;
            double m = 0, v = 0, ss = 0, mx = -1e30, se = 0;
            for (int64_t i = 0; i < n; i++) { m += xr[i]; ss += (double)xr[i] * xr[i]; mx = fmax(mx, xr[i]); }
            m /= n;
            for (int64_t i = 0; i < n; i++) { v += (xr[i] - m) * (xr[i] - m); se += exp(xr[i] - mx); }
            v /= n;
            kn_layernorm_row_scalar(xr, r, w, b, n, 1e-5f);
            for (int64_t i = 0; i < n; i++) CHECK_NEAR(r[i], (xr[i] - m) / sqrt(v + 1e-5) * w[i] + b[i], 1e-5);
            kn_rmsnorm_row_scalar(xr, r, w, n, 1e-6f);
            for (int64_t i = 0; i < n; i++) CHECK_NEAR(r[i], xr[i] / sqrt(ss / n + 1e-6) * w[i], 1e-5);
            kn_softmax_row_scalar(xr, r, n);
            for (int64_t i = 0; i < n; i++) CHECK_NEAR(r[i], exp(xr[i] - mx) / se, 1e-6);
        }
        free(x); free(w); free(b); free(y); free(r);
    }
    /* softmax with -inf entries (masked scores) and a huge spread */
    float x[9] = {-INFINITY, 0, 1, -INFINITY, 80, -80, 3, 2, -INFINITY}, y[9], r[9];
    kn_softmax(nat, x, y, 1, 9);
    kn_softmax(sc, x, r, 1, 9);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], r[i], 1e-7);
    CHECK(y[0] == 0 && y[3] == 0);
}

static void t_layernorm_ch(const kn_env *nat, const kn_env *sc) {
    static const int64_t C[] = {1, 3, 8, 13, 96};
    static const int64_t HW[] = {1, 7, 8, 9, 17, 64, 131};
    for (int ci = 0; ci < 5; ci++)
        for (int hi = 0; hi < 7; hi++) {
            int64_t N = 1 + (ci + hi) % 2, c = C[ci], hw = HW[hi], n = N * c * hw, at;
            float *x = rnd(n, 2), *w = rnd(c, 1), *b = rnd(c, 1), *y = rnd(n, 1), *r = rnd(n, 1), *t = rnd(n, 1);
            kn_layernorm_ch(nat, x, y, w, b, N, c, hw, 1e-5f);
            kn_layernorm_ch(sc, x, r, w, b, N, c, hw, 1e-5f);
            CHECK_MSG(maxdiff(y, r, n, &at) <= TOL_ROW, "lnch C %lld HW %lld", (long long)c, (long long)hw);
            /* = transpose to tokens, row LayerNorm, transpose back */
            kn_transpose(sc, x, t, N, c, hw);
            kn_layernorm(sc, t, t, w, b, N * hw, c, 1e-5f);
            kn_transpose(sc, t, y, N, hw, c);
            CHECK(maxdiff(y, r, n, &at) <= 1e-5);
            free(x); free(w); free(b); free(y); free(r); free(t);
        }
}

/* Naive attention in double: softmax(scale q kᵀ + mask) v per head. */
static void naive_attn(const kn_attn_args *a, float *out) {
    int grp = a->n_heads / a->n_kv_heads;
    double *s = malloc((size_t)(a->n_kv + 1) * sizeof(double));
    for (int64_t i = 0; i < a->n_q; i++)
        for (int h = 0; h < a->n_heads; h++) {
            int kh = h / grp;
            double mx = -1e300;
            int64_t lim = a->causal ? a->pos0 + i + 1 : a->n_kv;
            if (lim > a->n_kv) lim = a->n_kv;
            for (int64_t j = 0; j < lim; j++) {
                double d = 0;
                for (int e = 0; e < a->head_dim; e++)
                    d += (double)a->q[i * a->q_stride + h * a->head_dim + e] * a->k[j * a->k_stride + kh * a->head_dim + e];
                s[j] = d * a->scale;
                mx = fmax(mx, s[j]);
            }
            double sum = 0;
            for (int64_t j = 0; j < lim; j++) sum += (s[j] = exp(s[j] - mx));
            for (int e = 0; e < a->head_dim; e++) {
                double o = 0;
                for (int64_t j = 0; j < lim; j++) o += s[j] / sum * a->v[j * a->v_stride + kh * a->head_dim + e];
                out[i * a->o_stride + h * a->head_dim + e] = lim > 0 ? (float)o : 0.0f;
            }
        }
    free(s);
}

static void attn_case(const kn_env *e, const char *tag, int64_t nq, int64_t nkv, int nh, int nkvh, int hd,
                      int causal, int64_t pos0, int fused) {
    int64_t qw = (int64_t)nh * hd, kw = (int64_t)nkvh * hd, at;
    kn_attn_args a;
    memset(&a, 0, sizeof a);
    a.n_q = nq; a.n_kv = nkv; a.n_heads = nh; a.n_kv_heads = nkvh; a.head_dim = hd;
    a.scale = 1.0f / sqrtf((float)hd); a.causal = causal; a.pos0 = pos0;
    float *qkv = NULL, *q = NULL, *k = NULL, *v = NULL;
    if (fused) { /* one [n, q|k|v] buffer, as a fused qkv projection writes it (n_q == n_kv) */
        qkv = rnd(nq * (qw + 2 * kw), 2);
        a.q = qkv; a.k = qkv + qw; a.v = qkv + qw + kw;
        a.q_stride = a.k_stride = a.v_stride = qw + 2 * kw;
    } else {
        q = rnd(nq * qw, 2); k = rnd(nkv * kw, 2); v = rnd(nkv * kw, 2);
        a.q = q; a.k = k; a.v = v; a.q_stride = qw; a.k_stride = kw; a.v_stride = kw;
    }
    a.o_stride = qw + 3; /* a padded output row */
    float *out = rnd(nq * a.o_stride, 1), *ref = rnd(nq * a.o_stride, 1);
    memcpy(ref, out, (size_t)(nq * a.o_stride) * sizeof(float));
    a.out = out;
    size_t wf = kn_attention_ws_floats(e, &a);
    float *ws = malloc(wf * sizeof(float));
    CHECK(kn_attention(e, &a, ws, wf) == GLIMPSE_OK);
    CHECK(kn_attention(e, &a, ws, wf - 1) == GLIMPSE_ERR_INVALID_ARG);
    naive_attn(&a, ref);
    CHECK_MSG(maxdiff(out, ref, nq * a.o_stride, &at) <= 1e-5, "attn %s nq %lld nkv %lld h %d/%d hd %d causal %d pos0 %lld: %g",
              tag, (long long)nq, (long long)nkv, nh, nkvh, hd, causal, (long long)pos0, maxdiff(out, ref, nq * a.o_stride, &at));
    /* the same with K also given transposed (as Qwen2's cache keeps it); padding columns hold
     * other finite values, which must not matter */
    int64_t ld = ((nkv + 15) & ~(int64_t)15) + 16;
    float *kt = malloc(sizeof(float) * (size_t)(kw * ld)), *out2 = malloc(sizeof(float) * (size_t)(nq * a.o_stride));
    for (int64_t i = 0; i < kw * ld; i++) kt[i] = 7.0f;
    for (int64_t j = 0; j < nkv; j++)
        for (int64_t c = 0; c < kw; c++) kt[c * ld + j] = a.k[j * a.k_stride + c];
    memcpy(out2, out, sizeof(float) * (size_t)(nq * a.o_stride)); /* same padding as ref */
    a.kt = kt;
    a.kt_ld = ld;
    a.out = out2;
    wf = kn_attention_ws_floats(e, &a);
    free(ws);
    ws = malloc(wf * sizeof(float));
    CHECK(kn_attention(e, &a, ws, wf) == GLIMPSE_OK);
    CHECK_MSG(maxdiff(out2, ref, nq * a.o_stride, &at) <= 1e-5, "attn kt %s nq %lld nkv %lld h %d/%d hd %d: %g", tag,
              (long long)nq, (long long)nkv, nh, nkvh, hd, maxdiff(out2, ref, nq * a.o_stride, &at));
    a.kt_ld = ld - 8; /* not a multiple of 16 */
    CHECK(kn_attention(e, &a, ws, wf) == GLIMPSE_ERR_INVALID_ARG);
    free(kt); free(out2);
    free(qkv); free(q); free(k); free(v); free(out); free(ref); free(ws);
}

static void t_attention(const kn_env *e, const char *tag) {
    attn_case(e, tag, 1, 1, 1, 1, 1, 0, 0, 0);
    attn_case(e, tag, 17, 17, 4, 4, 32, 0, 0, 1);     /* FastViT MHSA, fused qkv */
    attn_case(e, tag, 64, 64, 16, 16, 32, 0, 0, 0);   /* MCi0 stage 3 */
    attn_case(e, tag, 13, 13, 3, 3, 64, 1, 0, 1);     /* causal text (MobileCLIP-B) */
    attn_case(e, tag, 9, 9, 14, 2, 64, 1, 0, 0);      /* Qwen2-0.5B prefill: 14 q heads, 2 kv */
    attn_case(e, tag, 1, 40, 14, 2, 64, 1, 39, 0);    /* decode one token against the cache */
    attn_case(e, tag, 1, 700, 28, 4, 128, 1, 699, 0); /* Qwen2-7B decode: groups of 7 heads, long cache */
    attn_case(e, tag, 5, 23, 6, 3, 7, 1, 18, 0);      /* chunked prefill, odd head_dim */
    attn_case(e, tag, 3, 11, 2, 1, 9, 1, -2, 0);      /* first rows fully masked -> zeros */
    attn_case(e, tag, 7, 300, 2, 2, 128, 0, 0, 0);    /* head_dim 128 (Qwen2-7B size) */
    /* the blocked path (n_q >= 8): several query chunks, K repacked as the causal limit grows */
    attn_case(e, tag, 150, 150, 4, 2, 64, 1, 0, 1);
    attn_case(e, tag, 70, 33, 3, 3, 40, 0, 0, 0);     /* more queries than keys, hd % 32 != 0 */
    attn_case(e, tag, 12, 20, 2, 1, 16, 1, -3, 0);    /* masked first rows in a block */
    attn_case(e, tag, 11, 29, 2, 2, 5, 1, 18, 0);     /* hd < 8 */
}

/* The AVX-512 block kernel must give the AVX2 kernel's bits (same FMA chain per lane) on
 * every shape the blocked paths hand it: 1..4 queries, keys not a multiple of 64, masked
 * queries, head dims with tails. */
static void t_attn_blk_isas(void) {
#if defined(__x86_64__)
    kn_env e = kn_env_native(NULL);
    if (!gl_cpu_has_avx512(&e.cpu)) return;
    static const int hds[] = {1, 5, 16, 32, 40, 64, 72, 128};
    static const int64_t nks[] = {1, 15, 16, 17, 63, 64, 77, 80, 130};
    int cases = 0, bad = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (size_t ki = 0; ki < sizeof nks / sizeof *nks; ki++)
            for (int nq = 1; nq <= KN_ATTN_QB; nq++) {
                int hd = hds[hi];
                int64_t nk = nks[ki], ld = (nk + 15) / 16 * 16 + 16 * (nq & 1);
                float *q = rnd(4 * (int64_t)hd + 3, 5), *kt = rnd(hd * ld, 6), *v = rnd(nk * (hd + 2), 7);
                for (int d = 0; d < hd; d++)
                    for (int64_t j = nk; j < ld; j++) kt[d * ld + j] = 0; /* the documented K^T padding */
                int64_t lim[KN_ATTN_QB];
                for (int r = 0; r < nq; r++) lim[r] = r == 1 ? (nk + 1) / 2 : nk; /* a shorter (causal) row */
                float *s1 = malloc(sizeof(float) * KN_ATTN_QB * ld), *s2 = malloc(sizeof(float) * KN_ATTN_QB * ld);
                float *o1 = rnd(4 * (int64_t)(hd + 1), 8), *o2 = malloc(sizeof(float) * 4 * (hd + 1));
                memcpy(o2, o1, sizeof(float) * 4 * (hd + 1));
                float before = o1[0];
                kn_attn_blk b = {q, hd + 1, nq, kt, ld, v, hd + 2, lim, hd, 0.125f, s1, o1, hd + 1};
                kn_attn_blk_avx2(&b);
                b.s = s2, b.out = o2;
                kn_attn_blk_avx512(&b);
                bad += memcmp(o1, o2, sizeof(float) * 4 * (hd + 1)) != 0 || o2[0] == before;
                cases++;
                free(q); free(kt); free(v); free(s1); free(s2); free(o1); free(o2);
            }
    CHECK_MSG(bad == 0, "kn_attn_blk_avx512 differs from the AVX2 kernel in %d of %d cases", bad, cases);
    /* K^T packing: an exact copy, zeros up to the next multiple of 16, nothing beyond */
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (size_t ki = 0; ki < sizeof nks / sizeof *nks; ki++) {
            int hd = hds[hi];
            int64_t n = nks[ki], n16 = (n + 15) / 16 * 16, ld = n16 + 16, ks = 3 * hd + 5;
            float *k = rnd(n * ks, 9), *kt = malloc(sizeof(float) * hd * ld);
            for (int64_t i = 0; i < hd * ld; i++) kt[i] = 7.0f;
            kn_attn_pack_kt_avx512(k + hd, ks, hd, n, ld, kt);
            int wrong = 0;
            for (int d = 0; d < hd; d++)
                for (int64_t j = 0; j < ld; j++) {
                    float want = j < n ? k[j * ks + hd + d] : j < n16 ? 0.0f : 7.0f;
                    wrong += kt[d * ld + j] != want;
                }
            CHECK_MSG(wrong == 0, "pack_kt hd %d n %lld: %d wrong", hd, (long long)n, wrong);
            free(k); free(kt);
        }
#endif
}

static void t_rope(const kn_env *e) {
    int64_t nt = 5, nh = 3, hd = 64, stride = nh * hd + 5;
    int64_t pos[5] = {0, 1, 7, 1000, 32767};
    float *x = rnd(nt * stride, 1), *y = malloc(nt * stride * sizeof(float));
    memcpy(y, x, nt * stride * sizeof(float));
    kn_rope(e, y, nt, stride, (int)nh, (int)hd, pos, 1e6);
    for (int64_t t = 0; t < nt; t++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < hd; i++) {
                /* HF: q·cos + rotate_half(q)·sin, rotate_half = cat(-x2, x1), freq i mod d/2 */
                int f = i % (hd / 2);
                double ang = pos[t] * pow(1e6, -2.0 * f / hd);
                const float *xr = x + t * stride + h * hd;
                double rh = i < hd / 2 ? -xr[i + hd / 2] : xr[i - hd / 2];
                double want = xr[i] * cos(ang) + rh * sin(ang);
                CHECK_NEAR(y[t * stride + h * hd + i], want, 2e-6);
            }
    for (int t = 0; t < nt; t++) /* padding after the heads untouched */
        for (int i = nh * hd; i < stride; i++) CHECK(y[t * stride + i] == x[t * stride + i]);
    free(x); free(y);
}

int main(void) {
    fprintf(stderr, "test_nn: seed 0x%llx, isa %s\n", (unsigned long long)seed, glimpse_isa());
    gl_pool *p3 = gl_pool_new(3);
    kn_env nat = kn_env_native(NULL), nat3 = kn_env_native(p3), sc = kn_env_scalar(NULL);
    t_acts(&nat, &sc);
    t_acts(&nat3, &sc);
    t_elementwise(&nat3);
    t_rows(&nat, &sc);
    t_rows(&nat3, &sc);
    t_layernorm_ch(&nat3, &sc);
    t_attention(&nat, "native/1");
    t_attention(&nat3, "native/3");
    t_attention(&sc, "scalar");
    t_attn_blk_isas();
    t_rope(&nat3);
    gl_pool_free(p3);
    TEST_DONE();
}
