"""Compatibility names for code written against the first imaging module.

Reading moved to :mod:`mollifier.imaging.readers` (the table of readers), the record
to :mod:`mollifier.imaging.table`, rendering to :mod:`mollifier.imaging.render` and
writing to :mod:`mollifier.imaging.writers`; this module re-exports their old names.
"""

from __future__ import annotations

from .readers import COMPRESSED_SUFFIXES, read_localizations, uncompressed_name
from .readers.columns import detect_coordinate_columns
from .render import Extent, density_map, voronoi_density
from .table import LocalizationTable
from .writers import THUNDERSTORM_COLUMNS, write_csv

__all__ = [
    "COMPRESSED_SUFFIXES",
    "Extent",
    "LocalizationTable",
    "THUNDERSTORM_COLUMNS",
    "density_map",
    "detect_coordinate_columns",
    "read_localizations",
    "uncompressed_name",
    "voronoi_density",
    "write_csv",
]
