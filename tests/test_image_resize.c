/* test_image_resize.c — the SIMD resampling path against its plain-C twin on random shapes
 * (exact equality: both compute the same integer sums), plus properties that hold for any
 * Pillow-style resize. Bit-exactness against Pillow itself is test_image_golden.c. */
#include "test.h"

#include "io/image.h"

static void rand_image(glimpse_image *img, int w, int h, uint64_t *s) {
    io_image_alloc(img, w, h, NULL);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img->rgb[i] = (uint8_t)t_rand_u64(s);
}

static int resize_with(const char *isa, const glimpse_image *in, int w, int h, io_filter f, glimpse_image *out) {
    if (isa) setenv("GLIMPSE_ISA", isa, 1);
    else unsetenv("GLIMPSE_ISA");
    gl_err err;
    return io_image_resize(in, w, h, f, out, &err);
}

int main(void) {
    uint64_t seed = 20261127;
    fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
    static const int sizes[] = {1, 2, 3, 7, 8, 9, 10, 11, 13, 31, 32, 33, 97, 255, 1000};
    const int ns = (int)GL_ARRAY_LEN(sizes);
    int mismatches = 0, cases = 0;
    for (int it = 0; it < 400; it++) {
        int w = sizes[t_rand_u64(&seed) % ns], h = sizes[t_rand_u64(&seed) % ns];
        int ow = sizes[t_rand_u64(&seed) % ns], oh = sizes[t_rand_u64(&seed) % ns];
        if ((int64_t)w * h > 100000) h = 3;
        if ((int64_t)ow * oh > 100000) oh = 5;
        io_filter f = (it & 1) ? IO_FILTER_BICUBIC : IO_FILTER_BILINEAR;
        glimpse_image src, a = {0}, b = {0};
        rand_image(&src, w, h, &seed);
        int ra = resize_with(NULL, &src, ow, oh, f, &a);
        int rb = resize_with("scalar", &src, ow, oh, f, &b);
        CHECK(ra == 0 && rb == 0);
        if (ra == 0 && rb == 0 && memcmp(a.rgb, b.rgb, (size_t)ow * oh * 3)) {
            mismatches++;
            fprintf(stderr, "SIMD != scalar: %dx%d -> %dx%d filter %d\n", w, h, ow, oh, (int)f);
        }
        cases++;
        io_image_free(&src), io_image_free(&a), io_image_free(&b);
    }
    CHECK_EQ_INT(mismatches, 0);

    /* A constant image stays constant (weights sum to 1 in fixed point, up to rounding that
     * Pillow shares: allow the value itself only). */
    glimpse_image c, o;
    io_image_alloc(&c, 37, 23, NULL);
    memset(c.rgb, 200, 37 * 23 * 3);
    for (int f = 2; f <= 3; f++) {
        CHECK_EQ_INT(resize_with(NULL, &c, 101, 7, (io_filter)f, &o), 0);
        int bad = 0;
        for (int i = 0; i < 101 * 7 * 3; i++) bad += o.rgb[i] != 200;
        CHECK_EQ_INT(bad, 0);
        io_image_free(&o);
    }
    io_image_free(&c);
    unsetenv("GLIMPSE_ISA");
    fprintf(stderr, "%d random shapes compared\n", cases);
    TEST_DONE();
}
