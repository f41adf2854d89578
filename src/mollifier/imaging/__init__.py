"""Input/output for the imaging application: SMLM localisation files, rendered images,
nucleus masks, density -> volume-fraction mapping and a synthetic generator.

- :mod:`.readers`: the one table of localisation readers (ThunderSTORM, rapidSTORM,
  Zeiss Elyra, Nikon N-STORM, ONI Nanoimager, Picasso, DECODE, SMAP, ShareLoc, plain
  CSV/TSV), chosen from the file's content; :mod:`.table`: the record they return
  (:class:`LocalizationTable`, coordinates in nm) and the user's :class:`Selection`.
- :mod:`.render`: localisations -> density map, whole or chunk by chunk.
- :mod:`.writers`: the same formats written (tests, synthetic data).
- :mod:`.images`, :mod:`.mask`, :mod:`.fractions`, :mod:`.synthetic`.

Core dependencies only (numpy/scipy); TIFF needs the optional ``tifffile``
(``pip install 'mollifier[imaging]'``), HDF5 files ``h5py`` and Picasso's YAML
``pyyaml`` (``pip install 'mollifier[smlm]'``), imported lazily. Images are indexed
``[iy, ix]`` (row = y), coordinates are in nm.
"""

from ._common import ImagingError
from .fractions import VolumeFractions, estimate_background, fractions_from_density
from .images import ImageData, block_downsample, read_image, reduce_stack, write_tiff
from .mask import (
    check_mask,
    find_nuclei,
    find_nucleus_mask,
    largest_component,
    load_mask,
    nucleus_mask,
    otsu_threshold,
    parse_roi,
    polygon_mask,
)
from .readers import READERS, Reader, detect_format, open_table, read_localizations
from .readers.columns import detect_coordinate_columns
from .render import DensityAccumulator, density_map, voronoi_density
from .synthetic import SyntheticNucleus, ellipse_mask, synthetic_nucleus
from .table import LocalizationTable, ReadOptions, Selection, TableStream
from .writers import write_csv, write_localizations

__all__ = [
    "READERS",
    "DensityAccumulator",
    "ImagingError",
    "ImageData",
    "LocalizationTable",
    "ReadOptions",
    "Reader",
    "Selection",
    "SyntheticNucleus",
    "TableStream",
    "VolumeFractions",
    "block_downsample",
    "check_mask",
    "density_map",
    "detect_coordinate_columns",
    "detect_format",
    "ellipse_mask",
    "estimate_background",
    "find_nuclei",
    "find_nucleus_mask",
    "fractions_from_density",
    "largest_component",
    "load_mask",
    "nucleus_mask",
    "open_table",
    "otsu_threshold",
    "parse_roi",
    "polygon_mask",
    "read_image",
    "read_localizations",
    "reduce_stack",
    "synthetic_nucleus",
    "voronoi_density",
    "write_csv",
    "write_localizations",
    "write_tiff",
]
