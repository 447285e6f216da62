#!/usr/bin/env python3
"""Rewrites a GGUF file without some metadata keys (e.g. a 49k-token vocabulary), keeping every
tensor byte for byte: used to make small fuzz seeds from files `glimpse convert` wrote.

usage: tools/gguf_strip.py IN.gguf OUT.gguf [KEY_PREFIX ...]   (default prefix: tokenizer.)
Layout: github.com/ggml-org/ggml docs/gguf.md (v3, little-endian)."""
import struct
import sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def read_value(b, o, t):
    if t == 8:
        n = struct.unpack_from('<Q', b, o)[0]
        return o + 8 + n
    if t == 9:
        et, n = struct.unpack_from('<IQ', b, o)
        o += 12
        for _ in range(n):
            o = read_value(b, o, et)
        return o
    return o + SIZES[t]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    drop = sys.argv[3:] or ['tokenizer.']
    b = open(src, 'rb').read()
    magic, ver, n_t, n_kv = struct.unpack_from('<4sIQQ', b, 0)
    assert magic == b'GGUF'
    o = 24
    kvs, align = [], 32
    for _ in range(n_kv):
        start = o
        kl = struct.unpack_from('<Q', b, o)[0]
        key = b[o + 8:o + 8 + kl].decode()
        t = struct.unpack_from('<I', b, o + 8 + kl)[0]
        o = read_value(b, o + 12 + kl, t)
        if key == 'general.alignment':
            align = struct.unpack_from('<I', b, o - 4)[0]
        if not any(key.startswith(p) for p in drop):
            kvs.append(b[start:o])
    infos = []
    for _ in range(n_t):
        start = o
        nl = struct.unpack_from('<Q', b, o)[0]
        o += 8 + nl
        nd = struct.unpack_from('<I', b, o)[0]
        o += 4 + 8 * nd + 4 + 8
        infos.append(b[start:o])
    data_off = (o + align - 1) // align * align
    head = struct.pack('<4sIQQ', b'GGUF', ver, n_t, len(kvs)) + b''.join(kvs) + b''.join(infos)
    pad = (len(head) + align - 1) // align * align - len(head)
    open(dst, 'wb').write(head + b'\0' * pad + b[data_off:])


if __name__ == '__main__':
    main()
