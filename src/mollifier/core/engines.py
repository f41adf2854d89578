"""Derivative engines: one interface, three ways to get named derivatives of a backbone.

A residual is written once in terms of named derivatives (``out["u"]``,
``out["lap"]``, ...). The engine decides how they are computed:

- ``"mollifier"``: evaluate the backbone on the grid extended by the kernel's halo and
  convolve with the mollifier's derivative kernels (:class:`MollifierLayer`).
  ``out[field]`` is the smoothed field.
- ``"autodiff"``: evaluate the backbone at the grid points and differentiate it by
  nested reverse-mode autodiff with respect to the input coordinates -- what PINN
  libraries do (DeepXDE's nested ``grad``). Each ``torch.autograd.grad`` call yields the
  derivatives along all axes, and shared lower-order derivatives are reused.
- ``"autodiff-forward"``: nested forward-mode autodiff (``torch.func.jvp``).
- ``"fd"``: evaluate the backbone on the grid extended by a finite-difference halo and
  apply central differences.

Every engine returns tensors of shape ``(1, C, *grid.shape)`` for a backbone mapping
coordinates ``(N, ndim)`` to ``(N, C)``.

Example:
    >>> import torch, mollifier
    >>> grid = mollifier.Grid.from_bounds([(0.0, 1.0)], (33,))
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    >>> for name in mollifier.ENGINES:
    ...     options = {"radius": 4 / 32} if name == "mollifier" else {}
    ...     out = mollifier.make_engine(name, grid, {"u_x": (1,)}, **options)(net)
    ...     assert out["u_x"].shape == (1, 1, 33)
    >>> mollifier.engine_options("fd")
    ('field_name', 'boundary', 'accuracy')
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from .errors import check_choice
from .grid import Grid
from .layer import MollifierLayer
from .mollifiers import AbstractMollifier
from .operators import (
    DerivativeSpec,
    FiniteDifferenceStencils,
    MultiIndex,
    evaluate_requests,
    fd_halo,
    normalize_requests,
)

__all__ = [
    "ENGINES",
    "ENGINE_BOUNDARIES",
    "AbstractDerivativeEngine",
    "AbstractStencilEngine",
    "AutodiffEngine",
    "FiniteDifferenceEngine",
    "ForwardAutodiffEngine",
    "MollifierEngine",
    "engine_options",
    "make_engine",
]

Backbone = Callable[[torch.Tensor], torch.Tensor]

ENGINE_BOUNDARIES: tuple[str, ...] = ("valid", "periodic")
"""Boundary handling of the grid-based engines: a halo beyond the grid, or periodic."""


class AbstractDerivativeEngine(nn.Module):
    """Computes named derivatives of a backbone's field on a grid.

    Args:
        grid: The grid on which derivatives are wanted.
        derivatives: ``name -> multi-index`` or ``name -> {multi-index: coefficient}``.
        field_name: Name of the field itself in the output.

    Concrete engines declare :attr:`name` and :attr:`options`, the keyword options
    :func:`make_engine` passes on (anything else is refused there).
    """

    name: ClassVar[str] = "abstract"
    options: ClassVar[tuple[str, ...]] = ("field_name",)

    def __init__(self, grid: Grid, derivatives: Mapping[str, DerivativeSpec], *, field_name: str = "u") -> None:
        super().__init__()
        if not isinstance(grid, Grid):
            raise TypeError(f"`grid` must be a mollifier.Grid; got {type(grid).__name__}")
        self.grid = grid
        self.field_name = field_name
        requests = normalize_requests(derivatives, grid.ndim)
        if field_name in requests:
            raise ValueError(f"`field_name` {field_name!r} clashes with a requested derivative name")
        self.requests: dict[str, dict[MultiIndex, float]] = {field_name: {(0,) * grid.ndim: 1.0}, **requests}

    @property
    def halo(self) -> tuple[int, ...]:
        """Samples beyond the grid, per side and axis, at which the backbone is evaluated."""
        return (0,) * self.grid.ndim

    def coords(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """Where the backbone is evaluated: the grid extended by :attr:`halo`, ``(N, ndim)``."""
        return self.grid.coords(self.halo, dtype=dtype, device=device)

    def to_field(self, values: torch.Tensor, halo: Sequence[int] | None = None) -> torch.Tensor:
        """Reshape backbone output ``(N, C)`` to ``(1, C, *shape)`` on the (extended) grid."""
        shape = self.grid.extended_shape(self.halo if halo is None else halo)
        if values.ndim != 2 or values.shape[0] != _prod(shape):
            raise ValueError(
                f"the backbone must return (N, C) with N = {_prod(shape)} points; got {tuple(values.shape)}"
            )
        return values.transpose(0, 1).reshape(1, values.shape[1], *shape)

    @abstractmethod
    def forward(
        self, backbone: Backbone, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """Evaluate ``backbone`` and return ``name -> (1, C, *grid.shape)``."""


StencilSource = Callable[[int, int], torch.Tensor]
"""``source(axis, order) -> taps``: the 1-D stencil of a derivative order along an axis."""


class AbstractStencilEngine(AbstractDerivativeEngine):
    """Engines whose derivatives are local stencils applied to the backbone's samples.

    The interface a caller with its own layout of samples needs (e.g. one tile of a domain
    decomposition, :mod:`mollifier.distributed.tiling`) to apply the same stencils:

    - :attr:`boundary`: ``"valid"`` (the backbone is evaluated on a halo beyond the grid)
      or ``"periodic"`` (on the grid only; the field wraps around);
    - :attr:`stencil_halo`: samples the stencils reach on each side, per axis (the
      evaluation :attr:`halo` is this for ``"valid"`` and zero for ``"periodic"``);
    - :meth:`stencil_source`: the taps, on a dtype and device;
    - :attr:`method`: how the convolution is computed (``"direct"``, ``"fft"``, ``"auto"``).
    """

    options: ClassVar[tuple[str, ...]] = ("field_name", "boundary")

    def __init__(
        self, grid: Grid, derivatives: Mapping[str, DerivativeSpec], *, boundary: str = "valid", field_name: str = "u"
    ) -> None:
        super().__init__(grid, derivatives, field_name=field_name)
        self.boundary = check_choice("boundary", boundary, ENGINE_BOUNDARIES)

    @property
    @abstractmethod
    def stencil_halo(self) -> tuple[int, ...]:
        """Samples the stencils reach on each side, per axis."""

    @property
    def method(self) -> str:
        """Convolution method passed to the separable passes."""
        return "direct"

    @abstractmethod
    def stencil_source(self, dtype: torch.dtype, device: torch.device) -> StencilSource:
        """The stencils' taps on ``dtype`` and ``device``."""

    @property
    def halo(self) -> tuple[int, ...]:
        return self.stencil_halo if self.boundary == "valid" else (0,) * self.grid.ndim

    def apply(self, field: torch.Tensor, boundary: str | None = None) -> dict[str, torch.Tensor]:
        """The requested derivatives of sampled values ``field`` (``(1, C, *shape)``)."""
        source = self.stencil_source(field.dtype, field.device)
        return evaluate_requests(field, self.requests, source, self.boundary if boundary is None else boundary, self.method)

    def forward(
        self, backbone: Backbone, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        return self.apply(self.to_field(backbone(self.coords(dtype, device))))


class MollifierEngine(AbstractStencilEngine):
    """Derivatives by convolution with mollifier derivative kernels (the method).

    Args:
        grid, derivatives, field_name: See :class:`AbstractDerivativeEngine`.
        radius: Support radius in physical units (float or one per axis).
        kernel, learnable_radius, method: Passed to :class:`MollifierLayer`.
        boundary: ``"valid"`` (evaluate the backbone on a halo beyond the grid) or
            ``"periodic"`` (evaluate on the grid only; the field wraps around).
    """

    name: ClassVar[str] = "mollifier"
    options: ClassVar[tuple[str, ...]] = ("field_name", "boundary", "radius", "kernel", "learnable_radius", "method")

    def __init__(
        self,
        grid: Grid,
        derivatives: Mapping[str, DerivativeSpec],
        *,
        radius: float | Sequence[float],
        kernel: str | AbstractMollifier = "bump",
        learnable_radius: bool = False,
        method: str = "auto",
        boundary: str = "valid",
        field_name: str = "u",
    ) -> None:
        super().__init__(grid, derivatives, boundary=boundary, field_name=field_name)
        wanted = {k: v for k, v in self.requests.items() if k != field_name}
        self.layer = MollifierLayer(
            wanted,
            grid.spacing,
            radius,
            kernel=kernel,
            boundary=boundary,
            field_name=field_name,
            learnable_radius=learnable_radius,
            method=method,
            check_finite=False,
        )

    @property
    def stencil_halo(self) -> tuple[int, ...]:
        return tuple(self.layer.halo)

    @property
    def method(self) -> str:
        return self.layer.method

    def stencil_source(self, dtype: torch.dtype, device: torch.device) -> StencilSource:
        return self.layer.stencil_source(dtype, device)

    def forward(
        self, backbone: Backbone, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        field = self.to_field(backbone(self.coords(dtype, device)))
        return self.layer(field)


class FiniteDifferenceEngine(AbstractStencilEngine):
    """Central finite differences of the backbone's raw samples (no smoothing).

    Args:
        accuracy: Even accuracy order of the central stencils (default 2).
    """

    name: ClassVar[str] = "fd"
    options: ClassVar[tuple[str, ...]] = ("field_name", "boundary", "accuracy")

    def __init__(
        self,
        grid: Grid,
        derivatives: Mapping[str, DerivativeSpec],
        *,
        accuracy: int = 2,
        boundary: str = "valid",
        field_name: str = "u",
    ) -> None:
        super().__init__(grid, derivatives, boundary=boundary, field_name=field_name)
        self.stencils = FiniteDifferenceStencils(grid.spacing, fd_halo(self.requests, grid.ndim, accuracy), accuracy)

    @property
    def stencil_halo(self) -> tuple[int, ...]:
        return self.stencils.halo

    def stencil_source(self, dtype: torch.dtype, device: torch.device) -> StencilSource:
        return self.stencils.bind(dtype, device)


class AutodiffEngine(AbstractDerivativeEngine):
    """Nested reverse-mode autodiff through the backbone at the grid points."""

    name: ClassVar[str] = "autodiff"

    def forward(
        self, backbone: Backbone, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        x = self.coords(dtype, device).requires_grad_(True)
        values = backbone(x)
        indices = {idx for spec in self.requests.values() for idx in spec}
        raw = {idx: [] for idx in indices}
        for channel in range(values.shape[1]):
            known = _reverse_derivatives(values[:, channel], x, indices)
            for idx in indices:
                raw[idx].append(known[idx])
        fields = {idx: self.to_field(torch.stack(cols, dim=1)) for idx, cols in raw.items()}
        return _combine(self.requests, fields)


def _parent(idx: MultiIndex) -> tuple[MultiIndex, int]:
    """Canonical parent: lower the last non-zero entry by one; returns (parent, axis)."""
    axis = max(i for i, a in enumerate(idx) if a > 0)
    return tuple(a - (i == axis) for i, a in enumerate(idx)), axis


def _reverse_derivatives(
    y: torch.Tensor, x: torch.Tensor, indices: set[MultiIndex]
) -> dict[MultiIndex, torch.Tensor]:
    """Derivatives of ``y`` (N,) w.r.t. ``x`` (N, d) for each multi-index, by nested grad.

    One ``grad`` call per distinct parent gives all first derivatives of it at once.
    """
    ndim = x.shape[1]
    needed: set[MultiIndex] = set()
    for idx in indices:
        while sum(idx) > 0 and idx not in needed:
            needed.add(idx)
            idx = _parent(idx)[0]
    known: dict[MultiIndex, torch.Tensor] = {(0,) * ndim: y}
    for idx in sorted(needed, key=sum):
        parent, axis = _parent(idx)
        if idx in known:
            continue
        if known[parent].requires_grad:
            (grads,) = torch.autograd.grad(known[parent].sum(), x, create_graph=True, materialize_grads=True)
        else:  # the parent no longer depends on x: all its derivatives vanish
            grads = torch.zeros_like(x)
        for a in range(ndim):
            child = tuple(v + (i == a) for i, v in enumerate(parent))
            if child in needed and child not in known:
                known[child] = grads[:, a]
    return known


class ForwardAutodiffEngine(AbstractDerivativeEngine):
    """Nested forward-mode autodiff (``torch.func.jvp``) through the backbone."""

    name: ClassVar[str] = "autodiff-forward"

    def forward(
        self, backbone: Backbone, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        x = self.coords(dtype, device)
        indices = {idx for spec in self.requests.values() for idx in spec}
        fields = {}
        for idx in indices:
            fn: Backbone = backbone
            for axis, order in enumerate(idx):
                for _ in range(order):
                    fn = _directional(fn, axis)
            fields[idx] = self.to_field(fn(x))
        return _combine(self.requests, fields)


def _directional(fn: Backbone, axis: int) -> Backbone:
    def derivative_along_axis(x: torch.Tensor) -> torch.Tensor:
        tangent = torch.zeros_like(x)
        tangent[:, axis] = 1
        return torch.func.jvp(fn, (x,), (tangent,))[1]

    return derivative_along_axis


def _combine(
    requests: Mapping[str, Mapping[MultiIndex, float]], fields: Mapping[MultiIndex, torch.Tensor]
) -> dict[str, torch.Tensor]:
    out = {}
    for name, spec in requests.items():
        total = None
        for idx, coeff in spec.items():
            term = fields[idx] if coeff == 1.0 else coeff * fields[idx]
            total = term if total is None else total + term
        out[name] = total
    return out


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


_ENGINE_CLASSES: dict[str, type[AbstractDerivativeEngine]] = {
    cls.name: cls for cls in (MollifierEngine, AutodiffEngine, ForwardAutodiffEngine, FiniteDifferenceEngine)
}
ENGINES: tuple[str, ...] = tuple(_ENGINE_CLASSES)
"""Engine names accepted by :func:`make_engine`."""


def engine_options(name: str) -> tuple[str, ...]:
    """The keyword options the engine ``name`` takes (see :func:`make_engine`)."""
    check_choice("engine", name, ENGINES)
    return _ENGINE_CLASSES[name].options


def make_engine(
    name: str, grid: Grid, derivatives: Mapping[str, DerivativeSpec], **options: Any
) -> AbstractDerivativeEngine:
    """Build a derivative engine by name.

    Args:
        name: One of :data:`ENGINES`.
        grid: Grid of the derivatives.
        derivatives: ``name -> derivative spec``.
        **options: The engine's options (its class's ``options``): ``radius`` (required),
            ``kernel``, ``learnable_radius``, ``method`` and ``boundary`` for
            ``"mollifier"``; ``accuracy`` and ``boundary`` for ``"fd"``; ``field_name``
            for all. An option the engine does not take is an error, not ignored.

    Raises:
        ValueError: Unknown engine, an option it does not take, or a missing ``radius``.
    """
    check_choice("engine", name, ENGINES)
    cls = _ENGINE_CLASSES[name]
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        raise ValueError(
            f"the {name!r} engine does not take option(s) {unknown}; it takes {sorted(cls.options)}"
        )
    if name == "mollifier" and options.get("radius") is None:
        raise ValueError("`radius` is required for the 'mollifier' engine")
    return cls(grid, derivatives, **options)
