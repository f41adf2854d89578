"""Derivatives of mollified fields: the functional API.

A derivative is named by a multi-index with one entry per spatial dim: ``(2, 0)`` is
``d^2/dx0^2`` on a 2-D grid. A *derivative spec* is either a multi-index or a linear
combination of them, ``{(2, 0): 1.0, (0, 2): 1.0}`` (the Laplacian); helpers
:func:`laplacian`, :func:`biharmonic` and :func:`gradient` build the common ones.

Example:
    >>> import math, torch
    >>> import mollifier
    >>> h = 2 * math.pi / 128
    >>> x = torch.arange(128, dtype=torch.float64) * h
    >>> u = torch.sin(x).reshape(1, 1, 128)
    >>> d2 = mollifier.derivative(u, (2,), spacing=h, radius=4 * h, boundary="periodic")
    >>> bool(torch.allclose(d2, -u, atol=1e-2))
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch

from .convolution import BOUNDARIES, METHODS, apply_multi_indices
from .errors import (
    check_choice,
    check_finite_tensor,
    check_floating_tensor,
    check_multi_index,
    check_per_axis,
)
from .mollifiers import AbstractMollifier, get_mollifier
from .stencils import (
    check_fd_accuracy,
    finite_difference_halfwidth,
    halfwidth_for,
    mollifier_stencil,
    stencil_on,
)

__all__ = [
    "MIN_RADIUS_CELLS",
    "DerivativeSpec",
    "MultiIndex",
    "biharmonic",
    "derivative",
    "derivatives",
    "finite_differences",
    "gradient",
    "halo_width",
    "laplacian",
    "laplacian_power",
]

MultiIndex = tuple[int, ...]
DerivativeSpec = Union[Sequence[int], Mapping[Sequence[int], float]]

MIN_RADIUS_CELLS = 2.0
"""Smallest support radius, in grid cells, accepted along any axis."""


def gradient(ndim: int) -> dict[str, MultiIndex]:
    """First derivatives along each axis, named ``d0``, ``d1``, ...

    Example:
        >>> gradient(2)
        {'d0': (1, 0), 'd1': (0, 1)}
    """
    return {f"d{i}": tuple(int(i == j) for j in range(ndim)) for i in range(ndim)}


def laplacian(ndim: int) -> dict[MultiIndex, float]:
    """The Laplacian as a linear combination of multi-indices.

    Example:
        >>> laplacian(2)
        {(2, 0): 1.0, (0, 2): 1.0}
    """
    return {tuple(2 * int(i == j) for j in range(ndim)): 1.0 for i in range(ndim)}


def biharmonic(ndim: int) -> dict[MultiIndex, float]:
    """The bi-Laplacian ``lap(lap(.))`` as a linear combination of multi-indices.

    Example:
        >>> biharmonic(2)
        {(4, 0): 1.0, (2, 2): 2.0, (0, 4): 1.0}
    """
    return laplacian_power(ndim, 2)


def laplacian_power(ndim: int, power: int) -> dict[MultiIndex, float]:
    """``lap^power`` expanded into multi-indices (``power=3``: the tri-Laplacian, order 6).

    Example:
        >>> laplacian_power(1, 3)
        {(6,): 1.0}
    """
    out: dict[MultiIndex, float] = {(0,) * ndim: 1.0}
    for _ in range(power):
        product: dict[MultiIndex, float] = {}
        for a, ca in out.items():
            for b, cb in laplacian(ndim).items():
                idx = tuple(x + y for x, y in zip(a, b))
                product[idx] = product.get(idx, 0.0) + ca * cb
        out = product
    return dict(sorted(out.items(), reverse=True))


def normalize_spec(name: str, spec: Any, ndim: int) -> dict[MultiIndex, float]:
    """Turn a derivative spec into ``{multi_index: coefficient}``, checking it."""
    if isinstance(spec, Mapping):
        if not spec:
            raise ValueError(f"`{name}` must hold at least one multi-index; got an empty mapping")
        out: dict[MultiIndex, float] = {}
        for idx, coeff in spec.items():
            key = check_multi_index(name, idx, ndim)
            if isinstance(coeff, bool) or not isinstance(coeff, (int, float)):
                raise TypeError(f"`{name}` coefficients must be numbers; got {coeff!r} for {key}")
            out[key] = out.get(key, 0.0) + float(coeff)
        return out
    return {check_multi_index(name, spec, ndim): 1.0}


def normalize_requests(requests: Any, ndim: int) -> dict[str, dict[MultiIndex, float]]:
    """Check a mapping ``name -> derivative spec`` and normalise every spec."""
    if not isinstance(requests, Mapping) or not requests:
        raise TypeError(
            "`derivatives` must be a non-empty mapping from names to multi-indices or "
            f"linear combinations of them, e.g. {{'u_xx': (2, 0)}}; got {requests!r}"
        )
    return {str(name): normalize_spec(f"derivatives[{name!r}]", spec, ndim) for name, spec in requests.items()}


def highest_request(requests: Mapping[str, Mapping[MultiIndex, float]]) -> dict[MultiIndex, float]:
    """The normalised request whose highest total derivative order is the largest.

    Example:
        >>> highest_request(normalize_requests({"u_x": (1, 0), "lap": laplacian(2)}, 2))
        {(2, 0): 1.0, (0, 2): 1.0}
    """
    return max(requests.values(), key=lambda spec: max(sum(i) for i in spec))


def halo_width(spacing: float | Sequence[float], radius: float | Sequence[float], ndim: int | None = None) -> tuple[int, ...]:
    """Halo, in samples per axis, that ``boundary="valid"`` needs around the grid.

    Example:
        >>> halo_width(0.1, 0.45, ndim=2)
        (4, 4)
    """
    if ndim is None:
        ndim = len(spacing) if isinstance(spacing, Sequence) else (len(radius) if isinstance(radius, Sequence) else 1)
    h = check_per_axis("spacing", spacing, ndim)
    r = check_per_axis("radius", radius, ndim)
    return tuple(halfwidth_for(ri, hi) for ri, hi in zip(r, h))


@dataclass(frozen=True)
class MollifierStencils:
    """Stencil source for mollifier derivatives with a fixed radius (cached)."""

    mollifier: AbstractMollifier
    spacing: tuple[float, ...]
    radius: tuple[float, ...]
    correct: bool = True

    @property
    def halo(self) -> tuple[int, ...]:
        """Samples the stencils reach on each side, per axis."""
        return tuple(halfwidth_for(r, h) for r, h in zip(self.radius, self.spacing))

    def bind(self, dtype: torch.dtype, device: torch.device):
        def source(axis: int, order: int) -> torch.Tensor:
            key = ("mollifier", self.mollifier, order, self.spacing[axis], self.radius[axis], self.correct)
            return stencil_on(key, dtype, device)

        return source


@dataclass(frozen=True)
class FiniteDifferenceStencils:
    """Stencil source for central finite differences of a given accuracy order."""

    spacing: tuple[float, ...]
    halo: tuple[int, ...]
    accuracy: int = 2

    def __post_init__(self) -> None:
        # checked here, not only when a stencil is built: a cached stencil would
        # otherwise accept e.g. accuracy=2.0 because 2.0 == 2 hashes alike
        check_fd_accuracy(self.accuracy)

    def bind(self, dtype: torch.dtype, device: torch.device):
        def source(axis: int, order: int) -> torch.Tensor:
            key = ("fd", order, self.spacing[axis], self.accuracy, self.halo[axis])
            return stencil_on(key, dtype, device)

        return source


def check_field(u: Any, name: str = "u", check_finite: bool = True) -> torch.Tensor:
    """Check a field ``(batch, channel, *spatial)`` with 1-3 spatial dims."""
    check_floating_tensor(name, u, ndims=(3, 4, 5))
    if check_finite:
        check_finite_tensor(name, u)
    return u


def check_extent(u: torch.Tensor, halo: Sequence[int], boundary: str, what: str) -> None:
    """Check that every spatial axis of ``u`` is long enough for stencils reaching ``halo``."""
    for axis, (n, half) in enumerate(zip(u.shape[2:], halo)):
        if n >= 2 * half + 1:
            continue
        if boundary == "valid":
            raise ValueError(
                f"`u` has {n} samples along spatial axis {axis}, but boundary='valid' needs a halo "
                f"of {half} samples on each side for {what} (at least {2 * half + 1} samples); "
                f"evaluate the field on a grid extended by the halo (see `halo_width`) "
                f"or choose another `boundary`"
            )
        raise ValueError(
            f"{what} spans {2 * half + 1} samples along spatial axis {axis}, wider than the grid "
            f"({n} samples); use a smaller `radius` or a finer grid"
        )


def evaluate_requests(
    u: torch.Tensor,
    requests: Mapping[str, Mapping[MultiIndex, float]],
    source,
    boundary: str,
    method: str,
) -> dict[str, torch.Tensor]:
    """Compute every requested linear combination with shared separable passes."""
    indices = sorted({idx for spec in requests.values() for idx in spec})
    raw = apply_multi_indices(u, indices, source, boundary, method)
    out: dict[str, torch.Tensor] = {}
    for name, spec in requests.items():
        terms = [coeff * raw[idx] if coeff != 1.0 else raw[idx] for idx, coeff in spec.items()]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        out[name] = total
    return out


def _check_radius_cells(spacing: tuple[float, ...], radius: tuple[float, ...]) -> None:
    for axis, (h, r) in enumerate(zip(spacing, radius)):
        if r / h < MIN_RADIUS_CELLS - 1e-9:
            raise ValueError(
                f"`radius` must span at least {MIN_RADIUS_CELLS:g} grid cells along every axis; "
                f"got radius {r:g} with spacing {h:g} ({r / h:.3g} cells) along axis {axis}"
            )


def derivatives(
    u: torch.Tensor,
    derivatives: Mapping[str, DerivativeSpec],
    spacing: float | Sequence[float],
    radius: float | Sequence[float],
    *,
    kernel: str | AbstractMollifier = "bump",
    boundary: str = "valid",
    method: str = "auto",
    check_finite: bool = True,
) -> dict[str, torch.Tensor]:
    """Several derivatives of the mollified field at once, sharing the separable passes.

    Args:
        u: Field ``(batch, channel, *spatial)``, 1-3 spatial dims, float32 or float64.
        derivatives: ``name -> multi-index`` or ``name -> {multi-index: coefficient}``.
        spacing: Grid spacing, one float or one per spatial dim.
        radius: Support radius of the mollifier in physical units, one float or one per
            spatial dim; at least 2 cells.
        kernel: ``"bump"`` (default), ``"polynomial"`` or an
            :class:`~mollifier.core.mollifiers.AbstractMollifier`.
        boundary: ``"valid"`` (input carries the halo), ``"periodic"``, ``"reflect"``,
            ``"replicate"`` or ``"zeros"``.
        method: ``"auto"``, ``"direct"`` or ``"fft"``.
        check_finite: Raise if ``u`` holds NaN or inf.

    Returns:
        ``name -> tensor`` with ``u``'s dtype and device; the spatial shape is ``u``'s,
        less ``2 * halo`` per axis when ``boundary="valid"``.

    Shape:
        - u: ``(B, C, *S)``
        - each output: ``(B, C, *S)`` or ``(B, C, *(S - 2 M))`` for ``"valid"``

    Example:
        >>> import torch, mollifier
        >>> u = torch.randn(1, 1, 64, 64, dtype=torch.float64)
        >>> out = mollifier.derivatives(u, {"lap": mollifier.laplacian(2), "u_x": (1, 0)},
        ...                             spacing=0.1, radius=0.4, boundary="periodic")
        >>> sorted(out), tuple(out["lap"].shape)
        (['lap', 'u_x'], (1, 1, 64, 64))
    """
    check_field(u, check_finite=check_finite)
    ndim = u.ndim - 2
    requests = normalize_requests(derivatives, ndim)
    h = check_per_axis("spacing", spacing, ndim)
    r = check_per_axis("radius", radius, ndim)
    mollifier = get_mollifier(kernel)
    check_choice("boundary", boundary, BOUNDARIES)
    check_choice("method", method, METHODS)
    _check_radius_cells(h, r)
    for spec in requests.values():
        for idx in spec:
            for order in idx:
                mollifier.check_order(order)
    stencils = MollifierStencils(mollifier, h, r)
    check_extent(u, stencils.halo, boundary, f"a kernel of radius {r} (halo {stencils.halo})")
    return evaluate_requests(u, requests, stencils.bind(u.dtype, u.device), boundary, method)


def derivative(
    u: torch.Tensor,
    derivative: DerivativeSpec,
    spacing: float | Sequence[float],
    radius: float | Sequence[float],
    *,
    kernel: str | AbstractMollifier = "bump",
    boundary: str = "valid",
    method: str = "auto",
    check_finite: bool = True,
) -> torch.Tensor:
    """One derivative (or linear combination) of the mollified field ``u * eta_delta``.

    ``D^a (u * eta_delta) = u * D^a eta_delta``: the field is correlated with moment-
    corrected samples of the kernel's analytic derivatives, one separable 1-D pass per
    axis. ``derivative=(0, ..., 0)`` returns the smoothed field itself.

    Args:
        u: Field ``(batch, channel, *spatial)``, 1-3 spatial dims, float32 or float64.
        derivative: Multi-index, one non-negative int per spatial dim, e.g. ``(2, 0)``;
            or a linear combination ``{(2, 0): 1.0, (0, 2): 1.0}``.
        spacing: Grid spacing, a float or one per spatial dim (as in ``torch.gradient``).
        radius: Support radius in physical units, a float or one per spatial dim; at
            least 2 cells and no wider than the grid.
        kernel: ``"bump"`` (``exp(-1/(1-r^2))``, default), ``"polynomial"``
            (``(1-r^2)^8``) or an ``AbstractMollifier`` instance.
        boundary: ``"valid"`` (default; the input carries a halo of ``halo_width``
            samples per side and the output is the interior), ``"periodic"``,
            ``"reflect"``, ``"replicate"`` or ``"zeros"``.
        method: ``"auto"`` (FFT for long stencils), ``"direct"`` or ``"fft"``.
        check_finite: Raise a ``ValueError`` if ``u`` holds NaN or inf.

    Returns:
        Tensor with ``u``'s dtype and device.

    Shape:
        - u: ``(B, C, *S)``
        - output: ``(B, C, *S)``, or ``(B, C, *(S - 2 M))`` for ``"valid"``

    Example:
        >>> import torch, mollifier
        >>> x = torch.linspace(-1.2, 1.2, 25, dtype=torch.float64)  # halo of 2 samples
        >>> u = (x**3).reshape(1, 1, -1)
        >>> d = mollifier.derivative(u, (2,), spacing=0.1, radius=0.2)
        >>> bool(torch.allclose(d.flatten(), 6 * x[2:-2]))
        True
    """
    return derivatives(
        u,
        {"_": derivative},
        spacing,
        radius,
        kernel=kernel,
        boundary=boundary,
        method=method,
        check_finite=check_finite,
    )["_"]


def finite_differences(
    u: torch.Tensor,
    derivatives: Mapping[str, DerivativeSpec],
    spacing: float | Sequence[float],
    *,
    accuracy: int = 2,
    boundary: str = "valid",
    check_finite: bool = True,
) -> dict[str, torch.Tensor]:
    """Central finite differences of the raw samples, with the same interface.

    With ``boundary="valid"`` the halo is the widest stencil's half-width along each
    axis (``finite_difference_halfwidth`` of the highest order requested there).

    Example:
        >>> import torch, mollifier
        >>> x = torch.linspace(-1, 1, 21, dtype=torch.float64)
        >>> out = mollifier.finite_differences((x**2).reshape(1, 1, -1), {"u_xx": (2,)}, spacing=0.1)
        >>> bool(torch.allclose(out["u_xx"], torch.full((1, 1, 19), 2.0, dtype=torch.float64)))
        True
    """
    check_field(u, check_finite=check_finite)
    ndim = u.ndim - 2
    requests = normalize_requests(derivatives, ndim)
    h = check_per_axis("spacing", spacing, ndim)
    check_choice("boundary", boundary, BOUNDARIES)
    halo = fd_halo(requests, ndim, accuracy)
    stencils = FiniteDifferenceStencils(h, halo, accuracy)
    check_extent(u, halo, boundary, f"finite differences (halo {halo})")
    return evaluate_requests(u, requests, stencils.bind(u.dtype, u.device), boundary, "direct")


def fd_halo(requests: Mapping[str, Mapping[MultiIndex, float]], ndim: int, accuracy: int) -> tuple[int, ...]:
    """Halo per axis: the half-width of the widest central stencil that ``requests`` need."""
    check_fd_accuracy(accuracy)
    return tuple(
        max(finite_difference_halfwidth(idx[axis], accuracy) for spec in requests.values() for idx in spec)
        for axis in range(ndim)
    )


def learnable_stencil_source(
    mollifier: AbstractMollifier,
    spacing: tuple[float, ...],
    radius: torch.Tensor,
    halo: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
):
    """Uncached stencil source whose taps are differentiable in ``radius`` (one per axis)."""
    built: dict[tuple[int, int], torch.Tensor] = {}

    def source(axis: int, order: int) -> torch.Tensor:
        if (axis, order) not in built:
            taps = mollifier_stencil(
                mollifier, order, spacing[axis], radius[axis].double().cpu(), halfwidth=halo[axis]
            )
            built[(axis, order)] = taps.to(device=device, dtype=dtype)
        return built[(axis, order)]

    return source
