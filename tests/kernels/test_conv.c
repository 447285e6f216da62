/* Convolutions: kn_conv2d (native ISA, scalar, 1 and 3 threads) against the direct 7-deep loop
 * kn_conv2d_ref, which is itself checked against a tiny hand-computed case. Also BN folding and
 * pools. Fixed seed (printed). */
#include "test.h"
#include "core/pool.h"
#include "kernels/conv.h"
#include "kernels/nn.h"

static uint64_t seed = 0x5eed0c0ffee;

static float *rnd(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = t_rand_f32(&seed);
    return p;
}

/* Runs one case: the op under test on env vs kn_conv2d_ref; tolerance scales with the taps. */
static void run_case(const kn_env *env, const char *tag, int64_t N, int64_t Cin, int64_t H, int64_t W,
                     int64_t Cout, int k, int s, int pad, int groups, kn_act act, int res_mode) {
    kn_conv2d_args a;
    memset(&a, 0, sizeof a);
    a.N = N; a.C_in = Cin; a.H = H; a.W = W; a.C_out = Cout;
    a.kh = a.kw = k; a.stride = s; a.pad_h = a.pad_w = pad; a.groups = groups; a.act = act;
    int64_t Ho, Wo;
    float *x = rnd(N * Cin * H * W), *w = rnd(Cout * Cin / groups * k * k), *b = rnd(Cout);
    a.x = x; a.w = w; a.bias = (res_mode & 4) ? NULL : b; a.y = x; /* y set below */
    if (!kn_conv2d_shape(&a, &Ho, &Wo)) { CHECK_MSG(0, "%s: bad shape", tag); return; }
    int64_t ny = N * Cout * Ho * Wo;
    float *ref = rnd(ny), *y = rnd(ny), *res = rnd(ny);
    kn_conv2d_args r = a;
    r.y = ref;
    r.residual = (res_mode & 3) ? res : NULL;
    CHECK(kn_conv2d_ref(&r) == GLIMPSE_OK);
    a.y = y;
    if ((res_mode & 3) == 1 || (res_mode & 3) == 3) a.residual = res;
    if ((res_mode & 3) == 2) { memcpy(y, res, (size_t)ny * sizeof(float)); a.residual = y; } /* in place */
    size_t wsb = kn_conv2d_ws_size(env, &a);
    CHECK(wsb != SIZE_MAX);
    void *ws = wsb ? malloc(wsb) : NULL;
    int rc = kn_conv2d(env, &a, ws, wsb);
    if ((res_mode & 3) == 2 && act != KN_ACT_NONE && !(groups == Cin && Cout % Cin == 0)) {
        CHECK(rc == GLIMPSE_ERR_INVALID_ARG); /* documented refusal */
    } else {
        CHECK(rc == GLIMPSE_OK);
        double tol = 2e-6 * (Cin / groups * k * k + 4), worst = 0;
        int64_t wi = 0;
        for (int64_t i = 0; i < ny; i++) {
            double d = fabs((double)y[i] - ref[i]);
            if (d > worst || isnan(d)) { worst = isnan(d) ? 1e9 : d; wi = i; }
        }
        CHECK_MSG(worst <= tol, "%s N%lld C%lld->%lld %lldx%lld k%d s%d p%d g%d act%d res%d: worst %g at %lld (%g vs %g)",
                  tag, (long long)N, (long long)Cin, (long long)Cout, (long long)H, (long long)W, k, s, pad,
                  groups, (int)act, res_mode, worst, (long long)wi, y[wi], ref[wi]);
    }
    if (kn_conv2d(env, &a, ws, wsb ? wsb - 1 : 0) != GLIMPSE_ERR_INVALID_ARG && wsb) CHECK(0);
    free(ws); free(x); free(w); free(b); free(ref); free(y); free(res);
}

static void t_ref_small(void) {
    /* 1×1×3×3 input, 2×2 kernel, stride 1, pad 1 → 4×4; hand-checked corners and centre */
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 10, 100, 1000}, y[16];
    kn_conv2d_args a;
    memset(&a, 0, sizeof a);
    a.N = 1; a.C_in = 1; a.H = 3; a.W = 3; a.C_out = 1; a.kh = a.kw = 2; a.stride = 1; a.pad_h = a.pad_w = 1;
    a.groups = 1; a.x = x; a.w = w; a.y = y;
    CHECK(kn_conv2d_ref(&a) == GLIMPSE_OK);
    CHECK_NEAR(y[0], 1000 * 1, 0);             /* only x[0,0] under w[1,1] */
    CHECK_NEAR(y[5], 1 * 1 + 10 * 2 + 100 * 4 + 1000 * 5, 0);
    CHECK_NEAR(y[15], 1 * 9, 0);
    a.stride = 2;
    CHECK(kn_conv2d_ref(&a) == GLIMPSE_OK); /* 2×2 out */
    CHECK_NEAR(y[3], 1 * 5 + 10 * 6 + 100 * 8 + 1000 * 9, 0);
    a.pad_h = 2; /* pad >= k is refused */
    CHECK(kn_conv2d_ref(&a) == GLIMPSE_ERR_INVALID_ARG);
    a.pad_h = 1; a.groups = 2;
    CHECK(kn_conv2d_ref(&a) == GLIMPSE_ERR_INVALID_ARG);
}

static void t_depthwise(const kn_env *env, const char *tag) {
    static const int64_t sizes[] = {1, 7, 8, 9, 17, 31, 67};
    static const int chans[] = {1, 3, 8, 13};
    int cnt = 0;
    for (int si = 0; si < 7; si++)
        for (int ks = 0; ks < 4; ks++) {
            static const int kk[] = {3, 7, 5, 1};
            int k = kk[ks];
            for (int s = 1; s <= 2; s++) {
                int64_t H = sizes[si], W = sizes[(si + ks + s) % 7];
                if (H + 2 * (k / 2) < k || W + 2 * (k / 2) < k) continue;
                int C = chans[(si + ks) % 4];
                int m = (cnt % 3 == 2) ? 2 : 1;
                kn_act act = (kn_act)(cnt % 3 == 0 ? KN_ACT_NONE : cnt % 3 == 1 ? KN_ACT_GELU : KN_ACT_RELU);
                run_case(env, tag, 1 + (cnt % 5 == 0), C, H, W, m * C, k, s, k / 2, C, act, cnt % 4 + (cnt % 7 == 0 ? 4 : 0));
                cnt++;
            }
        }
    /* the model shapes (reduced spatially): RepCPE 7×7 +residual, RepMixer 3×3, stem dw s2,
     * ReparamLargeKernelConv 7×7 s2 ×2 + GELU, conv_exp 3×3 ×2 */
    run_case(env, tag, 1, 24, 16, 16, 24, 7, 1, 3, 24, KN_ACT_NONE, 1);
    /* S0's map widths (64, 32, 16, 8) and odd ones around the 64/32/16-pixel blocks */
    run_case(env, tag, 1, 3, 20, 64, 3, 7, 1, 3, 3, KN_ACT_NONE, 0);
    run_case(env, tag, 1, 4, 9, 32, 4, 3, 1, 1, 4, KN_ACT_NONE, 1);
    run_case(env, tag, 1, 5, 16, 16, 5, 7, 1, 3, 5, KN_ACT_NONE, 0);
    run_case(env, tag, 1, 6, 8, 8, 6, 7, 1, 3, 6, KN_ACT_NONE, 0);
    run_case(env, tag, 1, 2, 7, 130, 4, 7, 2, 3, 2, KN_ACT_GELU, 0);
    run_case(env, tag, 1, 3, 5, 95, 3, 3, 1, 1, 3, KN_ACT_NONE, 3);
    run_case(env, tag, 1, 3, 5, 113, 3, 5, 1, 2, 3, KN_ACT_RELU, 0);
    run_case(env, tag, 1, 16, 33, 20, 16, 3, 1, 1, 16, KN_ACT_NONE, 2);
    run_case(env, tag, 1, 12, 66, 130, 12, 3, 2, 1, 12, KN_ACT_GELU, 0);
    run_case(env, tag, 2, 8, 32, 31, 16, 7, 2, 3, 8, KN_ACT_GELU, 0);
    run_case(env, tag, 1, 16, 8, 8, 32, 3, 1, 1, 16, KN_ACT_SILU, 0);
}

static void t_dense(const kn_env *env, const char *tag) {
    run_case(env, tag, 1, 3, 17, 19, 8, 3, 2, 1, 1, KN_ACT_GELU, 0);       /* stem */
    run_case(env, tag, 2, 3, 9, 8, 5, 3, 1, 1, 1, KN_ACT_NONE, 1);
    run_case(env, tag, 1, 4, 11, 7, 6, 3, 1, 1, 2, KN_ACT_RELU, 0);        /* grouped, dense */
    run_case(env, tag, 1, 6, 10, 10, 9, 5, 2, 2, 3, KN_ACT_NONE, 2);       /* grouped, in place */
    run_case(env, tag, 1, 6, 10, 10, 9, 5, 2, 2, 3, KN_ACT_GELU, 2);       /* refused */
    run_case(env, tag, 2, 13, 7, 9, 17, 1, 1, 0, 1, KN_ACT_GELU, 0);       /* 1×1 */
    run_case(env, tag, 1, 8, 5, 5, 8, 1, 1, 0, 1, KN_ACT_NONE, 2);         /* 1×1, y += conv */
    run_case(env, tag, 1, 3, 8, 8, 4, 4, 4, 0, 1, KN_ACT_NONE, 0);         /* patchify 4×4 s4 */
    run_case(env, tag, 1, 4, 9, 9, 4, 2, 2, 0, 1, KN_ACT_GELU, 4);         /* 2×2 s2, no bias */
    run_case(env, tag, 1, 3, 210, 200, 2, 3, 1, 1, 1, KN_ACT_NONE, 1);     /* im2col in chunks */
    /* few taps, C_out % 16 == 0: kn_conv_row on AVX-512 (the stems) */
    run_case(env, tag, 1, 3, 64, 64, 64, 3, 2, 1, 1, KN_ACT_GELU, 0);      /* MCi stem, 256 px / 4 */
    run_case(env, tag, 2, 3, 37, 41, 32, 3, 2, 1, 1, KN_ACT_GELU, 0);      /* odd sizes, tails */
    run_case(env, tag, 1, 4, 9, 23, 16, 3, 1, 1, 1, KN_ACT_RELU, 4);       /* stride 1, no bias */
    run_case(env, tag, 1, 3, 16, 16, 48, 4, 4, 0, 1, KN_ACT_NONE, 0);      /* patchify */
    run_case(env, tag, 1, 7, 12, 12, 16, 3, 1, 1, 1, KN_ACT_NONE, 0);      /* 63 taps */
    run_case(env, tag, 1, 3, 11, 13, 16, 3, 2, 1, 1, KN_ACT_NONE, 1);      /* residual: GEMM path */
}

static void t_fold_bn(void) {
    /* conv (no bias) then BN must equal the folded conv with bias */
    int64_t C = 5, Cin = 3, H = 6, W = 7, k = 3;
    float *x = rnd(Cin * H * W), *w = rnd(C * Cin * k * k), g[5], be[5], mu[5], var[5], fb[5];
    for (int i = 0; i < C; i++) {
        g[i] = 1.5f + t_rand_f32(&seed);
        be[i] = t_rand_f32(&seed);
        mu[i] = t_rand_f32(&seed);
        var[i] = 0.5f + t_rand_f32(&seed) * 0.4f;
    }
    float *y0 = rnd(C * H * W), *y1 = rnd(C * H * W);
    kn_conv2d_args a;
    memset(&a, 0, sizeof a);
    a.N = 1; a.C_in = Cin; a.H = H; a.W = W; a.C_out = C; a.kh = a.kw = (int)k; a.stride = 1; a.pad_h = a.pad_w = 1;
    a.groups = 1; a.x = x; a.w = w; a.y = y0;
    kn_conv2d_ref(&a);
    for (int o = 0; o < C; o++)
        for (int p = 0; p < H * W; p++)
            y0[o * H * W + p] = (y0[o * H * W + p] - mu[o]) / sqrtf(var[o] + 1e-5f) * g[o] + be[o];
    kn_fold_bn(w, NULL, fb, C, Cin * k * k, g, be, mu, var, 1e-5);
    a.bias = fb; a.y = y1;
    kn_conv2d_ref(&a);
    for (int i = 0; i < C * H * W; i++) CHECK_NEAR(y1[i], y0[i], 2e-5);
    free(x); free(w); free(y0); free(y1);
}

static void t_pools(const kn_env *env) {
    float x[2 * 5 * 5], y[2 * 9], yg[2];
    for (int i = 0; i < 50; i++) x[i] = (float)(i % 7) - 3.0f + (i >= 25 ? 0.5f : 0.0f);
    kn_maxpool2d(env, x, y, 2, 5, 5, 3, 2, 1); /* 3×3 out */
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                float m = -INFINITY, s = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int iy = oy * 2 + ky - 1, ix = ox * 2 + kx - 1;
                        if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
                        float v = x[c * 25 + iy * 5 + ix];
                        m = v > m ? v : m;
                        s += v;
                    }
                CHECK_NEAR(y[c * 9 + oy * 3 + ox], m, 0);
                (void)s;
            }
    kn_avgpool2d(env, x, y, 2, 5, 5, 2, 2, 0);
    CHECK_NEAR(y[0], (x[0] + x[1] + x[5] + x[6]) / 4, 1e-6);
    kn_global_avgpool(env, x, yg, 1, 2, 25);
    double s0 = 0, s1 = 0;
    for (int i = 0; i < 25; i++) { s0 += x[i]; s1 += x[25 + i]; }
    CHECK_NEAR(yg[0], s0 / 25, 1e-6);
    CHECK_NEAR(yg[1], s1 / 25, 1e-6);
}

int main(void) {
    fprintf(stderr, "test_conv: seed 0x%llx, isa %s\n", (unsigned long long)seed, glimpse_isa());
    t_ref_small();
    gl_pool *p3 = gl_pool_new(3);
    kn_env nat1 = kn_env_native(NULL), nat3 = kn_env_native(p3), sc = kn_env_scalar(NULL);
    t_depthwise(&nat1, "native/1");
    t_depthwise(&nat3, "native/3");
    t_depthwise(&sc, "scalar");
    if (kn_use_avx512(&nat1)) { /* the AVX2 kernels too where the native ones are AVX-512 */
        kn_env a2 = kn_env_native(p3);
        a2.cpu.avx512f = false;
        t_depthwise(&a2, "avx2/3");
    }
    t_dense(&nat3, "native/3");
    t_dense(&sc, "scalar");
    t_fold_bn();
    t_pools(&nat3);
    gl_pool_free(p3);
    TEST_DONE();
}
