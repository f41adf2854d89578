"""Floating-point tolerances derived from the arithmetic, for every test folder.

A tolerance that checks an *identity* (two computations of the same exact quantity, or a
computation of an exactly known result) must follow from the rounding of the operations
involved, never from the error seen on the machine where the test was written: a
4th-order stencil on ``h = 1/39`` has ``||c||_1 = 16 / h^4 ~ 4e7``, so one ulp of
difference in its input, or another accumulation order (another BLAS or oneDNN kernel,
another CPU), moves the result by ``~4e7 eps max|u|``; a hard-coded ``1e-12`` held on one
CPU by luck.

Notation: ``eps = torch.finfo(dtype).eps`` (unit roundoff ``eps / 2``; every bound below
uses ``eps`` itself, a factor 2 of margin), ``||c||_1 = sum |taps|``.

The bounds are first order in ``eps`` (``gamma_n = n eps / (1 - n eps) ~ n eps`` for
``n eps << 1``, true for every size used here), and hold for *any* summation order
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., sec. 3.1 and 4.2), so
they hold whichever kernel a BLAS or convolution library picks on a given CPU or thread
count.

How the suite uses it (every ``atol``/``rtol``/``approx``/``< 1e-..`` in ``tests/`` is one of):

(a) an identity or an exactly known result: the tolerance is a bound from this module (or,
    where the result is exact in floating point, an equality);
(b) a discretisation or accuracy tolerance (convergence slope, smoothing bias, quadrature,
    ODE solver accuracy, file-format precision): it follows from the method's error
    analysis, and a comment at the site says where the number comes from;
(c) a statistical or training target (noise estimates, Pearson targets, iterated
    optimisation): left as set, with a note.

Functions:

- :func:`stencil_rounding_bound`: one separable multi-axis stencil (a linear correlation)
  applied to data bounded by ``max|u|``;
- :func:`combination_rounding_bound`: a linear combination of those (Laplacian,
  biharmonic, ...), with :func:`mollifier_terms`, :func:`finite_difference_terms` and
  :func:`engine_terms` giving the taps with the library's own functions;
- :func:`reordering_bound`: two results that differ only in summation order (tiled vs
  whole grid, several requests vs one, padded vs explicitly padded), optionally from
  inputs that differ by rounding;
- :func:`engine_reordering_bound` and :func:`engine_abs_adjoint`: the same for an
  engine's outputs (FFT-aware), and its transposed stencils in absolute value;
- :func:`fft_rounding_bound`: FFT convolution against the exact correlation;
- :func:`network_forward_bound` / :func:`mlp_rounding_bound`: forward error of the
  project's MLP backbones (inputs evaluated in batches of another size may round
  differently); :func:`network_abs_vjp` and :func:`network_backward_roundings`: the
  backward pass in absolute values, for gradient bounds;
- :func:`sum_rounding_bound`: a sum or mean of ``n`` terms;
- :func:`spectral_rounding_bound` and :func:`trig_sum_rounding_bound`: spectral
  derivatives and Fourier series evaluated pointwise;
- :func:`residual_bound` and :func:`conditioned_bound`: linear solves (residual of a
  backward-stable solve, and forward error through a condition number).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = [
    "EPS32",
    "EPS64",
    "combination_gain",
    "combination_rounding_bound",
    "conditioned_bound",
    "engine_abs_adjoint",
    "engine_reordering_bound",
    "engine_terms",
    "eps",
    "fft_rounding_bound",
    "finite_difference_terms",
    "l1",
    "mlp_rounding_bound",
    "mollifier_terms",
    "network_abs_vjp",
    "network_backward_roundings",
    "network_forward_bound",
    "reordering_bound",
    "residual_bound",
    "spectral_rounding_bound",
    "stencil_rounding_bound",
    "sum_rounding_bound",
    "trig_sum_rounding_bound",
]

EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps

Taps = torch.Tensor
Term = tuple[float, Sequence[Taps]]
"""``(coefficient, stencils)``: one multi-index of a derivative spec, one 1-D taps tensor per axis."""

# Elementary functions (tanh, exp, sin) in libm / SLEEF are accurate to < 4 ulp.
_FUNCTION_ULPS = 4


def eps(dtype: torch.dtype | float) -> float:
    """Machine epsilon of ``dtype`` (a float is returned unchanged, for callers that pass eps)."""
    if isinstance(dtype, float):
        return dtype
    return float(torch.finfo(dtype).eps)


def l1(stencil: Taps) -> float:
    """``||c||_1 = sum_m |c_m|``: the gain of a stencil on data bounded in max-norm."""
    return float(stencil.detach().double().abs().sum())


def _as_passes(stencils: Taps | Sequence[Taps]) -> list[Taps]:
    if isinstance(stencils, torch.Tensor):
        return [stencils] if stencils.ndim == 1 else list(stencils)
    return list(stencils)


def stencil_rounding_bound(
    stencils: Taps | Sequence[Taps], max_abs_input: float, dtype: torch.dtype | float, k: float | None = None
) -> float:
    """Bound on the rounding error of separable stencil passes: ``k * eps * prod_a ||c_a||_1 * max|u|``.

    Pass ``a`` forms ``n_a`` products (taps rounded to ``dtype``: one more rounding) and
    accumulates them in some order: its error is at most ``gamma_{n_a + 1}`` times
    ``sum_m |c_m| |x_m| <= ||c_a||_1 * max|x|``, with ``max|x| <= prod_{b<a} ||c_b||_1 max|u|``
    (the output bound of the earlier passes); later passes amplify it by at most
    ``prod_{b>a} ||c_b||_1``. Summed over passes this is ``k = sum_a (n_a + 1)``, the
    default: the number of accumulated operations, independent of the order in which a
    convolution kernel adds them.

    Args:
        stencils: One 1-D taps tensor per separable pass (a single tensor: one pass).
        max_abs_input: ``max|u|`` of the data the stencils are applied to.
        dtype: Dtype of the arithmetic (or its eps as a float).
        k: Override the safety factor (default ``sum_a (n_a + 1)``).
    """
    passes = _as_passes(stencils)
    if k is None:
        k = sum(s.numel() + 1 for s in passes)
    return float(k) * eps(dtype) * math.prod(l1(s) for s in passes) * float(max_abs_input)


def combination_rounding_bound(
    terms: Iterable[Term], max_abs_input: float, dtype: torch.dtype | float, k: float | None = None
) -> float:
    """Rounding bound of ``sum_t coeff_t * (separable stencils_t applied to u)``.

    Each term is within :func:`stencil_rounding_bound` of exact and is scaled by
    ``|coeff|`` (one more rounding); adding ``T`` terms rounds ``T`` more times relative to
    ``sum_t |coeff_t| prod ||c||_1 max|u|``. So the bound is
    ``sum_t |coeff_t| * (k_t + T + 1) * eps * prod_a ||c_{t,a}||_1 * max|u|``.
    """
    terms = [(float(c), _as_passes(s)) for c, s in terms]
    extra = len(terms) + 1
    total = 0.0
    for coeff, passes in terms:
        k_t = (sum(s.numel() + 1 for s in passes) if k is None else k) + extra
        total += abs(coeff) * stencil_rounding_bound(passes, max_abs_input, dtype, k=k_t)
    return total


def combination_gain(terms: Iterable[Term]) -> float:
    """``sum_t |coeff_t| prod_a ||c_{t,a}||_1``: max-norm gain of the linear combination."""
    return sum(abs(float(c)) * math.prod(l1(s) for s in _as_passes(p)) for c, p in terms)


def reordering_bound(
    terms: Iterable[Term], max_abs_input: float, dtype: torch.dtype | float, input_difference: float = 0.0
) -> float:
    """Bound on the difference of two evaluations of the same linear combination.

    Both are within :func:`combination_rounding_bound` of the exact value of their own
    input, whatever their summation order, so they differ by at most twice that, plus the
    gain of the combination times ``input_difference`` (the largest difference between
    the two inputs, e.g. a network evaluated in batches of two sizes:
    :func:`mlp_rounding_bound`, twice).
    """
    terms = list(terms)
    return 2 * combination_rounding_bound(terms, max_abs_input, dtype) + combination_gain(terms) * float(
        input_difference
    )


def fft_rounding_bound(
    stencils: Taps | Sequence[Taps],
    lengths: int | Sequence[int],
    max_abs_input: float,
    dtype: torch.dtype | float,
    k: float = 32.0,
) -> float:
    """Bound on the rounding error of FFT-based correlation passes (against the exact result).

    One pass on a line of ``n`` samples computes ``irfft(rfft(x) * rfft(c))``. A radix-2
    FFT has a normwise relative error ``<= log2(n) * eta``, ``eta = mu + gamma_4 (sqrt 2 + mu)
    ~ 7 eps`` per butterfly stage (Higham, Thm 24.2; ``mu ~ eps``: twiddle factors); three
    transforms and one pointwise product give ``~ 3 * 7 = 21 eps log2(n)`` times
    ``||c||_1 ||x||_2`` (``|rfft(c)| <= ||c||_1``). ``k = 32`` leaves room for the radix-3/5
    butterflies of mixed-radix lengths. The max-norm error is at most the 2-norm error
    of the line, and ``||x||_2 <= sqrt(n) max|x|``: per pass
    ``k * eps * log2(n) * sqrt(n) * prod ||c||_1 * max|u|``, summed over passes.

    Args:
        stencils: One 1-D taps tensor per pass.
        lengths: Line length ``n`` of each pass (the padded length: what the FFT sees).
        max_abs_input: ``max|u|``.
        dtype: Dtype of the arithmetic.
        k: Safety factor per ``log2(n)`` stage (see above).
    """
    passes = _as_passes(stencils)
    ns = [lengths] * len(passes) if isinstance(lengths, int) else list(lengths)
    gain = math.prod(l1(s) for s in passes) * float(max_abs_input)
    return sum(k * eps(dtype) * max(math.log2(n), 1.0) * math.sqrt(n) for n in ns) * gain


def spectral_rounding_bound(
    multiplier_max: float, n_total: int, l2_norm: float, dtype: torch.dtype | float, k: float = 32.0
) -> float:
    """Rounding of a spectral operator ``ifft(K * fft(x))`` on ``n_total`` points, in max-norm.

    As in :func:`fft_rounding_bound`: the 2-norm error is at most ``k * eps * log2(n) *
    max|K| * ||x||_2`` (two transforms and a product; ``k = 32`` as there, ``K`` computed
    to a few ulp), and the max-norm error is at most the 2-norm error. ``l2_norm`` is
    ``||x||_2`` over the whole (multi-dimensional) array, ``n_total`` its number of points.
    """
    return k * eps(dtype) * max(math.log2(n_total), 1.0) * float(multiplier_max) * float(l2_norm)


def trig_sum_rounding_bound(abs_coefficient_sum: float, n_terms: int, max_phase: float, dtype: torch.dtype | float) -> float:
    """Rounding of ``Re sum_k c_k exp(i phi_k)`` (a Fourier series evaluated at a point).

    Each phase ``phi_k = k . x`` is computed with an absolute error <= ``2 eps |phi_k|``
    (a product and, per axis, a sum), which moves its term by as much relative to
    ``|c_k|``; ``exp(i phi)`` adds ``_FUNCTION_ULPS`` eps, the complex product and the sum
    of ``n_terms`` terms (any order) ``n_terms + 4`` more: in all
    ``eps * sum|c_k| * (n_terms + 4 + _FUNCTION_ULPS + 2 max|phi|)``.
    """
    return eps(dtype) * float(abs_coefficient_sum) * (n_terms + 4 + _FUNCTION_ULPS + 2 * float(max_phase))


def sum_rounding_bound(n: int, abs_sum: float, dtype: torch.dtype | float) -> float:
    """``n * eps * sum|x_i|``: rounding of a sum (or mean) of ``n`` terms, any order."""
    return n * eps(dtype) * float(abs_sum)


def residual_bound(matrix_norm: float, solution_norm: float, dtype: torch.dtype | float, k: float = 16.0) -> float:
    """``k * eps * ||A|| * ||x||``: residual ``||A x - b||`` of a backward-stable solve.

    A solution computed by a backward-stable method (SVD, QR, pivoted LU) is the exact
    solution of ``(A + E) x = b`` with ``||E|| <= c eps ||A||``, so its residual is ``E x``
    -- independent of the condition number. ``k = 16`` covers the small dimension-
    dependent constant ``c`` of LAPACK's SVD for the systems of <= 10 rows used here.
    """
    return k * eps(dtype) * float(matrix_norm) * float(solution_norm)


def conditioned_bound(condition_number: float, size: float, dtype: torch.dtype | float, k: float = 16.0) -> float:
    """``k * eps * cond * size``: forward error of a quantity computed by a backward-stable solve.

    Relative forward error <= ``cond(A) * (relative backward error)`` (Higham, sec. 7.1);
    ``size`` is the norm of the quantity (or of the data it is measured against).
    """
    return k * eps(dtype) * float(condition_number) * float(size)


# --- taps, from the library's own functions ----------------------------------------------------


def _spec(spec) -> dict[tuple[int, ...], float]:
    if isinstance(spec, Mapping):
        return {tuple(int(k) for k in idx): float(c) for idx, c in spec.items()}
    return {tuple(int(k) for k in spec): 1.0}


def mollifier_terms(spec, spacing: Sequence[float], radius: Sequence[float], kernel: str = "bump") -> list[Term]:
    """Terms of a derivative spec with the stencils :func:`mollifier.derivative` uses."""
    from mollifier.core.mollifiers import get_mollifier
    from mollifier.core.stencils import mollifier_stencil

    kernel_ = get_mollifier(kernel)
    return [
        (c, [mollifier_stencil(kernel_, k, h, r) for k, h, r in zip(idx, spacing, radius)])
        for idx, c in _spec(spec).items()
    ]


def finite_difference_terms(spec, spacing: Sequence[float], halfwidths: Sequence[int], accuracy: int = 2) -> list[Term]:
    """Terms of a derivative spec with the stencils :func:`mollifier.finite_differences` uses."""
    from mollifier.core.stencils import finite_difference_stencil

    return [
        (c, [finite_difference_stencil(k, h, accuracy, m) for k, h, m in zip(idx, spacing, halfwidths)])
        for idx, c in _spec(spec).items()
    ]


def engine_terms(engine, name: str, dtype: torch.dtype = torch.float64) -> list[Term]:
    """Terms of output ``name`` of a stencil engine (``mollifier`` or ``fd``), with the taps it applies."""
    from mollifier.core.engines import AbstractStencilEngine

    if not isinstance(engine, AbstractStencilEngine):
        raise TypeError(f"no stencils for the {engine.name!r} engine")
    source = engine.stencil_source(dtype, torch.device("cpu"))
    return [(c, [source(axis, k).detach() for axis, k in enumerate(idx)]) for idx, c in engine.requests[name].items()]


def engine_reordering_bound(
    engine, name: str, u_max: float, dtype: torch.dtype = torch.float64, input_difference: float = 0.0
) -> float:
    """:func:`reordering_bound` for output ``name`` of a ``mollifier`` or ``fd`` engine.

    Adds the FFT bound (twice: both evaluations) where a pass may take the FFT path
    (``method="fft"``, or ``"auto"`` with at least ``FFT_MIN_TAPS`` taps); the lengths are
    the grid's plus the halo on both sides (the longest line either evaluation sees).
    """
    from mollifier.core.convolution import FFT_MIN_TAPS

    terms = engine_terms(engine, name, dtype)
    tol = reordering_bound(terms, u_max, dtype, input_difference)
    method = engine.method
    if method == "fft" or (method == "auto" and any(s.numel() >= FFT_MIN_TAPS for _, passes in terms for s in passes)):
        lengths = [n + 2 * m for n, m in zip(engine.grid.shape, engine.stencil_halo)]
        tol += 2 * sum(abs(c) * fft_rounding_bound(passes, lengths, u_max, dtype) for c, passes in terms)
    return tol


def engine_abs_adjoint(engine, name: str, v: torch.Tensor, field_shape: Sequence[int]) -> torch.Tensor:
    """``sum_t |coeff_t| |C_t|^T v`` for ``v >= 0``: the transposed stencils of output ``name``
    with every tap in absolute value, on the engine's input field (shape ``field_shape``,
    ``(1, C, *spatial)``). Bounds ``|C^T w|`` for ``|w| <= v``, and the size of the terms a
    backward pass through the stencils sums.
    """
    from mollifier.core.operators import evaluate_requests

    source = engine.stencil_source(v.dtype, v.device)
    spec = {idx: abs(coeff) for idx, coeff in engine.requests[name].items()}

    def abs_source(axis: int, order: int) -> torch.Tensor:
        return source(axis, order).detach().abs()

    u = torch.zeros(tuple(field_shape), dtype=v.dtype, device=v.device, requires_grad=True)
    with torch.enable_grad():
        out = evaluate_requests(u, {"_": spec}, abs_source, engine.boundary, "direct")["_"]
        (g,) = torch.autograd.grad(out, u, grad_outputs=v.detach().expand_as(out))
    return g


# --- networks --------------------------------------------------------------------------------------
#
# Supported networks: a Sequential of Linear and Tanh; mollifier's MLP backbone (tanh or sin
# activations, with its affine input normalisation); the inverse model's wrappers
# _Standardized (``mean + std * net``) and _FieldUnknown (``softplus(net + offset)``),
# recognised by their attributes. Every activation used is 1-Lipschitz.

_ACTIVATIONS = {
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
    "sin": (torch.sin, torch.cos),
}


def _steps(module) -> list[tuple]:
    """The network as a list of elementary steps (see the module comment above)."""
    from mollifier.backbones import MLP

    if isinstance(module, torch.nn.Sequential):
        out = []
        for layer in module:
            if isinstance(layer, torch.nn.Linear):
                out.append(("linear", layer))
            elif isinstance(layer, torch.nn.Tanh):
                out.append(("act", *_ACTIVATIONS["tanh"]))
            else:
                raise TypeError(f"unsupported layer {layer!r}")
        return out
    if isinstance(module, MLP):
        if module.activation not in _ACTIVATIONS:
            raise TypeError(f"unsupported activation {module.activation!r}")
        out = [("normalize", module.normalize)]
        for layer in module.hidden:
            out += [("linear", layer), ("act", *_ACTIVATIONS[module.activation])]
        return out + [("linear", module.output)]
    if hasattr(module, "net") and hasattr(module, "std") and hasattr(module, "mean"):  # _Standardized
        return _steps(module.net) + [("affine", module.std.detach(), module.mean.detach())]
    if hasattr(module, "net") and hasattr(module, "offset") and hasattr(module, "spec"):  # _FieldUnknown
        return _steps(module.net) + [("shift", float(module.offset))] + ([("softplus",)] if module.spec.positive else [])
    raise TypeError(f"no rounding model for {type(module).__name__}")


def network_forward_bound(net, x: torch.Tensor) -> torch.Tensor:
    """Per point and output, a bound on the forward rounding error of ``net(x)`` (``x`` exact).

    A ``Linear`` layer with fan-in ``n`` computes each output as a dot product, in an order
    that depends on the BLAS kernel (hence on the batch size and the CPU): its error is at
    most ``gamma_{n+1} (|W| |a| + |b|)`` plus ``|W|`` times the error of its input ``a``.
    An activation is 1-Lipschitz (does not amplify) and adds ``_FUNCTION_ULPS * eps`` of its
    value; elementwise affine steps add one or two roundings of their terms. The result is
    ``(N, out)``; two evaluations of ``net`` on the same points (in batches of any size)
    differ by at most twice it.
    """
    e = eps(x.dtype)
    a = x.detach()
    err = torch.zeros_like(a)
    with torch.no_grad():
        for step in _steps(net):
            kind = step[0]
            if kind == "normalize":
                a = step[1](a)
                err = 2 * e * a.abs()
            elif kind == "linear":
                w = step[1].weight.detach()
                b = step[1].bias.detach() if step[1].bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
                size = a.abs() @ w.abs().T + b.abs()
                err = err @ w.abs().T + (w.shape[1] + 1) * e * size
                a = a @ w.T + b
            elif kind == "act":
                a = step[1](a)
                err = err + _FUNCTION_ULPS * e * a.abs()
            elif kind == "affine":
                scale, offset = step[1].to(a), step[2].to(a)
                err = scale.abs() * err + 2 * e * (offset.abs() + (scale * a).abs())
                a = offset + scale * a
            elif kind == "shift":
                a = a + step[1]
                err = err + e * a.abs()
            elif kind == "softplus":
                a = torch.nn.functional.softplus(a)
                err = err + _FUNCTION_ULPS * e * a.abs()
    return err


def mlp_rounding_bound(net, x: torch.Tensor) -> float:
    """Largest forward rounding error of ``net(x)`` over its rows (see :func:`network_forward_bound`)."""
    return float(network_forward_bound(net, x).max())


def network_abs_vjp(net, x: torch.Tensor, v: torch.Tensor) -> dict[int, torch.Tensor]:
    """``sum_x v(x)^T |d net(x) / d theta|`` per parameter (keyed by ``id``), for ``v >= 0``.

    Backpropagation with ``|W|``, ``|act'(z)|`` and ``|a|`` in place of ``W``, ``act'(z)``,
    ``a``: every term of the chain rule in absolute value, so that ``|J^T u| <= result`` for
    any ``|u| <= v``, and ``K eps * result`` bounds the rounding of a backward pass that
    rounds each term ``K`` times (running error analysis).
    """
    steps = _steps(net)
    tape = []
    with torch.no_grad():
        a = x.detach()
        for step in steps:
            kind = step[0]
            tape.append(a)
            if kind == "normalize":
                a = step[1](a)
            elif kind == "linear":
                a = step[1](a)
            elif kind == "act":
                a = step[1](a)
            elif kind == "affine":
                a = step[2].to(a) + step[1].to(a) * a
            elif kind == "shift":
                a = a + step[1]
            elif kind == "softplus":
                a = torch.nn.functional.softplus(a)
        out: dict[int, torch.Tensor] = {}
        g = v.detach().to(a).expand_as(a).clone()
        for step, inp in zip(reversed(steps), reversed(tape)):
            kind = step[0]
            if kind == "normalize":
                break
            if kind == "linear":
                layer = step[1]
                out[id(layer.weight)] = g.T @ inp.abs()
                if layer.bias is not None:
                    out[id(layer.bias)] = g.sum(dim=0)
                g = g @ layer.weight.detach().abs()
            elif kind == "act":
                g = g * step[2](inp).abs()
            elif kind == "affine":
                g = g * step[1].to(g).abs()
            elif kind == "softplus":
                g = g * torch.sigmoid(inp)
    return out


def network_backward_roundings(net) -> int:
    """Roundings along one chain of a backward pass through ``net`` (for :func:`network_abs_vjp`).

    Per ``Linear`` layer the input gradient sums ``fan_out`` terms and the weight gradient
    one product per point (the sum over points is counted by the caller); per activation
    its derivative (a few ulp) and one product; per elementwise affine step one product.
    """
    total = 0
    for step in _steps(net):
        if step[0] == "linear":
            total += step[1].weight.shape[0] + 2
        elif step[0] in ("act", "softplus"):
            total += _FUNCTION_ULPS + 2
        elif step[0] in ("affine", "shift"):
            total += 2
    return total
