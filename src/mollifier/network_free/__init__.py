"""Smoothing and differentiating gridded data without a network; the radius from the data.

A scientist's first question about a neural inverse solver: would simply smoothing my data
and applying the formula do as well? :func:`smoothed_derivatives` (the library's mollifier
kernels or classical smoothers) and :func:`auto_radius` (a plug-in bias-variance rule) are
the tools; :func:`mollifier.inverse.estimate_parameter` applies a problem's direct formula
to them and scores the estimate like a trained run.
"""

from .extend import extend_edges, smooth_on_halo
from .radius import auto_radius, noise_gain, noise_std
from .smoothers import SMOOTHERS, smoothed_derivatives

__all__ = ["SMOOTHERS", "auto_radius", "extend_edges", "noise_gain", "noise_std", "smooth_on_halo", "smoothed_derivatives"]
