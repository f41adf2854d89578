"""A domain that is not a box, a latent field, conditions on every field: a heated ring.

Heat ``u`` in an annular plate (radii 0.3 and 1) is produced by a reactant ``v`` that
diffuses and decays with a known supply ``s``; the plate's conductivity ``a(x, y)`` is
unknown. Only ``u`` is measured (2 % noise); ``v`` is never observed (a *latent* field):

    -lap(v) + kappa v = s,      -div(a grad u) = v      in the ring,
    u = v = 0 on both circles,  a known on both circles.

Posed with a ``domain`` mask (the residual counts inside the ring only), the latent
field ``v`` with its own Laplacian from the same engine, the unknown ``a`` with its
gradient, and Dirichlet conditions on the edge of the mask for ``u``, ``v`` and ``a``.

The data come from :func:`solve`, an independent finite-volume solver on a polar grid
(the circles are grid lines there; conductivities at the cell faces; a sparse direct
solve; second order in the spacing), read at the problem's Cartesian nodes by cubic
interpolation in ``(r, theta)``.

Run it: ``mollifier run docs/examples/annulus_latent.py --seed 0 --json``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy.interpolate import RegularGridInterpolator

from mollifier import Grid
from mollifier.inverse import Dirichlet, InverseProblem, LatentField, Observations, UnknownField
from mollifier.inverse.residuals import div_a_grad, gradient_requests, laplacian_requests

INNER, OUTER = 0.3, 1.0
"""Radii of the ring."""

KAPPA = 4.0
"""Decay rate of the reactant."""

TRAINING = {"steps": 3000, "lr": 3e-3, "lr_final": 3e-4, "residual_warmup": 300, "log_every": 100}
"""Training settings this example runs with (flags override them)."""


def conductivity(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true conductivity: 1 with a broad warm region and a cool one."""
    return 1.0 + 0.4 * np.exp(-((x - 0.4) ** 2 + (y - 0.3) ** 2) / 0.15) - 0.25 * np.exp(-((x + 0.4) ** 2 + (y + 0.4) ** 2) / 0.15)


def supply(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The known supply of the reactant."""
    return 40.0 * (1.0 + 0.5 * x + 0.3 * y * y)


def solve(nr: int = 141, ntheta: int = 512) -> dict[str, np.ndarray]:
    """``u`` and ``v`` on a polar grid of the ring (``nr`` radii from INNER to OUTER inclusive,
    ``ntheta`` periodic angles), zero on both circles.

    Finite volumes on the polar cells: ``-(1/r) d/dr(r a dw/dr) - (1/r^2) d/dtheta(a dw/dtheta)``
    with ``a`` at the faces (mean of the two nodes); second order in ``dr`` and ``dtheta``.
    Returns ``r``, ``theta``, ``u``, ``v`` (``(nr, ntheta)``).
    """
    r = np.linspace(INNER, OUTER, nr)
    theta = np.arange(ntheta) * 2 * np.pi / ntheta
    dr, dt = r[1] - r[0], theta[1] - theta[0]
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    x, y = rr * np.cos(tt), rr * np.sin(tt)
    inner = np.arange(1, nr - 1)  # unknown radii (the circles hold 0)
    size = len(inner) * ntheta

    def number(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (i - 1) * ntheta + (j % ntheta)

    def operator(a: np.ndarray, shift: float) -> sp.csr_matrix:
        i, j = np.meshgrid(inner, np.arange(ntheta), indexing="ij")
        i, j = i.ravel(), j.ravel()
        k = number(i, j)
        rows, cols, vals = [k], [k], [np.full(k.shape, shift)]
        # radial faces at r_{i +- 1/2}: flux r_face a_face (w_nb - w) / dr, divided by r_i dr
        for step in (1, -1):
            face_r = 0.5 * (r[i] + r[i + step])
            face_a = 0.5 * (a[i, j] + a[i + step, j])
            weight = face_r * face_a / (r[i] * dr * dr)
            vals[0] = vals[0] + weight
            inside = (i + step >= 1) & (i + step <= nr - 2)
            rows.append(k[inside]), cols.append(number(i + step, j)[inside]), vals.append(-weight[inside])
        # angular faces: a_face (w_nb - w) / (r_i^2 dtheta^2)
        for step in (1, -1):
            face_a = 0.5 * (a[i, j] + a[i, (j + step) % ntheta])
            weight = face_a / (r[i] ** 2 * dt * dt)
            vals[0] = vals[0] + weight
            rows.append(k), cols.append(number(i, j + step)), vals.append(-weight)
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))

    v = np.zeros((nr, ntheta))
    v[1:-1] = spla.spsolve(operator(np.ones((nr, ntheta)), KAPPA).tocsc(), supply(x, y)[1:-1].ravel()).reshape(-1, ntheta)
    u = np.zeros((nr, ntheta))
    u[1:-1] = spla.spsolve(operator(conductivity(x, y), 0.0).tocsc(), v[1:-1].ravel()).reshape(-1, ntheta)
    return {"r": r, "theta": theta, "u": u, "v": v}


def on_cartesian(polar: dict[str, np.ndarray], name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The polar solution's field ``name`` at Cartesian points inside the ring (cubic in
    ``(r, theta)``, periodic in ``theta``); NaN outside."""
    r, theta, values = polar["r"], polar["theta"], polar[name]
    wrap = np.concatenate([theta[-3:] - 2 * np.pi, theta, theta[:3] + 2 * np.pi])
    table = np.concatenate([values[:, -3:], values, values[:, :3]], axis=1)
    interpolate = RegularGridInterpolator((r, wrap), table, method="cubic")
    rho, phi = np.hypot(x, y), np.mod(np.arctan2(y, x), 2 * np.pi)
    ring = (rho >= INNER) & (rho <= OUTER)
    out = np.full(x.shape, np.nan)
    out[ring] = interpolate(np.stack([rho[ring], phi[ring]], axis=1))
    return out


def problem(seed: int = 0, grid: int = 81, noise: float = 0.02) -> InverseProblem:
    """The heated ring with ``noise * std(u)`` Gaussian noise on ``u`` (seed of the noise)."""
    g = Grid.from_bounds([(-1.0, 1.0), (-1.0, 1.0)], (grid, grid))
    x, y = (m.numpy() for m in g.mesh(dtype=torch.float64))
    rho = np.hypot(x, y)
    ring = (rho >= INNER) & (rho <= OUTER)
    polar = solve()
    u, v = on_cartesian(polar, "u", x, y), on_cartesian(polar, "v", x, y)
    rng = np.random.default_rng(seed)
    observed = np.where(ring, u + noise * np.nanstd(u) * rng.standard_normal(u.shape), np.nan)  # NaN: unobserved
    s = supply(x, y)
    scale_v, scale_u = float(np.abs(s[ring]).mean()), float(np.nanmean(np.abs(v)))

    def residual(d, p, k):
        reactant = (-d["lap_v"] + KAPPA * d["v"] - k["s"]) / scale_v
        heat = (div_a_grad(d, "a", "u", axes=2) + d["v"]) / scale_u
        return torch.cat([reactant, heat], dim=1)

    return InverseProblem(
        name="annulus-latent",
        grid=g,
        observations=Observations(observed, noise=noise),
        derivatives={**gradient_requests("u", 2), **laplacian_requests("u", 2)},
        unknowns=[
            UnknownField("a", init=1.0, positive=True, derivatives=gradient_requests("a", 2)),
            LatentField("v", init=float(np.nanmean(v)), derivatives=laplacian_requests("v", 2)),
        ],
        residual=residual,
        known={"s": s},
        truth={"a": conductivity(x, y), "v": np.where(ring, v, 0.0)},
        domain=ring,
        conditions=[
            Dirichlet("u", lambda c: on_cartesian(polar, "u", c[:, 0], c[:, 1]), on="edge"),
            Dirichlet("v", lambda c: on_cartesian(polar, "v", c[:, 0], c[:, 1]), on="edge"),
            Dirichlet("a", lambda c: conductivity(c[:, 0], c[:, 1]), on="edge"),
        ],
        radius=3 * g.spacing[0],
        residual_weight=1.0,
        description="heated ring: -lap v + kappa v = s (v latent), -div(a grad u) = v, a unknown",
    )
