"""Synthetic observations of a forward solution: relative noise and a random observed subset."""

from __future__ import annotations

import numpy as np

from ..inverse.problem import Observations, add_relative_noise, random_mask

__all__ = ["observe"]


def observe(clean: np.ndarray, noise: float, density: float, seed: int) -> Observations:
    """Observations of ``clean``: ``noise * std`` Gaussian noise, a ``density`` fraction of points.

    The noise and the mask are drawn from their own stream (``[seed, 1]``), apart from
    the stream that made the ground truth (``seed``).
    """
    rng = np.random.default_rng([seed, 1])
    values = add_relative_noise(clean, noise, rng)
    mask = random_mask(clean.shape, density, rng)
    return Observations(values, mask=mask, noise=noise)
