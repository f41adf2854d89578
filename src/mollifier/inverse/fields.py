"""What the trainer learns besides the observed field: unknown scalars and fields, latent fields.

- :class:`UnknownScalar`: a constant (e.g. a diffusion coefficient), a parameter.
- :class:`UnknownField`: a field the problem asks for (a rate, a diffusivity), learned as
  the output of a small network of the coordinates.
- :class:`LatentField`: a field with no data that enters the residual (a potential, a
  source that obeys its own equation); learned like an unknown field, reported but not
  the headline parameter.

A field may depend on some of the grid's axes only (``axes=(0, 1)``: ``a(x, y)`` in a
problem on ``(x, y, t)``; broadcast along the others) and may ask for named derivatives
(``derivatives={"a_x0": (1, 0, 0)}``, multi-indices over the *grid's* axes, zero along
axes the field does not depend on). They come from the same engine as the observed
field's (for the ``mollifier`` engine: its network evaluated on its grid plus the halo
and convolved), and the residual reads them, and the field's value, from ``d``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.operators import DerivativeSpec, MultiIndex, normalize_requests

__all__ = ["LatentField", "UnknownField", "UnknownScalar", "field_axes", "field_requests"]


@dataclass(frozen=True)
class UnknownScalar:
    """An unknown constant, learned as a parameter.

    Args:
        name: Name used in the residual's ``p`` mapping and in the results.
        init: Initial value.
        positive: Keep it positive (learned through its logarithm).
    """

    name: str
    init: float = 1.0
    positive: bool = True


@dataclass(frozen=True)
class UnknownField:
    """An unknown field, learned as the output of a small network of the coordinates.

    Args:
        name: Name used in the residual's ``p`` (and ``d``) mappings and in the results.
        init: Value the field starts near.
        positive: Keep it positive (softplus output).
        backbone: A backbone name (``mlp``, ``piratenet``, ``pinnsformer``), ``gp`` (a
            Gaussian-process prior: a prior-weighted Fourier series trained to the maximum
            a posteriori estimate, :mod:`mollifier.inverse.priors`) or your own
            ``torch.nn.Module`` mapping ``(N, len(axes))`` coordinates to ``(N, 1)``
            (trained in place; its initialisation is yours).
        options: Keyword arguments of a named backbone (default: 3 x 64 tanh MLP for
            ``mlp``; for ``gp``, ``correlation_length`` and ``scale`` chosen from the data).
        derivatives: Named derivatives of this field the residual needs, over the grid's
            axes (e.g. ``{"a_x0": (1, 0)}``; see :mod:`mollifier.inverse.residuals`).
            With derivatives, ``p[name]`` and ``d[name]`` are the engine's field (the
            mollified one for the ``mollifier`` engine), consistent with them.
        axes: Grid axes the field depends on (default: all); broadcast along the others.
        radius: Mollifier radius for this field's derivatives (physical units, one or one
            per own axis; default: the run's radius along its axes).
    """

    name: str
    init: float = 1.0
    positive: bool = True
    backbone: Any = "mlp"
    options: Mapping[str, Any] | None = None
    derivatives: Mapping[str, DerivativeSpec] = field(default_factory=dict)
    axes: Sequence[int] | None = None
    radius: float | Sequence[float] | None = None

    latent = False

    @property
    def backbone_name(self) -> str | None:
        """The named backbone in lower case (names are case-insensitive); None for your own module."""
        return self.backbone.strip().lower() if isinstance(self.backbone, str) else None

    def backbone_options(self) -> dict[str, Any]:
        """The named backbone's keyword arguments: ``options``, or the defaults (3 x 64 MLP)."""
        if self.options is not None:
            return dict(self.options)
        return {"width": 64, "depth": 3} if self.backbone_name == "mlp" else {}


@dataclass(frozen=True)
class LatentField(UnknownField):
    """A field with no data that enters the residual; learned like an :class:`UnknownField`.

    It is reported (``learned_<name>`` arrays) but never the problem's headline parameter.
    Its defaults: starts near 0, any sign.
    """

    init: float = 0.0
    positive: bool = False

    latent = True


def field_axes(spec: UnknownField, ndim: int) -> tuple[int, ...]:
    """The grid axes a field depends on, checked."""
    if spec.axes is None:
        return tuple(range(ndim))
    axes = tuple(spec.axes)
    if (
        not axes
        or any(isinstance(a, bool) or not isinstance(a, int) for a in axes)
        or any(not 0 <= a < ndim for a in axes)
        or list(axes) != sorted(set(axes))
    ):
        raise ValueError(
            f"field {spec.name!r}: `axes` must be increasing grid axes in 0..{ndim - 1} without repeats; got {spec.axes!r}"
        )
    return axes


def field_requests(spec: UnknownField, ndim: int) -> dict[str, dict[MultiIndex, float]]:
    """The field's derivatives as multi-indices over its *own* axes (checked).

    Raises:
        ValueError: A multi-index has the wrong length or differentiates along an axis
            the field does not depend on.
    """
    if not spec.derivatives:
        return {}
    axes = field_axes(spec, ndim)
    requests = normalize_requests(spec.derivatives, ndim)
    own: dict[str, dict[MultiIndex, float]] = {}
    for name, combination in requests.items():
        own[name] = {}
        for idx, coeff in combination.items():
            off = [a for a in range(ndim) if a not in axes and idx[a] != 0]
            if off:
                raise ValueError(
                    f"field {spec.name!r}: derivative {name!r} {idx} differentiates along axis {off[0]}, "
                    f"but the field depends only on axes {list(axes)}"
                )
            own[name][tuple(idx[a] for a in axes)] = coeff
    return own
