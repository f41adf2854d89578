"""What the data allow in the robustness sweep: estimates that know how the data were made.

    python benchmarks/robustness_ceiling.py                                  # quick sweep's cells, seed 0 (~1 min)
    python benchmarks/robustness_ceiling.py --seeds 0 1 2 3 4 --json
    python benchmarks/robustness_ceiling.py --results docs/results/bench-quick.jsonl   # + the network's Pearson
    python benchmarks/robustness_ceiling.py --empirical      # correlation length and noise chosen from the data

The robustness sweep (``mollifier bench --kind robustness``) asks the trained network to
beat the best of three tuned smoothers. This script computes, for the Langevin and heat
cells of that sweep, the estimate of someone who *knows the generator*: the prior the
unknown was drawn from (its random Fourier series, correlation length and amplitude), the
forward model and the noise level. Nothing trained, nothing tuned; NumPy and SciPy (the
data, the smoothers' estimates and the list of Fourier modes come from the library, so
every estimate sees the same noisy values).

- **Langevin** (``u_t = u + lambda``, ``u(0) = 1``): ``u`` is linear in ``lambda``'s
  Fourier coefficients, the prior is Gaussian, so the posterior mean (the minimum-mean-
  square-error estimate over the generator's draws) is exact linear algebra.
- **heat** (``0 = lambda lap(u) + m``, ``lambda = 1 + 0.5 tanh(g)``): ``u = Lap^{-1}(-m /
  lambda)`` with the generator's fourth-order Mehrstellen scheme on the data grid; the
  maximum a posteriori ``g`` under the Gaussian prior (Gauss-Newton with a backtracking
  line search in the prior's whitened coordinates).

``--empirical`` takes away two of those facts: the noise level comes from the data (second
differences, as the library's network-free path estimates it) and the correlation length is
the one of :data:`LENGTHS` with the largest marginal likelihood (exact for Langevin, the
Laplace approximation at the MAP for heat). The model class (the link, the amplitude, the
forward model) is still the generator's.

Pearson is not the squared error these estimates minimise, so on one draw a tuned smoother
can beat them by luck; averaged over draws they are the reference for "how much better
than a smoother could any estimate be here". Where the ceiling is not 0.02 above the best
smoother, the sweep's target 2 (beat it by 0.02) is out of reach of any estimator that is
not told the generator; where it is far above, the network is leaving information unused.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sfft
from scipy.integrate import cumulative_trapezoid

from mollifier.backbones.spectral import fourier_modes
from mollifier.inverse.direct import SMOOTHERS_COMPARED as SMOOTHERS
from mollifier.inverse.direct import score_beside_smoothers
from mollifier.inverse.metrics import pearson
from mollifier.network_free import noise_std
from mollifier.problems import make_problem
from mollifier.problems.forward import simulate_heat, simulate_langevin

ENGINE_OF = {"mollifier": "direct", "gaussian": "direct-gaussian", "savgol": "direct-savgol"}
QUICK_CELLS = {
    "langevin": (128, (0.2, 0.1, 0.05)),
    "heat": (64, (0.3, 0.15, 0.08)),
}
NOISES = (0.01, 0.05, 0.1)
LENGTHS = {"langevin": (0.03, 0.05, 0.07, 0.1, 0.14, 0.2, 0.3), "heat": (0.08, 0.11, 0.15, 0.2, 0.3, 0.4)}
"""Correlation lengths the empirical variant chooses from (by marginal likelihood)."""
RELATIVE_CUTOFF = 1e-8
"""Prior modes whose variance is below this fraction of the largest are left out (their
amplitude is 1e-4 of the largest mode's); the half-space of modes and their variances are
the library's :func:`mollifier.backbones.spectral.fourier_modes`."""


# --------------------------------------------------------------------------- Langevin
def langevin_operator(t: np.ndarray, ell: float, period: float = 2.0, refine: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Phi, Psi, S)``: ``lambda = Phi a``, ``u = e^t u0 + Psi a``, ``a ~ N(0, diag(S))``.

    ``Psi[:, j] = e^t int_0^t e^{-s} phi_j(s) ds`` by the trapezoid rule on a ``refine`` times
    finer grid (error ~1e-7 relative at the defaults, far below any noise level here).
    """
    k, var = fourier_modes((period,), ell, RELATIVE_CUTOFF)
    k = k[:, 0]
    fine = np.linspace(t[0], t[-1], (t.size - 1) * refine + 1)
    basis = np.concatenate([np.cos(np.outer(fine, k)), np.sin(np.outer(fine, k))], axis=1)
    psi = np.exp(fine)[:, None] * cumulative_trapezoid(np.exp(-fine)[:, None] * basis, fine, axis=0, initial=0.0)
    return basis[::refine], psi[::refine], np.concatenate([var, var])


def langevin_posterior_mean(values: np.ndarray, t: np.ndarray, ell: float, sigma: float, u0: float = 1.0) -> np.ndarray:
    """The posterior mean of ``lambda`` on the grid given noisy ``u`` (Gaussian prior and noise)."""
    return langevin_posterior(values, t, ell, sigma, u0)[0]


def langevin_posterior(values: np.ndarray, t: np.ndarray, ell: float, sigma: float, u0: float = 1.0) -> tuple[np.ndarray, float]:
    """The posterior mean and the exact log marginal likelihood ``log p(values | ell, sigma)``."""
    phi, psi, var = langevin_operator(t, ell)
    gram = (psi * var) @ psi.T + sigma**2 * np.eye(t.size)
    centred = values - u0 * np.exp(t)
    solved = np.linalg.solve(gram, centred)
    evidence = -0.5 * float(centred @ solved) - 0.5 * float(np.linalg.slogdet(gram)[1]) - 0.5 * t.size * math.log(2 * math.pi)
    return phi @ (var * (psi.T @ solved)), evidence


# --------------------------------------------------------------------------- heat
def mehrstellen_solve(f: np.ndarray, h: float) -> np.ndarray:
    """``Lap u = f`` with ``u = 0`` on the edge, fourth-order Mehrstellen, for a stack ``(B, N, N)``."""
    m = f.shape[-1] - 2
    inner = f[:, 1:-1, 1:-1]
    rhs = inner + (f[:, 2:, 1:-1] + f[:, :-2, 1:-1] + f[:, 1:-1, 2:] + f[:, 1:-1, :-2] - 4.0 * inner) / 12.0
    eig = -(4.0 / h**2) * np.sin(0.5 * np.pi * np.arange(1, m + 1) / (m + 1)) ** 2
    denom = eig[:, None] + eig[None, :] + h**2 / 6.0 * eig[:, None] * eig[None, :]
    u = np.zeros_like(f)
    u[:, 1:-1, 1:-1] = sfft.idstn(sfft.dstn(rhs, type=1, axes=(1, 2)) / denom, type=1, axes=(1, 2))
    return u


class HeatPrior:
    """``lambda = base + amplitude tanh(g)``, ``g = sum_j z_j B_j`` with ``z ~ N(0, I)`` on the data grid."""

    def __init__(self, x: np.ndarray, ell: float, period: float = 2.0, base: float = 1.0, amplitude: float = 0.5):
        k, var = fourier_modes((period, period), ell, RELATIVE_CUTOFF)
        X, Y = np.meshgrid(x, x, indexing="ij")
        phase = X[None] * k[:, 0, None, None] + Y[None] * k[:, 1, None, None]
        scale = np.sqrt(np.concatenate([var, var]))[:, None, None]
        self.basis = np.concatenate([np.cos(phase), np.sin(phase)]) * scale
        self.base, self.amplitude = base, amplitude

    def g(self, z: np.ndarray) -> np.ndarray:
        return np.tensordot(z, self.basis, axes=1)

    def lam(self, g: np.ndarray) -> np.ndarray:
        return self.base + self.amplitude * np.tanh(g)


def heat_map_estimate(values: np.ndarray, x: np.ndarray, source: np.ndarray, ell: float, sigma: float,
                      iterations: int = 40) -> tuple[np.ndarray, dict[str, Any]]:
    """The maximum a posteriori ``lambda`` given noisy ``u`` at every node (edge nodes included)."""
    h = float(x[1] - x[0])
    prior = HeatPrior(x, ell)
    n_modes = prior.basis.shape[0]

    def forward(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = prior.g(z)
        lam = prior.lam(g)
        return mehrstellen_solve((-source / lam)[None], h)[0], g, lam

    def objective(z: np.ndarray) -> float:
        return 0.5 * float(np.sum((values - forward(z)[0]) ** 2)) / sigma**2 + 0.5 * float(z @ z)

    z = np.zeros(n_modes)
    value = objective(z)
    done = 0
    for done in range(1, iterations + 1):
        u, g, lam = forward(z)
        weight = source * prior.amplitude * (1.0 - np.tanh(g) ** 2) / lam**2   # d(-m / lambda) / dg
        jac = mehrstellen_solve(prior.basis * weight[None], h).reshape(n_modes, -1).T
        gradient = jac.T @ (values - u).ravel() / sigma**2 - z
        step = np.linalg.solve(jac.T @ jac / sigma**2 + np.eye(n_modes), gradient)
        t = 1.0
        while (trial := objective(z + t * step)) > value and t > 1e-4:
            t *= 0.5
        z, previous, value = z + t * step, value, min(trial, value)
        if previous - value < 1e-9 * abs(previous):
            break
    u, g, lam = forward(z)
    weight = source * prior.amplitude * (1.0 - np.tanh(g) ** 2) / lam**2
    jac = mehrstellen_solve(prior.basis * weight[None], h).reshape(n_modes, -1).T
    log_det = float(np.linalg.slogdet(jac.T @ jac / sigma**2 + np.eye(n_modes))[1])
    # Laplace approximation of log p(values | ell, sigma), up to a constant shared by all ell
    evidence = -value - 0.5 * log_det - values.size * math.log(sigma)
    return lam, {"modes": n_modes, "iterations": done, "objective": value, "log_evidence": evidence}


# --------------------------------------------------------------------------- sweep
def ceiling_cell(problem: str, grid: int, ell: float, noise: float, seed: int, empirical: bool = False) -> dict[str, Any]:
    """The oracle's and each smoother's Pearson for one cell of the sweep, each on the smoother's support.

    ``empirical=True``: the estimate is not told the correlation length or the noise level; the
    noise comes from the data (second differences) and the correlation length is the one of
    :data:`LENGTHS` with the largest (exact for Langevin, Laplace for heat) marginal likelihood.
    """
    if problem not in QUICK_CELLS:
        raise ValueError(f"`problem` must be one of {sorted(QUICK_CELLS)}, got {problem!r}")
    p = make_problem(problem, grid=grid, noise=noise, seed=seed, correlation_length=ell)
    values = p.observations.values[0]
    start = time.perf_counter()
    simulate = simulate_langevin if problem == "langevin" else simulate_heat
    clean = simulate(n=grid, rng=seed, correlation_length=ell)
    sigma = noise_std(values) if empirical else noise * float(np.std(clean["u"]))
    if not sigma > 0:
        raise ValueError(f"`noise` must be > 0 for a posterior (the data's noise level is {sigma:g}), got {noise!r}")

    def estimate_with(length: float) -> tuple[np.ndarray, dict[str, Any]]:
        if problem == "langevin":
            mean, evidence = langevin_posterior(values, clean["t"], length, sigma)
            return mean, {"method": "posterior mean (exact)", "log_evidence": evidence}
        found, info = heat_map_estimate(values, clean["x"], clean["source"], length, sigma)
        return found, {**info, "method": "maximum a posteriori (Gauss-Newton)"}

    candidates = [(length, *estimate_with(length)) for length in (LENGTHS[problem] if empirical else (ell,))]
    chosen, estimate, info = max(candidates, key=lambda c: c[2]["log_evidence"])
    info.update(length_used=chosen, sigma_used=sigma, empirical=empirical)
    seconds = time.perf_counter() - start
    truth = p.truth[p.parameter]
    mask = p.metric_mask if p.metric_mask is not None else np.ones(truth.shape, bool)
    row: dict[str, Any] = {"problem": problem, "grid": grid, "correlation_length": ell, "noise": noise, "seed": seed,
                           "oracle_pearson": pearson(estimate, truth, mask), "oracle_seconds": round(seconds, 2), **info,
                           "smoothers": {}}
    for name, score in score_beside_smoothers(p, estimate, SMOOTHERS).items():
        row["smoothers"][name] = {"pearson": score["pearson"], "oracle_on_support": score["estimate_on_support"]}
    best = max(SMOOTHERS, key=lambda s: row["smoothers"][s]["pearson"])
    row["best_smoother"] = best
    row["headroom"] = row["smoothers"][best]["oracle_on_support"] - row["smoothers"][best]["pearson"]
    return row


def network_rows(path: Path) -> dict[tuple, dict[str, Any]]:
    """The trained network's robustness rows of a bench results file, by (problem, grid, ell, noise, seed)."""
    rows = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == "robustness" and row.get("engine") == "mollifier" and row.get("status") == "ok":
            rows[(row["problem"], row["grid"], row["correlation_length"], row["noise"], row["seed"])] = row
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(QUICK_CELLS), choices=list(QUICK_CELLS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds (default 0); the table averages over them")
    parser.add_argument("--results", type=Path, help="a bench results file whose robustness rows add the network's Pearson")
    parser.add_argument("--empirical", action="store_true",
                        help="not told the correlation length or the noise: both chosen from the data (marginal likelihood)")
    parser.add_argument("--json", action="store_true", help="one JSON line per cell and seed instead of a table")
    args = parser.parse_args(argv)
    if args.results is not None and not args.results.is_file():
        parser.error(f"--results: no such file: {args.results}")
    networks = network_rows(args.results) if args.results else {}
    if not args.json:
        print("| problem | corr. length | noise | length used | best smoother (P) | oracle on its support | headroom | network on its support |")
        print("|---|---|---|---|---|---|---|---|")
    for problem in args.problems:
        grid, lengths = QUICK_CELLS[problem]
        for ell in lengths:
            for noise in NOISES:
                rows = [ceiling_cell(problem, grid, ell, noise, seed, args.empirical) for seed in args.seeds]
                nets = [networks.get((problem, grid, ell, noise, r["seed"])) for r in rows]
                for r, net in zip(rows, nets):
                    if net is not None:
                        r["network_on_support"] = net["pearson_on_support"].get(ENGINE_OF[r["best_smoother"]])
                if args.json:
                    for r in rows:
                        print(json.dumps(r), flush=True)
                    continue
                best = [r["smoothers"][r["best_smoother"]]["pearson"] for r in rows]
                oracle = [r["smoothers"][r["best_smoother"]]["oracle_on_support"] for r in rows]
                names = sorted({r["best_smoother"] for r in rows})
                net = [r["network_on_support"] for r in rows if r.get("network_on_support") is not None]
                used = "/".join(f"{length:g}" for length in sorted({r["length_used"] for r in rows}))
                print(f"| {problem} | {ell} | {noise} | {used} | {'/'.join(names)} ({np.mean(best):.3f}) | {np.mean(oracle):.3f} | "
                      f"{np.mean(oracle) - np.mean(best):+.3f} | {f'{np.mean(net):.3f}' if net else '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
