#!/usr/bin/env python3
"""Golden Q8_0 / Q4_0 bytes for tests/kernels/test_quant.c, made by ggml's own Python
quantizer (gguf-py's gguf.quants, which follows ggml-quants.c's _ref functions): our C
quantizer must write the same bytes, so files we write quantize exactly as llama.cpp's tools do.

usage: tools/make_quant_golden.py GGUF_PY_DIR   (the gguf-py folder of a llama.cpp checkout;
       nothing of it is committed)  ->  tests/data/quant/{input_f32,q8_0,q4_0}.bin
Input: 64 rows x 64 values (128 blocks): normal, uniform and heavy-tailed rows, all-zero and
constant blocks, exact .5 ties after scaling, tiny (f16-subnormal scale) and large values."""
import os
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402

rng = np.random.default_rng(20261202)
rows = []
for r in range(64):
    kind = r % 8
    if kind == 0:
        x = rng.standard_normal(64)
    elif kind == 1:
        x = rng.uniform(-1, 1, 64)
    elif kind == 2:
        x = rng.standard_t(2, 64)
    elif kind == 3:
        x = np.zeros(64)
        x[32:] = 0.75
    elif kind == 4:  # ties: amax 127 -> scale 1, so k + 0.5 lands on .5 exactly
        x = np.arange(64) % 9 - 4 + 0.5
        x[0] = 127.0
        x[32] = -8.0
    elif kind == 5:
        x = rng.standard_normal(64) * 1e-6
    elif kind == 6:
        x = rng.standard_normal(64) * 3e4
    else:
        x = np.round(rng.standard_normal(64) * 8) / 8
    rows.append(x)
a = np.asarray(rows, dtype=np.float32)
out = os.path.join(os.path.dirname(__file__), '..', 'tests', 'data', 'quant')
os.makedirs(out, exist_ok=True)
a.tofile(os.path.join(out, 'input_f32.bin'))
quants.quantize(a, Q.Q8_0).tofile(os.path.join(out, 'q8_0.bin'))
quants.quantize(a, Q.Q4_0).tofile(os.path.join(out, 'q4_0.bin'))
