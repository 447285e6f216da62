"""Minimal safetensors writer/reader (the safetensors package is not installed).

File = u64 little-endian header length N, N bytes of JSON header, raw data.
Header: {name: {"dtype": "F32"|"I64"|..., "shape": [...], "data_offsets": [b, e]}}
with offsets relative to the start of the data section. Like the reference
implementation the header is padded with spaces to a multiple of 8 bytes and
tensors are laid out sorted by (dtype size descending, name).
"""
import json
import struct
import numpy as np
import torch

_DT = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16),
       torch.int64: ("I64", np.int64), torch.int32: ("I32", np.int32),
       torch.bfloat16: ("BF16", None)}
_NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def save(tensors, path, metadata=None):
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in items:
        code, npdt = _DT[t.dtype]
        raw = t.detach().contiguous().cpu().numpy().astype(np.dtype(npdt).newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        a = np.frombuffer(data[base + b: base + e], dtype=np.dtype(_NP[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(a.astype(_NP[info["dtype"]]).reshape(info["shape"]))
    return out
