"""Shared helpers of :mod:`mollifier.imaging`: the error type and lazy optional imports."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'mollifier[imaging]'"
SMLM_INSTALL_HINT = "pip install 'mollifier[smlm]'"


class ImagingError(ValueError):
    """Input data (a file, a table, an image or a mask) cannot be used as given.

    Subclasses :class:`ValueError`, so callers catching ``ValueError`` keep working.
    """


def require_tifffile() -> ModuleType:
    """Import and return :mod:`tifffile`, or raise an ImportError with the install hint.

    Returns:
        The ``tifffile`` module.

    Raises:
        ImportError: ``tifffile`` is not installed.
    """
    try:
        import tifffile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading/writing TIFF files needs the optional package 'tifffile': {INSTALL_HINT}"
        ) from exc
    return tifffile


def require_smlm(module: str, what: str) -> ModuleType:
    """Import an optional parser of the ``smlm`` extra (``h5py``, ``yaml``).

    Args:
        module: Module name (``"h5py"`` or ``"yaml"``).
        what: What needs it, for the message (e.g. ``"reading Picasso .hdf5 files"``).

    Returns:
        The module.

    Raises:
        ImportError: it is not installed; the message names the extra to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = {"yaml": "pyyaml"}.get(module, module)
        raise ImportError(f"{what} needs the optional package '{package}': {SMLM_INSTALL_HINT}") from exc
