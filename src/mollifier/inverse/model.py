"""The trainable pieces of an inverse problem: field network, unknowns, derivative engines.

One engine (of the run's kind: ``mollifier``, ``autodiff``, ``autodiff-forward``, ``fd``)
gives the observed field's derivatives; every unknown or latent field that declares
derivatives gets its own engine of the same kind, on its own grid (its ``axes``), so the
residual sees all fields' derivatives computed the same way. Any ``torch.nn.Module``
mapping coordinates to channels can stand in for a named backbone (``networks=``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones import make_backbone
from ..core.engines import AbstractDerivativeEngine, AbstractStencilEngine, MollifierEngine, make_engine
from ..core.engines import engine_options as engine_options_of
from ..core.grid import Grid
from .conditions import Neumann
from .fields import UnknownField, UnknownScalar, field_axes, field_requests
from .problem import InverseProblem

__all__ = ["DEFAULT_RADIUS_CELLS", "InverseModel", "as_tensor_on_grid", "guarded_divide", "subgrid"]

DEFAULT_RADIUS_CELLS = 4.0
"""Mollifier radius, in cells per axis, when neither the run nor the problem gives one."""


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value)) if value < 20 else value


def guarded_divide(numerator: torch.Tensor, denominator: torch.Tensor, floor: float) -> torch.Tensor:
    """``numerator / denominator``, damped where ``|denominator|`` falls below ``floor``.

    Computes ``numerator * denominator / (denominator^2 + floor^2)``: equal to the plain
    quotient where ``|denominator| >> floor`` and bounded (tending to 0) where the
    divisor vanishes, instead of exploding.
    """
    return numerator * denominator / (denominator * denominator + floor * floor)


def subgrid(grid: Grid, axes: Sequence[int]) -> Grid:
    """The grid of the given axes of ``grid`` (a field's own grid)."""
    return Grid(tuple(grid.shape[a] for a in axes), tuple(grid.lower[a] for a in axes), tuple(grid.spacing[a] for a in axes))


def neumann_name(field: str, axis: int) -> str:
    """Name of the first derivative a Neumann condition on ``field`` reads (own axis ``axis``)."""
    return f"__normal_{field}_{axis}"


class _Standardized(nn.Module):
    """Backbone whose output is scaled to the data: ``mean + std * net(x)`` per channel.

    Networks train best on outputs of order one; observed fields often have small
    variations on a large offset (volume fractions, temperatures).
    """

    def __init__(self, net: nn.Module, observed: np.ndarray) -> None:
        super().__init__()
        self.net = net
        mean = observed.mean(axis=1)
        std = np.maximum(observed.std(axis=1), 1e-12)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.mean + self.std * _run(self.net, coords, self.autocast_device)

    autocast_device: str | None = None


def _run(net: nn.Module, coords: torch.Tensor, autocast_device: str | None) -> torch.Tensor:
    """``net(coords)``, in bfloat16 autocast when asked, returned in the input's dtype."""
    if autocast_device is None:
        return net(coords)
    with torch.autocast(autocast_device, dtype=torch.bfloat16):
        out = net(coords)
    return out.to(coords.dtype)


class _FieldUnknown(nn.Module):
    def __init__(self, spec: UnknownField, ndim: int, domain: list[tuple[float, float]], net: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        if net is None and isinstance(spec.backbone, nn.Module):
            net = spec.backbone
        self.net = net if net is not None else make_backbone(spec.backbone, ndim, 1, domain=domain, **spec.backbone_options())
        offset = _inverse_softplus(spec.init) if spec.positive else spec.init
        self.offset = float(offset)

    autocast_device: str | None = None

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        raw = _run(self.net, coords, self.autocast_device) + self.offset
        return nn.functional.softplus(raw) if self.spec.positive else raw


class _ScalarUnknown(nn.Module):
    def __init__(self, spec: UnknownScalar) -> None:
        super().__init__()
        self.spec = spec
        start = math.log(spec.init) if spec.positive else spec.init
        self.raw = nn.Parameter(torch.tensor(float(start)))

    def forward(self) -> torch.Tensor:
        return self.raw.exp() if self.spec.positive else self.raw


class InverseModel(nn.Module):
    """Network for the observed field(s), the unknowns, and the derivative engines.

    Args:
        problem: The declared problem.
        engine: Engine name (``mollifier``, ``autodiff``, ``autodiff-forward``, ``fd``).
        backbone: Backbone name for the field.
        backbone_options: Keyword arguments of the field backbone.
        radius: Mollifier support radius (physical units, one or one per axis; default:
            the problem's, else :data:`DEFAULT_RADIUS_CELLS` cells). Only the
            ``mollifier`` engine takes one.
        engine_options: The engine's own options (``kernel``, ``learnable_radius``,
            ``method``; ``accuracy`` for ``fd``), passed on strictly: one the engine does
            not take is an error. The problem's ``boundary`` is added where the engine
            takes one.
        networks: Your own ``torch.nn.Module`` per field, replacing the named backbones:
            ``"u"`` for the observed field (coordinates ``(N, ndim)`` to ``(N, C)``; its
            output is scaled to the data, ``mean + std * net(x)``), an unknown or latent
            field's name for that field (``(N, len(axes))`` to ``(N, 1)``).
    """

    def __init__(
        self,
        problem: InverseProblem,
        engine: str = "mollifier",
        backbone: str = "mlp",
        backbone_options: dict[str, Any] | None = None,
        radius: Any = None,
        engine_options: dict[str, Any] | None = None,
        networks: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        grid = problem.grid
        self.problem = problem
        networks = dict(networks or {})
        fields = {spec.name: spec for spec in problem.fields}
        unknown_nets = sorted(set(networks) - {"u"} - set(fields))
        if unknown_nets:
            raise ValueError(f"`networks` names {unknown_nets}, which are not fields of the problem (fields: {['u', *fields]})")
        for name, net in networks.items():
            if not isinstance(net, nn.Module):
                raise TypeError(f"`networks[{name!r}]` must be a torch.nn.Module; got {type(net).__name__}")
        takes = engine_options_of(engine)
        options = dict(engine_options or {})
        if "radius" in options:
            raise ValueError("give the radius as `radius` (TrainConfig.radius, --radius), not in `engine_options`")
        if "boundary" in takes:
            options.setdefault("boundary", problem.boundary)
        radius = radius if radius is not None else problem.radius
        if "radius" not in takes and radius is not None and radius is not problem.radius:
            raise ValueError(f"`radius` ({radius!r}) applies to the 'mollifier' engine only; the {engine!r} engine takes none")
        self.engine_name, self._options, self._radius = engine, options, radius

        requests = dict(problem.derivatives)
        requests.update(self._neumann_requests("u", tuple(range(grid.ndim))))
        self.engine: AbstractDerivativeEngine = self._engine_for(grid, requests, "u", tuple(range(grid.ndim)), None)
        domain = [tuple(b) for b in grid.bounds]
        field_net = networks.get("u")
        if field_net is None:
            field_net = make_backbone(backbone, grid.ndim, problem.channels, domain=domain, **(backbone_options or {}))
        self.field = _Standardized(field_net, problem.observations.observed())
        self.field_unknowns = nn.ModuleDict()
        self.scalar_unknowns = nn.ModuleDict()
        self.field_engines = nn.ModuleDict()
        self.axes: dict[str, tuple[int, ...]] = {}
        for spec in problem.unknowns:
            if isinstance(spec, UnknownField):
                axes = field_axes(spec, grid.ndim)
                self.axes[spec.name] = axes
                own = subgrid(grid, axes)
                self.field_unknowns[spec.name] = _FieldUnknown(spec, len(axes), [domain[a] for a in axes], networks.get(spec.name))
                wanted = {**field_requests(spec, grid.ndim), **self._neumann_requests(spec.name, axes)}
                if wanted:
                    self.field_engines[spec.name] = self._engine_for(own, wanted, spec.name, axes, spec.radius)
            elif isinstance(spec, UnknownScalar):
                self.scalar_unknowns[spec.name] = _ScalarUnknown(spec)
            else:
                raise TypeError(f"`unknowns` entries must be UnknownField, LatentField or UnknownScalar; got {spec!r}")

    def _neumann_requests(self, field: str, axes: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        if not any(isinstance(c, Neumann) and c.field == field for c in self.problem.conditions):
            return {}
        ndim = len(axes) if field != "u" else self.problem.grid.ndim
        return {neumann_name(field, i): tuple(int(i == j) for j in range(ndim)) for i in range(ndim)}

    def _engine_for(self, grid: Grid, requests: dict, field_name: str, axes: tuple[int, ...], radius: Any) -> AbstractDerivativeEngine:
        options = dict(self._options)
        if field_name != "u":
            options["field_name"] = field_name
        if "radius" in engine_options_of(self.engine_name):
            if radius is None:
                radius = self._radius
                if isinstance(radius, (list, tuple)) and len(radius) == self.problem.grid.ndim and len(axes) < len(radius):
                    radius = tuple(radius[a] for a in axes)
            if radius is None:
                radius = tuple(DEFAULT_RADIUS_CELLS * h for h in grid.spacing)
            options["radius"] = radius
        engine = make_engine(self.engine_name, grid, requests, **options)
        if isinstance(engine, AbstractStencilEngine):
            for axis, (n, m) in enumerate(zip(grid.shape, engine.stencil_halo)):
                if n < 2 * m + 1:
                    raise ValueError(
                        f"the grid ({n} samples along axis {axes[axis]}) is too small for the {self.engine_name} engine's "
                        f"stencils ({m} cells each side) of field {field_name!r}; use a larger `grid` or a smaller `radius`"
                    )
        return engine

    def unknowns(self, coords: torch.Tensor) -> dict[str, torch.Tensor]:
        """Values of unknowns that span every axis and ask for no derivatives, at grid
        ``coords`` (fields ``(1, 1, *grid.shape)``, scalars 0-dim)."""
        shape = self.problem.grid.shape
        out = {name: m(coords).reshape(1, 1, *shape) for name, m in self.field_unknowns.items()}
        out.update({name: m() for name, m in self.scalar_unknowns.items()})
        return out

    @property
    def simple(self) -> bool:
        """Every unknown field spans every axis and asks for no derivatives (the benchmarks' case)."""
        ndim = self.problem.grid.ndim
        return not self.field_engines and all(len(a) == ndim for a in self.axes.values())

    def unknown_fields(self, dtype: torch.dtype, device: torch.device, coords: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(d, p)``: the derivatives (and values) of fields that declare derivatives, and
        every unknown's value, broadcastable to ``(1, 1, *grid.shape)``.

        ``coords`` are the grid's coordinates (used for fields on every axis without
        derivatives, the plain case).
        """
        if self.simple:
            return {}, self.unknowns(coords)
        grid = self.problem.grid
        d: dict[str, torch.Tensor] = {}
        p: dict[str, torch.Tensor] = {}
        for name, module in self.field_unknowns.items():
            axes = self.axes[name]
            if name in self.field_engines:
                out = self.field_engines[name](module, dtype=dtype, device=device)
                out = {k: self._broadcast(v, axes) for k, v in out.items()}
                d.update(out)
                p[name] = out[name]
            elif len(axes) == grid.ndim:
                p[name] = module(coords).reshape(1, 1, *grid.shape)
            else:
                own = subgrid(grid, axes)
                p[name] = self._broadcast(module(own.coords(dtype=dtype, device=device)).reshape(1, 1, *own.shape), axes)
        p.update({name: m() for name, m in self.scalar_unknowns.items()})
        return d, p

    def _broadcast(self, value: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        grid = self.problem.grid
        if len(axes) == grid.ndim:
            return value
        shape = [grid.shape[a] if a in axes else 1 for a in range(grid.ndim)]
        return value.reshape(*value.shape[:2], *shape)

    def forward(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """Derivatives of the observed field (``"u"`` and the problem's names) from the engine."""
        return self.engine(self.field, dtype=dtype, device=device)

    def autocast(self, device_type: str) -> None:
        """Run every network in bfloat16 autocast on ``device_type`` (outputs back in float32)."""
        self.field.autocast_device = device_type
        for module in self.field_unknowns.values():
            module.autocast_device = device_type

    def compile_networks(self) -> None:
        """Compile every network in place with ``torch.compile`` (``nn.Module.compile``:
        parameters and state-dict keys unchanged)."""
        self.field.net.compile()
        for module in self.field_unknowns.values():
            module.net.compile()

    def radius(self) -> list[float] | None:
        """The observed field's mollifier radius per axis in physical units (None for other engines)."""
        if isinstance(self.engine, MollifierEngine):
            return [float(r) for r in self.engine.layer.radius.detach().cpu()]
        return None


def as_tensor_on_grid(value: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A known array on the grid as ``(1, 1, *shape)`` (scalars stay 0-dim)."""
    array = np.asarray(value, dtype=np.float64)
    tensor = torch.as_tensor(array, dtype=dtype, device=device)
    return tensor if tensor.ndim == 0 else tensor.reshape(1, 1, *array.shape)
