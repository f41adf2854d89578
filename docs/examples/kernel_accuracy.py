"""Relative error of d^4/dx^4 sin(2 pi x) on a periodic grid of 256 points, no noise.

Run: python docs/examples/kernel_accuracy.py
Compares the moment-corrected stencils (the library's) with plain sampling of the
kernel's analytic derivative, for several support radii in cells.
"""

import math

import torch

import mollifier
from mollifier.core.convolution import apply_multi_indices

n = 256
h = 1.0 / n
x = torch.arange(n, dtype=torch.float64) * h
u = torch.sin(2 * math.pi * x).reshape(1, 1, n)
exact = (2 * math.pi) ** 4 * torch.sin(2 * math.pi * x)

print(f"{'cells':>6} {'corrected':>12} {'sampled only':>14}")
for cells in (8, 16, 32):
    corrected = mollifier.derivative(u, (4,), spacing=h, radius=cells * h, boundary="periodic")
    taps = mollifier.mollifier_stencil(mollifier.BumpMollifier(), 4, h, cells * h, correct=False)
    sampled = apply_multi_indices(u, [(4,)], lambda axis, order: taps, "periodic")[(4,)]
    err_c = float((corrected.flatten() - exact).norm() / exact.norm())
    err_s = float((sampled.flatten() - exact).norm() / exact.norm())
    print(f"{cells:>6} {err_c:>12.2e} {err_s:>14.2e}")
