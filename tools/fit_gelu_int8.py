#!/usr/bin/env python3
"""Fits the rational erf of gelu16_q8 (src/kernels/x86/qgemm_big_avx512vnni.c) and checks it.

erf(z) ~= z * P(z^2) / Q(z^2), P of degree 5, Q of degree 5 with Q(0) = 1, for z in [0, X]
(z is clamped to +-X in the kernel): a linearised least-squares fit on Chebyshev nodes,
reweighted by 1/Q of the previous pass (Sanathanan-Koerner), keeping the pass with the smallest
maximum error. Then the kernel's float32 GELU, 0.5x + 0.5x*erf(x/sqrt 2), is evaluated on a
dense grid over [-14, 14] against the exact GELU. Needs Debian's python3-torch (float64).
    /usr/bin/python3 tools/fit_gelu_int8.py [X=3.9]
"""
import math
import sys

import torch

torch.set_default_dtype(torch.float64)
X = float(sys.argv[1]) if len(sys.argv) > 1 else 3.9
DP, DQ, N = 5, 5, 6000

k = torch.arange(N)
x = X * (0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / N))
t = x * x
erf = torch.erf(x)
f = torch.where(x > 0, erf / x, torch.full_like(x, 2 / math.sqrt(math.pi)))

best, q_prev = None, torch.ones(N)
for _ in range(40):
    cols = [t**i for i in range(DP + 1)] + [-f * t**j for j in range(1, DQ + 1)]
    w = x.clamp(min=1e-3) / q_prev  # the error in erf is x (P - f Q) / Q
    c = torch.linalg.lstsq(torch.stack(cols, 1) * w[:, None], f * w).solution
    p, q = c[: DP + 1], torch.cat([torch.ones(1), c[DP + 1 :]])
    Q = sum(q[j] * t**j for j in range(DQ + 1))
    err = (x * sum(p[i] * t**i for i in range(DP + 1)) / Q - erf).abs().max().item()
    if best is None or err < best[2]:
        best = (p, q, err)
    q_prev = Q
p, q, err = best
print(f"erf on [0, {X}]: max abs error {err:.3g}")
print("P (t^0 first):", ", ".join(f"{v:.17g}" for v in p.tolist()))
print("Q (t^0 first):", ", ".join(f"{v:.17g}" for v in q.tolist()))

# the kernel in float32 (mul + add where it fuses; the difference is below the bound)
f32 = torch.float32
xs = torch.linspace(-14, 14, 200001, dtype=f32)
zc = (xs * torch.tensor(0.70710678118654752, dtype=f32)).clamp(-X, X)
tt = zc * zc
P = torch.full_like(tt, float(p[-1]))
for c in reversed(p[:-1].tolist()):
    P = P * tt + torch.tensor(c, dtype=f32)
Q = torch.full_like(tt, float(q[-1]))
for c in reversed(q[:-1].tolist()):
    Q = Q * tt + torch.tensor(c, dtype=f32)
hx = 0.5 * xs
g = hx + hx * (zc * P / Q)
exact = xs.double() * 0.5 * (1 + torch.erf(xs.double() / math.sqrt(2)))
e = (g.double() - exact).abs()
print(f"GELU over [-14, 14] in float32: max abs error {e.max().item():.3g} at x = {xs[e.argmax()].item():.4g}")
