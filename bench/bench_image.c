/* bench_image.c — decode + preprocess timing on one thread, the photo-indexer hot path.
 *
 *   bench_image [file.jpg|png|webp] [short_side=256] [reps=3]
 *
 * Without a file it encodes a synthetic 4000x3000 (12 MP) 4:2:0 JPEG at quality 90 in memory
 * (smooth gradients plus noise, roughly photo-like entropy). Prints the best of `reps` runs for
 * decode, shortest-side bilinear resize, centre crop and CHW conversion, and the same with the
 * opt-in scaled JPEG decode (libjpeg-turbo DCT scaling), then the FastVLM pad + 1024 path. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>

#include "io/image.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned char *make_jpeg(int w, int h, unsigned long *size) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *buf = NULL;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, size);
    c.image_width = w, c.image_height = h, c.input_components = 3, c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    uint64_t s = 12345;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            int n = (int)((s >> 59) & 15) - 8;
            row[3 * x + 0] = (unsigned char)GL_MAX(0, GL_MIN(255, x * 255 / w + n));
            row[3 * x + 1] = (unsigned char)GL_MAX(0, GL_MIN(255, y * 255 / h + n));
            row[3 * x + 2] = (unsigned char)GL_MAX(0, GL_MIN(255, ((x / 64 + y / 64) & 1) * 160 + 40 + n));
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return buf;
}

static void run(const char *label, const unsigned char *data, size_t size, int s, int scaled, int reps) {
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    int dw = 0, dh = 0;
    float *chw = malloc((size_t)s * s * 3 * sizeof(float));
    for (int r = 0; r < reps; r++) {
        glimpse_image img, rs, cr;
        gl_err err;
        double t0 = now();
        if (io_image_decode_scaled(data, size, "bench", 0, scaled ? s : 0, &img, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        double t1 = now();
        io_image_resize_short_side(&img, s, IO_FILTER_BILINEAR, &rs, &err);
        double t2 = now();
        io_image_center_crop(&rs, s, s, &cr, &err);
        double t3 = now();
        io_image_to_chw(&cr, NULL, NULL, chw);
        double t4 = now();
        double d[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0};
        for (int i = 0; i < 5; i++) best[i] = d[i] < best[i] ? d[i] : best[i];
        dw = img.width, dh = img.height;
        io_image_free(&img), io_image_free(&rs), io_image_free(&cr);
    }
    printf("%-14s decoded %dx%d: decode %.1f ms, resize %.1f ms, crop %.2f ms, chw %.2f ms, total %.1f ms (best of %d)\n",
           label, dw, dh, best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3, best[4] * 1e3, reps);
    free(chw);
}

/* FastVLM: pad to square (black) + 1024x1024 bicubic + CHW, after an exact decode. */
static void run_fastvlm(const unsigned char *data, size_t size, int reps) {
    double best = 1e9;
    float *chw = malloc((size_t)1024 * 1024 * 3 * sizeof(float));
    for (int r = 0; r < reps; r++) {
        glimpse_image img;
        gl_err err;
        if (io_image_decode(data, size, "bench", 0, &img, &err)) exit(1);
        double t0 = now();
        io_prep_pad_square(&img, NULL, 1024, NULL, NULL, chw, &err);
        double t = now() - t0;
        best = t < best ? t : best;
        io_image_free(&img);
    }
    printf("fastvlm        pad square + 1024 bicubic + chw: %.1f ms (best of %d, decode excluded)\n", best * 1e3, reps);
    free(chw);
}

int main(int argc, char **argv) {
    int s = argc > 2 ? atoi(argv[2]) : 256, reps = argc > 3 ? atoi(argv[3]) : 3;
    unsigned char *data = NULL;
    unsigned long size = 0;
    if (argc > 1 && strcmp(argv[1], "-")) {
        FILE *f = fopen(argv[1], "rb");
        if (!f) return perror(argv[1]), 1;
        fseek(f, 0, SEEK_END);
        size = (unsigned long)ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc(size);
        if (fread(data, 1, size, f) != size) return 1;
        fclose(f);
    } else {
        data = make_jpeg(4000, 3000, &size);
        printf("synthetic 4000x3000 JPEG q90 4:2:0, %lu bytes\n", size);
    }
    run("exact", data, size, s, 0, reps);
    run("scaled-decode", data, size, s, 1, reps);
    run_fastvlm(data, size, reps);
    free(data);
    return 0;
}
