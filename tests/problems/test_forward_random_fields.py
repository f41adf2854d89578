"""Tests for mollifier.problems.forward.random_fields."""

from __future__ import annotations

import numpy as np
import pytest

from mollifier.problems.forward import (
    FourierRandomField,
    gaussian_random_field,
    lognormal_field,
    smooth_positive_field,
)

from tolerances import EPS64, sum_rounding_bound, trig_sum_rounding_bound


def _normalised_tolerances(g: np.ndarray) -> tuple[float, float]:
    """Bounds on |mean| and |std - 1| of a field normalised as ``(g - mean) / std``.

    The library's mean and std are sums over the n samples (any order: n roundings of
    the terms' size), the test's too; subtracting and dividing add 2 roundings per
    sample. Mean: <= (2 n + 4) eps mean|g|. Std (relative): the variance sums n squares
    (n + 3 roundings relative), its square root halves that, and both the library's std
    and the test's carry it: <= (n + 8) eps.
    """
    n = g.size
    return sum_rounding_bound(2 * n + 4, float(np.abs(g).mean()), EPS64), (n + 8) * EPS64


def _fourier_bound(f: FourierRandomField, *coords: np.ndarray) -> float:
    """Rounding of evaluating ``f`` at ``coords`` (either way: pointwise or on the grid)."""
    c = np.abs(f.coefficients)
    phase = sum(float(np.abs(k).max()) * float(np.abs(x).max()) for k, x in zip(f.wavenumbers, coords))
    return trig_sum_rounding_bound(float(c.sum()), int(np.count_nonzero(c)), phase, EPS64)


@pytest.mark.parametrize(
    ("shape", "extent"),
    [((256,), 10.0), ((64, 48), (10.0, 7.5)), ((16, 12, 8), 2.0)],
)
def test_grf_shape_zero_mean_unit_std(shape, extent):
    g = gaussian_random_field(shape, extent, 0.7, rng=1)
    assert g.shape == shape
    assert g.dtype == np.float64
    mean_tol, std_tol = _normalised_tolerances(g)
    assert abs(g.mean()) <= mean_tol
    assert g.std() == pytest.approx(1.0, abs=std_tol)


def test_grf_reproducible_and_seed_dependent():
    a = gaussian_random_field((32, 32), 1.0, 0.1, rng=7)
    b = gaussian_random_field((32, 32), 1.0, 0.1, rng=np.random.default_rng(7))
    c = gaussian_random_field((32, 32), 1.0, 0.1, rng=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_grf_does_not_touch_global_rng():
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    gaussian_random_field((16, 16), 1.0, 0.2, rng=None)
    assert np.random.random() == before


def test_grf_covariance_matches_squared_exponential():
    # Convention: Cov(r) = exp(-r^2 / (2 ell^2)). Long periodic 1-D samples, averaged.
    n, extent, ell = 4096, 200.0, 1.0
    h = extent / n
    acs = []
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = gaussian_random_field(n, extent, ell, rng=rng)
        f = np.fft.fft(g)
        acs.append(np.real(np.fft.ifft(f * np.conj(f))) / n)
    ac = np.mean(acs, axis=0)
    for r in (0.5, 1.0, 1.5, 2.5):
        lag = round(r / h)
        assert ac[lag] == pytest.approx(np.exp(-(lag * h) ** 2 / (2 * ell**2)), abs=0.03)


@pytest.mark.parametrize("ndim", [1, 2])
def test_grf_gradient_variance_scales_as_inverse_square_length(ndim):
    # For Cov(r) = exp(-r^2/(2 ell^2)): E[(d g / dx)^2] = 1 / ell^2. Longer ell -> less
    # high-wavenumber energy.
    n, extent = ((8192,), 400.0) if ndim == 1 else ((256, 256), 40.0)
    k = 2 * np.pi * np.fft.fftfreq(n[0], d=extent / n[0])
    results = {}
    for ell in (0.8, 1.6):
        vals = []
        for s in range(8):
            g = gaussian_random_field(n, extent, ell, rng=s)
            gx = np.real(np.fft.ifft(1j * k.reshape((-1,) + (1,) * (ndim - 1)) *
                                     np.fft.fft(g, axis=0), axis=0))
            vals.append(np.mean(gx**2))
        results[ell] = np.mean(vals)
        assert results[ell] == pytest.approx(1 / ell**2, rel=0.15)
    assert results[1.6] < results[0.8] / 3


def test_grf_extreme_lengths_are_finite():
    long = gaussian_random_field((32, 32), 1.0, 50.0, rng=0)
    short = gaussian_random_field((32, 32), 1.0, 1e-3, rng=0)
    for g in (long, short):
        assert np.all(np.isfinite(g))
        assert g.std() == pytest.approx(1.0)


def test_lognormal_definition():
    mean, sigma = 2.0, 0.4
    lam = lognormal_field((64, 64), 10.0, 1.0, mean=mean, sigma=sigma, rng=3)
    g = gaussian_random_field((64, 64), 10.0, 1.0, rng=3)
    # The same formula on the same g: bit-identical here; exp may round differently by
    # 4 ulp between code paths, its argument by 2 roundings of |sigma g| + sigma^2 / 2.
    arg = np.abs(sigma * g) + sigma**2 / 2
    np.testing.assert_allclose(lam, mean * np.exp(sigma * g - sigma**2 / 2), rtol=(2 * 4 + 4 + 4 * arg.max()) * EPS64)
    assert np.all(lam > 0)
    # log(lam) = log(mean) + sigma g - sigma^2 / 2 up to the roundings of exp, the product
    # and log (<= (4 + 4 + 3 + 2 |log lam|) eps absolute); its std is sigma std(g), std(g)
    # being 1 up to _normalised_tolerances, plus at most that absolute deviation.
    log_error = (4 + 4 + 3 + 2 * float(np.abs(np.log(lam)).max())) * EPS64
    assert np.log(lam).std() == pytest.approx(sigma, abs=2 * sigma * _normalised_tolerances(g)[1] + 2 * log_error)
    # Expected value is `mean`: check over many independent samples.
    means = [lognormal_field((32, 32), 10.0, 0.5, mean=mean, sigma=sigma, rng=s).mean()
             for s in range(40)]
    assert np.mean(means) == pytest.approx(mean, rel=0.02)


def test_lognormal_sigma_zero_is_constant():
    lam = lognormal_field((8, 8), 1.0, 0.2, mean=1.5, sigma=0.0, rng=0)
    np.testing.assert_allclose(lam, 1.5)


def test_smooth_positive_field_bounds():
    lam = smooth_positive_field((64, 64), 1.0, 0.1, base=1.0, amplitude=0.5, rng=0)
    assert lam.min() > 0.5
    assert lam.max() < 1.5
    assert lam.std() > 0.1


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"shape": (1, 8)}, ValueError, "shape"),
        ({"shape": ()}, ValueError, "shape"),
        ({"shape": (8, 2.5)}, ValueError, "shape"),
        ({"extent": -1.0}, ValueError, "extent"),
        ({"extent": (1.0, 2.0, 3.0)}, ValueError, "extent"),
        ({"correlation_length": 0.0}, ValueError, "correlation_length"),
        ({"correlation_length": float("nan")}, ValueError, "correlation_length"),
        ({"rng": "seed"}, TypeError, "rng"),
        ({"rng": 1.5}, TypeError, "rng"),
        ({"rng": -3}, ValueError, "rng"),
    ],
)
def test_grf_bad_arguments(kwargs, exc, name):
    args = {"shape": (8, 8), "extent": 1.0, "correlation_length": 0.2, "rng": 0}
    args.update(kwargs)
    with pytest.raises(exc, match=f"`{name}"):
        gaussian_random_field(**args)


def test_positive_fields_bad_arguments():
    with pytest.raises(ValueError, match="`sigma`"):
        lognormal_field((8, 8), 1.0, 0.2, sigma=-0.1, rng=0)
    with pytest.raises(ValueError, match="`mean`"):
        lognormal_field((8, 8), 1.0, 0.2, mean=0.0, rng=0)
    with pytest.raises(ValueError, match="`amplitude`"):
        smooth_positive_field((8, 8), 1.0, 0.2, base=1.0, amplitude=1.0, rng=0)


def test_fourier_field_grid_and_points_agree_and_normalised():
    f = FourierRandomField(2, (2.0, 3.0), 0.3, rng=5)
    x, y = np.linspace(0, 1, 17), np.linspace(0, 1, 13)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    # two evaluations of the same Fourier series, each within its rounding bound
    np.testing.assert_allclose(f.on_grid(x, y), f(xx, yy), atol=2 * _fourier_bound(f, x, y))
    # Over one full period (grid fine enough for all modes): mean 0, variance 1 exactly,
    # up to the samples' rounding and that of the mean and std sums.
    px = np.arange(128) * 2.0 / 128
    py = np.arange(160) * 3.0 / 160
    g = f.on_grid(px, py)
    sample = _fourier_bound(f, px, py)
    assert abs(g.mean()) <= sample + sum_rounding_bound(g.size + 2, float(np.abs(g).mean()), EPS64)
    assert g.std() == pytest.approx(1.0, abs=sample + (g.size + 8) * EPS64)
    # Periodic with the stated period: exact phases differ by 2 pi m; the computed ones by
    # their rounding at the shifted coordinates (|x + 2|, |y - 3|).
    np.testing.assert_allclose(f(xx + 2.0, yy - 3.0), f(xx, yy), atol=2 * _fourier_bound(f, xx + 2.0, yy - 3.0))


def test_fourier_field_reproducible_and_transforms():
    a = FourierRandomField(1, 2.0, 0.2, rng=1)
    b = FourierRandomField(1, 2.0, 0.2, rng=1)
    t = np.linspace(0, 1, 50)
    np.testing.assert_array_equal(a(t), b(t))
    bounded = a.bounded(1.0, 0.5)
    assert np.all((bounded(t) > 0.5) & (bounded(t) < 1.5))
    np.testing.assert_allclose(a.scaled(2.0, 1.0)(t), 1.0 + 2.0 * a(t))


def test_fourier_field_bad_arguments():
    with pytest.raises(ValueError, match="`ndim`"):
        FourierRandomField(0, 1.0, 0.2)
    with pytest.raises(ValueError, match="`correlation_length`"):
        FourierRandomField(2, 1.0, -0.2)
    with pytest.raises(ValueError, match="max_modes"):
        FourierRandomField(3, 10.0, 1e-3)
