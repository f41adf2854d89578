"""Which column of a table holds which quantity: detection by name, with units.

Names are matched case-insensitively after stripping quotes and spaces. Recognised
(shown for x; y and z alike):

* coordinates: ``x [nm]`` (ThunderSTORM; also ``[um]``, ``[µm]``, ``[px]``), ``x_nm``,
  ``x (nm)``, ``xnm``, ``x_um``, ``x_px``, ``position_x``, ``Position X [nm]``,
  ``x_position``, unit-less ``x``/``X``; drift-corrected ``xc``/``x_corrected`` are
  preferred over raw ``x`` when both are present;
* ``frame``: ``frame``, ``First Frame``, ``frame_ix``, ``t``, ...;
* ``channel``: ``channel``, ``Channel Name``, ``ch``;
* ``precision``: ``uncertainty [nm]``, ``uncertainty_xy [nm]``, ``precision``,
  ``Precision [nm]``, ``X precision (nm)``, ``loc_precision``, ``Lateral Localization
  Accuracy``, ``locprecnm``;
* ``photons``: ``photons``, ``intensity [photon]``, ``Number Photons``, ``phot``.

A unit in the name wins; otherwise the caller decides (``--coord-unit``, nm with a note).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._common import ImagingError

__all__ = ["UNIT_SCALE", "detect_coordinate_columns", "detect_roles", "match_axis", "normalise"]

#: nm per unit.
UNIT_SCALE = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "μm": 1000.0}
_UNIT = r"nm|um|µm|μm|px|pix|pixels?"
_UNIT_RE = rf"(?:\s*[\[\(]\s*(?P<u1>{_UNIT})\s*[\]\)]|[_ ]?(?P<u2>{_UNIT}))?"
_UNIT_RANK = {"nm": 0, "um": 1, "µm": 1, "μm": 1, None: 2}  # px last (3)


def normalise(name: str) -> str:
    """Lower-case, quotes and outer spaces stripped."""
    return name.strip().strip('"').strip("'").strip().lower()


def _canonical_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    if unit.startswith("pix") or unit == "px":
        return "px"
    return "um" if unit in ("µm", "μm") else unit


def _axis_regex(axis: str) -> re.Pattern[str]:
    corrected = r"(?P<c>c|[_ ]?corrected|[_ ]?drift[_ ]?corrected)?"
    return re.compile(
        rf"^(?:pos(?:ition)?[_ ]?)?{axis}{corrected}(?:[_ ]?(?:pos(?:ition)?|coord(?:inate)?))?{_UNIT_RE}$"
    )


_AXIS_RE = {a: _axis_regex(a) for a in ("x", "y", "z")}
_FRAME_NAMES = {"frame", "frames", "t", "frame_number", "frame number", "first frame", "frame_ix", "image number",
                "imagenumber", "frame index"}
_CHANNEL_NAMES = {"channel", "channel name", "ch", "probe", "channel_name"}
_PRECISION_RE = re.compile(
    rf"^(?:uncertainty(?:[_ ]?xy)?|(?:x[_ ])?precision|loc(?:ali[sz]ation)?[_ ]?precision|lateral localization accuracy"
    rf"|locprec|sigma[_ ]?xy)(?P<u>{_UNIT_RE})$"
)
_PHOTON_RE = re.compile(r"^(?:photons?|phot|intensity|number photons|n[_ ]?photons)(?:\s*[\[\(]\s*photons?\s*[\]\)])?$")


def match_axis(axis: str, name: str) -> tuple[bool, str | None, bool]:
    """Whether ``name`` is a coordinate column of ``axis``; its unit; drift-corrected?"""
    m = _AXIS_RE[axis].match(normalise(name))
    if m is None:
        return False, None, False
    return True, _canonical_unit(m.group("u1") or m.group("u2")), bool(m.group("c"))


def _precision_unit(name: str) -> tuple[bool, str | None]:
    m = _PRECISION_RE.match(normalise(name))
    if m is None:
        return False, None
    inner = re.search(_UNIT, m.group("u") or "")
    return True, _canonical_unit(inner.group(0)) if inner else None


def detect_coordinate_columns(
    columns: Sequence[str],
) -> tuple[tuple[int, str | None], tuple[int, str | None]]:
    """Find the x and y coordinate columns in a header.

    Args:
        columns: Column names as read from the file.

    Returns:
        ``((ix, unit_x), (iy, unit_y))``: column indices and units (``"nm"``, ``"um"``,
        ``"px"`` or None when the name carries no unit).

    Raises:
        ImagingError: no x or no y column is recognised; the message lists the
            columns found and how to name them explicitly.
    """
    roles = detect_roles(columns, require_xy=True)
    return (roles["x"][0], roles["x"][1]), (roles["y"][0], roles["y"][1])


def detect_roles(columns: Sequence[str], *, require_xy: bool = True) -> dict[str, tuple[int, str | None]]:
    """Map roles (``x``, ``y``, ``z``, ``frame``, ``channel``, ``precision``, ``photons``)
    to column indices and units by name.

    Coordinates: drift-corrected columns first, then nm, um, unit-less, px.

    Raises:
        ImagingError: ``require_xy`` and no x or y column is recognised.
    """
    found: dict[str, tuple[int, str | None]] = {}
    for axis in ("x", "y", "z"):
        best: tuple[tuple[int, int], int, str | None] | None = None
        for i, name in enumerate(columns):
            ok, unit, corrected = match_axis(axis, name)
            if not ok:
                continue
            rank = (0 if corrected else 1, _UNIT_RANK.get(unit, 3))
            if best is None or rank < best[0]:
                best = (rank, i, unit)
        if best is not None:
            found[axis] = (best[1], best[2])
    norm = [normalise(c) for c in columns]
    for role, names in (("frame", _FRAME_NAMES), ("channel", _CHANNEL_NAMES)):
        i = next((k for k, c in enumerate(norm) if c in names), None)
        if i is not None:
            found[role] = (i, None)
    for i, name in enumerate(columns):
        ok, unit = _precision_unit(name)
        if ok:
            found["precision"] = (i, unit)
            break
    i = next((k for k, c in enumerate(norm) if _PHOTON_RE.match(c)), None)
    if i is not None:
        found["photons"] = (i, None)
    missing = [a for a in ("x", "y") if a not in found]
    if missing and require_xy:
        raise ImagingError(
            f"no {' and no '.join(missing)} coordinate column recognised among the columns "
            f"found: {list(columns)}; expected names like 'x [nm]', 'x_nm', 'x (nm)', 'xnm' "
            "or 'x'; pass x_col=/y_col= (CLI: --x-col/--y-col) to name them"
        )
    return found


def role_by_name(columns: Sequence[str], name: str, axis: str, source: str) -> tuple[int, str | None]:
    """The index (and unit, if the name carries one) of the column the user named for ``axis``.

    Raises:
        ImagingError: no such column (the message names the argument and lists the columns).
    """
    norm = [normalise(c) for c in columns]
    key = normalise(name)
    if key not in norm:
        raise ImagingError(
            f"{axis}_col={name!r} (--{axis}-col) is not a column of {source}; columns found: {list(columns)}"
        )
    i = norm.index(key)
    unit = None
    for a in ("x", "y", "z"):
        ok, u, _ = match_axis(a, columns[i])
        if ok:
            unit = u
    return i, unit
