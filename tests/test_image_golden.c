/* test_image_golden.c — decode, resize and preprocessing outputs against Pillow / torchvision.
 *
 * tests/data/image/manifest.txt (made by tools/make_image_goldens.py) lists the cases; source
 * images come from t_pattern(), the twin of the script's pattern(). Every case must match with
 * zero differing pixels; a failure prints how many pixels differ and the first one. The whole
 * manifest runs twice: with this CPU's SIMD path and with GLIMPSE_ISA=scalar. */
#include "test.h"

#include <zlib.h>

#include "io/image.h"

#define DATA GLIMPSE_SOURCE_DIR "/tests/data/image/"

/* Twin of pattern() in tools/make_image_goldens.py. */
static void t_pattern(glimpse_image *img, int w, int h, uint64_t seed, int kind) {
    io_image_alloc(img, w, h, NULL);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                uint64_t z = (seed << 32) ^ (((uint64_t)y * w + x) * 3 + c);
                z += 0x9E3779B97F4A7C15ull;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                z ^= z >> 31;
                int region = ((x * 4) / w + (y * 4) / h) % 3, v;
                int noise = (int)(z & 255);
                if (kind == 1) noise = 120 + (noise & 15);
                if (kind == 2) noise = 77;
                int xg = (x * 255) / (w > 1 ? w - 1 : 1), yg = (y * 255) / (h > 1 ? h - 1 : 1);
                if (region == 0) v = noise;
                else if (region == 1) v = (xg * (3 - c) + yg * c) / 3;
                else v = ((x / 5 + y / 3 + c) & 1) * 250 + 3;
                img->rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)v;
            }
    if (kind == 3) /* every row one colour: its first pixel */
        for (int y = 0; y < h; y++)
            for (int x = 1; x < w; x++) memcpy(img->rgb + ((size_t)y * w + x) * 3, img->rgb + (size_t)y * w * 3, 3);
}

static uint8_t *read_all(const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, DATA "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

/* Expected RGB8 w x h: zlib, rows stored as differences from the row above. */
static uint8_t *load_expected(const char *name, int w, int h) {
    size_t zn;
    uint8_t *z = read_all(name, &zn);
    if (!z) return NULL;
    uLongf n = (uLongf)w * h * 3;
    uint8_t *px = malloc(n + 1);
    int zr = uncompress(px, &n, z, zn);
    free(z);
    if (zr != Z_OK || n != (uLongf)w * h * 3) {
        free(px);
        return NULL;
    }
    size_t row = (size_t)w * 3;
    for (int y = 1; y < h; y++)
        for (size_t i = 0; i < row; i++) px[y * row + i] = (uint8_t)(px[y * row + i] + px[(y - 1) * row + i]);
    return px;
}

static int n_cases, n_failed;

static void compare(const char *what, const glimpse_image *got, const char *expfile, int w, int h) {
    n_cases++;
    uint8_t *exp = load_expected(expfile, w, h);
    CHECK_MSG(exp != NULL, "%s: cannot load %s", what, expfile);
    if (!exp) {
        n_failed++;
        return;
    }
    CHECK_MSG(got->width == w && got->height == h, "%s: size %dx%d, expected %dx%d", what, got->width,
              got->height, w, h);
    if (got->width == w && got->height == h && got->rgb) {
        long diff = 0, first = -1;
        int maxd = 0;
        for (long i = 0; i < (long)w * h; i++) {
            int d = 0;
            for (int c = 0; c < 3; c++) d = GL_MAX(d, abs(got->rgb[3 * i + c] - exp[3 * i + c]));
            if (d) {
                if (first < 0) first = i;
                diff++;
                maxd = GL_MAX(maxd, d);
            }
        }
        CHECK_MSG(diff == 0, "%s: %ld of %ld pixels differ (max %d), first at (%ld,%ld): got %d,%d,%d want %d,%d,%d",
                  what, diff, (long)w * h, maxd, first % w, first / w, got->rgb[3 * first], got->rgb[3 * first + 1],
                  got->rgb[3 * first + 2], exp[3 * first], exp[3 * first + 1], exp[3 * first + 2]);
        if (diff) n_failed++;
    } else {
        n_failed++;
    }
    free(exp);
}

/* The one-call pipelines must give to_chw of the step-by-step result (checked above). */
static void check_prep(const glimpse_image *src, const glimpse_image *steps, int pad, int size, io_filter f,
                       const uint8_t fill[3]) {
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    size_t n = (size_t)size * size * 3;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    gl_err err;
    int rc = pad ? io_prep_pad_square(src, fill, size, mean, std, a, &err) : io_prep_clip(src, size, f, mean, std, a, &err);
    CHECK_EQ_INT(rc, 0);
    if (steps->width == size && steps->height == size) {
        io_image_to_chw(steps, mean, std, b);
        CHECK_MSG(!memcmp(a, b, n * sizeof(float)), "io_prep_%s(%d) differs from its steps", pad ? "pad_square" : "clip", size);
    }
    free(a), free(b);
}

static io_filter parse_filter(const char *s) {
    if (!strcmp(s, "nearest")) return IO_FILTER_NEAREST;
    if (!strcmp(s, "bilinear")) return IO_FILTER_BILINEAR;
    return IO_FILTER_BICUBIC;
}

static void run_manifest(void) {
    FILE *mf = fopen(DATA "manifest.txt", "r");
    CHECK_MSG(mf != NULL, "missing %s", DATA "manifest.txt");
    if (!mf) return;
    char line[1024], cur_name[256] = "";
    uint8_t *cur = NULL;
    size_t cur_n = 0;
    int n_trunc = 0, n_trunc_stricter = 0;
    while (fgets(line, sizeof line, mf)) {
        char kind[32], a[256], b[256], fname[64];
        int w, h, seed, k, ow, oh, s, r, g, bl;
        gl_err err = {0};
        glimpse_image src = {0}, out = {0}, tmp = {0};
        if (line[0] == '#' || sscanf(line, "%31s", kind) != 1) continue;
        if (!strcmp(kind, "decode") && sscanf(line, "%*s %255s %d %d %255s", a, &w, &h, b) == 4) {
            size_t n;
            uint8_t *data = read_all(a, &n);
            CHECK_MSG(data != NULL, "missing %s", a);
            if (!data) continue;
            int rc = io_image_decode(data, n, a, 0, &out, &err);
            CHECK_MSG(rc == 0, "%s: %s", a, err.msg);
            if (rc == 0) compare(a, &out, b, w, h);
            io_image_free(&out);
            free(cur);
            cur = data, cur_n = n;
            snprintf(cur_name, sizeof cur_name, "%s", a);
        } else if (!strcmp(kind, "trunc") && sscanf(line, "%*s %255s %d %d", a, &ow, &k) == 3) {
            /* Same file as the preceding decode line: a truncated copy at offset ow. */
            if (strcmp(a, cur_name) || !cur) continue;
            uint8_t *cut = malloc(ow > 0 ? (size_t)ow : 1);
            memcpy(cut, cur, (size_t)ow);
            int rc = io_image_decode(cut, (size_t)ow, a, 0, &out, &err);
            n_trunc++;
            if (!k) CHECK_MSG(rc != 0, "%s cut at %d/%zu: Pillow refuses it, glimpse decoded it", a, ow, cur_n);
            if (k && rc) n_trunc_stricter++;
            if (rc) CHECK_MSG(err.msg[0] && strstr(err.msg, a), "%s: message should name the file: '%s'", a, err.msg);
            io_image_free(&out);
            free(cut);
        } else if (!strcmp(kind, "resize") &&
                   sscanf(line, "%*s %d %d %d %d %d %d %63s %255s", &w, &h, &seed, &k, &ow, &oh, fname, b) == 8) {
            t_pattern(&src, w, h, (uint64_t)seed, k);
            int rc = io_image_resize(&src, ow, oh, parse_filter(fname), &out, &err);
            CHECK_MSG(rc == 0, "%s", err.msg);
            snprintf(a, sizeof a, "resize %dx%d -> %dx%d %s", w, h, ow, oh, fname);
            compare(a, &out, b, ow, oh);
        } else if (!strcmp(kind, "shortcrop") &&
                   sscanf(line, "%*s %d %d %d %d %d %63s %d %255s", &w, &h, &seed, &k, &s, fname, &ow, b) == 8) {
            t_pattern(&src, w, h, (uint64_t)seed, k);
            int rc = io_image_resize_short_side(&src, s, parse_filter(fname), &tmp, &err);
            if (!rc) rc = io_image_center_crop(&tmp, ow, ow, &out, &err);
            CHECK_MSG(rc == 0, "%s", err.msg);
            snprintf(a, sizeof a, "short side %d + crop %d of %dx%d %s", s, ow, w, h, fname);
            compare(a, &out, b, ow, ow);
            check_prep(&src, &out, 0, s, parse_filter(fname), NULL);
        } else if (!strcmp(kind, "crop") && sscanf(line, "%*s %d %d %d %d %d %d %255s", &w, &h, &seed, &k, &ow, &oh, b) == 7) {
            t_pattern(&src, w, h, (uint64_t)seed, k);
            int rc = io_image_center_crop(&src, ow, oh, &out, &err);
            CHECK_MSG(rc == 0, "%s", err.msg);
            snprintf(a, sizeof a, "center crop %dx%d of %dx%d", ow, oh, w, h);
            compare(a, &out, b, ow, oh);
        } else if (!strcmp(kind, "padsq") &&
                   sscanf(line, "%*s %d %d %d %d %d %d %d %d %255s", &w, &h, &seed, &k, &r, &g, &bl, &s, b) == 9) {
            t_pattern(&src, w, h, (uint64_t)seed, k);
            uint8_t fill[3] = {(uint8_t)r, (uint8_t)g, (uint8_t)bl};
            int rc = io_image_pad_square(&src, fill, &tmp, &err);
            if (!rc) rc = io_image_resize(&tmp, s, s, IO_FILTER_BICUBIC, &out, &err);
            CHECK_MSG(rc == 0, "%s", err.msg);
            snprintf(a, sizeof a, "pad square + %d bicubic of %dx%d", s, w, h);
            compare(a, &out, b, s, s);
            check_prep(&src, &out, 1, s, IO_FILTER_BICUBIC, fill);
        } else if (!strcmp(kind, "chw") && sscanf(line, "%*s %d %d %d %d %255s", &w, &h, &seed, &k, b) == 5) {
            static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
            static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
            t_pattern(&src, w, h, (uint64_t)seed, k);
            size_t zn, n = (size_t)w * h * 3;
            uint8_t *z = read_all(b, &zn);
            float *exp = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
            uLongf dn = n * sizeof(float);
            CHECK(z && uncompress((Bytef *)exp, &dn, z, zn) == Z_OK && dn == n * sizeof(float));
            io_image_to_chw(&src, mean, std, got);
            long bad = 0;
            for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &exp[i], sizeof(float)) != 0;
            CHECK_MSG(bad == 0, "to_chw: %ld of %zu floats differ from torch", bad, n);
            n_cases++;
            free(z), free(exp), free(got);
        } else {
            CHECK_MSG(0, "bad manifest line: %s", line);
        }
        io_image_free(&src);
        io_image_free(&tmp);
        io_image_free(&out);
    }
    fclose(mf);
    free(cur);
    fprintf(stderr, "[ISA %s] golden cases: %d, failed: %d; truncated inputs: %d (%d accepted by Pillow but refused here)\n",
            getenv("GLIMPSE_ISA") ? getenv("GLIMPSE_ISA") : "auto", n_cases, n_failed, n_trunc, n_trunc_stricter);
    n_cases = n_failed = 0;
}

int main(void) {
    run_manifest(); /* the best SIMD path of this CPU */
    setenv("GLIMPSE_ISA", "scalar", 1);
    run_manifest(); /* the plain-C reference path */
    TEST_DONE();
}
