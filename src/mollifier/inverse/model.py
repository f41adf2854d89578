"""The trainable pieces of an inverse problem: field backbone, unknowns, derivative engine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones import make_backbone
from ..core.engines import AbstractDerivativeEngine, AbstractStencilEngine, MollifierEngine, make_engine
from ..core.engines import engine_options as engine_options_of
from .problem import InverseProblem, UnknownField, UnknownScalar

__all__ = ["InverseModel", "guarded_divide"]


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value)) if value < 20 else value


def guarded_divide(numerator: torch.Tensor, denominator: torch.Tensor, floor: float) -> torch.Tensor:
    """``numerator / denominator``, damped where ``|denominator|`` falls below ``floor``.

    Computes ``numerator * denominator / (denominator^2 + floor^2)``: equal to the plain
    quotient where ``|denominator| >> floor`` and bounded (tending to 0) where the
    divisor vanishes, instead of exploding.
    """
    return numerator * denominator / (denominator * denominator + floor * floor)


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
        return self.mean + self.std * self.net(coords)


class _FieldUnknown(nn.Module):
    def __init__(self, spec: UnknownField, ndim: int, domain: list[tuple[float, float]]) -> None:
        super().__init__()
        self.spec = spec
        self.net = make_backbone(spec.backbone, ndim, 1, domain=domain, **dict(spec.options))
        offset = _inverse_softplus(spec.init) if spec.positive else spec.init
        self.offset = float(offset)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        raw = self.net(coords) + self.offset
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
    """Backbone for the observed field(s), the unknowns, and the derivative engine.

    Args:
        problem: The declared problem.
        engine: Engine name (``mollifier``, ``autodiff``, ``autodiff-forward``, ``fd``).
        backbone: Backbone name for the field.
        backbone_options: Keyword arguments of the field backbone.
        radius: Mollifier support radius (physical units; default: the problem's). Only
            the ``mollifier`` engine takes one.
        engine_options: The engine's own options (``kernel``, ``learnable_radius``,
            ``method``; ``accuracy`` for ``fd``), passed on strictly: one the engine does
            not take is an error. The problem's ``boundary`` is added where the engine
            takes one.
    """

    def __init__(
        self,
        problem: InverseProblem,
        engine: str = "mollifier",
        backbone: str = "mlp",
        backbone_options: dict[str, Any] | None = None,
        radius: Any = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        grid = problem.grid
        self.problem = problem
        takes = engine_options_of(engine)
        options = dict(engine_options or {})
        if "radius" in options:
            raise ValueError("give the radius as `radius` (TrainConfig.radius, --radius), not in `engine_options`")
        if "boundary" in takes:
            options.setdefault("boundary", problem.boundary)
        if "radius" in takes:
            options["radius"] = radius if radius is not None else problem.radius
        elif radius is not None:
            raise ValueError(f"`radius` ({radius!r}) applies to the 'mollifier' engine only; the {engine!r} engine takes none")
        self.engine: AbstractDerivativeEngine = make_engine(engine, grid, problem.derivatives, **options)
        if isinstance(self.engine, AbstractStencilEngine):
            for axis, (n, m) in enumerate(zip(grid.shape, self.engine.stencil_halo)):
                if n < 2 * m + 1:
                    raise ValueError(
                        f"the grid ({n} samples along axis {axis}) is too small for the {engine} engine's stencils "
                        f"({m} cells each side); use a larger `grid` or a smaller `radius`"
                    )
        domain = [tuple(b) for b in grid.bounds]
        self.field = _Standardized(
            make_backbone(backbone, grid.ndim, problem.channels, domain=domain, **(backbone_options or {})),
            problem.observations.values[:, problem.observations.mask],
        )
        self.field_unknowns = nn.ModuleDict()
        self.scalar_unknowns = nn.ModuleDict()
        for spec in problem.unknowns:
            if isinstance(spec, UnknownField):
                self.field_unknowns[spec.name] = _FieldUnknown(spec, grid.ndim, domain)
            elif isinstance(spec, UnknownScalar):
                self.scalar_unknowns[spec.name] = _ScalarUnknown(spec)
            else:
                raise TypeError(f"`unknowns` entries must be UnknownField or UnknownScalar; got {spec!r}")

    def unknowns(self, coords: torch.Tensor) -> dict[str, torch.Tensor]:
        """Current values of the unknowns: fields ``(1, 1, *grid.shape)``, scalars 0-dim."""
        shape = self.problem.grid.shape
        out = {name: m(coords).reshape(1, 1, *shape) for name, m in self.field_unknowns.items()}
        out.update({name: m() for name, m in self.scalar_unknowns.items()})
        return out

    def forward(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """Derivatives of the field (``"u"`` and the problem's names) from the engine."""
        return self.engine(self.field, dtype=dtype, device=device)

    def radius(self) -> list[float] | None:
        """The mollifier radius per axis in physical units (None for other engines)."""
        if isinstance(self.engine, MollifierEngine):
            return [float(r) for r in self.engine.layer.radius.detach().cpu()]
        return None


def as_tensor_on_grid(value: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A known array on the grid as ``(1, 1, *shape)`` (scalars stay 0-dim)."""
    array = np.asarray(value, dtype=np.float64)
    tensor = torch.as_tensor(array, dtype=dtype, device=device)
    return tensor if tensor.ndim == 0 else tensor.reshape(1, 1, *array.shape)
