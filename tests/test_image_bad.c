/* test_image_bad.c — hostile and broken image input: every call must fail cleanly with the right
 * status and a message naming the file, never crash, never allocate for an oversized header. */
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"

#define DATA GLIMPSE_SOURCE_DIR "/tests/data/image/"

static uint8_t *read_all(const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, DATA "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static int decode(const void *d, size_t n, uint64_t maxp, gl_err *err) {
    glimpse_image img = {0};
    int rc = io_image_decode(d, n, "test.img", maxp, &img, err);
    if (rc == 0) CHECK(img.rgb && img.width > 0 && img.height > 0);
    else CHECK(img.rgb == NULL && img.width == 0 && img.height == 0);
    io_image_free(&img);
    return rc;
}

static void put_be32(uint8_t *p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v; }

/* libpng checks the IHDR CRC, so a crafted header needs a real one. */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

/* Every prefix of a valid file fails with a message naming the file, except cuts in the last
 * `tolerant_tail` bytes: PNG, like Pillow, is complete once all rows are decoded (the zlib
 * trailer, CRC and IEND may be missing); then the pixels must equal the full decode. */
static void test_truncation_everywhere(const char *name, size_t tolerant_tail) {
    size_t n;
    uint8_t *d = read_all(name, &n);
    CHECK_MSG(d != NULL, "missing %s", name);
    if (!d) return;
    gl_err err;
    glimpse_image full = {0};
    CHECK_EQ_INT(io_image_decode(d, n, "test.img", 0, &full, &err), 0);
    int wrong = 0, accepted = 0;
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *c = malloc(cut ? cut : 1); /* exact-size copy so ASan sees any over-read */
        memcpy(c, d, cut);
        glimpse_image img = {0};
        int rc = io_image_decode(c, cut, "test.img", 0, &img, &err);
        if (rc == 0) {
            accepted++;
            if (cut + tolerant_tail < n || img.width != full.width || img.height != full.height ||
                memcmp(img.rgb, full.rgb, (size_t)full.width * full.height * 3))
                wrong++;
        } else if (!strstr(err.msg, "test.img")) {
            wrong++;
        }
        io_image_free(&img);
        free(c);
    }
    CHECK_MSG(wrong == 0, "%s: %d truncated copies decoded wrongly or gave an anonymous error", name, wrong);
    if (tolerant_tail) fprintf(stderr, "%s: %d of %zu prefixes complete\n", name, accepted, n);
    io_image_free(&full);
    free(d);
}

static void test_bitflips(const char *name, uint64_t seed) {
    size_t n;
    uint8_t *d = read_all(name, &n);
    if (!d) return;
    int ok = 0, bad = 0;
    for (int it = 0; it < 300; it++) {
        uint8_t *c = malloc(n);
        memcpy(c, d, n);
        int flips = 1 + (int)(t_rand_u64(&seed) % 8);
        for (int k = 0; k < flips; k++) c[t_rand_u64(&seed) % n] ^= (uint8_t)(1u << (t_rand_u64(&seed) % 8));
        gl_err err;
        if (decode(c, n, 1u << 22, &err) == 0) ok++;
        else bad++;
        free(c);
    }
    CHECK(ok + bad == 300);
    free(d);
}

int main(void) {
    gl_err err;
    uint64_t seed = 0x1e5a9e;
    fprintf(stderr, "seed %llu\n", (unsigned long long)seed);

    /* empty, garbage, magic + garbage */
    CHECK_EQ_INT(decode("", 0, 0, &err), GLIMPSE_ERR_FORMAT);
    CHECK(strstr(err.msg, "test.img") != NULL);
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)t_rand_u64(&seed);
    junk[0] = 0x00;
    CHECK_EQ_INT(decode(junk, sizeof junk, 0, &err), GLIMPSE_ERR_UNSUPPORTED);
    static const char *magics[] = {"\xFF\xD8\xFF", "\x89PNG\r\n\x1a\n", "RIFF\x10\x00\x00\x00WEBP"};
    static const size_t mlen[] = {3, 8, 12};
    for (int m = 0; m < 3; m++) {
        for (int it = 0; it < 50; it++) {
            for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)t_rand_u64(&seed);
            memcpy(junk, magics[m], mlen[m]);
            size_t len = mlen[m] + t_rand_u64(&seed) % (sizeof junk - mlen[m]);
            int rc = decode(junk, len, 0, &err);
            CHECK_MSG(rc != 0, "magic %d + junk decoded", m);
        }
    }

    /* Oversized headers: refused by size before any pixel allocation (30 GB would fail as NOMEM). */
    uint8_t png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    put_be32(png + 16, 100000);
    put_be32(png + 20, 100000);
    png[24] = 8, png[25] = 2;
    put_be32(png + 29, crc32_png(png + 12, 17));
    CHECK_EQ_INT(decode(png, sizeof png, 0, &err), GLIMPSE_ERR_TOO_LARGE);
    CHECK(strstr(err.msg, "test.img") && strstr(err.msg, "100000x100000"));
    put_be32(png + 16, 0); /* zero width: libpng rejects the IHDR */
    put_be32(png + 29, crc32_png(png + 12, 17));
    CHECK_EQ_INT(decode(png, sizeof png, 0, &err), GLIMPSE_ERR_FORMAT);

    size_t n;
    uint8_t *jpg = read_all("jpeg_420.jpg", &n);
    CHECK(jpg != NULL);
    if (jpg) {
        CHECK_EQ_INT(decode(jpg, n, 1000, &err), GLIMPSE_ERR_TOO_LARGE); /* 83x61 > 1000 */
        CHECK(strstr(err.msg, "test.img") != NULL);
        CHECK_EQ_INT(decode(jpg, n, 83 * 61, &err), 0);
        for (size_t i = 0; i + 8 < n; i++) /* SOF0: FF C0 len(2) prec(1) height(2) width(2) */
            if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
                jpg[i + 5] = 0xFF, jpg[i + 6] = 0x00, jpg[i + 7] = 0xFF, jpg[i + 8] = 0x00; /* 65280^2 */
                break;
            }
        CHECK_EQ_INT(decode(jpg, n, 0, &err), GLIMPSE_ERR_TOO_LARGE);
        CHECK_MSG(strstr(err.msg, "65280x65280"), "%s", err.msg);
        free(jpg);
    }
    uint8_t *wp = read_all("webp_lossless.webp", &n);
    if (wp) { /* VP8L header: 14-bit width-1 and height-1 after the 0x2f signature at byte 20 */
        CHECK(wp[20] == 0x2f);
        uint32_t bits = 0x3FFFu | (0x3FFFu << 14);
        wp[21] = bits & 0xFF, wp[22] = (bits >> 8) & 0xFF, wp[23] = (bits >> 16) & 0xFF;
        wp[24] = (uint8_t)((wp[24] & 0xF0) | ((bits >> 24) & 0x0F));
        CHECK_EQ_INT(decode(wp, n, 0, &err), GLIMPSE_ERR_TOO_LARGE);
        free(wp);
    }

    /* Truncation at every offset: JPEG and WebP always fail; PNG only once rows are missing. */
    test_truncation_everywhere("jpeg_420.jpg", 0);
    test_truncation_everywhere("jpeg_prog.jpg", 0);
    test_truncation_everywhere("jpeg_gray.jpg", 0);
    test_truncation_everywhere("webp_lossy_alpha.webp", 0);
    test_truncation_everywhere("webp_lossless.webp", 0);
    test_truncation_everywhere("png_rgb8.png", 24);
    test_truncation_everywhere("png_adam7.png", 24);
    test_truncation_everywhere("png_p4.png", 24);
    test_truncation_everywhere("png_l16.png", 24);

    /* Random bit flips: any outcome but a crash (run under ASan/UBSan in the sanitizer build). */
    static const char *flip[] = {"jpeg_420.jpg", "jpeg_prog.jpg", "jpeg_cmyk.jpg", "png_rgb8.png", "png_adam7.png",
                                 "png_p2.png", "png_l16.png", "webp_lossy.webp", "webp_lossless_alpha.webp"};
    for (size_t i = 0; i < GL_ARRAY_LEN(flip); i++) test_bitflips(flip[i], seed + i);

    /* Allocation failures anywhere in decode + resize: NOMEM or success, never a crash or leak. */
    uint8_t *pj = read_all("png_adam7.png", &n);
    for (long k = 0; pj && k < 12; k++) {
        glimpse_image img = {0}, out = {0};
        gl_alloc_fail_after(k);
        int rc = io_image_decode(pj, n, "a.png", 0, &img, &err);
        if (rc == 0) rc = io_image_resize(&img, 7, 9, IO_FILTER_BICUBIC, &out, &err);
        gl_alloc_fail_after(-1);
        CHECK_MSG(rc == 0 || rc == GLIMPSE_ERR_NOMEM, "fail_after %ld: rc %d (%s)", k, rc, err.msg);
        io_image_free(&img);
        io_image_free(&out);
    }
    free(pj);

    /* Files: missing, directory, empty path, empty file; public API keeps *out on failure. */
    glimpse_image img = {7, 7, (uint8_t *)junk};
    char eb[256] = "";
    CHECK_EQ_INT(glimpse_image_load(DATA "does-not-exist.jpg", 0, &img, eb, sizeof eb), GLIMPSE_ERR_IO);
    CHECK(strstr(eb, "does-not-exist.jpg") != NULL);
    CHECK(img.width == 7 && img.rgb == junk);
    CHECK_EQ_INT(glimpse_image_load(DATA, 0, &img, eb, sizeof eb), GLIMPSE_ERR_IO);
    CHECK(strstr(eb, "directory") != NULL);
    CHECK_EQ_INT(glimpse_image_load("", 0, &img, eb, sizeof eb), GLIMPSE_ERR_INVALID_ARG);
    char tmpl[] = "/tmp/glimpse_empty_XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) {
        close(fd);
        CHECK_EQ_INT(glimpse_image_load(tmpl, 0, &img, eb, sizeof eb), GLIMPSE_ERR_FORMAT);
        CHECK(strstr(eb, tmpl) != NULL);
        unlink(tmpl);
    }
    CHECK_EQ_INT(glimpse_image_load(DATA "png_rgb16.png", 0, &img, eb, sizeof eb), GLIMPSE_OK);
    CHECK(img.width == 19 && img.height == 13 && img.rgb != (uint8_t *)junk);
    glimpse_image_free(&img);
    CHECK(img.rgb == NULL);
    glimpse_image_free(NULL);

    /* Scaled JPEG decoding (opt-in fast path): 83x61, short side >= 20 -> 1/2 -> 42x31. */
    glimpse_image sc = {0};
    CHECK_EQ_INT(io_image_load_scaled(DATA "jpeg_444.jpg", 0, 20, &sc, &err), 0);
    CHECK(sc.width == 42 && sc.height == 31);
    io_image_free(&sc);
    CHECK_EQ_INT(io_image_load_scaled(DATA "jpeg_444.jpg", 0, 8, &sc, &err), 0);
    CHECK(sc.width == 11 && sc.height == 8);
    io_image_free(&sc);
    CHECK_EQ_INT(io_image_load_scaled(DATA "png_rgb8.png", 0, 8, &sc, &err), 0); /* PNG: full size */
    CHECK(sc.width == 29 && sc.height == 23);
    io_image_free(&sc);

    /* Geometry helpers: argument checks and torchvision's size formula. */
    int w, h;
    io_short_side_dims(1000, 3, 224, &w, &h);
    CHECK(w == 74666 && h == 224);
    io_short_side_dims(640, 480, 256, &w, &h);
    CHECK(w == 341 && h == 256);
    io_short_side_dims(480, 640, 224, &w, &h);
    CHECK(w == 224 && h == 298);
    io_short_side_dims(300, 300, 256, &w, &h);
    CHECK(w == 256 && h == 256);
    io_short_side_dims(1, 2000000000, 256, &w, &h);
    CHECK(w == 256 && h == 2147483647);
    glimpse_image thin = {0}, out = {0};
    io_image_alloc(&thin, 100000, 1, NULL);
    memset(thin.rgb, 1, 300000);
    CHECK_EQ_INT(io_image_resize_short_side(&thin, 256, IO_FILTER_BILINEAR, &out, &err), GLIMPSE_ERR_TOO_LARGE);
    CHECK(out.rgb == NULL);
    io_image_free(&thin);
    glimpse_image small = {0};
    io_image_alloc(&small, 2, 1, NULL);
    memset(small.rgb, 9, 6);
    CHECK_EQ_INT(io_image_resize(&small, 0, 5, IO_FILTER_BILINEAR, &out, &err), GLIMPSE_ERR_INVALID_ARG);
    CHECK_EQ_INT(io_image_resize(&small, 5, 5, (io_filter)7, &out, &err), GLIMPSE_ERR_INVALID_ARG);
    CHECK_EQ_INT(io_image_resize(NULL, 5, 5, IO_FILTER_BILINEAR, &out, &err), GLIMPSE_ERR_INVALID_ARG);
    CHECK_EQ_INT(io_image_resize(&small, 2, 1, IO_FILTER_BICUBIC, &out, &err), 0); /* copy */
    CHECK(out.width == 2 && out.rgb[5] == 9);
    io_image_free(&out);
    io_image_free(&small);
    TEST_DONE();
}
