#!/usr/bin/python3
"""Writes the small weight-file fixtures of tests/test_io*.c into tests/data/io/.

Run with Debian's python (it has torch):  /usr/bin/python3 tools/make_io_fixtures.py
The outputs are committed, so the tests need no torch. Files:
  model.pt        torch.save(state_dict): f32/f16/bf16/i64, a transposed (strided) tensor, a
                  slice (storage offset), two tensors sharing one storage, a 0-dim and a 4-dim one
  nested.pt       torch.save({"state_dict": {"module." + k: v}, "epoch": 3, "args": {...}})
  deflate.pt      model.pt re-zipped with deflate (entries inflated by the reader)
  zip64.pt        model.pt re-zipped by hand with zip64 central records and end records
  model.safetensors, sharded/ (two shards + model.safetensors.index.json), ocdir/open_clip_model.safetensors
  expected.json   per tensor: dtype, shape and values (as float, exact for these dtypes)
The safetensors writer is our own (the `safetensors` package is not installed): the format is an
8-byte little-endian header length, a JSON header padded with spaces to 8 bytes, then data.
"""
import json, os, struct, sys, zipfile, zlib
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "io")
DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32"}


def state_dict():
    g = torch.Generator().manual_seed(1234)
    r = lambda *s: torch.randn(*s, generator=g)
    base_t = r(3, 4)
    base_s = r(8, 3)
    shared = r(6)
    sd = {
        "embed.weight": r(5, 4),
        "ln.weight": r(4).half(),
        "ln.bias": r(4).bfloat16(),
        "pos_ids": torch.arange(6, dtype=torch.int64).reshape(1, 6) * 1000 - 7,
        "counts": torch.tensor([1, -2, 3], dtype=torch.int32),
        "proj.weight": base_t.t(),            # strides (1, 4): copied by the reader
        "slice.weight": base_s[2:5],          # storage offset 6: a view
        "shared.a": shared,                   # shares storage with shared.b
        "shared.b": shared[2:],
        "scale": torch.tensor(0.125),         # 0-dim
        "conv.weight": r(2, 3, 2, 2),
        "half.t": r(3, 2).half().t(),         # strided f16
        "empty": torch.zeros(0, 3),
    }
    assert not sd["proj.weight"].is_contiguous() and sd["slice.weight"].storage_offset() == 6
    return sd


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    hdr, off, blobs = {}, 0, []
    if metadata:
        hdr["__metadata__"] = metadata
    for k, t in tensors.items():
        b = tensor_bytes(t)
        hdr[k] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rezip_deflate(src, dst):
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info.filename))


def rezip_zip64(src, dst):
    """Stored entries, central records with all sizes/offsets in the zip64 extra field, then a
    zip64 end record + locator + classic end record with 0xFFFF.. placeholders (as big torch files)."""
    with zipfile.ZipFile(src) as zi:
        entries = [(i.filename.encode(), zi.read(i.filename)) for i in zi.infolist()]
    out, central = bytearray(), bytearray()
    for name, data in entries:
        crc = zlib.crc32(data)
        off = len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra))
        out += name + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(name), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF)
        central += name + cextra
    cd_off = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(dst, "wb").write(out)


def main():
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "ocdir"), exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(OUT, "model.pt"))
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3,
                "args": {"lr": 0.5, "name": "x", "flags": [True, False, None]}},
               os.path.join(OUT, "nested.pt"))
    rezip_deflate(os.path.join(OUT, "model.pt"), os.path.join(OUT, "deflate.pt"))
    rezip_zip64(os.path.join(OUT, "model.pt"), os.path.join(OUT, "zip64.pt"))
    for p in ("deflate.pt", "zip64.pt"):  # torch itself must agree these are valid
        back = torch.load(os.path.join(OUT, p))
        assert all(torch.equal(back[k], v) for k, v in sd.items()), p
    write_safetensors(os.path.join(OUT, "model.safetensors"), sd, {"format": "pt"})
    write_safetensors(os.path.join(OUT, "ocdir", "open_clip_model.safetensors"), sd)
    names = list(sd)
    shards = {"model-00001-of-00002.safetensors": names[:6], "model-00002-of-00002.safetensors": names[6:]}
    wmap = {}
    for fn, ks in shards.items():
        write_safetensors(os.path.join(OUT, "sharded", fn), {k: sd[k] for k in ks})
        wmap.update({k: fn for k in ks})
    json.dump({"metadata": {"total_size": 0}, "weight_map": wmap},
              open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w"), indent=1)
    exp = {k: {"dtype": DT[v.dtype], "shape": list(v.shape), "values": v.float().flatten().tolist()}
           for k, v in sd.items()}
    json.dump(exp, open(os.path.join(OUT, "expected.json"), "w"), indent=0)
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
