/* fuzz_image.c — libFuzzer target: decode any bytes (4 MP limit), then run the preprocessing
 * steps on whatever decoded (up to 256K pixels). The last input byte picks the resize size and
 * filter so the resampler also sees odd shapes. Seeds: fuzz/corpus/image/ (tiny JPEG/PNG/WebP).
 * Build the library with coverage too: -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    glimpse_image img = {0}, a = {0}, b = {0};
    gl_err err;
    /* Exact-size heap copy: an over-read of the input is then visible to ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    /* Resampling cost grows with the decoded size: only images up to 256K pixels go on to the
     * preprocessing steps, so the fuzzer keeps a useful rate on 4 MP decodes. */
    if (io_image_decode(copy, size, "fuzz", (uint64_t)4 << 20, &img, &err) == 0 &&
        (int64_t)img.width * img.height <= (1 << 18)) {
        unsigned k = size ? data[size - 1] : 0;
        int w = 1 + (int)(k % 37) * 3, h = 1 + (int)((k / 37) % 7) * 11;
        io_filter f = (k & 1) ? IO_FILTER_BICUBIC : (k & 2) ? IO_FILTER_BILINEAR : IO_FILTER_NEAREST;
        if (io_image_resize(&img, w, h, f, &a, &err) == 0) {
            float *chw = malloc((size_t)a.width * a.height * 3 * sizeof(float));
            if (chw) io_image_to_chw(&a, NULL, NULL, chw);
            free(chw);
        }
        io_image_free(&a);
        /* Extreme aspect ratios make huge short-side outputs (as in Python); keep runs fast. */
        int sw, sh, ss = 1 + (int)(k % 64);
        io_short_side_dims(img.width, img.height, ss, &sw, &sh);
        if ((int64_t)sw * sh <= (1 << 20) &&
            io_image_resize_short_side(&img, ss, IO_FILTER_BILINEAR, &a, &err) == 0 &&
            io_image_center_crop(&a, 1 + (int)(k % 50), 1 + (int)(k % 45), &b, &err) == 0)
            io_image_free(&b);
        io_image_free(&a);
        if (img.width <= 512 && img.height <= 512 && io_image_pad_square(&img, NULL, &a, &err) == 0)
            io_image_free(&a);
    }
    io_image_free(&img);
    /* The opt-in scaled JPEG path (DCT scaling) on the same bytes. */
    if (size && (data[size - 1] & 4) && io_image_decode_scaled(copy, size, "fuzz", (uint64_t)4 << 20,
                                                               1 + data[size - 1] % 97, &img, &err) == 0)
        io_image_free(&img);
    free(copy);
    return 0;
}
