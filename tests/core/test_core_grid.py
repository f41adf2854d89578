"""Uniform grids and halo-extended coordinates."""

from __future__ import annotations

import pytest
import torch

from mollifier import Grid

from tolerances import EPS64


def test_docstring_example() -> None:
    g = Grid.from_bounds([(0.0, 1.0), (0.0, 2.0)], (11, 21))
    assert g.spacing == (0.1, 0.1)
    assert g.coords(halo=(1, 1)).shape == (13 * 23, 2)
    assert g.ndim == 2
    assert [pytest.approx(b) for b in ((0.0, 1.0), (0.0, 2.0))] == list(g.bounds)


def test_periodic_bounds_do_not_sample_the_upper_end() -> None:
    g = Grid.from_bounds([(0.0, 2.0)], (8,), periodic=True)
    assert g.spacing == (0.25,)
    assert g.bounds[0] == pytest.approx((0.0, 1.75))


def test_axes_coords_mesh_consistent() -> None:
    g = Grid((3, 4, 2), (0.5, -1.0, 2.0), (0.1, 0.2, 0.3))
    assert g.extended_shape(1) == (5, 6, 4)
    assert g.extended_shape((0, 2, 1)) == (3, 8, 4)
    axes = g.axes(halo=(1, 0, 2), dtype=torch.float64)
    assert [len(a) for a in axes] == [5, 4, 6]
    assert float(axes[0][0]) == pytest.approx(0.4) and float(axes[2][0]) == pytest.approx(1.4)
    coords = g.coords(halo=(1, 0, 2), dtype=torch.float64)
    mesh = g.mesh(halo=(1, 0, 2), dtype=torch.float64)
    assert coords.shape == (5 * 4 * 6, 3)
    for i in range(3):  # axis 0 slowest ("ij" indexing): coords reshape back to the mesh
        assert torch.equal(coords[:, i].reshape(5, 4, 6), mesh[i])
    assert g.coords().dtype == torch.float32


def test_coordinates_exact_multiples_of_spacing() -> None:
    # lower + h * j computed in float64 then cast: no accumulated drift
    g = Grid((1000,), (0.0,), (0.001,))
    x = g.axes(dtype=torch.float64)[0]
    # both sides round the product 0.001 * j once (adding lower = 0 is exact): equal up to
    # an ulp of the largest coordinate
    assert torch.allclose(x, torch.arange(1000, dtype=torch.float64) * 0.001, rtol=0, atol=EPS64 * float(x.max()))


def test_grid_is_frozen_and_normalised() -> None:
    g = Grid([4, 5], [0, 1], 0.5)  # lists and a scalar spacing are normalised
    assert g.shape == (4, 5) and g.lower == (0.0, 1.0) and g.spacing == (0.5, 0.5)
    with pytest.raises(Exception):
        g.shape = (1,)  # type: ignore[misc]
    assert hash(g) == hash(Grid((4, 5), (0.0, 1.0), (0.5, 0.5)))
