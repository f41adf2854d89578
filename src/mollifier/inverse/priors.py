"""Gaussian-process priors on unknown fields: their settings from the data, and their weight.

An unknown field declared with ``backbone="gp"`` is a
:class:`~mollifier.backbones.GaussianProcessField`: a truncated Fourier series whose
coefficients ``z`` have the prior ``N(0, I)``. Training then minimises

    loss + w_prior * |z|^2 / 2,   w_prior = 2 w_data max(sigma^2 / var(data), f^2) / N,

which is the data misfit ``|u - data|^2 / (2 sigma^2) + |z|^2 / 2`` of a maximum a
posteriori estimate, written in the loss's units (``w_data * mean(misfit) / var(data)``,
``N`` observed values, ``sigma`` the data's noise level), with the relative noise floored
at ``f`` (:data:`NOISE_FLOOR`, 5 % of the data's spread; ``options={"noise_floor": ...}``).
The PDE residual couples the unknown to the field as usual.

Why a floor: the unknown is read through the residual's derivatives of a fitted field,
whose error does not vanish with the data's noise (the mollified derivatives' bias, a
network's fit of nearly noise-free data); a prior weighed by the data's noise alone all
but disappears on nearly noise-free data and lets the unknown follow that error. Measured on the
benchmarks' noise-free chromatin data (``benchmarks/robustness_cell.py``, docs/benchmarks.md):
Pearson 0.953 / 0.988 without a floor on seeds 0 / 1, 0.990 / 0.997 with it. At 1 % noise
its effect depends on the draw (seed 0, ``python benchmarks/prior_sensitivity.py
--floors``: chromatin 0.955 -> 0.989, heat's roughest cell 0.010 worse; over seeds 0-2
about even). It changes nothing where the noise is above it.

The prior's two settings may be numbers or ``"auto"`` (the default), chosen from the
Gaussian-derivative network-free estimate of the unknown (:func:`estimate_parameter`):

- ``correlation_length``: the ``ell`` of ``exp(-lag^2 / (2 ell^2))`` fitted to the
  estimate's autocorrelation at lags of one cell and more (lag 0 holds the estimate's own
  noise) while it is above 0.2, averaged over the axes (:func:`correlation_length_of`);
- ``scale``: twice the estimate's spread, in the units of the series (the inverse softplus
  of the field for a positive unknown) (:func:`prior_scale_of`): a smoothed estimate
  understates the spread of what it estimates.

How much the two matter (``benchmarks/prior_sensitivity.py``, docs/benchmarks.md): on heat
(correlation length 0.15, 5 % noise) factors 0.67-1.67 on the length and 0.5-2 on the scale
keep the margin over the best smoother within +0.006 to +0.012; on Langevin's roughest cell
at 10 % noise the same factors swing it from -0.068 to +0.048.

``sigma`` is the noise standard deviation given as ``options={"noise_std": ...}`` (in the
data's units), else the noise level the data show (second differences,
:func:`~mollifier.network_free.noise_std`), else, for gridded data with gaps,
``Observations(noise=...)`` (relative) times the data's spread. Scattered data need
``noise_std``.

Example:
    >>> from mollifier.problems import make_problem
    >>> from mollifier.inverse.warm_start import network_free_start
    >>> problem = make_problem("heat", grid=32, noise=0.05, seed=0, correlation_length=0.2, prior="gp")
    >>> resolved, report = resolve_priors(problem, network_free_start(problem))
    >>> sorted(report["lambda"]), report["lambda"]["correlation_length"] > 0
    (['correlation_length', 'noise_floor', 'noise_std', 'rule', 'scale'], True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..backbones.spectral import GaussianProcessField
from .fields import UnknownField, field_axes
from .problem import InverseProblem

if TYPE_CHECKING:  # pragma: no cover
    from .model import InverseModel
    from .warm_start import NetworkFreeStart

__all__ = [
    "AUTO",
    "CORRELATION_FLOOR",
    "NOISE_FLOOR",
    "SCALE_FACTOR",
    "correlation_length_of",
    "has_prior",
    "has_priors",
    "noise_level",
    "prior_penalty",
    "prior_scale_of",
    "prior_weight",
    "resolve_priors",
]

AUTO = "auto"
SCALE_FACTOR = 2.0
"""The prior's spread is this many times the network-free estimate's."""
NOISE_FLOOR = 0.05
"""The prior's weight assumes a relative noise (of the data's spread) of at least this."""
CORRELATION_FLOOR = 0.2
"""The autocorrelation fit uses lags while the correlation stays above this."""


def _is_gp(spec: Any) -> bool:
    return isinstance(spec, UnknownField) and spec.backbone_name == "gp"


def has_priors(problem: InverseProblem) -> bool:
    """Whether any unknown field of ``problem`` has a Gaussian-process prior."""
    return any(_is_gp(u) for u in problem.unknowns)


def has_prior(problem: InverseProblem, name: str) -> bool:
    """Whether the unknown ``name`` has a Gaussian-process prior."""
    return any(_is_gp(u) and u.name == name for u in problem.unknowns)


def _finite_box(estimate: np.ndarray) -> np.ndarray:
    """The box of the estimate's finite values (it is NaN within a radius of non-periodic edges)."""
    finite = np.isfinite(estimate)
    if not finite.any():
        raise ValueError("the network-free estimate has no finite value: give the prior's settings as numbers")
    box = []
    for axis in range(estimate.ndim):
        other = tuple(a for a in range(estimate.ndim) if a != axis)
        rows = np.flatnonzero(finite.any(axis=other) if other else finite)
        box.append(slice(int(rows.min()), int(rows.max()) + 1))
    inner = estimate[tuple(box)]
    if not np.isfinite(inner).all():  # ragged support: keep the rows and columns that are whole
        for axis in range(inner.ndim):
            other = tuple(a for a in range(inner.ndim) if a != axis)
            whole = np.isfinite(inner).all(axis=other) if other else np.isfinite(inner)
            inner = np.compress(whole, inner, axis=axis)
    return inner


def correlation_length_of(estimate: np.ndarray, spacing: tuple[float, ...]) -> float:
    """Correlation length of a field estimate (physical units), from its autocorrelation.

    Per axis: the normalised autocovariance at lags ``1, 2, ...`` cells while it stays above
    :data:`CORRELATION_FLOOR` (at most a third of the axis), and the least-squares fit of
    ``log rho = c - lag^2 / (2 ell^2)``; averaged over the axes. An axis whose correlation
    drops below the floor within one cell gives one cell; one that never decays gives its
    length.

    The sample autocorrelation of one field is itself noisy (about 10 % on a box of 30
    correlation lengths a side).

    Example:
        >>> from mollifier.problems.forward.random_fields import gaussian_random_field
        >>> field = gaussian_random_field((256, 256), 10.0, 0.3, rng=0)   # ell = 0.3
        >>> 0.25 < correlation_length_of(field, (10 / 256, 10 / 256)) < 0.35
        True
    """
    values = _finite_box(np.asarray(estimate, dtype=np.float64))
    lengths = []
    for axis in range(values.ndim):
        v = np.moveaxis(values, axis, 0)
        v = v - v.mean()
        var = float(np.mean(v * v))
        if not var > 0:
            lengths.append(v.shape[0] * spacing[axis])
            continue
        lags, rho = [], []
        for lag in range(1, max(2, v.shape[0] // 3)):
            r = float(np.mean(v[lag:] * v[:-lag])) / var
            if r < CORRELATION_FLOOR:
                break
            lags.append(lag * spacing[axis])
            rho.append(r)
        if len(lags) < 2:
            lengths.append(spacing[axis])
            continue
        slope = float(np.polyfit(np.square(lags), np.log(rho), 1)[0])
        lengths.append(math.sqrt(-0.5 / slope) if slope < 0 else v.shape[0] * spacing[axis])
    return float(np.mean(lengths))


def _series_units(values: np.ndarray, spec: UnknownField) -> np.ndarray:
    """The estimate in the series' units: the field less its offset (inverse softplus for positive ones)."""
    v = values[np.isfinite(values)]
    low, high = np.percentile(v, [1, 99])
    if spec.positive:
        v = np.clip(v, max(low, 1e-3 * max(abs(spec.init), 1e-12)), max(high, 1e-12))
        return np.log(np.expm1(v))
    return np.clip(v, low, high)


def prior_scale_of(estimate: np.ndarray, spec: UnknownField) -> float:
    """:data:`SCALE_FACTOR` times the spread of the estimate in the series' units (clipped to its
    1st-99th percentiles; a direct formula divides by derivatives that can nearly vanish)."""
    spread = float(np.std(_series_units(np.asarray(estimate, dtype=np.float64), spec)))
    return SCALE_FACTOR * spread if spread > 0 else 1.0


def _period(problem: InverseProblem, axes: tuple[int, ...]) -> tuple[float, ...] | None:
    """The series' period: the grid's extent on a periodic problem, else ``None`` (twice the domain)."""
    if problem.boundary != "periodic":
        return None
    return tuple(problem.grid.shape[a] * problem.grid.spacing[a] for a in axes)


def resolve_priors(problem: InverseProblem, start: "NetworkFreeStart | None") -> tuple[InverseProblem, dict[str, Any]]:
    """``problem`` with every ``"auto"`` setting of its Gaussian-process priors chosen, and a report
    (per prior: its settings, how they were chosen, and the data's noise level the weight uses).

    Raises:
        ValueError: ``"auto"`` where the data give no network-free estimate of that unknown
            (scattered or incomplete data, no direct formula, a field on some axes only); no
            noise level to weigh the priors by (:func:`noise_level`).
    """
    if not has_priors(problem):
        return problem, {}
    priors = [spec for spec in problem.unknowns if _is_gp(spec)]
    given = _shared_setting(priors, "noise_std", None, lambda v: math.isfinite(v) and v > 0, "a positive number",
                            "the data have one noise level")
    floor = _shared_setting(priors, "noise_floor", NOISE_FLOOR, lambda v: 0.0 <= v < 1.0,
                            "a number in [0, 1) (relative to the data's spread)", "they share one weight")
    estimates: dict[str, np.ndarray] | None = None
    report: dict[str, Any] = {}
    unknowns = []
    for spec in problem.unknowns:
        if not _is_gp(spec):
            unknowns.append(spec)
            continue
        options = {k: v for k, v in (spec.options or {}).items() if k not in ("noise_std", "noise_floor")}
        axes = field_axes(spec, problem.grid.ndim)
        rules = []
        if AUTO in (options.get("correlation_length", AUTO), options.get("scale", AUTO)):
            if estimates is None:
                estimates = _gaussian_estimates(problem, start)
            estimate = estimates.get(spec.name)
            if estimate is None or len(axes) != problem.grid.ndim:
                raise ValueError(
                    f"unknown field {spec.name!r}: correlation_length='auto' and scale='auto' come from the network-free "
                    "estimate, which these data do not give (scattered or incomplete data, no direct formula for it, "
                    "or a field on some axes only); give UnknownField(backbone='gp', options={'correlation_length': ..., "
                    "'scale': ...}) as numbers"
                )
            if options.get("correlation_length", AUTO) == AUTO:
                options["correlation_length"] = correlation_length_of(estimate, problem.grid.spacing)
                rules.append("correlation length from the network-free estimate's autocorrelation")
            if options.get("scale", AUTO) == AUTO:
                options["scale"] = prior_scale_of(estimate, spec)
                rules.append(f"scale {SCALE_FACTOR:g} x the network-free estimate's spread")
        if "period" not in options and (period := _period(problem, axes)) is not None:
            options["period"] = period
        unknowns.append(dataclasses.replace(spec, options=options))
        report[spec.name] = {"correlation_length": float(options["correlation_length"]), "scale": float(options["scale"]),
                             "rule": "; ".join(rules) or "given"}
    sigma = noise_level(problem, start, given)
    for info in report.values():
        info["noise_std"] = sigma
        info["noise_floor"] = floor
    return dataclasses.replace(problem, unknowns=unknowns), report


def _shared_setting(priors: list[UnknownField], key: str, default: float | None, valid: Callable[[float], bool],
                    allowed: str, why_one: str) -> float | None:
    """The one value of an option every prior shares (a prior that does not give it has
    ``default``; ``None``: it has none); a bad value names its field, different values are
    refused (``why_one``: why there is one)."""
    values = set()
    for spec in priors:
        value = (spec.options or {}).get(key, default)
        if value is None and default is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
            raise ValueError(f"unknown field {spec.name!r}: `{key}` must be {allowed}, got {value!r}")
        values.add(float(value))
    if len(values) > 1:
        raise ValueError(f"the unknowns' priors give different `{key}` ({sorted(values)}); {why_one}")
    return next(iter(values), default)


def _gaussian_estimates(problem: InverseProblem, start: "NetworkFreeStart | None") -> dict[str, np.ndarray]:
    if start is None or problem.direct is None:
        return {}
    from .direct import estimate_parameter  # late: direct imports the model

    found = estimate_parameter(problem, "gaussian")
    return {k[len("direct_"):]: v for k, v in found.arrays.items() if k.startswith("direct_")}


def noise_level(problem: InverseProblem, start: "NetworkFreeStart | None", given: float | None = None) -> float:
    """The data's noise standard deviation: ``given``, else from the network-free start, else
    ``Observations(noise=...)`` (relative to the data's spread; gridded data only)."""
    if given is not None:
        return float(given)
    if start is not None and start.noise_std > 0:
        return float(start.noise_std)
    obs = problem.observations
    if not obs.scattered and obs.noise > 0:
        return float(obs.noise) * float(np.std(obs.observed()))
    raise ValueError(
        "a Gaussian-process prior needs the data's noise level, and these data do not show it (scattered, "
        "incomplete or noise-free): give UnknownField(backbone='gp', options={..., 'noise_std': SIGMA}) "
        "(the noise's standard deviation in the data's units)"
    )


def prior_weight(data_weight: float, observed_count: float, data_scale: float, sigma: float, floor: float = 0.0) -> float:
    """``2 w_data max(sigma^2 / var(data), floor^2) / N``: the weight of ``|z|^2 / 2`` that makes
    the loss a MAP objective (``sigma``: the data's noise level, ``floor``: the least relative
    noise it assumes, both as :func:`resolve_priors` reports them; ``floor=0``: the bare MAP weight).

    Example:
        >>> round(prior_weight(1.0, 100, 4.0, 0.2), 12)          # noise 10 % of the spread (2): 2 * 0.01 / 100
        0.0002
        >>> round(prior_weight(1.0, 100, 4.0, 0.02, 0.05), 12)   # 1 %, floored at 5 %: 2 * 0.0025 / 100
        5e-05
    """
    return 2.0 * data_weight * max(sigma**2 / data_scale, floor**2) / observed_count


def prior_penalty(model: "InverseModel") -> torch.Tensor | None:
    """Sum of the unknown fields' ``|z|^2 / 2`` (None when no unknown has a prior)."""
    terms = [m.net.prior_penalty() for m in model.field_unknowns.values() if isinstance(getattr(m, "net", None), GaussianProcessField)]
    return sum(terms[1:], terms[0]) if terms else None
