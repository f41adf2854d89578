"""Synthetic observations of a forward solution: relative noise and a random observed subset."""

from __future__ import annotations

import numpy as np

from ..core.errors import check_choice
from ..inverse.problem import Observations, add_relative_noise, random_mask

__all__ = ["PRIORS", "observe", "unknown_backbone"]

PRIORS = ("gp", "network")
"""How a built-in problem represents its unknown field: ``gp`` (a Gaussian-process prior whose
settings come from the data, :mod:`mollifier.inverse.priors`; every built-in problem's
default) or ``network`` (a 3 x 64 MLP). Measured side by side in docs/benchmarks.md."""


def unknown_backbone(prior: str) -> str:
    """The unknown field's backbone name for ``prior`` (one of :data:`PRIORS`)."""
    check_choice("prior", prior, PRIORS)
    return "mlp" if prior == "network" else "gp"


def observe(clean: np.ndarray, noise: float, density: float, seed: int) -> Observations:
    """Observations of ``clean``: ``noise * std`` Gaussian noise, a ``density`` fraction of points.

    The noise and the mask are drawn from their own stream (``[seed, 1]``), apart from
    the stream that made the ground truth (``seed``).
    """
    rng = np.random.default_rng([seed, 1])
    values = add_relative_noise(clean, noise, rng)
    mask = random_mask(clean.shape, density, rng)
    return Observations(values, mask=mask, noise=noise)
