/* image.h — images exactly as the reference Python pipelines see them.
 *
 * Decoding matches Pillow's Image.open(p).convert('RGB') (JPEG via libjpeg-turbo with its default
 * ISLOW DCT and fancy upsampling, PNG via libpng, WebP via libwebp): alpha dropped, palette and
 * gray expanded, 16-bit samples reduced the way Pillow's unpackers reduce them, CMYK converted
 * with Pillow's formula, EXIF orientation not applied. The format comes from the magic bytes.
 *
 * Resizing is Pillow's Image.resize (reducing_gap=None, the default): a two-pass separable filter,
 * horizontal pass first into a uint8 intermediate, then vertical; filter support widened by the
 * downscale factor (antialiasing); weights normalised per output pixel and rounded to 22-bit
 * fixed point. NEAREST follows Pillow's affine scaling path (accumulated float positions).
 * Bit-exactness against Pillow 9.4 is checked by tests/test_image_resize.c.
 *
 * The preprocessing helpers reproduce torchvision's Resize(int) / CenterCrop on PIL images
 * (OpenCLIP eval transform used by MobileCLIP) and LLaVA's expand2square (FastVLM).
 *
 * All functions are thread-safe (no globals). Images are glimpse_image (RGB8, stride 3*width);
 * outputs are allocated with gl_malloc and released with io_image_free. On failure the output
 * image is left empty ({0, 0, NULL}). */
#ifndef GL_IO_IMAGE_H
#define GL_IO_IMAGE_H

#include "core/common.h"

/* Pillow's resampling filter ids (Image.Resampling). */
typedef enum io_filter {
    IO_FILTER_NEAREST = 0,
    IO_FILTER_BILINEAR = 2,
    IO_FILTER_BICUBIC = 3,
} io_filter;

typedef enum io_image_format {
    IO_IMG_UNKNOWN = 0,
    IO_IMG_JPEG = 1,
    IO_IMG_PNG = 2,
    IO_IMG_WEBP = 3,
} io_image_format;

/* The format named by the first bytes of a file (at least 12 bytes are needed for WebP). */
io_image_format io_image_sniff(const void *data, size_t size);

/* Decodes a whole in-memory file. name is used in messages only (may be NULL). max_pixels = 0
 * means GLIMPSE_DEFAULT_MAX_PIXELS; larger images fail with GLIMPSE_ERR_TOO_LARGE before any
 * pixel buffer is allocated. Truncated files are errors (Pillow: "image file is truncated"). */
int io_image_decode(const void *data, size_t size, const char *name, uint64_t max_pixels,
                    glimpse_image *out, gl_err *err);
int io_image_load(const char *path, uint64_t max_pixels, glimpse_image *out, gl_err *err);

/* Opt-in fast path (`--fast-decode`): for JPEG, libjpeg-turbo's DCT scaling by 1/2, 1/4 or 1/8,
 * the largest reduction that keeps the shorter side >= min_short. Not bit-exact with the
 * reference pipeline (the image is smaller before resizing). Other formats decode normally.
 * max_pixels applies to the full-size header dimensions. */
int io_image_load_scaled(const char *path, uint64_t max_pixels, int min_short, glimpse_image *out,
                         gl_err *err);
int io_image_decode_scaled(const void *data, size_t size, const char *name, uint64_t max_pixels,
                           int min_short, glimpse_image *out, gl_err *err);

/* Allocates an uninitialised w x h image (w, h >= 1). */
int io_image_alloc(glimpse_image *img, int w, int h, gl_err *err);
void io_image_free(glimpse_image *img);

/* Pillow Image.resize(size=(w, h), resample=filter). A same-size resize is a copy. */
int io_image_resize(const glimpse_image *in, int w, int h, io_filter filter, glimpse_image *out,
                    gl_err *err);

/* torchvision Resize(s) output size: the shorter side becomes s, the longer
 * int(s * long / short) (truncated); ties (w == h) count the width as the short side.
 * io_image_resize_short_side refuses outputs over GLIMPSE_DEFAULT_MAX_PIXELS (TOO_LARGE). */
void io_short_side_dims(int w, int h, int s, int *out_w, int *out_h);
int io_image_resize_short_side(const glimpse_image *in, int s, io_filter filter,
                               glimpse_image *out, gl_err *err);

/* torchvision CenterCrop((ch, cw)): top = round((h - ch) / 2) with round-half-to-even, same for
 * left; an image smaller than the crop is first padded with 0 (left/top get the floor half). */
int io_image_center_crop(const glimpse_image *in, int cw, int ch, glimpse_image *out, gl_err *err);

/* LLaVA expand2square: a max(w,h) square of colour fill with the image pasted at
 * ((S - w) / 2, (S - h) / 2) (floor). A square input is copied. */
int io_image_pad_square(const glimpse_image *in, const uint8_t fill[3], glimpse_image *out,
                        gl_err *err);

/* uint8 RGB -> float planar CHW [3][h][w]: v = ((float)x / 255 - mean[c]) / std[c], in float32
 * exactly as torchvision ToTensor + Normalize compute it. mean/std NULL = 0/1. Also exact for
 * HF CLIPImageProcessor (FastVLM): its float64 x * (1/255) cast to float32 equals the float32
 * x / 255 for all 256 values (checked), and its normalize is the same float32 arithmetic. */
void io_image_to_chw(const glimpse_image *in, const float mean[3], const float std[3], float *out);

/* The two model pipelines end to end, writing float CHW (3 x size x size) into out:
 *  io_prep_clip: OpenCLIP / MobileCLIP eval transform: shortest side -> size (filter), centre
 *    crop size x size, to_chw with mean/std (NULL = 0/1).
 *  io_prep_pad_square: FastVLM (LLaVA "pad"): expand2square with fill (NULL = black), bicubic
 *    resize to size x size, to_chw with mean/std. */
int io_prep_clip(const glimpse_image *in, int size, io_filter filter, const float mean[3],
                 const float std[3], float *out, gl_err *err);
int io_prep_pad_square(const glimpse_image *in, const uint8_t fill[3], int size, const float mean[3],
                       const float std[3], float *out, gl_err *err);

#endif
