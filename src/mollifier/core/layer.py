"""The Mollifier Layer: smoothed field and its derivatives from a backbone's gridded output."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .convolution import BOUNDARIES, METHODS
from .errors import check_choice, check_per_axis
from .mollifiers import AbstractMollifier, get_mollifier
from .operators import (
    DerivativeSpec,
    MollifierStencils,
    _check_radius_cells,
    check_extent,
    check_field,
    evaluate_requests,
    learnable_stencil_source,
    normalize_requests,
)
from .stencils import halfwidth_for

__all__ = ["MollifierLayer"]


class MollifierLayer(nn.Module):
    """Returns the mollified field and named derivatives of it, by convolution.

    Attach it to any backbone that produces a field on a uniform grid: evaluate the
    backbone on the grid extended by :attr:`halo` samples per side (see
    :meth:`mollifier.Grid.coords`), reshape to ``(batch, channel, *spatial)`` and call the
    layer. The derivative kernels carry no trainable weights; with
    ``learnable_radius=True`` the support radius (one per axis) is a parameter.

    Args:
        derivatives: ``name -> multi-index`` or ``name -> {multi-index: coefficient}``.
        spacing: Grid spacing, a float or one per axis.
        radius: Support radius in physical units, a float or one per axis (>= 2 cells).
        kernel: ``"bump"``, ``"polynomial"`` or an ``AbstractMollifier``.
        boundary: ``"valid"`` (default), ``"periodic"``, ``"reflect"``, ``"replicate"``
            or ``"zeros"``.
        field_name: Name under which the smoothed field itself is returned (``None``
            to leave it out).
        learnable_radius: Make the radius a trainable parameter.
        max_radius: With a learnable radius, the largest radius the stencils leave room
            for (default ``1.5 * radius``); sets the halo.
        method: ``"auto"``, ``"direct"`` or ``"fft"``.
        check_finite: Raise if the input holds NaN or inf.

    Shape:
        - input: ``(B, C, *S)`` with ``S = grid + 2 * halo`` for ``"valid"``
        - each output: ``(B, C, *grid)``

    Example:
        >>> import torch
        >>> from mollifier import MollifierLayer, laplacian
        >>> layer = MollifierLayer({"lap": laplacian(2)}, spacing=0.1, radius=0.3)
        >>> layer.halo
        (3, 3)
        >>> out = layer(torch.randn(2, 1, 38, 38))
        >>> tuple(out["u"].shape), tuple(out["lap"].shape)
        ((2, 1, 32, 32), (2, 1, 32, 32))
    """

    def __init__(
        self,
        derivatives: Mapping[str, DerivativeSpec],
        spacing: float | Sequence[float],
        radius: float | Sequence[float],
        *,
        kernel: str | AbstractMollifier = "bump",
        boundary: str = "valid",
        field_name: str | None = "u",
        learnable_radius: bool = False,
        max_radius: float | Sequence[float] | None = None,
        method: str = "auto",
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        ndim = _infer_ndim(derivatives, spacing, radius)
        requests = normalize_requests(derivatives, ndim)
        if field_name is not None:
            if field_name in requests:
                raise ValueError(f"`field_name` {field_name!r} clashes with a requested derivative name")
            requests = {field_name: {(0,) * ndim: 1.0}, **requests}
        self.requests = requests
        self.spacing = check_per_axis("spacing", spacing, ndim)
        radius_t = check_per_axis("radius", radius, ndim)
        _check_radius_cells(self.spacing, radius_t)
        self.mollifier = get_mollifier(kernel)
        for spec in requests.values():
            for idx in spec:
                for order in idx:
                    self.mollifier.check_order(order)
        self.boundary = check_choice("boundary", boundary, BOUNDARIES)
        self.method = check_choice("method", method, METHODS)
        self.check_finite = check_finite
        self.learnable_radius = bool(learnable_radius)
        if self.learnable_radius:
            limit = check_per_axis("max_radius", max_radius, ndim) if max_radius is not None else tuple(
                1.5 * r for r in radius_t
            )
            if any(m < r for m, r in zip(limit, radius_t)):
                raise ValueError(f"`max_radius` {limit} must be >= `radius` {radius_t}")
            self.max_radius = limit
            self.halo = tuple(halfwidth_for(m, h) for m, h in zip(limit, self.spacing))
            self.log_radius = nn.Parameter(torch.tensor([math.log(r) for r in radius_t], dtype=torch.float64))
            self._fixed: MollifierStencils | None = None
        else:
            self._fixed = MollifierStencils(self.mollifier, self.spacing, radius_t)
            self.halo = self._fixed.halo

    @property
    def ndim(self) -> int:
        """Number of spatial dims."""
        return len(self.spacing)

    @property
    def radius(self) -> torch.Tensor:
        """Current support radius per axis (float64 tensor)."""
        if self._fixed is not None:
            return torch.tensor(self._fixed.radius, dtype=torch.float64)
        upper = torch.tensor(self.max_radius, dtype=torch.float64, device=self.log_radius.device)
        lower = torch.tensor([2.0 * h for h in self.spacing], dtype=torch.float64, device=self.log_radius.device)
        return torch.minimum(torch.maximum(self.log_radius.exp(), lower), upper)

    def forward(self, g: torch.Tensor) -> dict[str, torch.Tensor]:
        """Smoothed field and derivatives of ``g`` (``(B, C, *S)``)."""
        check_field(g, "g", check_finite=self.check_finite)
        if g.ndim - 2 != self.ndim:
            raise ValueError(
                f"`g` must have {self.ndim} spatial dims (shape (B, C, *spatial)); got shape {tuple(g.shape)}"
            )
        check_extent(g, self.halo, self.boundary, f"the layer's kernel (halo {self.halo})")
        return evaluate_requests(g, self.requests, self.stencil_source(g.dtype, g.device), self.boundary, self.method)

    def stencil_source(self, dtype: torch.dtype, device: torch.device):
        """``source(axis, order) -> taps`` of the current radius, on ``dtype`` and ``device``.

        Every order along one axis has ``2 * halo[axis] + 1`` taps. Exposed so that a
        caller with its own boundary layout (e.g. a tile of a domain decomposition,
        :mod:`mollifier.distributed.tiling`) can apply the same kernels.
        """
        if self._fixed is not None:
            return self._fixed.bind(dtype, device)
        return learnable_stencil_source(self.mollifier, self.spacing, self.radius, self.halo, dtype, device)

    def extra_repr(self) -> str:
        return (
            f"derivatives={list(self.requests)}, spacing={self.spacing}, halo={self.halo}, "
            f"kernel={self.mollifier!r}, boundary={self.boundary!r}, learnable_radius={self.learnable_radius}"
        )


def _infer_ndim(derivatives: object, spacing: object, radius: object) -> int:
    if isinstance(derivatives, Mapping):
        for spec in derivatives.values():
            if isinstance(spec, Mapping):
                spec = next(iter(spec), ())
            if isinstance(spec, Sequence) and not isinstance(spec, str):
                return len(spec)
    for value in (spacing, radius):
        if isinstance(value, Sequence) and not isinstance(value, str):
            return len(value)
    raise ValueError("cannot tell the number of spatial dims: give `derivatives` as multi-index tuples")
