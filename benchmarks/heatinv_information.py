"""How well can HeatInv's 2,500 noisy points determine ``a`` at all? A Cramer-Rao bound.

    python benchmarks/heatinv_information.py                    # bounds for 2x2 ... 8x8 modes (~80 s)
    python benchmarks/heatinv_information.py --modes 4 --json
    python benchmarks/heatinv_information.py --estimate runs/heat/arrays.npz   # misfit of a learned a

PINNacle's HeatInv (``docs/examples/pinnacle_tasks.py``): ``u_t = div(a grad u) + f`` on
``[-1, 1]^2 x [0, 1]``, ``u`` observed at 2,500 scattered points with noise 0.1, ``a(x, y)``
unknown and known on the boundary. This script asks what any estimator can get from those
data, independently of networks and of this library (NumPy and SciPy only):

- ``a`` is written as the truth plus ``sum c_mn phi_mn`` with ``phi_mn =
  sin(m pi (x + 1) / 2) sin(n pi (y + 1) / 2)``, ``1 <= m, n <= M`` (smooth modes that
  vanish on the boundary, where ``a`` is known; ``M = 2`` already contains the truth's
  variation ``sin(pi x) sin(pi y) = phi_22``);
- ``u`` comes from an independent forward solver: conservative 5-point finite volumes on the
  50 x 50 evaluation grid, explicit Euler in time, ``u = 0`` on the boundary and the exact
  initial condition (so the bound is *optimistic*: a real estimator must also learn the
  initial and boundary values of ``u``);
- the Jacobian ``J`` of ``u`` at the 2,500 points with respect to the ``c_mn`` (forward
  differences), and the Fisher information ``J^T J / sigma^2``. Any unbiased estimator of
  the ``c_mn`` has covariance at least ``sigma^2 (J^T J)^{-1}``, so the expected relative L2
  error of ``a`` on the grid is at least ``sqrt(trace(B C B^T)) / ||a||`` (``B``: the modes on
  the grid). The bound grows with ``M``: the more shapes ``a`` may take, the less 2,500
  points at noise 0.1 pin down.

``--estimate FILE`` (an ``arrays.npz`` with ``learned_a`` on the 50 x 50 grid, as
``mollifier run`` writes) also reports how much the noise-free data change when the truth
is replaced by that estimate: ``delta chi^2 = sum (u(a_est) - u(a_true))^2 / sigma^2`` at
the points (initial and boundary values of ``u`` kept exact). A change of a few units is
within what the noise hides.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.interpolate import RegularGridInterpolator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
import pinnacle_tasks as tasks  # noqa: E402


class HeatSolver:
    """Finite-volume solver of ``u_t = div(a grad u) + f`` on ``[-1, 1]^2 x [0, 1]``.

    Args:
        n: Nodes per spatial axis (edges included; ``u = 0`` there).
        snapshots: Number of stored times (``linspace(0, 1, snapshots)``).
        courant: Time step as a fraction of ``h^2 / max(a)`` (explicit Euler is stable below 0.25).

    Second order in space (checked against the exact solution in
    ``tests/benchmarks/test_heatinv_information.py``), first order in time with a step far
    below the spatial error.
    """

    def __init__(self, n: int = tasks.POISSON_GRID_N, snapshots: int = 21, courant: float = 0.2) -> None:
        if n < 5:
            raise ValueError(f"`n` must be at least 5 nodes per axis; got {n}")
        self.n, self.snapshots, self.courant = n, snapshots, courant
        self.x = np.linspace(*tasks.HEAT_BOUNDS, n)
        self.h = self.x[1] - self.x[0]
        self.X, self.Y = np.meshgrid(self.x, self.x, indexing="ij")
        self.times = np.linspace(*tasks.HEAT_T_BOUNDS, snapshots)

    def solve(self, a: np.ndarray) -> np.ndarray:
        """``u`` at the stored times, shape ``(snapshots, n, n)``, for ``a`` on the nodes."""
        if a.shape != self.X.shape or not np.all(a > 0):
            raise ValueError(f"`a` must be positive on the {self.X.shape} grid; got shape {a.shape}, min {a.min():.3g}")
        per_snapshot = int(np.ceil(self.times[1] / (self.courant * self.h**2 / a.max())))
        dt = self.times[1] / per_snapshot
        east, north = 0.5 * (a[1:, :] + a[:-1, :]), 0.5 * (a[:, 1:] + a[:, :-1])
        u = np.sin(np.pi * self.X) * np.sin(np.pi * self.Y)
        out = [u.copy()]
        for k in range(per_snapshot * (self.snapshots - 1)):
            flux_x = east * np.diff(u, axis=0) / self.h
            flux_y = north * np.diff(u, axis=1) / self.h
            div = np.zeros_like(u)
            div[1:-1, :] += np.diff(flux_x, axis=0) / self.h
            div[:, 1:-1] += np.diff(flux_y, axis=1) / self.h
            u = u + dt * (div + tasks.heat_f(self.X, self.Y, k * dt))
            u[0, :] = u[-1, :] = u[:, 0] = u[:, -1] = 0.0
            if (k + 1) % per_snapshot == 0:
                out.append(u.copy())
        return np.asarray(out)

    def at(self, u: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``u`` (from :meth:`solve`) interpolated at ``(x, y, t)`` points."""
        return RegularGridInterpolator((self.times, self.x, self.x), u)(points[:, [2, 0, 1]])

    def mode(self, m: int, n: int) -> np.ndarray:
        """``sin(m pi (x + 1) / 2) sin(n pi (y + 1) / 2)`` on the nodes (zero on the boundary)."""
        return np.sin(m * np.pi * (self.X + 1) / 2) * np.sin(n * np.pi * (self.Y + 1) / 2)


def sensitivities(solver: HeatSolver, points: np.ndarray, modes: int, step: float = 0.02) -> tuple[dict, np.ndarray]:
    """``d u(points) / d c_mn`` at the truth for ``1 <= m, n <= modes`` (forward differences),
    and ``u`` of the truth at the points."""
    truth = tasks.heat_a(solver.X, solver.Y)
    base = solver.at(solver.solve(truth), points)
    columns = {}
    for m in range(1, modes + 1):
        for n in range(1, modes + 1):
            columns[(m, n)] = (solver.at(solver.solve(truth + step * solver.mode(m, n)), points) - base) / step
    return columns, base


def cramer_rao(solver: HeatSolver, columns: dict, modes: int, noise: float = tasks.NOISE_STD) -> dict:
    """The bound on the expected relative L2 error of ``a`` for the first ``modes^2`` modes."""
    keys = [(m, n) for m in range(1, modes + 1) for n in range(1, modes + 1)]
    jac = np.stack([columns[k] for k in keys], axis=1)
    basis = np.stack([solver.mode(m, n).ravel() for m, n in keys], axis=1)
    fisher = jac.T @ jac / noise**2
    covariance = np.linalg.inv(fisher)
    expected = float(np.sqrt(np.trace(basis @ covariance @ basis.T)) / np.linalg.norm(tasks.heat_a(solver.X, solver.Y)))
    return {"modes": modes, "parameters": len(keys), "l2re_bound": expected, "fisher_condition": float(np.linalg.cond(fisher))}


def data_change(solver: HeatSolver, points: np.ndarray, a: np.ndarray, base: np.ndarray, noise: float = tasks.NOISE_STD) -> dict:
    """``delta chi^2`` of the noise-free data when the truth is replaced by ``a``."""
    truth = tasks.heat_a(solver.X, solver.Y)
    change = solver.at(solver.solve(a), points) - base
    return {
        "relative_l2": float(np.linalg.norm(a - truth) / np.linalg.norm(truth)),
        "delta_chi2": float(np.sum(change**2) / noise**2),
        "rms_change_of_u": float(np.sqrt(np.mean(change**2))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", type=int, default=8, help="largest M (bounds for M = 2 .. this; default 8)")
    parser.add_argument("--estimate", type=Path, action="append", default=[], help="arrays.npz with learned_a (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.modes < 2:
        parser.error(f"--modes must be at least 2 (the truth's own mode is (2, 2)); got {args.modes}")
    estimates = {}
    for path in args.estimate:  # read before the minutes of solving
        try:
            with np.load(path) as arrays:
                if "learned_a" not in arrays.files:
                    parser.error(f"--estimate {path}: no 'learned_a' array in it (found {arrays.files})")
                estimates[str(path)] = arrays["learned_a"]
        except (OSError, ValueError) as exc:
            parser.error(f"--estimate {path}: cannot read it as an .npz file ({exc})")
        if estimates[str(path)].shape != (tasks.POISSON_GRID_N,) * 2:
            parser.error(f"--estimate {path}: learned_a has shape {estimates[str(path)].shape}; expected the 50 x 50 grid")
    start = time.perf_counter()
    solver = HeatSolver()
    points, _ = tasks.heat_data(0)
    columns, base = sensitivities(solver, points, args.modes)
    exact = np.exp(-points[:, 2]) * np.sin(np.pi * points[:, 0]) * np.sin(np.pi * points[:, 1])
    report = {
        "solver_rms_error_at_points": float(np.sqrt(np.mean((base - exact) ** 2))),
        "bounds": [cramer_rao(solver, columns, m) for m in range(2, args.modes + 1)],
        "estimates": {},
    }
    for path, a in estimates.items():
        report["estimates"][path] = data_change(solver, points, a, base)
    report["seconds"] = time.perf_counter() - start
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"forward solver against the exact u at the points: rms {report['solver_rms_error_at_points']:.2e}")
    print("modes  parameters  expected L2RE of a, at least  condition of the information")
    for b in report["bounds"]:
        print(f"{b['modes']:>3}x{b['modes']:<3} {b['parameters']:>9}  {b['l2re_bound']:>27.4f}  {b['fisher_condition']:>12.3g}")
    for path, e in report["estimates"].items():
        print(f"{path}: L2RE {e['relative_l2']:.4f}, delta chi^2 {e['delta_chi2']:.1f} (rms change of u {e['rms_change_of_u']:.2e})")
    print(f"{report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
