"""Abstract base class and argument validation shared by all backbones.

A backbone is a coordinate network ``u_theta: R^in_dim -> R^out_dim``. It takes
*physical* coordinates, optionally maps them affinely onto ``[-1, 1]^in_dim``
(when a ``domain`` is given) and returns the field values at those points.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["AbstractBackbone", "Domain"]

#: Per-input-dimension ``(low, high)`` physical bounds.
Domain = tuple[tuple[float, float], ...]


def _describe(value: object) -> str:
    """Short description of a received value for error messages."""
    return f"{value!r} (type {type(value).__name__})"


def check_positive_int(name: str, value: object) -> int:
    """Validate that ``value`` is a positive integer (``bool`` is rejected).

    Args:
        name: Argument name used in the error message.
        value: Received value.

    Returns:
        ``value`` as a Python ``int``.

    Raises:
        TypeError: If ``value`` is not an integer.
        ValueError: If ``value < 1``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive int, got {_describe(value)}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value}")
    return int(value)


def check_int_in_range(name: str, value: object, low: int, high: int) -> int:
    """Validate that ``value`` is an integer with ``low <= value <= high``.

    Args:
        name: Argument name used in the error message.
        value: Received value.
        low: Smallest allowed value.
        high: Largest allowed value.

    Returns:
        ``value`` as a Python ``int``.

    Raises:
        TypeError: If ``value`` is not an integer (``bool`` is rejected).
        ValueError: If ``value`` is out of range.
    """
    allowed = f"`{name}` must be an int in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{allowed}, got {_describe(value)}")
    ivalue = int(value)
    if not low <= ivalue <= high:
        raise ValueError(f"{allowed}, got {ivalue}")
    return ivalue


def check_positive_float(name: str, value: object) -> float:
    """Validate that ``value`` is a finite, strictly positive real number.

    Args:
        name: Argument name used in the error message.
        value: Received value.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        TypeError: If ``value`` is not a real number.
        ValueError: If ``value`` is not finite or not ``> 0``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a positive finite float, got {_describe(value)}")
    fvalue = float(value)
    if not math.isfinite(fvalue) or fvalue <= 0.0:
        raise ValueError(f"`{name}` must be a positive finite float, got {value}")
    return fvalue


def check_domain(domain: object, in_dim: int) -> Domain | None:
    """Validate a ``domain`` argument.

    Args:
        domain: ``None`` or a sequence of ``in_dim`` pairs ``(low, high)`` of
            finite reals with ``low < high``.
        in_dim: Expected number of pairs.

    Returns:
        The domain as a tuple of ``(float, float)`` pairs, or ``None``.

    Raises:
        TypeError: If ``domain`` is not a sequence of pairs of reals.
        ValueError: If the length is wrong, a bound is not finite or
            ``low >= high``.
    """
    if domain is None:
        return None
    allowed = f"None or a sequence of {in_dim} (low, high) pairs with low < high"
    if isinstance(domain, (str, bytes)) or not isinstance(domain, Sequence):
        # Accept array-likes such as numpy arrays / tensors via tolist().
        tolist = getattr(domain, "tolist", None)
        if tolist is None:
            raise TypeError(f"`domain` must be {allowed}, got {_describe(domain)}")
        domain = tolist()
        if not isinstance(domain, list):
            raise TypeError(f"`domain` must be {allowed}, got {_describe(domain)}")
    if len(domain) != in_dim:
        raise ValueError(
            f"`domain` must have one (low, high) pair per input dimension "
            f"(in_dim={in_dim}), got {len(domain)} entries: {domain!r}"
        )
    pairs: list[tuple[float, float]] = []
    for i, pair in enumerate(domain):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(
                f"`domain[{i}]` must be a (low, high) pair of floats, got {_describe(pair)}"
            )
        bounds: list[float] = []
        for bound in pair:
            if isinstance(bound, bool) or not isinstance(bound, numbers.Real):
                raise TypeError(
                    f"`domain[{i}]` must be a (low, high) pair of floats, got {_describe(pair)}"
                )
            bounds.append(float(bound))
        low, high = bounds
        if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
            raise ValueError(
                f"`domain[{i}]` must be a finite (low, high) pair with low < high, "
                f"got {tuple(pair)!r}"
            )
        pairs.append((low, high))
    return tuple(pairs)


class AbstractBackbone(nn.Module, abc.ABC):
    """Base class of all coordinate-network backbones.

    Subclasses implement :meth:`_forward`, which receives coordinates already
    validated and (if a ``domain`` was given) normalised to ``[-1, 1]``. The
    public :meth:`forward` performs the input checks and the normalisation.

    Every backbone is a pure point-wise map: row ``i`` of the output depends only
    on row ``i`` of the input, so ``autograd.grad(u.sum(), coords)`` yields the
    per-point gradient and nested calls yield per-point higher derivatives.

    Args:
        in_dim: Number of input coordinates (space/time dimensions).
        out_dim: Number of output fields.
        domain: Optional per-input-dimension ``(low, high)`` physical bounds.
            When given, inputs are mapped affinely so that ``low -> -1`` and
            ``high -> 1`` before the first layer.

    Attributes:
        in_dim: Number of input coordinates.
        out_dim: Number of output fields.
        domain: The validated domain as a tuple of ``(low, high)`` float pairs,
            or ``None``.

    Shape:
        - Input: ``(N, in_dim)``, floating dtype matching the parameters.
        - Output: ``(N, out_dim)``.

    Note:
        The input must be 2-D. To use per-point transforms such as
        ``torch.func.vmap(torch.func.hessian(f))``, wrap the model as
        ``f = lambda p: model(p[None])[0]``.

    Example:
        >>> import torch
        >>> class Affine(AbstractBackbone):
        ...     def __init__(self, in_dim, out_dim, domain=None):
        ...         super().__init__(in_dim, out_dim, domain)
        ...         self.lin = torch.nn.Linear(in_dim, out_dim)
        ...     def _forward(self, x):
        ...         return self.lin(x)
        >>> net = Affine(2, 1, domain=[(0, 10), (0, 1)])
        >>> net(torch.rand(3, 2)).shape
        torch.Size([3, 1])
        >>> net.normalize(torch.tensor([[0.0, 1.0]])).tolist()
        [[-1.0, 1.0]]
    """

    in_dim: int
    out_dim: int
    domain: Domain | None

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        domain: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.out_dim = check_positive_int("out_dim", out_dim)
        self.domain = check_domain(domain, self.in_dim)
        if self.domain is not None:
            self._center: tuple[float, ...] | None = tuple(
                0.5 * (lo + hi) for lo, hi in self.domain
            )
            self._half_width: tuple[float, ...] | None = tuple(
                0.5 * (hi - lo) for lo, hi in self.domain
            )
        else:
            self._center = None
            self._half_width = None

    def normalize(self, coords: Tensor) -> Tensor:
        """Map physical coordinates onto ``[-1, 1]`` using ``domain``.

        The identity when ``domain`` is ``None``. The constants are created in
        the dtype and on the device of ``coords`` (kept as Python floats, so
        switching between float32 and float64 loses no precision).

        Args:
            coords: Physical coordinates.

        Returns:
            Normalised coordinates, same shape as ``coords``.

        Shape:
            - Input: ``(N, in_dim)``.
            - Output: ``(N, in_dim)``.

        Example:
            >>> from mollifier.backbones import MLP
            >>> m = MLP(1, 1, domain=[(0.0, 10.0)])
            >>> m.normalize(torch.tensor([[0.0], [5.0], [10.0]])).flatten().tolist()
            [-1.0, 0.0, 1.0]
        """
        if self._center is None or self._half_width is None:
            return coords
        center = torch.tensor(self._center, dtype=coords.dtype, device=coords.device)
        half = torch.tensor(self._half_width, dtype=coords.dtype, device=coords.device)
        return (coords - center) / half

    def _check_coords(self, coords: object) -> None:
        """Raise a clear error if ``coords`` is not a valid input."""
        if not isinstance(coords, Tensor):
            raise TypeError(
                f"`coords` must be a torch.Tensor of shape (N, {self.in_dim}), "
                f"got {type(coords).__name__}"
            )
        if not coords.is_floating_point():
            raise TypeError(
                f"`coords` must have a floating dtype (e.g. torch.float32 or "
                f"torch.float64), got {coords.dtype}"
            )
        if coords.ndim != 2 or coords.shape[-1] != self.in_dim:
            raise ValueError(
                f"`coords` must have shape (N, {self.in_dim}), got {tuple(coords.shape)}"
            )
        param = next(self.parameters(), None)
        if param is not None:
            if coords.dtype != param.dtype:
                raise TypeError(
                    f"`coords` dtype {coords.dtype} does not match the parameter dtype "
                    f"{param.dtype}; convert the model (e.g. model.double()) or the "
                    f"coordinates (e.g. coords.to({param.dtype}))"
                )
            if coords.device != param.device:
                raise ValueError(
                    f"`coords` is on device {coords.device} but the parameters are on "
                    f"{param.device}; move one of them (e.g. coords.to(param.device))"
                )

    def forward(self, coords: Tensor) -> Tensor:
        """Evaluate the network at physical coordinates.

        Args:
            coords: Points at which to evaluate the network.

        Returns:
            Network output at each point.

        Raises:
            TypeError: If ``coords`` is not a floating tensor of the model dtype.
            ValueError: If ``coords`` is not of shape ``(N, in_dim)`` or is on a
                different device than the parameters.

        Shape:
            - Input: ``(N, in_dim)``.
            - Output: ``(N, out_dim)``.
        """
        self._check_coords(coords)
        return self._forward(self.normalize(coords))

    @abc.abstractmethod
    def _forward(self, x: Tensor) -> Tensor:
        """Network body on validated, normalised coordinates.

        Args:
            x: Normalised coordinates.

        Returns:
            Network output.

        Shape:
            - Input: ``(N, in_dim)``.
            - Output: ``(N, out_dim)``.
        """

    def extra_repr(self) -> str:
        """Summary shown by ``repr``."""
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, domain={self.domain}"
