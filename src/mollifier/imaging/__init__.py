"""Input/output for the imaging application: SMLM localisation tables, rendered
images, nucleus masks, density -> volume-fraction mapping and a synthetic generator.

Core dependencies only (numpy/scipy); TIFF needs the optional ``tifffile``
(``pip install 'mollifier[imaging]'``), imported lazily. Images are indexed
``[iy, ix]`` (row = y), coordinates are in nm.
"""

from ._common import ImagingError
from .fractions import VolumeFractions, estimate_background, fractions_from_density
from .images import ImageData, block_downsample, read_image, reduce_stack, write_tiff
from .localizations import (
    LocalizationTable,
    density_map,
    detect_coordinate_columns,
    read_localizations,
    voronoi_density,
    write_csv,
)
from .mask import check_mask, find_nucleus_mask, largest_component, load_mask, nucleus_mask, otsu_threshold
from .synthetic import SyntheticNucleus, ellipse_mask, synthetic_nucleus

__all__ = [
    "ImagingError",
    "ImageData",
    "LocalizationTable",
    "SyntheticNucleus",
    "VolumeFractions",
    "block_downsample",
    "check_mask",
    "density_map",
    "detect_coordinate_columns",
    "ellipse_mask",
    "find_nucleus_mask",
    "fractions_from_density",
    "largest_component",
    "load_mask",
    "estimate_background",
    "nucleus_mask",
    "otsu_threshold",
    "read_image",
    "read_localizations",
    "reduce_stack",
    "synthetic_nucleus",
    "voronoi_density",
    "write_csv",
    "write_tiff",
]
