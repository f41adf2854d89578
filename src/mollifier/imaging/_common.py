"""Shared helpers of :mod:`mollifier.imaging`: the error type and lazy optional imports."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pip install 'mollifier[imaging]'"


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
