"""Accuracy metrics of a recovered parameter against ground truth."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["pearson", "relative_l2"]


def _pair(estimate: ArrayLike, truth: ArrayLike, mask: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"`estimate` shape {a.shape} must match `truth` shape {b.shape}")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != a.shape:
            raise ValueError(f"`mask` shape {m.shape} must match {a.shape}")
        a, b = a[m], b[m]
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def pearson(estimate: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Pearson correlation over the finite (and masked-in) entries; NaN if undefined.

    Example:
        >>> round(pearson([1, 2, 3], [2, 4, 6.5]), 4)
        0.9989
    """
    a, b = _pair(estimate, truth, mask)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def relative_l2(estimate: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """``||estimate - truth|| / ||truth||`` over the finite (and masked-in) entries.

    Example:
        >>> relative_l2([1.0, 2.0], [1.0, 2.0])
        0.0
    """
    a, b = _pair(estimate, truth, mask)
    norm = np.linalg.norm(b)
    if a.size == 0 or norm == 0:
        return float("nan")
    return float(np.linalg.norm(a - b) / norm)
