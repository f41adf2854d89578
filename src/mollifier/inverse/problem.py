"""Declaring an inverse problem: grid, observations, unknowns, residual, direct recovery.

A problem is data, not a training loop. The residual is written once in terms of
named derivatives of the learned field (``d["u"]``, ``d["u_t"]``, ``d["lap"]``, ...) and
of the unknown and latent fields that ask for them, so it runs unchanged on every
derivative engine. The pieces live in their own modules: :mod:`.observations` (grid or
scattered data), :mod:`.fields` (unknown scalars, unknown and latent fields),
:mod:`.conditions` (Dirichlet, Neumann, initial), :mod:`.residuals` (divergence-form
building blocks).

Example (a 1-D Poisson problem ``u'' = -s(x)`` with an unknown source field ``s``):
    >>> import numpy as np, torch, mollifier
    >>> from mollifier.inverse import InverseProblem, Observations, UnknownField
    >>> grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (65,))
    >>> x = np.linspace(0, 1, 65)
    >>> problem = InverseProblem(
    ...     name="poisson-1d", grid=grid,
    ...     observations=Observations(np.sin(np.pi * x)),
    ...     derivatives={"u_xx": (2,)},
    ...     unknowns=[UnknownField("s")],
    ...     residual=lambda d, p, k: d["u_xx"] + p["s"],
    ...     direct=lambda d, k: {"s": -d["u_xx"]},
    ...     truth={"s": np.pi**2 * np.sin(np.pi * x)},
    ... )
    >>> problem.parameter
    's'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.engines import ENGINE_BOUNDARIES
from ..core.errors import check_choice
from ..core.grid import Grid
from ..core.operators import DerivativeSpec, normalize_requests
from .conditions import Dirichlet
from .fields import LatentField, UnknownField, UnknownScalar, field_axes, field_requests
from .observations import Observations, ScatteredObservations, add_relative_noise, random_mask

__all__ = [
    "InverseProblem",
    "LatentField",
    "Observations",
    "ScatteredObservations",
    "UnknownField",
    "UnknownScalar",
    "add_relative_noise",
    "random_mask",
]

Tensors = Mapping[str, torch.Tensor]
Residual = Callable[[Tensors, Tensors, Tensors], torch.Tensor]
DirectRecovery = Callable[[Tensors, Tensors], dict[str, torch.Tensor]]


@dataclass
class InverseProblem:
    """Everything that defines an inverse problem; the trainer does the rest.

    Args:
        name: Short identifier.
        grid: Grid of the observations and of the residual.
        observations: The data.
        derivatives: Named derivatives the residual and direct recovery need.
        unknowns: Unknown scalars, unknown fields and latent fields.
        residual: ``residual(d, p, k) -> Tensor`` on the grid, with ``d`` the engine's
            derivatives (``d["u"]`` is the field, ``(1, C, *grid.shape)``; plus the value
            and the derivatives of every unknown or latent field that declares
            derivatives), ``p`` the unknowns (fields ``(1, 1, *grid.shape)``, size 1
            along axes they do not depend on; scalars 0-dim) and ``k`` the known fields.
        direct: Optional ``direct(d, k) -> {name: field}`` reading an unknown off the
            derivatives where the residual is linear in it.
        truth: Ground truth of unknowns (arrays on the grid, or on a field's own axes, or
            floats) for metrics.
        known: Known fields on the grid (e.g. a source term), as arrays.
        boundary: ``"valid"`` (the backbone is evaluated on a halo beyond the grid) or
            ``"periodic"`` (the field is periodic on the grid).
        radius: Default mollifier support radius in physical units (per axis or one).
        residual_scale: Typical size of the residual terms, to balance the losses.
        data_weight: Default weight of the data loss.
        residual_weight: Default weight of the residual loss.
        field_names: Names of the learned field's channels (for figures).
        metric_mask: Optional boolean mask where metrics are computed (default: all).
        boundary_loss: Optional ``boundary_loss(d, p, k) -> Tensor`` of boundary
            conditions (e.g. ``d["u"][..., 0] - 1``), squared and averaged into the loss.
        boundary_weight: Weight of the boundary loss and of the ``conditions``.
        baselines: Estimates of the main unknown made without training (e.g. a
            derivative-free guess from the observations), scored beside the result.
        domain: Where the residual counts: a boolean mask on the grid, or a function of
            the coordinate arrays (``indexing="ij"``) returning one (default: the whole
            box). The networks are still evaluated on the whole box (plus the halo).
            Metrics use it where ``metric_mask`` is not given.
        conditions: Boundary and initial conditions (:mod:`mollifier.inverse.conditions`)
            for the observed field (``"u"``) and for unknown and latent fields.
    """

    name: str
    grid: Grid
    observations: Observations
    derivatives: Mapping[str, DerivativeSpec]
    unknowns: Sequence[UnknownScalar | UnknownField]
    residual: Residual
    direct: DirectRecovery | None = None
    truth: Mapping[str, Any] = field(default_factory=dict)
    known: Mapping[str, Any] = field(default_factory=dict)
    boundary: str = "valid"
    radius: float | Sequence[float] | None = None
    residual_scale: float = 1.0
    data_weight: float = 1.0
    residual_weight: float = 1.0
    field_names: Sequence[str] = ("u",)
    metric_mask: Any = None
    baselines: Mapping[str, Any] = field(default_factory=dict)
    boundary_loss: Callable[[Tensors, Tensors, Tensors], torch.Tensor] | None = None
    boundary_weight: float = 1.0
    description: str = ""
    domain: Any = None
    conditions: Sequence[Dirichlet] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Grid):
            raise TypeError(f"`grid` must be a mollifier.Grid; got {type(self.grid).__name__}")
        check_choice("boundary", self.boundary, ENGINE_BOUNDARIES)
        if not isinstance(self.observations, (Observations, ScatteredObservations)):
            raise TypeError(
                f"`observations` must be Observations (grid nodes) or ScatteredObservations; got {type(self.observations).__name__}"
            )
        requests = normalize_requests(self.derivatives, self.grid.ndim)
        names = [u.name for u in self.unknowns]
        if len(set(names)) != len(names):
            raise ValueError(f"`unknowns` names must be unique; got {names}")
        taken = {"u": "the observed field", **{n: "a derivative of the observed field" for n in requests}}
        for spec in self.unknowns:
            if not isinstance(spec, (UnknownField, UnknownScalar)):
                raise TypeError(f"`unknowns` entries must be UnknownScalar, UnknownField or LatentField; got {spec!r}")
            for name in (spec.name, *(field_requests(spec, self.grid.ndim) if isinstance(spec, UnknownField) else {})):
                if name in taken:
                    raise ValueError(f"name {name!r} of unknown {spec.name!r} is already {taken[name]}; names must be unique")
                taken[name] = f"a name of unknown {spec.name!r}"
            if isinstance(spec, UnknownField):
                field_axes(spec, self.grid.ndim)
        self.observations.validate(self.grid)
        for name, value in self.known.items():
            if np.asarray(value).shape not in ((), self.grid.shape):
                raise ValueError(f"known field {name!r} has shape {np.asarray(value).shape}; expected {self.grid.shape}")
        self._check_truth()
        self.domain = self._domain_mask(self.domain)
        fields = {"u", *(s.name for s in self.unknowns if isinstance(s, UnknownField))}
        for condition in self.conditions:
            if not isinstance(condition, Dirichlet):
                raise TypeError(f"`conditions` entries must be Dirichlet, Neumann or Initial(...); got {condition!r}")
            if condition.field not in fields:
                raise ValueError(f"a condition names field {condition.field!r}; the problem's fields are {sorted(fields)}")
        if (self.domain is not None or self.conditions) and self.boundary == "periodic":
            raise ValueError("`domain` and `conditions` need boundary='valid' (a periodic field has no boundary)")

    def _check_truth(self) -> None:
        specs = {s.name: s for s in self.unknowns}
        for name, value in self.truth.items():
            shape = np.shape(value)
            spec = specs.get(name)
            if isinstance(spec, UnknownScalar):
                allowed = [()]
            elif isinstance(spec, UnknownField):
                axes = field_axes(spec, self.grid.ndim)
                allowed = [self.grid.shape, tuple(self.grid.shape[a] for a in axes), ()]
            else:  # the truth of something else (e.g. the observed field): kept for the arrays
                continue
            if shape not in allowed:
                raise ValueError(f"`truth[{name!r}]` has shape {shape}; expected one of {sorted(set(allowed))}")

    def _domain_mask(self, domain: Any) -> np.ndarray | None:
        if domain is None:
            return None
        if callable(domain):
            mesh = [m.numpy() for m in self.grid.mesh(dtype=torch.float64)]
            domain = domain(*mesh)
        mask = np.asarray(domain)
        if mask.shape != self.grid.shape or mask.dtype != bool:
            raise ValueError(f"`domain` must be a boolean mask of the grid's shape {self.grid.shape}; got {mask.dtype} {mask.shape}")
        if not mask.any():
            raise ValueError("`domain` holds no grid node")
        return mask

    @property
    def parameter(self) -> str:
        """Name of the main unknown (the first one that is not latent)."""
        for spec in self.unknowns:
            if not getattr(spec, "latent", False):
                return spec.name
        raise ValueError("the problem declares no unknowns (latent fields are not parameters)")

    @property
    def fields(self) -> list[UnknownField]:
        """The unknown and latent fields (not the scalars)."""
        return [s for s in self.unknowns if isinstance(s, UnknownField)]

    @property
    def scores_mask(self) -> np.ndarray | None:
        """Where metrics are computed: ``metric_mask``, else the ``domain`` (None: everywhere)."""
        return self.metric_mask if self.metric_mask is not None else self.domain

    @property
    def channels(self) -> int:
        """Channels of the learned field (= observed fields)."""
        return self.observations.channels
