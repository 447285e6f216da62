/* image_decode.c — JPEG / PNG / WebP to RGB8, the way Pillow 9.4's Image.open(p).convert('RGB')
 * sees them. Behaviours reproduced on purpose (each checked against Pillow by the goldens):
 *  - JPEG: libjpeg-turbo defaults (ISLOW DCT, fancy upsampling), as Pillow's decoder uses them.
 *    4-channel JPEGs are CMYK or YCCK; Pillow always unpacks them as inverted ("CMYK;I", "assume
 *    adobe conventions") and converts CMYK -> RGB as nk = 255 - K, R = nk - C*nk/255 with the
 *    rounding division (t = a*b + 128; (t + (t >> 8)) >> 8). A premature end of data is an error
 *    (Pillow: "image file is truncated"); other libjpeg warnings are ignored, as Pillow does.
 *  - PNG: 16-bit RGB/RGBA/LA keep the high byte; 16-bit gray is Pillow mode "I" and its
 *    conversion to RGB clips, so values >= 255 become 255; 1/2/4-bit gray scale to 0..255;
 *    palette indices past the PLTE entries map to gray (i, i, i); tRNS and alpha are dropped;
 *    gamma / colour chunks are ignored. A truncated PNG is good iff every row decoded (Pillow
 *    does not need the zlib trailer, the IDAT CRC or IEND).
 *  - WebP: libwebp's default RGB output (fancy upsampling); alpha dropped, not composited.
 *    Animated WebP is refused (Pillow would give the first frame).
 * Nothing here prints: libjpeg's output_message and libpng's warning hook are silenced. */
#include "io/image.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <webp/decode.h>

#define NAME(n) ((n) ? (n) : "<memory>")

io_image_format io_image_sniff(const void *data, size_t size) {
    const uint8_t *p = data;
    if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return IO_IMG_JPEG;
    if (size >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) return IO_IMG_PNG;
    if (size >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) return IO_IMG_WEBP;
    return IO_IMG_UNKNOWN;
}

static int check_dims(const char *name, uint64_t w, uint64_t h, uint64_t max_pixels, gl_err *err) {
    if (w == 0 || h == 0)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image has zero size (%llux%llu)", NAME(name),
                          (unsigned long long)w, (unsigned long long)h);
    if (w > INT32_MAX || h > INT32_MAX || w * h > max_pixels)
        return gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "%s: %llux%llu image exceeds the limit of %llu pixels",
                          NAME(name), (unsigned long long)w, (unsigned long long)h,
                          (unsigned long long)max_pixels);
    return GLIMPSE_OK;
}

/* ---- JPEG ------------------------------------------------------------------------------- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int eof; /* libjpeg hit the end of the data and inserted a fake EOI */
    char msg[JMSG_LENGTH_MAX];
} jpeg_ctx;

static void j_error_exit(j_common_ptr c) {
    jpeg_ctx *j = (jpeg_ctx *)c->err;
    c->err->format_message(c, j->msg);
    longjmp(j->jb, 1);
}

static void j_emit_message(j_common_ptr c, int level) {
    if (level < 0) {
        jpeg_ctx *j = (jpeg_ctx *)c->err;
        if (c->err->msg_code == JWRN_JPEG_EOF) j->eof = 1;
        c->err->num_warnings++;
    }
}

static void j_output_message(j_common_ptr c) { (void)c; }

static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Separate function so the locals of the caller survive longjmp (only *st is touched after). */
typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx jerr;
    uint8_t *rgb;
    uint8_t *row;
} jpeg_state;

static int decode_jpeg(const uint8_t *data, size_t size, const char *name, uint64_t max_pixels,
                       int min_short, glimpse_image *out, gl_err *err) {
    jpeg_state *st = gl_calloc(1, sizeof *st);
    if (!st) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", NAME(name));
    int rc = GLIMPSE_OK;
    st->cinfo.err = jpeg_std_error(&st->jerr.pub);
    st->jerr.pub.error_exit = j_error_exit;
    st->jerr.pub.emit_message = j_emit_message;
    st->jerr.pub.output_message = j_output_message;
    if (setjmp(st->jerr.jb)) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: %s%s", NAME(name),
                        st->jerr.eof ? "image file is truncated: " : "corrupt JPEG: ", st->jerr.msg);
        goto done;
    }
    jpeg_create_decompress(&st->cinfo);
    jpeg_mem_src(&st->cinfo, data, (unsigned long)size);
    jpeg_read_header(&st->cinfo, TRUE);
    if (st->jerr.eof) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image file is truncated (JPEG header)", NAME(name));
        goto done;
    }
    rc = check_dims(name, st->cinfo.image_width, st->cinfo.image_height, max_pixels, err);
    if (rc) goto done;
    int nc = st->cinfo.num_components;
    if (nc == 1) {
        st->cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (nc == 3) {
        st->cinfo.out_color_space = JCS_RGB;
    } else if (nc == 4) {
        st->cinfo.out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK */
    } else {
        rc = gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: JPEG with %d components", NAME(name), nc);
        goto done;
    }
    if (min_short > 0) {
        unsigned s = GL_MIN(st->cinfo.image_width, st->cinfo.image_height);
        unsigned d = 8;
        while (d > 1 && (s + d - 1) / d < (unsigned)min_short) d /= 2;
        st->cinfo.scale_num = 1;
        st->cinfo.scale_denom = d;
    }
    jpeg_start_decompress(&st->cinfo);
    int w = (int)st->cinfo.output_width, h = (int)st->cinfo.output_height;
    int oc = st->cinfo.output_components;
    size_t npix = (size_t)w * (size_t)h; /* bounded by max_pixels, checked above */
    st->rgb = gl_malloc(npix * 3);
    /* Several rows per call: with 2x2 chroma libjpeg then upsamples straight into our rows
     * instead of through its one-row spare buffer. */
    enum { JROWS = 16 };
    st->row = gl_malloc((size_t)w * (size_t)oc * JROWS);
    if (!st->rgb || !st->row) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory for %dx%d", NAME(name), w, h);
        goto done;
    }
    while (st->cinfo.output_scanline < st->cinfo.output_height) {
        unsigned y0 = st->cinfo.output_scanline, nr = GL_MIN((unsigned)JROWS, st->cinfo.output_height - y0);
        JSAMPROW rows[JROWS];
        for (unsigned i = 0; i < nr; i++)
            rows[i] = oc == 3 ? st->rgb + (size_t)(y0 + i) * w * 3 : st->row + (size_t)i * w * oc;
        unsigned got = jpeg_read_scanlines(&st->cinfo, rows, nr);
        if (got == 0) break;
        for (unsigned i = 0; i < got && oc != 3; i++) {
            uint8_t *dst = st->rgb + (size_t)(y0 + i) * w * 3;
            const uint8_t *src = rows[i];
            if (oc == 1) {
                for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
            } else {
                for (int x = 0; x < w; x++) {
                    const uint8_t *p = src + 4 * x;
                    int c = 255 - p[0], m = 255 - p[1], y = 255 - p[2], nk = p[3]; /* nk = 255 - (255 - k) */
                    int r = nk - muldiv255(c, nk), g = nk - muldiv255(m, nk), b = nk - muldiv255(y, nk);
                    dst[3 * x + 0] = (uint8_t)(r < 0 ? 0 : r);
                    dst[3 * x + 1] = (uint8_t)(g < 0 ? 0 : g);
                    dst[3 * x + 2] = (uint8_t)(b < 0 ? 0 : b);
                }
            }
        }
        if (st->jerr.eof) break;
    }
    if (!st->jerr.eof) jpeg_finish_decompress(&st->cinfo);
    if (st->jerr.eof) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image file is truncated (premature end of JPEG data)",
                        NAME(name));
        goto done;
    }
    out->width = w;
    out->height = h;
    out->rgb = st->rgb;
    st->rgb = NULL;
done:
    jpeg_destroy_decompress(&st->cinfo);
    gl_free(st->rgb);
    gl_free(st->row);
    gl_free(st);
    return rc;
}

/* ---- PNG -------------------------------------------------------------------------------- */

/* libpng's progressive (push) reader: rows arrive through a callback as soon as zlib has
 * produced them. That gives Pillow's rule for truncated files: the image is good if every row
 * was decoded, whatever is missing after the image data (zlib trailer, CRC, IEND), and bad
 * otherwise. */
typedef struct png_state {
    const char *name;
    uint64_t max_pixels;
    gl_err *err;
    int rc;          /* set by callbacks before they png_error out */
    char msg[128];
    png_structp png;
    png_infop info;
    int w, h, color, depth16, interlaced;
    size_t rowbytes;
    long rows_seen, rows_expected; /* non-interlaced: rows delivered / h */
    int last_pass, last_row;       /* Adam7: the image is complete once this row of this pass came */
    int done;
    uint8_t *rgb, *raw;
    uint8_t (*pal)[3];
} png_state;

static void p_error(png_structp png, png_const_charp msg) {
    png_state *st = png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void p_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* One decoded libpng row -> RGB8. */
static void png_convert_row(const uint8_t *src, uint8_t *dst, int w, int color, int depth16,
                            const uint8_t pal[256][3]) {
    switch (color) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth16) {
            for (int x = 0; x < w; x++) {
                unsigned v = (unsigned)src[2 * x] << 8 | src[2 * x + 1];
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = (uint8_t)(v > 255 ? 255 : v);
            }
        } else {
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[2 * x];
        break;
    case PNG_COLOR_TYPE_PALETTE:
        for (int x = 0; x < w; x++) memcpy(dst + 3 * x, pal[src[x]], 3);
        break;
    case PNG_COLOR_TYPE_RGB:
        memcpy(dst, src, (size_t)w * 3);
        break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
        for (int x = 0; x < w; x++) memcpy(dst + 3 * x, src + 4 * x, 3);
        break;
    }
}

static void p_fail(png_state *st, int code) {
    st->rc = code;
    png_error(st->png, st->err ? st->err->msg : "error");
}

/* Called once the header chunks are read (at the first IDAT): set up transforms and buffers. */
static void p_info(png_structp png, png_infop info) {
    png_state *st = png_get_progressive_ptr(png);
    png_uint_32 w32, h32;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &color, &interlace, NULL, NULL);
    int rc = check_dims(st->name, w32, h32, st->max_pixels, st->err);
    if (rc) p_fail(st, rc);
    st->w = (int)w32, st->h = (int)h32, st->color = color;
    if (color == PNG_COLOR_TYPE_PALETTE) {
        uint8_t(*pal)[3] = st->pal = gl_malloc(256 * sizeof *pal);
        if (!pal) p_fail(st, gl_err_set(st->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", NAME(st->name)));
        /* Pillow 9.4 palettes start as a gray ramp; PLTE overwrites the first entries. */
        for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
        png_colorp plte = NULL;
        int np = 0;
        if (png_get_PLTE(png, info, &plte, &np) & PNG_INFO_PLTE)
            for (int i = 0; i < np && i < 256; i++) pal[i][0] = plte[i].red, pal[i][1] = plte[i].green, pal[i][2] = plte[i].blue;
        if (depth < 8) png_set_packing(png); /* one index per byte, unscaled */
    } else if (color == PNG_COLOR_TYPE_GRAY && depth == 16) {
        st->depth16 = 1; /* kept: Pillow clips 16-bit gray ("I" mode) instead of shifting */
    } else {
        if (depth == 16) png_set_strip_16(png); /* high byte, as Pillow's ;16B unpackers */
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    st->rowbytes = png_get_rowbytes(png, info);
    size_t need = (size_t)st->w * (color == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : color == PNG_COLOR_TYPE_RGB ? 3
                                   : (color == PNG_COLOR_TYPE_GRAY_ALPHA || st->depth16) ? 2 : 1);
    if (st->rowbytes < need)
        p_fail(st, gl_err_set(st->err, GLIMPSE_ERR_INTERNAL, "%s: unexpected PNG row size", NAME(st->name)));
    st->interlaced = passes > 1;
    st->rows_expected = st->h;
    if (st->interlaced) { /* the last non-empty Adam7 pass and its last row */
        static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
        static const int dy[7] = {8, 8, 8, 4, 4, 2, 2};
        for (int p = 0; p < 7; p++)
            if (st->w > x0[p] && st->h > y0[p]) st->last_pass = p, st->last_row = y0[p] + (st->h - 1 - y0[p]) / dy[p] * dy[p];
    }
    st->rgb = gl_malloc((size_t)st->w * (size_t)st->h * 3);
    if (!st->rgb)
        p_fail(st, gl_err_set(st->err, GLIMPSE_ERR_NOMEM, "%s: out of memory for %dx%d", NAME(st->name), st->w, st->h));
    if (st->interlaced) { /* libpng combines passes into the previous content of each row */
        size_t total;
        if (!gl_mul_ok(st->rowbytes, (size_t)st->h, &total))
            p_fail(st, gl_err_set(st->err, GLIMPSE_ERR_TOO_LARGE, "%s: image too large", NAME(st->name)));
        st->raw = gl_calloc(1, total);
        if (!st->raw)
            p_fail(st, gl_err_set(st->err, GLIMPSE_ERR_NOMEM, "%s: out of memory for %dx%d", NAME(st->name), st->w, st->h));
    }
}

static void p_row(png_structp png, png_bytep row, png_uint_32 y, int pass) {
    png_state *st = png_get_progressive_ptr(png);
    if (!row || y >= (png_uint_32)st->h) return; /* NULL: a row this pass leaves unchanged */
    if (st->interlaced) {
        /* libpng may hand a pass row over for several image rows; only order matters here */
        png_progressive_combine_row(png, st->raw + (size_t)y * st->rowbytes, row);
        if (pass == st->last_pass && (int)y >= st->last_row) st->done = 1;
    } else {
        png_convert_row(row, st->rgb + (size_t)y * st->w * 3, st->w, st->color, st->depth16,
                        (const uint8_t(*)[3])st->pal);
        if (++st->rows_seen >= st->rows_expected) st->done = 1;
    }
}

static int decode_png(const uint8_t *data, size_t size, const char *name, uint64_t max_pixels,
                      glimpse_image *out, gl_err *err) {
    /* The size limit is checked on the IHDR bytes before libpng reads further chunks, so a
     * header-only file claiming a huge image is refused as TOO_LARGE, not as truncated. */
    if (size >= 24 && !memcmp(data + 12, "IHDR", 4)) {
        uint32_t hw = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
        uint32_t hh = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
        int rc = hw && hh ? check_dims(name, hw, hh, max_pixels, err) : 0;
        if (rc) return rc;
    }
    png_state *st = gl_calloc(1, sizeof *st);
    if (!st) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", NAME(name));
    gl_err local = {0};
    st->name = name, st->max_pixels = max_pixels, st->err = err ? err : &local;
    int rc = GLIMPSE_OK;
    st->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, st, p_error, p_warning);
    if (st->png) st->info = png_create_info_struct(st->png);
    if (!st->png || !st->info) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", NAME(name));
        goto done;
    }
    if (setjmp(png_jmpbuf(st->png))) {
        /* An error after the last row (a damaged chunk past the image data) does not matter to
         * Pillow either: the pixels are complete. */
        if (!st->rc && st->rgb && st->done) goto complete;
        rc = st->rc ? st->rc : gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: corrupt PNG: %s", NAME(name), st->msg);
        goto done;
    }
    png_set_progressive_read_fn(st->png, st, p_info, p_row, NULL);
    png_process_data(st->png, st->info, (png_bytep)data, size);
    if (!st->rgb || !st->done) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image file is truncated (PNG image data incomplete)", NAME(name));
        goto done;
    }
complete:
    if (st->interlaced)
        for (int y = 0; y < st->h; y++)
            png_convert_row(st->raw + (size_t)y * st->rowbytes, st->rgb + (size_t)y * st->w * 3, st->w, st->color,
                            st->depth16, (const uint8_t(*)[3])st->pal);
    out->width = st->w;
    out->height = st->h;
    out->rgb = st->rgb;
    st->rgb = NULL;
done:
    png_destroy_read_struct(st->png ? &st->png : NULL, st->info ? &st->info : NULL, NULL);
    gl_free(st->pal);
    gl_free(st->rgb);
    gl_free(st->raw);
    gl_free(st);
    return rc;
}

/* ---- WebP ------------------------------------------------------------------------------- */

static int decode_webp(const uint8_t *data, size_t size, const char *name, uint64_t max_pixels,
                       glimpse_image *out, gl_err *err) {
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) return gl_err_set(err, GLIMPSE_ERR_INTERNAL, "%s: libwebp version mismatch", NAME(name));
    VP8StatusCode s = WebPGetFeatures(data, size, &cfg.input);
    if (s == VP8_STATUS_NOT_ENOUGH_DATA)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image file is truncated (WebP header)", NAME(name));
    if (s != VP8_STATUS_OK) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: corrupt WebP header (status %d)", NAME(name), (int)s);
    if (cfg.input.has_animation)
        return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: animated WebP is not supported", NAME(name));
    int rc = check_dims(name, (uint64_t)(cfg.input.width > 0 ? cfg.input.width : 0),
                        (uint64_t)(cfg.input.height > 0 ? cfg.input.height : 0), max_pixels, err);
    if (rc) return rc;
    int w = cfg.input.width, h = cfg.input.height;
    size_t n = (size_t)w * (size_t)h * 3;
    uint8_t *rgb = gl_malloc(n);
    if (!rgb) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory for %dx%d", NAME(name), w, h);
    cfg.output.colorspace = MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = rgb;
    cfg.output.u.RGBA.stride = w * 3;
    cfg.output.u.RGBA.size = n;
    s = WebPDecode(data, size, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (s != VP8_STATUS_OK) {
        gl_free(rgb);
        if (s == VP8_STATUS_NOT_ENOUGH_DATA)
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image file is truncated (WebP data)", NAME(name));
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: corrupt WebP data (status %d)", NAME(name), (int)s);
    }
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return GLIMPSE_OK;
}

/* ---- entry points ----------------------------------------------------------------------- */

int io_image_decode_scaled(const void *data, size_t size, const char *name, uint64_t max_pixels,
                           int min_short, glimpse_image *out, gl_err *err) {
    if (!out) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "%s: no output image", NAME(name));
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!data && size) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "%s: no data", NAME(name));
    if (size == 0) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: empty file", NAME(name));
    if (max_pixels == 0) max_pixels = GLIMPSE_DEFAULT_MAX_PIXELS;
    switch (io_image_sniff(data, size)) {
    case IO_IMG_JPEG: return decode_jpeg(data, size, name, max_pixels, min_short, out, err);
    case IO_IMG_PNG: return decode_png(data, size, name, max_pixels, out, err);
    case IO_IMG_WEBP: return decode_webp(data, size, name, max_pixels, out, err);
    default: break;
    }
    return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: not a JPEG, PNG or WebP image", NAME(name));
}

int io_image_decode(const void *data, size_t size, const char *name, uint64_t max_pixels,
                    glimpse_image *out, gl_err *err) {
    return io_image_decode_scaled(data, size, name, max_pixels, 0, out, err);
}

static int read_file(const char *path, uint8_t **data, size_t *size, gl_err *err) {
    struct stat sb;
    *data = NULL;
    *size = 0;
    if (stat(path, &sb) != 0) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    /* Read in growing chunks rather than trusting st_size (pipes, files that change). */
    size_t cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 1 << 16, n = 0;
    uint8_t *buf = gl_malloc(cap);
    if (!buf) {
        fclose(f);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory for file", path);
    }
    for (;;) {
        if (n == cap) {
            size_t nc;
            if (!gl_mul_ok(cap, 2, &nc)) break;
            uint8_t *nb = gl_realloc(buf, nc);
            if (!nb) {
                gl_free(buf);
                fclose(f);
                return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory for file", path);
            }
            buf = nb, cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        gl_free(buf);
        return gl_err_set(err, GLIMPSE_ERR_IO, "%s: read error", path);
    }
    *data = buf;
    *size = n;
    return GLIMPSE_OK;
}

int io_image_load_scaled(const char *path, uint64_t max_pixels, int min_short, glimpse_image *out,
                         gl_err *err) {
    if (out) out->width = out->height = 0, out->rgb = NULL;
    if (!path || !out) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "image: NULL path or output");
    if (!path[0]) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "image: empty path");
    uint8_t *data;
    size_t size;
    int rc = read_file(path, &data, &size, err);
    if (rc) return rc;
    rc = io_image_decode_scaled(data, size, path, max_pixels, min_short, out, err);
    gl_free(data);
    return rc;
}

int io_image_load(const char *path, uint64_t max_pixels, glimpse_image *out, gl_err *err) {
    return io_image_load_scaled(path, max_pixels, 0, out, err);
}

glimpse_status glimpse_image_load(const char *path, uint64_t max_pixels, glimpse_image *out,
                                  char *errbuf, size_t errlen) {
    gl_err e = {0};
    glimpse_image img; /* the public contract leaves *out untouched on failure */
    int rc = io_image_load(path, max_pixels, &img, &e);
    if (rc) gl_err_copy(&e, errbuf, errlen);
    else if (out) *out = img;
    return (glimpse_status)rc;
}

glimpse_status glimpse_image_decode(const void *data, size_t size, const char *name,
                                    uint64_t max_pixels, glimpse_image *out, char *errbuf,
                                    size_t errlen) {
    gl_err e = {0};
    glimpse_image img;
    int rc = io_image_decode(data, size, name, max_pixels, out ? &img : NULL, &e);
    if (rc) gl_err_copy(&e, errbuf, errlen);
    else *out = img;
    return (glimpse_status)rc;
}
