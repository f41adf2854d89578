"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["positive_number"]


def positive_number(what: str, *words: str) -> Callable[[str], float | str]:
    """An ``argparse`` type: a positive number, or one of ``words`` kept as given.

    ``what`` names the number in the error (``"number of seconds"``: "expected a positive
    number of seconds, got 'x'").
    """
    allowed = " or ".join([f"a positive {what}", *(repr(w) for w in words)])

    def parse(text: str) -> float | str:
        if text in words:
            return text
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    return parse
