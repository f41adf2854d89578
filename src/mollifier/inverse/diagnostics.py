"""What limits a trained run, in plain findings with suggestions.

After training, :func:`diagnose` compares the fit with what the data imply:

- ``fit-above-noise``: the data misfit stays above the noise level the data show
  (second differences, :func:`~mollifier.network_free.noise_std`): the field network did
  not reach the data (too few steps, too little capacity);
- ``derivative-misfit``: the field misses the data's highest-order derivative by more
  than the noise explains (:func:`~mollifier.inverse.warm_start.derivative_misfit`):
  the detail the recovery needs is not in the network's field;
- ``network-free-better``: with a ground truth (synthetic data), the network-free
  estimate scores higher than the trained one on the points both cover;
- ``time-budget``: the run stopped at its time budget before its steps were done;
- ``radius-at-floor``: ``radius="auto"`` hit its smallest allowed radius (noise-free
  or nearly noise-free data: a finer grid would resolve more).

Each finding is ``{"code", "message", "suggestion"}``; ``metrics["diagnostics"]`` holds
the list (empty when nothing limits the run) and ``metrics["fit_check"]`` the numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .metrics import pearson
from .problem import InverseProblem
from .warm_start import NetworkFreeStart, derivative_misfit

__all__ = ["AGREEMENT_LIMIT", "DERIVATIVE_LIMIT", "MISFIT_LIMIT", "NETWORK_FREE_MARGIN", "diagnose", "format_findings"]

MISFIT_LIMIT = 1.5
"""``fit-above-noise`` fires when the mean squared data misfit exceeds this multiple of
the noise variance the data show."""

DERIVATIVE_LIMIT = 2.0
"""``derivative-misfit`` fires above this ratio (the field check's anchoring threshold)."""

NETWORK_FREE_MARGIN = 0.005
"""``network-free-better`` fires when the network-free Pearson exceeds the trained one by this much."""


AGREEMENT_LIMIT = 0.5
"""``recoveries-disagree`` fires when the direct and learned recoveries of the headline
unknown, two readings of the same trained field, correlate less than this (Pearson
between them): one has collapsed. Needs no truth. On the benchmarks they agree to 0.97
or more; a collapsed learned network scored 0.07 against the truth while the direct
recovery from the same field scored 0.96."""


def _finding(code: str, message: str, suggestion: str) -> dict[str, str]:
    return {"code": code, "message": message, "suggestion": suggestion}


def diagnose(
    problem: InverseProblem,
    fit: np.ndarray,
    estimate: np.ndarray | None,
    start: NetworkFreeStart | None,
    *,
    steps_done: int,
    steps: int,
    stop_reason: str | None = None,
    radius_cells: float | None = None,
    radius_floor: float | None = None,
    radius_auto: bool = False,
    anchored: bool = False,
    recoveries: dict[str, np.ndarray] | None = None,
    headline: str | None = None,
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Findings and the numbers behind them.

    Args:
        problem: The problem (observations, truth if any).
        fit: The trained field on the grid, ``(C, *grid)``.
        estimate: The headline estimate of the main unknown (for the truth comparison).
        start: The data's network-free start (``None``: incomplete data; the
            noise-based checks are skipped).
        steps_done, steps, stop_reason: How the Adam phase ended.
        radius_cells, radius_floor, radius_auto: The training radius, its floor, and
            whether ``radius="auto"`` chose it.
        anchored: Whether the field was anchored to the data.
        recoveries: The headline unknown's ``direct`` and ``learned`` recoveries, where
            the run has both; ``headline`` is the one the metrics report.

    Returns:
        ``(findings, numbers)``.
    """
    findings: list[dict[str, str]] = []
    numbers: dict[str, Any] = {}
    obs = problem.observations
    grid_mask = getattr(obs, "mask", None)  # None: scattered data, not on the grid (and no start)
    if grid_mask is not None:
        misfit = float(((fit - obs.values) ** 2)[:, grid_mask].mean())
        numbers["data_misfit"] = misfit
    if start is not None and grid_mask is not None:
        noise_var = start.noise_std**2
        numbers["noise_std"] = start.noise_std
        numbers["misfit_over_noise"] = misfit / noise_var if noise_var > 0 else (math.inf if misfit > 0 else 1.0)
        ratio = derivative_misfit(problem, fit, start)
        numbers["derivative_misfit"] = ratio
        if numbers["misfit_over_noise"] > MISFIT_LIMIT:
            findings.append(_finding(
                "fit-above-noise",
                f"the data misfit is {numbers['misfit_over_noise']:.3g} x the noise variance the data show "
                f"(noise std {start.noise_std:.3g}): the field network did not reach the data",
                "train longer (--steps), widen the field network (backbone_options width=256), or anchor the "
                "field to the data (warm_start='anchor')",
            ))
        if ratio > DERIVATIVE_LIMIT:
            if anchored:
                # measured on heat, 127^2, correlation length 0.08, 5 %, anchored: 3x the steps
                # took the field from 1.94 to 1.07 x the noise (Pearson 0.80 -> 0.89); a
                # twice-wider network left the result unchanged to four digits
                advice = "train longer (--steps, e.g. 3x): the anchored field's correction needs steps, not width"
            else:
                advice = "train longer, widen the field network, use warm_start='anchor' (or 'auto'), or a smaller radius"
            findings.append(_finding(
                "derivative-misfit",
                f"the field misses the data's highest-order derivative by {ratio:.3g} x what the noise explains "
                f"(at the network-free radius, {start.radius_cells:g} cells): the recovery lacks detail the data hold"
                + (" even with the field anchored to the data" if anchored else ""),
                advice + "; compare with the network-free estimate (--engine direct)",
            ))
    truth = problem.truth.get(problem.parameter)
    if start is not None and estimate is not None and truth is not None and problem.parameter in start.estimates:
        free = start.estimates[problem.parameter]
        support = np.isfinite(free) & np.isfinite(estimate)
        if problem.metric_mask is not None:
            support &= np.asarray(problem.metric_mask, dtype=bool)
        net_p = pearson(np.where(support, estimate, np.nan), truth)
        free_p = pearson(np.where(support, free, np.nan), truth)
        numbers["network_free_pearson"] = free_p
        numbers["trained_pearson_on_network_free_support"] = net_p
        if np.isfinite(free_p) and np.isfinite(net_p) and free_p > net_p + NETWORK_FREE_MARGIN:
            findings.append(_finding(
                "network-free-better",
                f"against the truth, the network-free estimate (mollifier smoothing, {start.radius_cells:g} cells) "
                f"scores Pearson {free_p:.3f} and the trained network {net_p:.3f} on the points both cover",
                "use the network-free estimate (--engine direct), or train longer / anchor the field "
                "(warm_start='anchor')",
            ))
    both = recoveries or {}
    if both.get("direct") is not None and both.get("learned") is not None:
        direct, learned = (np.asarray(both[k], dtype=float) for k in ("direct", "learned"))
        support = np.isfinite(direct) & np.isfinite(learned)
        if problem.metric_mask is not None:
            support &= np.asarray(problem.metric_mask, dtype=bool)
        agreement = pearson(np.where(support, direct, np.nan), learned) if support.sum() > 2 else float("nan")
        numbers["recoveries_agreement"] = agreement
        if np.isfinite(agreement) and agreement < AGREEMENT_LIMIT:
            other = "direct" if headline == "learned" else "learned"
            findings.append(_finding(
                "recoveries-disagree",
                f"the direct and learned recoveries of {problem.parameter} from the same trained field disagree "
                f"(Pearson {agreement:.2f} between them): one has collapsed",
                f"compare both in arrays.npz; if the {headline or 'headline'} map is flat or noisy, use "
                f"recovery='{other}' (--recovery {other})",
            ))
    if stop_reason == "time budget" and steps_done < steps:
        findings.append(_finding(
            "time-budget",
            f"training stopped at its time budget after {steps_done} of {steps} steps",
            "raise --time-budget, or expect the accuracy of a shorter run",
        ))
    near_clean = start is not None and radius_floor is not None and start.radius_cells <= radius_floor + 1
    if radius_auto and radius_cells is not None and radius_floor is not None and radius_cells <= radius_floor and near_clean:
        findings.append(_finding(
            "radius-at-floor",
            f"radius='auto' chose its smallest radius ({radius_cells:g} cells): the data are nearly noise-free "
            "at this grid, so smoothing is not what limits the recovery",
            "a finer grid, if the data have one, resolves more; the network-free estimate is likely as good here",
        ))
    return findings, numbers


def format_findings(findings: list[dict[str, str]]) -> list[str]:
    """One line per finding, for the command line."""
    return [f"{f['code']}: {f['message']}. Try: {f['suggestion']}." for f in findings]
