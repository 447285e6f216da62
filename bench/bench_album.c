/* bench_album.c — inputs and accuracy figures for the album's end-to-end speed run.
 *
 *   bench_album OUTDIR [N=8] [MODEL]
 *
 * Writes N generated 12-megapixel (4000x3000) "photos" as quality-90 JPEGs into OUTDIR: a 1/f
 * (pink) multi-octave value-noise landscape, a horizon, a few soft discs and fine sensor grain,
 * so the spectrum falls off like a natural photo's instead of being flat (random noise) or empty
 * (flat colours), which is what decides how much the 1/2..1/8 DCT-scaled decode changes.
 * Then, per photo, compares the exact decode path with --fast-decode's
 * (io_image_decode_scaled to a short side >= the model's input size, then the same resize +
 * crop): max / mean absolute difference and PSNR of the model's 8-bit input crop, and, with
 * MODEL, the cosine between the two embeddings (and, for scale, the cosine between different
 * photos). Time the CLI on OUTDIR with and without --fast-decode for images/s
 * (see the album section of BENCHMARKS.md). */
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "glimpse.h"
#include "io/image.h"

static uint64_t rng(uint64_t *s) {
    uint64_t x = *s += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static float urand(uint64_t *s) { return (float)((rng(s) >> 40) * (1.0 / 16777216.0)); }

#define W 4000
#define H 3000

/* one octave of value noise: a (gw+1) x (gh+1) random grid, smoothstep-interpolated */
static void add_octave(float *img, int cell, float amp, uint64_t *s) {
    int gw = W / cell + 2, gh = H / cell + 2;
    float *g = malloc(sizeof(float) * gw * gh * 3);
    for (int i = 0; i < gw * gh * 3; i++) g[i] = (urand(s) - 0.5f) * amp;
    for (int y = 0; y < H; y++) {
        int gy = y / cell;
        float fy = (float)(y % cell) / cell;
        fy = fy * fy * (3 - 2 * fy);
        for (int x = 0; x < W; x++) {
            int gx = x / cell;
            float fx = (float)(x % cell) / cell;
            fx = fx * fx * (3 - 2 * fx);
            const float *a = g + ((size_t)gy * gw + gx) * 3, *b = a + 3, *c = a + (size_t)gw * 3, *d = c + 3;
            float *o = img + ((size_t)y * W + x) * 3;
            for (int k = 0; k < 3; k++) {
                float top = a[k] + (b[k] - a[k]) * fx, bot = c[k] + (d[k] - c[k]) * fx;
                o[k] += top + (bot - top) * fy;
            }
        }
    }
    free(g);
}

static unsigned char *photo(uint64_t seed) {
    uint64_t s = seed * 1000003 + 17;
    float *f = calloc((size_t)W * H * 3, sizeof(float));
    /* sky / ground split with per-photo colours */
    float sky[3], gnd[3];
    for (int k = 0; k < 3; k++) sky[k] = 80 + 150 * urand(&s), gnd[k] = 30 + 120 * urand(&s);
    int horizon = (int)(H * (0.3 + 0.4 * urand(&s)));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++) f[((size_t)y * W + x) * 3 + k] = y < horizon ? sky[k] - 0.02f * y : gnd[k];
    /* 1/f: amplitude proportional to the cell size */
    for (int cell = 1024; cell >= 4; cell /= 2) add_octave(f, cell, 110.0f * cell / 1024 + 14.0f, &s);
    for (int i = 0; i < 5; i++) { /* soft discs: "objects" */
        float cx = W * urand(&s), cy = H * urand(&s), r = 100 + 500 * urand(&s), col[3];
        for (int k = 0; k < 3; k++) col[k] = 255 * urand(&s);
        int y0 = (int)fmaxf(0, cy - r), y1 = (int)fminf(H, cy + r);
        for (int y = y0; y < y1; y++)
            for (int x = (int)fmaxf(0, cx - r); x < (int)fminf(W, cx + r); x++) {
                float d = sqrtf((x - cx) * (x - cx) + (y - cy) * (y - cy));
                float a = d < r - 3 ? 1 : d < r ? (r - d) / 3 : 0;
                float *o = f + ((size_t)y * W + x) * 3;
                for (int k = 0; k < 3; k++) o[k] = o[k] * (1 - a * 0.8f) + col[k] * a * 0.8f;
            }
    }
    unsigned char *p = malloc((size_t)W * H * 3);
    for (size_t i = 0; i < (size_t)W * H * 3; i++) {
        float v = f[i] + (urand(&s) - 0.5f) * 6; /* grain */
        p[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
    }
    free(f);
    return p;
}

static int write_jpeg(const char *path, const unsigned char *p) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, fp);
    ci.image_width = W, ci.image_height = H, ci.input_components = 3, ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)p + (size_t)ci.next_scanline * W * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return fclose(fp);
}

/* the model input crop (short-side resize + centre crop; MobileCLIP2 S0..S4 resize bilinear) */
static int crop(const glimpse_image *in, int S, glimpse_image *out) {
    glimpse_image a = {0};
    gl_err e = {0};
    int rc = io_image_resize_short_side(in, S, IO_FILTER_BILINEAR, &a, &e);
    if (!rc) rc = io_image_center_crop(&a, S, S, out, &e);
    io_image_free(&a);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: bench_album OUTDIR [N] [MODEL]\n"), 2;
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 8;
    const char *model = argc > 3 ? argv[3] : NULL;
    mkdir(dir, 0755);
    glimpse_model *m = NULL;
    glimpse_ctx *c = NULL;
    char err[512];
    int S = 256, d = 0;
    if (model) {
        if (glimpse_model_open(model, NULL, &m, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
        glimpse_ctx_params cp = glimpse_ctx_default_params();
        cp.n_threads = 2;
        glimpse_ctx_new(m, &cp, &c);
        S = glimpse_image_size(m);
        d = glimpse_embed_dim(m);
    }
    float *ex = model ? malloc(sizeof(float) * d * n) : NULL, *fa = model ? malloc(sizeof(float) * d * n) : NULL;
    double worst_cos = 1, worst_psnr = 1e9;
    printf("photo  max|d|  mean|d|  PSNR dB  cos(exact, fast)\n");
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/photo%03d.jpg", dir, i);
        struct stat st;
        if (stat(path, &st)) {
            unsigned char *p = photo((uint64_t)i);
            if (write_jpeg(path, p)) return fprintf(stderr, "cannot write %s\n", path), 1;
            free(p);
        }
        glimpse_image full = {0}, fast = {0}, c1 = {0}, c2 = {0};
        gl_err e = {0};
        if (io_image_load(path, 0, &full, &e) || io_image_load_scaled(path, 0, S, &fast, &e))
            return fprintf(stderr, "%s\n", e.msg), 1;
        crop(&full, S, &c1);
        crop(&fast, S, &c2);
        double mx = 0, sum = 0, se = 0;
        size_t np = (size_t)S * S * 3;
        for (size_t k = 0; k < np; k++) {
            double dd = fabs((double)c1.rgb[k] - c2.rgb[k]);
            mx = dd > mx ? dd : mx, sum += dd, se += dd * dd;
        }
        double psnr = se > 0 ? 10 * log10(255.0 * 255.0 / (se / np)) : 99;
        worst_psnr = psnr < worst_psnr ? psnr : worst_psnr;
        printf("%5d  %6.0f  %7.3f  %7.2f", i, mx, sum / np, psnr);
        if (model) {
            glimpse_embed_images(c, &full, 1, ex + (size_t)i * d, 1);
            glimpse_embed_images(c, &fast, 1, fa + (size_t)i * d, 1);
            double dot = 0;
            for (int k = 0; k < d; k++) dot += (double)ex[(size_t)i * d + k] * fa[(size_t)i * d + k];
            worst_cos = dot < worst_cos ? dot : worst_cos;
            printf("  %.6f  (fast decode %dx%d)", dot, fast.width, fast.height);
        }
        printf("\n");
        io_image_free(&full), io_image_free(&fast), io_image_free(&c1), io_image_free(&c2);
    }
    printf("worst PSNR %.2f dB", worst_psnr);
    if (model && n > 1) {
        double lo = 1, hi = -1;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += (double)ex[(size_t)i * d + k] * ex[(size_t)j * d + k];
                lo = dot < lo ? dot : lo, hi = dot > hi ? dot : hi;
            }
        printf("; worst cos(exact, fast) %.6f; cos between different photos %.6f .. %.6f (%s)", worst_cos, lo, hi,
               glimpse_model_name(m));
    }
    printf("\n");
    free(ex), free(fa);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    return 0;
}
