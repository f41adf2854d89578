"""Training that starts from what the data already say.

Before a network is trained, the data give three things for free (milliseconds):

- the noise level (:func:`~mollifier.network_free.noise_std`, from second differences);
- the mollifier radius where smoothing bias and noise balance
  (:func:`~mollifier.network_free.auto_radius`), which :func:`training_radius` scales
  to the radius the training uses (``TrainConfig(radius="auto")``);
- the network-free estimate of the unknowns (the problem's direct formula on the
  smoothed data, :func:`~mollifier.inverse.estimate_parameter`).

:func:`fit_unknowns` starts each unknown field's network at the network-free estimate
(a short regression). :func:`derivative_misfit` tests whether a trained field
reproduces the data's highest-order derivative to the noise level; where it does not
(the network lacks the capacity for the field's detail), :func:`anchor_to_data`
*anchors* the field: a fixed field is added to the backbone (:class:`AnchoredField`)
so that the sum is the smoothed data, and the training refines a field that already
holds the data's detail instead of one that never will. ``TrainConfig(warm_start=...)``
chooses when (:data:`WARM_STARTS`); what was done is recorded in
``metrics["warm_start"]``.

Example:
    >>> from mollifier.problems import make_problem
    >>> start = network_free_start(make_problem("langevin", grid=128, noise=0.05, seed=0))
    >>> start.radius_cells > 2, round(start.noise_std, 3) > 0
    (True, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..core.operators import derivatives, highest_request, normalize_requests
from ..network_free import auto_radius, noise_gain, noise_std, smooth_on_halo
from .problem import InverseProblem, UnknownField

if TYPE_CHECKING:  # pragma: no cover
    from .model import InverseModel

__all__ = [
    "ANCHOR_THRESHOLD",
    "RADIUS_RATIO",
    "WARM_STARTS",
    "COLLAPSE_FRACTION",
    "AnchoredField",
    "NetworkFreeStart",
    "collapsed_unknowns",
    "derivative_misfit",
    "fit_unknowns",
    "anchor_to_data",
    "anchored_state",
    "field_on_grid",
    "install_anchor",
    "is_anchored",
    "minimum_cells",
    "training_floor_cells",
    "network_free_start",
    "residual_order",
    "training_radius",
    "zero_output_layer",
]

WARM_STARTS = ("auto", "none", "anchor")
"""``TrainConfig.warm_start`` values: ``auto`` (train as usual; if the field misses the
data's detail a quarter of the way in, anchor it to the smoothed data and restart the
unknowns at the network-free estimate), ``none`` (never), ``anchor`` (anchored field
and network-free unknowns from the first step)."""

COLLAPSE_FRACTION = 1e-4
"""A positive unknown field whose every value on the grid is below this fraction of its
``init`` has collapsed: it sits on softplus's flat tail, where the gradient reaching its
network is attenuated by the same factor, and Adam's steps (whose ``eps`` is 1e-8) can no
longer bring it back. ``warm_start="auto"`` restarts such an unknown at the network-free
estimate (:func:`collapsed_unknowns`)."""

RADIUS_RATIO = 0.35
"""``radius="auto"`` trains at this fraction of the network-free optimum radius (the
networks smooth the rest). Measured: docs/inverse.md, "Choosing the radius"."""

ANCHOR_THRESHOLD = 2.0
"""The field is anchored when the misfit of its highest-order derivative exceeds this
multiple of what the noise alone explains (:func:`derivative_misfit`): beyond it, the
detail the network misses costs more than the smoothed noise an anchor brings in."""




@dataclass
class NetworkFreeStart:
    """What the data say before any training.

    Attributes:
        radius_cells: The network-free optimum radius in cells (bias-variance rule).
        radius: The same per axis, in physical units.
        spec: The highest-order derivative of the residual (the one the rule balances).
        noise_std: Noise standard deviation of the data (second differences).
        estimates: Network-free estimates of the unknowns (NaN where none: within one
            radius of a non-periodic edge); empty without a direct formula.
        seconds: Time taken.
    """

    radius_cells: float
    radius: tuple[float, ...]
    spec: Any
    noise_std: float
    estimates: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


def minimum_cells(order: int) -> float:
    """Smallest radius in cells for derivatives up to ``order`` (as :func:`auto_radius` allows)."""
    return float(max(2.0, math.ceil(order / 2) + 1))


def training_floor_cells(order: int) -> float:
    """Smallest radius in cells that ``radius="auto"`` trains with: ``order + 1`` (at least
    :func:`minimum_cells`).

    A trained field is rougher than the data at the scale of a cell, and its roughness
    grows with every derivative taken. Measured on the 4th-order chromatin benchmark
    (64^2, seed 0, noise-free data, learned recovery): Pearson 0.985 at 5 cells, 0.05 at
    4 cells and 0.06 at 3 (the unknown's network collapses); the 2nd-order heat benchmark
    trains well at 3 cells.
    """
    return max(minimum_cells(order), float(order + 1))


def _highest(problem: InverseProblem) -> Any:
    return highest_request(normalize_requests(problem.derivatives, problem.grid.ndim))


def residual_order(problem: InverseProblem) -> int:
    """The highest total derivative order among the residual's derivatives."""
    return max(sum(i) for i in _highest(problem))


def network_free_start(problem: InverseProblem, *, estimate: bool = True) -> NetworkFreeStart | None:
    """The network-free radius, noise level and (with ``estimate``) estimates of ``problem``.

    ``None`` where the data do not allow it: observations off the grid (scattered) or
    missing at some grid points (the smoothing needs every point), or more than one
    observed field.
    """
    obs = problem.observations
    mask = getattr(obs, "mask", None)  # scattered observations have none: not on the grid
    if mask is None or not mask.all() or obs.values.shape[0] != 1:
        return None
    start = time.perf_counter()
    values = obs.values[0]
    spec = _highest(problem)
    periodic = problem.boundary == "periodic"
    radius = auto_radius(values, spec, problem.grid.spacing, boundary="periodic" if periodic else "valid")
    cells = radius[0] / problem.grid.spacing[0]
    estimates: dict[str, np.ndarray] = {}
    if estimate and problem.direct is not None:
        from .direct import estimate_parameter  # the network-free path, at the radius chosen here

        result = estimate_parameter(problem, "mollifier", radius)
        estimates = {k[len("direct_"):]: v for k, v in result.arrays.items() if k.startswith("direct_")}
    return NetworkFreeStart(cells, tuple(radius), spec, noise_std(values), estimates, time.perf_counter() - start)


def training_radius(problem: InverseProblem, start: NetworkFreeStart | None) -> tuple[tuple[float, ...], float, str]:
    """``radius="auto"``: ``RADIUS_RATIO`` times the network-free optimum, whole cells,
    at least :func:`training_floor_cells`.

    Returns:
        ``(radius per axis in physical units, radius in cells, how it was chosen)``.
    """
    order = residual_order(problem)
    floor = training_floor_cells(order)
    spacing = problem.grid.spacing
    if start is None:  # scattered or incomplete data: no rule applies; the problem's radius, else the floor
        if problem.radius is not None:
            radius = tuple(problem.radius) if isinstance(problem.radius, (tuple, list)) else (float(problem.radius),) * len(spacing)
            return radius, radius[0] / spacing[0], "auto: the problem's default (no rule applies to scattered or incomplete data)"
        cells = max(floor, 4.0)
        return tuple(cells * h for h in spacing), cells, f"auto: {cells:g} cells (no rule applies to scattered or incomplete data)"
    cells = max(floor, float(round(RADIUS_RATIO * start.radius_cells)))
    rule = (f"auto: {RADIUS_RATIO:g} x the network-free optimum ({start.radius_cells:g} cells), "
            f"at least {floor:g} cells")
    return tuple(cells * h for h in spacing), cells, rule


# ----------------------------------------------------------------------- unknowns


def collapsed_unknowns(model: "InverseModel", problem: InverseProblem) -> list[str]:
    """The positive unknown fields over every grid axis that have collapsed: every value on
    the grid below :data:`COLLAPSE_FRACTION` of their ``init`` (seen once on chromatin
    with a smooth rate field, where the rate network was driven there during the residual
    warm-up by a field that had not met the data yet, and never came back: Pearson 0.066
    against 0.957 for the direct formula on the same field)."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    specs = {u.name: u for u in problem.unknowns if isinstance(u, UnknownField)}
    out = []
    with torch.no_grad():
        coords = problem.grid.coords(dtype=dtype, device=device)
        for name, module in model.field_unknowns.items():
            spec = specs[name]
            if not spec.positive or spec.latent or len(model.axes.get(name, ())) != problem.grid.ndim:
                continue
            if float(module(coords).max()) < COLLAPSE_FRACTION * abs(spec.init):
                out.append(name)
    return out


def fit_unknowns(
    model: "InverseModel",
    problem: InverseProblem,
    start: NetworkFreeStart,
    *,
    steps: int = 500,
    lr: float = 5e-3,
    batch: int = 16384,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Regress each unknown field's network (or those in ``names``) onto its network-free estimate.

    The targets are the estimate's finite values, clipped to their 1st-99th percentiles
    (a direct formula divides by derivatives that can nearly vanish) and, for positive
    unknowns, to positive values. Adam, ``lr`` decaying tenfold; at most ``batch``
    random points per step on large grids.

    Returns:
        ``{name: {"steps": ..., "loss": ..., "seconds": ...}}`` for every fitted unknown.
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    coords = problem.grid.coords(dtype=dtype, device=device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    report: dict[str, Any] = {}
    specs = {u.name: u for u in problem.unknowns if isinstance(u, UnknownField)}
    for name, module in model.field_unknowns.items():
        if names is not None and name not in names:
            continue
        estimate = start.estimates.get(name)
        if estimate is None or np.shape(estimate) != problem.grid.shape:
            continue
        finite = np.isfinite(estimate)
        if finite.sum() < 16:
            continue
        lo, hi = np.percentile(estimate[finite], [1, 99])
        if specs[name].positive:
            lo = max(lo, 1e-3 * max(abs(hi), 1e-12))
        target = np.clip(np.where(finite, estimate, lo), lo, max(hi, lo))
        scale = float(max(target[finite].var(), 1e-24))
        points = torch.as_tensor(np.flatnonzero(finite.reshape(-1)))
        values = torch.as_tensor(target.reshape(-1), dtype=dtype, device=device)
        t0 = time.perf_counter()
        optimizer = torch.optim.Adam(module.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.1 ** (1.0 / max(steps, 1)))
        loss = torch.tensor(float("nan"))
        for _ in range(steps):
            idx = points if len(points) <= batch else points[torch.randint(len(points), (batch,), generator=generator)]
            idx = idx.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = ((module(coords[idx]).reshape(-1) - values[idx]) ** 2).mean() / scale
            loss.backward()
            optimizer.step()
            schedule.step()
        report[name] = {"steps": steps, "loss": float(loss.detach()), "seconds": time.perf_counter() - t0}
    return report


# ----------------------------------------------------------------------- the field


class AnchoredField(nn.Module):
    """A backbone plus a fixed field on the (extended) grid: ``net(x) + base(x)``.

    ``base`` holds one value per channel at every node of the grid extended by ``halo``
    samples per side; the coordinates a derivative engine evaluates the backbone at are
    nodes of that extended grid (looked up by rounding, so a slab of rows under tiled
    training finds its own).
    """

    def __init__(self, net: nn.Module, base: torch.Tensor, lower: Any, spacing: Any, halo: Any) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("base", base)
        self.register_buffer("lower", torch.as_tensor(lower, dtype=torch.float64))
        self.register_buffer("spacing", torch.as_tensor(spacing, dtype=torch.float64))
        self.register_buffer("halo", torch.as_tensor(halo, dtype=torch.long))

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """``base`` at ``coords`` ``(N, ndim)``, as ``(N, C)``."""
        cells = (coords.double() - self.lower) / self.spacing
        index = torch.round(cells).long() + self.halo
        sizes = torch.as_tensor(self.base.shape[1:], device=index.device)
        index = torch.minimum(index.clamp_min(0), sizes - 1)
        values = self.base[(slice(None), *index.unbind(-1))]  # (C, N)
        return values.transpose(0, 1).to(coords.dtype)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords) + self.lookup(coords)


def is_anchored(model: "InverseModel") -> bool:
    """Whether the field backbone carries an anchor."""
    return isinstance(model.field.net, AnchoredField)


def anchored_state(state_dict: dict[str, Any]) -> bool:
    """Whether a saved model state holds an anchored field."""
    return any(key.startswith("field.net.base") for key in state_dict)


def install_anchor(model: "InverseModel", base: torch.Tensor | None = None) -> AnchoredField:
    """Add a fixed field to the field backbone, in the backbone's standardised units
    (``(C, *extended grid)``; ``None``: zeros, to be filled by a checkpoint)."""
    wrapper = model.field  # mean + std * net(x)
    grid = model.problem.grid
    halo = tuple(int(m) for m in model.engine.halo)
    shape = (model.problem.channels, *grid.extended_shape(halo))
    reference = wrapper.std
    tensor = torch.zeros(shape, dtype=reference.dtype, device=reference.device) if base is None else base
    if tuple(tensor.shape) != shape:
        raise ValueError(f"anchor base has shape {tuple(tensor.shape)}; the engine needs {shape}")
    tensor = tensor.to(dtype=reference.dtype, device=reference.device)
    if isinstance(wrapper.net, AnchoredField):
        wrapper.net.base.copy_(tensor)
        return wrapper.net
    anchored = AnchoredField(wrapper.net, tensor, grid.lower, grid.spacing, halo).to(reference.device)
    wrapper.net = anchored
    return anchored


def zero_output_layer(net: nn.Module, channels: int) -> bool:
    """Zero the backbone's output layer (its last ``nn.Linear``, if it maps to ``channels``),
    so that its output starts at zero and grows from there; returns whether it did."""
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linear or linear[-1].out_features != channels:
        return False
    with torch.no_grad():
        linear[-1].weight.zero_()
        if linear[-1].bias is not None:
            linear[-1].bias.zero_()
    return True


def anchor_to_data(model: "InverseModel", start: NetworkFreeStart) -> AnchoredField:
    """Anchor the field to the smoothed data, and let the backbone learn a correction.

    ``S(data)`` is the data mollified at the network-free radius and continued over the
    engine's halo (:func:`~mollifier.network_free.smooth_on_halo`); the fixed field is
    ``base = S(data)`` everywhere. The backbone's output layer is then zeroed
    (:func:`zero_output_layer`), so that the field equals ``base`` now and the backbone
    learns a correction that starts at zero (a trained or random output would jump about).

    The whole field is anchored, edges included. Measured (seed 0, anchored a quarter of
    the way in by ``warm_start="auto"``) against keeping the half-trained network's own
    field within the network-free radius of non-periodic edges: Langevin without noise,
    Pearson 0.9996 against 0.94; heat with a rough diffusivity (correlation length 0.08,
    5 % noise) 0.79 against 0.82, noise-free heat 0.984 against 0.989: the smoothed data's
    continuation over the edge never fails badly, a half-trained network's edge can.
    """
    problem = model.problem
    wrapper = model.field
    halo = tuple(int(m) for m in model.engine.halo)
    periodic = problem.boundary == "periodic"
    smooth = smooth_on_halo(problem.observations.values, problem.grid.spacing, start.radius, halo, periodic=periodic)
    device, dtype = wrapper.std.device, wrapper.std.dtype
    current = wrapper.net.net if isinstance(wrapper.net, AnchoredField) else wrapper.net
    coords = model.engine.coords(dtype, device)
    zero_output_layer(current, problem.channels)
    with torch.no_grad():  # what the backbone still outputs (zero unless its last layer is not a Linear)
        after = current(coords).transpose(0, 1).reshape(smooth.shape).double().cpu().numpy()
    shape = (-1, *([1] * problem.grid.ndim))
    mean = wrapper.mean.detach().cpu().double().numpy().reshape(shape)
    std = wrapper.std.detach().cpu().double().numpy().reshape(shape)
    base = (smooth - mean) / std - after
    return install_anchor(model, torch.as_tensor(base))


def field_on_grid(model: "InverseModel") -> np.ndarray:
    """The model's (mollified) field on the grid, ``(C, *grid)``, as float64."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        d = model(dtype, device)
    return d["u"].detach().cpu().double().numpy()[0]


def derivative_misfit(problem: InverseProblem, fit: np.ndarray, start: NetworkFreeStart) -> float:
    """How far the field misses the data's highest-order derivative, in units of noise.

    ``mean(D(data - fit)^2) / (sigma^2 ||K||^2)`` with ``D`` the highest-order derivative
    of the residual mollified at the network-free radius (interior only for
    non-periodic data), ``sigma`` the data's noise level and ``||K||^2`` the stencil's
    noise gain: about 1 when the fit misses nothing but noise, larger when it misses
    detail the data resolve. ``inf`` for noise-free data with any miss.
    """
    values = problem.observations.values[0]
    periodic = problem.boundary == "periodic"
    diff = torch.as_tensor(values - fit[0]).reshape(1, 1, *values.shape)
    d = derivatives(diff, {"d": start.spec}, problem.grid.spacing, start.radius, boundary="periodic" if periodic else "valid")["d"]
    mean_square = float(d.pow(2).mean())
    expected = start.noise_std**2 * noise_gain(start.spec, problem.grid.spacing, start.radius_cells)
    if expected <= 0:
        return math.inf if mean_square > 0 else 1.0
    return mean_square / expected
