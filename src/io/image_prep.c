/* image_prep.c — the geometric and numeric preprocessing steps of the reference pipelines.
 *
 * Sources for the formulas (read, not copied):
 *  - torchvision transforms/functional.py + functional_pil.py: Resize(int) on a PIL image keeps
 *    the aspect ratio with short, long = (w, h) if w <= h else (h, w) and
 *    new_long = int(size * long / short) (Python true division, then truncation); an image whose
 *    short side already equals size is returned as is. CenterCrop pads a too-small image with 0
 *    (left/top = (crop - size) // 2, right/bottom = (crop - size + 1) // 2), then crops at
 *    top = int(round((h - ch) / 2.0)), left likewise (Python round: half to even).
 *  - LLaVA mm_utils.expand2square: a square canvas of side max(w, h) filled with the background
 *    colour, the image pasted at ((S - w) // 2, (S - h) // 2).
 *  - torchvision ToTensor + Normalize: x.float().div(255), then (x - mean) / std, in float32. */
#include "io/image.h"

#include <string.h>

int io_image_alloc(glimpse_image *img, int w, int h, gl_err *err) {
    size_t n;
    img->width = img->height = 0;
    img->rgb = NULL;
    if (w < 1 || h < 1) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "image: bad size %dx%d", w, h);
    if (!gl_mul_ok((size_t)w, (size_t)h, &n) || !gl_mul_ok(n, 3, &n))
        return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "image: %dx%d too large", w, h);
    img->rgb = gl_malloc(n);
    if (!img->rgb) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "image: out of memory for %dx%d", w, h);
    img->width = w;
    img->height = h;
    return GLIMPSE_OK;
}

void io_image_free(glimpse_image *img) {
    if (!img) return;
    gl_free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

void glimpse_image_free(glimpse_image *img) { io_image_free(img); }

void io_short_side_dims(int w, int h, int s, int *out_w, int *out_h) {
    int shrt = w <= h ? w : h, lng = w <= h ? h : w;
    /* s * long is exact in double; the division is correctly rounded like Python's int / int.
     * Results past INT_MAX (absurd aspect ratios) saturate; callers then refuse the size. */
    double d = shrt > 0 ? (double)s * (double)lng / (double)shrt : 0.0;
    int nl = d >= 2147483647.0 ? 2147483647 : (int)d;
    if (shrt == s) nl = lng;
    if (w <= h) {
        *out_w = s;
        *out_h = nl;
    } else {
        *out_w = nl;
        *out_h = s;
    }
}

int io_image_resize_short_side(const glimpse_image *in, int s, io_filter filter,
                               glimpse_image *out, gl_err *err) {
    if (!in || !in->rgb || in->width < 1 || in->height < 1 || s < 1) {
        if (out) out->width = out->height = 0, out->rgb = NULL;
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "resize: bad image or size %d", s);
    }
    int w, h;
    io_short_side_dims(in->width, in->height, s, &w, &h);
    out->width = out->height = 0, out->rgb = NULL;
    if (w < 1 || h < 1) /* cannot happen for s >= 1, kept for safety */
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "resize: %dx%d to short side %d gives an empty image",
                          in->width, in->height, s);
    /* A 100000x1 image at short side 256 would need 25.6 G pixels: refuse, as the decoder would. */
    if ((uint64_t)w * (uint64_t)h > GLIMPSE_DEFAULT_MAX_PIXELS)
        return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "resize: %dx%d to short side %d needs %dx%d pixels, over the limit",
                          in->width, in->height, s, w, h);
    return io_image_resize(in, w, h, filter, out, err);
}

/* Python's round(v / 2.0) for an integer v: half to even. */
static int half_round_even(int v) {
    int q = v >= 0 ? v / 2 : -((-v) / 2);
    if (v % 2 == 0) return q;
    /* v odd: exact .5 tie; pick the even neighbour of q and q +- 1 */
    int other = v > 0 ? q + 1 : q - 1;
    return (q % 2 == 0) ? q : other;
}

int io_image_center_crop(const glimpse_image *in, int cw, int ch, glimpse_image *out, gl_err *err) {
    if (!in || !in->rgb || in->width < 1 || in->height < 1 || cw < 1 || ch < 1) {
        if (out) out->width = out->height = 0, out->rgb = NULL;
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "crop: bad image or size %dx%d", cw, ch);
    }
    int rc = io_image_alloc(out, cw, ch, err);
    if (rc) return rc;
    /* Position of the source image's (0,0) inside the crop window: padding first, then crop. */
    int w = in->width, h = in->height, ox = 0, oy = 0;
    if (cw > w) ox = (cw - w) / 2, w = cw;
    if (ch > h) oy = (ch - h) / 2, h = ch;
    int left = half_round_even(w - cw), top = half_round_even(h - ch);
    ox -= left;
    oy -= top;
    memset(out->rgb, 0, (size_t)cw * ch * 3);
    for (int y = 0; y < ch; y++) {
        int sy = y - oy;
        if (sy < 0 || sy >= in->height) continue;
        int x0 = GL_MAX(0, ox), x1 = GL_MIN(cw, ox + in->width);
        if (x1 > x0)
            memcpy(out->rgb + ((size_t)y * cw + x0) * 3, in->rgb + ((size_t)sy * in->width + (x0 - ox)) * 3,
                   (size_t)(x1 - x0) * 3);
    }
    return GLIMPSE_OK;
}

int io_image_pad_square(const glimpse_image *in, const uint8_t fill[3], glimpse_image *out,
                        gl_err *err) {
    if (!in || !in->rgb || in->width < 1 || in->height < 1) {
        if (out) out->width = out->height = 0, out->rgb = NULL;
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "pad: bad image");
    }
    int s = GL_MAX(in->width, in->height);
    int rc = io_image_alloc(out, s, s, err);
    if (rc) return rc;
    static const uint8_t black[3] = {0, 0, 0};
    if (!fill) fill = black;
    int ox = (s - in->width) / 2, oy = (s - in->height) / 2;
    uint8_t *p = out->rgb;
    for (size_t i = 0; i < (size_t)s * s; i++, p += 3) p[0] = fill[0], p[1] = fill[1], p[2] = fill[2];
    for (int y = 0; y < in->height; y++)
        memcpy(out->rgb + ((size_t)(y + oy) * s + ox) * 3, in->rgb + (size_t)y * in->width * 3,
               (size_t)in->width * 3);
    return GLIMPSE_OK;
}

void io_image_to_chw(const glimpse_image *in, const float mean[3], const float std[3], float *out) {
    size_t n = (size_t)in->width * in->height;
    for (int c = 0; c < 3; c++) {
        float m = mean ? mean[c] : 0.0f, s = std ? std[c] : 1.0f;
        float *dst = out + (size_t)c * n;
        const uint8_t *src = in->rgb + c;
        /* Same two float32 roundings as torch: div(255), then sub and div. */
        for (size_t i = 0; i < n; i++) dst[i] = ((float)src[3 * i] / 255.0f - m) / s;
    }
}

int io_prep_clip(const glimpse_image *in, int size, io_filter filter, const float mean[3],
                 const float std[3], float *out, gl_err *err) {
    glimpse_image r = {0}, c = {0};
    int rc = io_image_resize_short_side(in, size, filter, &r, err);
    if (!rc) rc = io_image_center_crop(&r, size, size, &c, err);
    if (!rc) io_image_to_chw(&c, mean, std, out);
    io_image_free(&r);
    io_image_free(&c);
    return rc;
}

int io_prep_pad_square(const glimpse_image *in, const uint8_t fill[3], int size, const float mean[3],
                       const float std[3], float *out, gl_err *err) {
    glimpse_image p = {0}, r = {0};
    int rc = io_image_pad_square(in, fill, &p, err);
    if (!rc) rc = io_image_resize(&p, size, size, IO_FILTER_BICUBIC, &r, err);
    if (!rc) io_image_to_chw(&r, mean, std, out);
    io_image_free(&p);
    io_image_free(&r);
    return rc;
}
