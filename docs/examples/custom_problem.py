"""A new inverse problem in ~35 lines: 1-D reaction-diffusion with an unknown rate field.

    u''(x) - k(x) u(x) = -f(x)  on [0, 1],  u(0) = u(1) = 1,  f = 2 (known)

Recover k(x) from noisy samples of u. The residual is linear in k, so k can also be read
off directly: k = (u'' + f) / u. Data come from scipy's boundary-value solver, which never
sees the inverse code. Run: python docs/examples/custom_problem.py
"""

import numpy as np
from scipy.integrate import solve_bvp

import mollifier
from mollifier.inverse import InverseProblem, Observations, TrainConfig, UnknownField, add_relative_noise, train


def true_rate(x):
    return 1.0 + 0.5 * np.sin(3 * np.pi * x) + 0.3 * np.cos(7 * x)


def build_problem(n: int = 128, noise: float = 0.01, seed: int = 0) -> InverseProblem:
    x = np.linspace(0.0, 1.0, n)
    ode = lambda s, y: np.vstack([y[1], true_rate(s) * y[0] - 2.0])  # noqa: E731
    bc = lambda ya, yb: np.array([ya[0] - 1.0, yb[0] - 1.0])  # noqa: E731
    solution = solve_bvp(ode, bc, x, np.ones((2, n)), tol=1e-10, max_nodes=100_000)
    u = solution.sol(x)[0]
    return InverseProblem(
        name="reaction-1d",
        grid=mollifier.Grid.from_bounds([(0.0, 1.0)], (n,)),
        observations=Observations(add_relative_noise(u, noise, seed), noise=noise),
        derivatives={"u_xx": (2,)},
        unknowns=[UnknownField("k", init=1.0, positive=True)],
        residual=lambda d, p, known: d["u_xx"] - p["k"] * d["u"] + known["f"],
        direct=lambda d, known: {"k": (d["u_xx"] + known["f"]) / d["u"]},
        truth={"k": true_rate(x)},
        known={"f": np.full(n, 2.0)},
        radius=6 / (n - 1),
        residual_weight=0.1,
    )


if __name__ == "__main__":
    result = train(build_problem(), TrainConfig(steps=2000, lbfgs_steps=200, log_every=500), out_dir="runs/reaction-1d", log=print)
    print({k: result.metrics[k] for k in ("parameter_pearson", "parameter_relative_l2", "train_seconds")})
