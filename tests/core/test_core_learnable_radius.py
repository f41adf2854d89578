"""A learnable radius starts exactly where the fixed radius is."""

import torch

from mollifier import MollifierLayer, biharmonic, laplacian


def test_learnable_layer_matches_fixed_layer_at_its_initial_radius():
    torch.manual_seed(0)
    fixed = MollifierLayer({"lap": laplacian(2), "bilap": biharmonic(2)}, spacing=0.1, radius=0.4, boundary="periodic")
    learnable = MollifierLayer(
        {"lap": laplacian(2), "bilap": biharmonic(2)}, spacing=0.1, radius=0.4, boundary="periodic",
        learnable_radius=True, max_radius=0.7,
    ).double()
    assert learnable.halo == (7, 7) and fixed.halo == (4, 4)
    g = torch.randn(1, 1, 40, 40, dtype=torch.float64)
    a, b = fixed(g), learnable(g)
    for name in ("u", "lap", "bilap"):
        torch.testing.assert_close(b[name], a[name], rtol=1e-9, atol=1e-9 * float(a[name].abs().max()))
