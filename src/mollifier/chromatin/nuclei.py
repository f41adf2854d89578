"""Stage 2 of ``mollifier chromatin``: which nuclei a density map holds.

A mask given by the user (``--mask`` image or ``--roi`` polygon) is the one nucleus.
Otherwise every nucleus is found (:func:`~mollifier.imaging.mask.find_nuclei`: smoothed
density, Otsu threshold, holes filled, components of at least 20 % of the largest
one's area), numbered by size (1 = the largest), and all are analysed unless the user
picks one (``--nucleus K``). Smaller bright regions left out are named in the notes;
no choice is silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging import ImagingError
from ..imaging.mask import find_nuclei
from .inputs import NucleusInput

__all__ = ["Nucleus", "locate_nuclei", "pick_nucleus"]


@dataclass
class Nucleus:
    """One nucleus of a field of view.

    Attributes:
        index: 1-based number (1 = the largest of an automatic segmentation).
        mask: Boolean mask on the density map's grid.
        of: How many nuclei the field holds.
        source: ``"automatic"``, ``"--mask FILE"`` or ``"--roi"``.
        centroid_nm: ``(x, y)`` of the mask's centre in nm (pixels when the pixel size
            is unknown).
        area_px: Pixels in the mask.
    """

    index: int
    mask: np.ndarray
    of: int
    source: str
    centroid_nm: tuple[float, float]
    area_px: int
    notes: list[str] = field(default_factory=list)


def _centroid(mask: np.ndarray, inp: NucleusInput) -> tuple[float, float]:
    iy, ix = np.nonzero(mask)
    cx, cy = float(ix.mean()) + 0.5, float(iy.mean()) + 0.5
    if inp.pixel_size_nm is None:
        return cx, cy
    x0, _, y0, _ = inp.extent_nm or (0.0, 0.0, 0.0, 0.0)
    return x0 + cx * inp.pixel_size_nm, y0 + cy * inp.pixel_size_nm


def locate_nuclei(inp: NucleusInput) -> tuple[list[Nucleus], list[str]]:
    """Every nucleus of the field (largest first), and notes about the segmentation.

    Raises:
        ImagingError: no nucleus found (flat or empty map).
    """
    if inp.mask is not None:
        masks, notes, source = [np.asarray(inp.mask, dtype=bool)], [f"nucleus mask from {inp.mask_source}"], str(inp.mask_source)
    else:
        masks, notes = find_nuclei(inp.density)
        source = "automatic"
        if len(masks) > 1:
            notes.append(f"{len(masks)} nuclei found (numbered by size, 1 = the largest); each is analysed "
                         "unless --nucleus K picks one")
    nuclei = [Nucleus(k + 1, m, len(masks), source, _centroid(m, inp), int(m.sum())) for k, m in enumerate(masks)]
    return nuclei, notes


def pick_nucleus(nuclei: list[Nucleus], choose: int | None) -> list[Nucleus]:
    """All nuclei, or only number ``choose`` (1-based, by size).

    Raises:
        ImagingError: ``choose`` beyond the number found (names --nucleus and the count).
    """
    if choose is None:
        return nuclei
    if choose > len(nuclei):
        raise ImagingError(f"--nucleus {choose}: the field of view holds {len(nuclei)} nucleus/nuclei "
                           f"(allowed: 1..{len(nuclei)})")
    return [nuclei[choose - 1]]
