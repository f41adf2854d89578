"""mollifier: high-order derivatives of noisy fields by convolution with mollifiers.

The public API is what this module exports; everything else lives in sub-packages
whose layout follows the architecture (``core`` -> ``backbones`` / ``problems`` ->
``inverse`` -> ``bench`` / ``cli``; ``plotting`` only reads results).

Example:
    >>> import torch, mollifier
    >>> u = torch.randn(1, 1, 64, 64, dtype=torch.float64)
    >>> lap = mollifier.derivative(u, mollifier.laplacian(2), spacing=0.1, radius=0.4, boundary="periodic")
    >>> tuple(lap.shape)
    (1, 1, 64, 64)
"""

from .core.convolution import BOUNDARIES, METHODS
from .core.engines import (
    ENGINES,
    AbstractDerivativeEngine,
    AbstractStencilEngine,
    AutodiffEngine,
    FiniteDifferenceEngine,
    ForwardAutodiffEngine,
    MollifierEngine,
    engine_options,
    make_engine,
)
from .core.grid import Grid
from .core.layer import MollifierLayer
from .core.mollifiers import (
    KERNELS,
    AbstractMollifier,
    BumpMollifier,
    PolynomialMollifier,
    ProfileMollifier,
    get_mollifier,
)
from .core.operators import (
    biharmonic,
    derivative,
    derivatives,
    finite_differences,
    gradient,
    halo_width,
    laplacian,
    laplacian_power,
)
from .core.stencils import finite_difference_stencil, mollifier_stencil, stencil_moments
from .inverse.trained import TrainedModel, load

__version__ = "0.1.0"

__all__ = [
    "BOUNDARIES",
    "ENGINES",
    "KERNELS",
    "METHODS",
    "AbstractDerivativeEngine",
    "AbstractStencilEngine",
    "AbstractMollifier",
    "AutodiffEngine",
    "BumpMollifier",
    "FiniteDifferenceEngine",
    "ForwardAutodiffEngine",
    "Grid",
    "MollifierEngine",
    "MollifierLayer",
    "PolynomialMollifier",
    "ProfileMollifier",
    "TrainedModel",
    "__version__",
    "biharmonic",
    "derivative",
    "derivatives",
    "engine_options",
    "finite_difference_stencil",
    "finite_differences",
    "get_mollifier",
    "gradient",
    "halo_width",
    "laplacian",
    "laplacian_power",
    "load",
    "make_engine",
    "mollifier_stencil",
    "stencil_moments",
]
