#!/usr/bin/python3
"""Regenerates tests/data/image/: expected outputs of Pillow (and of torchvision's formulas) for
tests/test_image_golden.c.

Run with Debian's interpreter (Pillow 9.4, numpy, torch):  /usr/bin/python3 tools/make_image_goldens.py

Source images are not stored: both this script and the C test compute them from pattern(w, h,
seed, kind), an integer-only formula (splitmix64 noise, gradients, sharp edges in three regions).
Expected pixels are stored zlib-compressed (RGB8, row-major, each row as the byte-wise difference
from the row above, mod 256); manifest.txt lists the cases.
Encoded inputs for decode tests (JPEG/PNG/WebP variants made with Pillow or by hand) are stored
as files. For truncated copies of each encoded file the manifest records whether Pillow accepts
them, so the C test can check that glimpse agrees.

torchvision is not installed here: Resize(int) and CenterCrop are written from
pytorch/vision torchvision/transforms/functional.py (resize -> F_pil.resize; center_crop).
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "image")
M64 = (1 << 64) - 1
FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def pattern(w, h, seed, kind=0):
    """RGB8 test image; the C twin is t_pattern() in tests/test_image_golden.c."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint64), np.arange(w, dtype=np.uint64),
                          np.arange(3, dtype=np.uint64), indexing="ij")
    with np.errstate(over="ignore"):
        z = (np.uint64(seed) << np.uint64(32)) ^ ((y * np.uint64(w) + x) * np.uint64(3) + c)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    xi, yi, ci = x.astype(np.int64), y.astype(np.int64), c.astype(np.int64)
    region = ((xi * 4) // w + (yi * 4) // h) % 3
    noise = (z & np.uint64(255)).astype(np.int64)
    if kind == 1:
        noise = 120 + (noise & 15)
    elif kind == 2:
        noise = noise * 0 + 77  # flat: keeps the 1024x1024 fixture small
    xg = (xi * 255) // max(w - 1, 1)
    yg = (yi * 255) // max(h - 1, 1)
    grad = (xg * (3 - ci) + yg * ci) // 3
    edge = ((xi // 5 + yi // 3 + ci) & 1) * 250 + 3
    v = np.where(region == 0, noise, np.where(region == 1, grad, edge))
    if kind == 3:  # every row one colour (as in padding): exercises the uniform-row shortcut
        v = np.broadcast_to(v[:, :1, :], v.shape)
    return v.astype(np.uint8)


def tv_resize_dims(w, h, s):
    # torchvision F_pil.resize / _compute_resized_output_size for an int size
    short, long = (w, h) if w <= h else (h, w)
    if short == s:
        return w, h
    new_short, new_long = s, int(s * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def tv_center_crop(arr, ch, cw):
    # torchvision center_crop: zero padding first when the crop is larger, then round-half-even
    h, w = arr.shape[:2]
    if cw > w or ch > h:
        pl = (cw - w) // 2 if cw > w else 0
        pt = (ch - h) // 2 if ch > h else 0
        pr = (cw - w + 1) // 2 if cw > w else 0
        pb = (ch - h + 1) // 2 if ch > h else 0
        arr = np.pad(arr, ((pt, pb), (pl, pr), (0, 0)))
        h, w = arr.shape[:2]
        if cw == w and ch == h:
            return arr
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return arr[top:top + ch, left:left + cw]


def expand2square(arr, fill):
    # LLaVA mm_utils.expand2square
    h, w = arr.shape[:2]
    if w == h:
        return arr
    s = max(w, h)
    im = Image.new("RGB", (s, s), tuple(fill))
    im.paste(Image.fromarray(arr), ((s - w) // 2, (s - h) // 2))
    return np.asarray(im)


class Writer:
    def __init__(self):
        self.lines = []
        self.total = 0

    def blob(self, name, data, compress=True):
        raw = zlib.compress(data, 9) if compress else data
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(raw)
        self.total += len(raw)
        return name

    def expect(self, name, arr):
        # rows stored as differences from the row above (mod 256): smooth images compress better
        a = np.ascontiguousarray(arr, dtype=np.uint8).astype(np.int16)
        d = a.copy()
        d[1:] -= a[:-1]
        return self.blob(name + ".rgb.z", (d % 256).astype(np.uint8).tobytes())

    def line(self, *parts):
        self.lines.append(" ".join(str(p) for p in parts))


def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png_bytes(w, h, depth, color, rows, plte=None, trns=None, interlace=False):
    """Hand-made PNG (Pillow cannot write 16-bit RGB, low bit depths or Adam7). rows: list of
    bytes per row (already packed); for interlace, rows is a function (x, y) -> bytes of a pixel
    and pixels must be byte-aligned (depth >= 8)."""
    s = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 1 if interlace else 0))
    if plte:
        s += png_chunk(b"PLTE", plte)
    if trns:
        s += png_chunk(b"tRNS", trns)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            xs, ys = range(x0, w, dx), range(y0, h, dy)
            if not len(xs):
                continue
            for y in ys:
                raw += b"\x00" + b"".join(rows(x, y) for x in xs)
    else:
        raw = b"".join(b"\x00" + r for r in rows)
    return s + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def pack_bits(vals, depth):
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def pillow_decode(data):
    im = Image.open(io.BytesIO(data))
    return np.asarray(im.convert("RGB"))


def pillow_ok(data):
    try:
        pillow_decode(data)
        return 1
    except Exception:
        return 0


def decode_cases(wr):
    rng = np.random.default_rng(1234)
    src = pattern(83, 61, 40)
    files = {}

    def pil_save(fmt, arr_or_im, **kw):
        im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        return b.getvalue()

    files["jpeg_420.jpg"] = pil_save("JPEG", src, quality=90, subsampling=2)
    files["jpeg_422.jpg"] = pil_save("JPEG", src, quality=90, subsampling=1)
    files["jpeg_444.jpg"] = pil_save("JPEG", src, quality=95, subsampling=0)
    files["jpeg_gray.jpg"] = pil_save("JPEG", Image.fromarray(src).convert("L"), quality=90)
    files["jpeg_prog.jpg"] = pil_save("JPEG", src, quality=85, progressive=True)
    files["jpeg_q80.jpg"] = pil_save("JPEG", pattern(40, 33, 41), quality=80)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation "rotate 90 CW": Pillow's open/convert ignores it, so must we
    files["jpeg_exif_rot.jpg"] = pil_save("JPEG", pattern(21, 35, 47), quality=90, exif=exif.tobytes())
    cmyk = Image.frombytes("CMYK", (37, 29), rng.integers(0, 256, (29, 37, 4), dtype=np.uint8).tobytes())
    files["jpeg_cmyk.jpg"] = pil_save("JPEG", cmyk, quality=92)
    small = pattern(29, 23, 42)
    files["png_rgb8.png"] = pil_save("PNG", small)
    files["png_rgba8.png"] = pil_save("PNG", np.dstack([small, pattern(29, 23, 43)[..., :1]]))
    files["png_l8.png"] = pil_save("PNG", small[..., 0])
    files["png_la8.png"] = pil_save("PNG", Image.fromarray(np.dstack([small[..., 0], small[..., 1]]), "LA"))
    pal = Image.fromarray(small).quantize(40)
    files["png_p8.png"] = pil_save("PNG", pal)
    files["png_p8_trns.png"] = pil_save("PNG", pal, transparency=3)
    files["png_rgb8_trns.png"] = pil_save("PNG", small, transparency=(3, 3, 3))
    w16, h16 = 19, 13
    v16 = rng.integers(0, 65536, (h16, w16, 4), dtype=np.uint64)
    v16[0, :4, 0] = [0, 255, 256, 65535]
    files["png_rgb16.png"] = png_bytes(w16, h16, 16, 2, [v16[y, :, :3].astype(">u2").tobytes() for y in range(h16)])
    files["png_rgba16.png"] = png_bytes(w16, h16, 16, 6, [v16[y].astype(">u2").tobytes() for y in range(h16)])
    files["png_la16.png"] = png_bytes(w16, h16, 16, 4, [v16[y, :, :2].astype(">u2").tobytes() for y in range(h16)])
    g16 = v16[..., 0] % 600  # mostly > 255: Pillow's I -> RGB clips
    files["png_l16.png"] = png_bytes(w16, h16, 16, 0, [g16[y].astype(">u2").tobytes() for y in range(h16)])
    for d in (1, 2, 4):
        vals = rng.integers(0, 1 << d, (h16, w16))
        files["png_l%d.png" % d] = png_bytes(w16, h16, d, 0, [pack_bits(vals[y], d) for y in range(h16)])
        plte = bytes(rng.integers(0, 256, 3 * (1 << d), dtype=np.uint8))
        files["png_p%d.png" % d] = png_bytes(w16, h16, d, 3, [pack_bits(vals[y], d) for y in range(h16)], plte=plte)
    idx = rng.integers(0, 256, (h16, w16))  # indices past a 5-entry palette
    files["png_p8_short.png"] = png_bytes(w16, h16, 8, 3, [bytes(idx[y].astype(np.uint8)) for y in range(h16)],
                                          plte=bytes(range(100, 115)))
    gama = png_bytes(29, 23, 8, 2, [small[y].tobytes() for y in range(23)])
    gama = gama[:33] + png_chunk(b"gAMA", struct.pack(">I", 100000)) + gama[33:]  # gamma is not applied
    files["png_gama.png"] = gama
    il = pattern(21, 17, 44)
    files["png_adam7.png"] = png_bytes(21, 17, 8, 2, lambda x, y: il[y, x].tobytes(), interlace=True)
    wsrc = pattern(45, 31, 45)
    files["webp_lossy.webp"] = pil_save("WEBP", wsrc, quality=80)
    files["webp_lossless.webp"] = pil_save("WEBP", wsrc, lossless=True)
    walpha = np.dstack([wsrc, pattern(45, 31, 46)[..., :1]])
    files["webp_lossy_alpha.webp"] = pil_save("WEBP", walpha, quality=80)
    files["webp_lossless_alpha.webp"] = pil_save("WEBP", walpha, lossless=True)
    files["webp_exif.webp"] = pil_save("WEBP", wsrc, quality=70, exif=exif.tobytes())  # VP8X container

    for name, data in files.items():
        wr.blob(name, data, compress=False)
        exp = pillow_decode(data)
        base = name.rsplit(".", 1)[0]
        wr.line("decode", name, exp.shape[1], exp.shape[0], wr.expect("dec_" + base, exp))
        n = len(data)
        offs = sorted(set(o for o in [0, 1, 2, 3, 8, 12, 20, 33, n // 8, n // 4, n // 2, 3 * n // 4, 7 * n // 8,
                                      n - 40, n - 20, n - 12, n - 5, n - 2, n - 1] if 0 <= o < n))
        for o in offs:
            wr.line("trunc", name, o, pillow_ok(data[:o]))


def resize_cases(wr):
    srcs = {
        "A": (97, 61, 1), "B": (64, 64, 2), "C": (1, 50, 3), "D": (50, 1, 4), "E": (1000, 3, 5),
        "F": (3, 1000, 6), "G": (301, 199, 7), "H": (7, 5, 8), "I": (2, 2, 9), "J": (640, 17, 10),
        "K": (128, 128, 11), "L": (33, 500, 12),
    }
    targets = {
        "A": [(32, 20), (48, 31), (97, 30), (50, 61), (200, 125), (1, 1), (13, 97)],
        "B": [(63, 65), (16, 16), (21, 21), (150, 150)],
        "C": [(1, 10), (5, 50), (3, 7)],
        "D": [(10, 1), (50, 4), (7, 3)],
        "E": [(100, 3), (224, 1), (37, 9)],
        "F": [(3, 100), (1, 224)],
        "G": [(224, 148), (150, 100), (100, 300)],
        "H": [(70, 50), (3, 2)],
        "I": [(5, 3), (1, 1), (256, 3)],
        "J": [(64, 2)],
        "K": [(127, 127), (129, 129), (64, 64)],
        "L": [(16, 224), (32, 31)],
    }
    n = 0
    for (w, h, seed, ow, oh) in [(50, 40, 13, 13, 7), (50, 40, 13, 120, 90), (300, 9, 14, 7, 30)]:
        src = Image.fromarray(pattern(w, h, seed, 3))
        for fname in ("bilinear", "bicubic"):
            exp = np.asarray(src.resize((ow, oh), FILTERS[fname]))
            wr.line("resize", w, h, seed, 3, ow, oh, fname, wr.expect("rs_rows_%dx%d_%dx%d_%s" % (w, h, ow, oh, fname), exp))
            n += 1
    for key, (w, h, seed) in srcs.items():
        src = Image.fromarray(pattern(w, h, seed))
        for (ow, oh) in targets[key]:
            for fname in ("bilinear", "bicubic", "nearest"):
                if fname == "nearest" and (ow * oh) % 3:
                    continue  # a subset is enough for the bonus filter
                exp = np.asarray(src.resize((ow, oh), FILTERS[fname]))
                nm = "rs_%s_%dx%d_%s" % (key, ow, oh, fname)
                wr.line("resize", w, h, seed, 0, ow, oh, fname, wr.expect(nm, exp))
                n += 1
    return n


def pipeline_cases(wr):
    # OpenCLIP / MobileCLIP eval: Resize(S) (shortest side) + CenterCrop(S)
    for (w, h, seed, kind, s, fname) in [(517, 389, 20, 1, 256, "bilinear"), (389, 517, 21, 1, 224, "bilinear"),
                                         (517, 389, 22, 1, 224, "bicubic"), (150, 90, 23, 0, 224, "bicubic"),
                                         (256, 300, 24, 1, 256, "bilinear")]:
        src = Image.fromarray(pattern(w, h, seed, kind))
        rw, rh = tv_resize_dims(w, h, s)
        r = np.asarray(src) if (rw, rh) == (w, h) else np.asarray(src.resize((rw, rh), FILTERS[fname]))
        exp = tv_center_crop(r, s, s)
        wr.line("shortcrop", w, h, seed, kind, s, fname, s, wr.expect("pl_short_%dx%d_%d_%s" % (w, h, s, fname), exp))
    # CenterCrop alone, including a crop larger than the image (zero padding)
    for (w, h, seed, cw, ch) in [(50, 30, 30, 64, 64), (51, 31, 31, 40, 40), (60, 45, 32, 33, 21), (9, 8, 33, 4, 5)]:
        exp = tv_center_crop(pattern(w, h, seed), ch, cw)
        wr.line("crop", w, h, seed, 0, cw, ch, wr.expect("pl_crop_%dx%d_%dx%d" % (w, h, cw, ch), exp))
    # FastVLM: expand2square with the background colour, then 1024 bicubic
    for (w, h, seed, kind, fill, s) in [(300, 200, 25, 2, (0, 0, 0), 1024), (60, 37, 26, 1, (122, 116, 104), 96),
                                        (37, 60, 27, 0, (0, 0, 0), 64)]:
        sq = expand2square(pattern(w, h, seed, kind), fill)
        exp = np.asarray(Image.fromarray(sq).resize((s, s), Image.BICUBIC))
        wr.line("padsq", w, h, seed, kind, fill[0], fill[1], fill[2], s, wr.expect("pl_pad_%dx%d_%d" % (w, h, s), exp))
    # ToTensor + Normalize (torch float32), OpenAI mean/std
    w, h, seed = 16, 12, 28
    arr = pattern(w, h, seed)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073], dtype=torch.float32)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711], dtype=torch.float32)
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous().float().div(255)
    t = t.sub(mean[:, None, None]).div(std[:, None, None])
    wr.line("chw", w, h, seed, 0, wr.blob("chw_%dx%d.f32.z" % (w, h), t.numpy().astype("<f4").tobytes()))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    wr = Writer()
    wr.line("# generated by tools/make_image_goldens.py with Pillow", Image.__version__, "- do not edit")
    decode_cases(wr)
    n = resize_cases(wr)
    pipeline_cases(wr)
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("\n".join(wr.lines) + "\n")
    print("resize cases: %d, fixture bytes: %d" % (n, wr.total), file=sys.stderr)


if __name__ == "__main__":
    main()
