"""The Gaussian-process backbone: its series is the generator's prior, its derivatives are
exact, and its prior penalty is the negative log density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mollifier.backbones import BACKBONES, GaussianProcessField, make_backbone
from mollifier.backbones.spectral import fourier_modes


def test_registered_for_unknowns_but_not_among_the_compared_field_networks():
    assert "gp" not in BACKBONES
    assert isinstance(make_backbone("GP", 1, 1, domain=[(0.0, 1.0)]), GaussianProcessField)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_modes_are_a_half_space_with_unit_variance(ndim):
    k, var = fourier_modes((2.0,) * ndim, 0.4)
    assert math.isclose(var.sum(), 1.0, rel_tol=1e-12)
    keys = {tuple(np.round(row, 9)) for row in k}
    assert len(keys) == len(k) and not any(tuple(np.round(-row, 9)) in keys for row in k)
    assert not np.any(np.all(k == 0, axis=1))
    # the variance falls like the generator's exp(-ell^2 |k|^2 / 2)
    i, j = np.argmin(np.sum(k**2, 1)), np.argmax(np.sum(k**2, 1))
    expected = math.exp(-0.5 * 0.4**2 * (np.sum(k[j] ** 2) - np.sum(k[i] ** 2)))
    assert math.isclose(var[j] / var[i], expected, rel_tol=1e-9)


def test_draws_have_the_priors_covariance():
    # with the mean mode removed, as the generator does: sum_{m>=1} v_m cos(k_m r) =
    # (S C(r) - 1) / (S - 1), S = sum over all m of exp(-ell^2 k_m^2 / 2) and C the
    # periodised exp(-r^2 / (2 ell^2)) (Poisson summation; period 10, ell 0.5: images < 1e-40).
    # The truncation drops modes of relative variance below 1e-8.
    ell, period = 0.5, 10.0
    k, var = fourier_modes((period,), ell)
    r = np.linspace(0.0, 2.0, 9)
    covariance = (var[:, None] * np.cos(k[:, :1] * r[None, :])).sum(0)
    m = np.arange(1, 400)
    total = 1.0 + 2.0 * np.exp(-0.5 * ell**2 * (2 * np.pi * m / period) ** 2).sum()
    expected = (total * np.exp(-(r**2) / (2 * ell**2)) - 1.0) / (total - 1.0)
    np.testing.assert_allclose(covariance, expected, atol=1e-7)


def test_domain_shift_and_physical_units():
    # the same series on a shifted domain, evaluated at shifted points, gives the same values
    a = GaussianProcessField(2, 1, correlation_length=0.3, scale=1.5, domain=[(0.0, 1.0), (0.0, 2.0)]).double()
    b = GaussianProcessField(2, 1, correlation_length=0.3, scale=1.5, domain=[(5.0, 6.0), (-1.0, 1.0)]).double()
    with torch.no_grad():
        a.z.normal_(generator=torch.Generator().manual_seed(1))
        b.z.copy_(a.z)
    x = torch.rand(20, 2, dtype=torch.float64) * torch.tensor([1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x + torch.tensor([5.0, -1.0], dtype=torch.float64)), rtol=1e-12, atol=1e-12)


def test_derivatives_are_the_series_derivatives():
    gp = GaussianProcessField(1, 1, correlation_length=0.2, period=3.0).double()
    with torch.no_grad():
        gp.z.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.linspace(0.1, 0.9, 7, dtype=torch.float64)[:, None].requires_grad_(True)
    (dx,) = torch.autograd.grad(gp(x).sum(), x)
    k = gp.wavevectors[:, 0].double()
    half = gp.modes // 2
    a, b = gp.z[:half, 0] * gp.amplitude[:half], gp.z[half:, 0] * gp.amplitude[half:]
    exact = (-a * k * torch.sin(x.detach() * k) + b * k * torch.cos(x.detach() * k)).sum(1, keepdim=True)
    torch.testing.assert_close(dx, exact.detach(), rtol=1e-10, atol=1e-10)


def test_prior_penalty_is_half_the_squared_norm_and_reset_returns_to_the_mean():
    gp = make_backbone("gp", 2, 1, domain=[(0.0, 1.0), (0.0, 1.0)], correlation_length=0.3)
    with torch.no_grad():
        gp.z.fill_(2.0)
        gp.mean.fill_(3.0)   # flat prior: not penalised
    assert math.isclose(float(gp.prior_penalty().detach()), 0.5 * 4.0 * gp.modes, rel_tol=1e-6)
    gp.reset_parameters()
    assert float(gp.prior_penalty().detach()) == 0.0
    assert float(gp(torch.rand(5, 2)).detach().abs().max()) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"correlation_length": 0.0}, ValueError, "correlation_length"),
        ({"scale": -1.0}, ValueError, "scale"),
        ({"cutoff": 2.0}, ValueError, "cutoff"),
        ({"period": (1.0, 2.0)}, ValueError, "period"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GaussianProcessField(1, 1, domain=[(0.0, 1.0)], **kwargs)


def test_a_correlation_length_far_below_the_domain_is_refused_before_building_millions_of_modes():
    with pytest.raises(ValueError, match="too short"):
        GaussianProcessField(2, 1, correlation_length=1e-3, domain=[(0.0, 1.0), (0.0, 1.0)])


def test_needs_a_period_or_a_domain():
    with pytest.raises(ValueError, match="period"):
        GaussianProcessField(1, 1)
    assert GaussianProcessField(1, 1, period=2.0).period == (2.0,)
