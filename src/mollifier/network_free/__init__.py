"""Training-free estimates: smooth the observations, differentiate, apply the direct formula.

A scientist's first question about a neural inverse solver: would simply smoothing my data
and applying the formula do as well? These estimators answer it in a fraction of a second,
with the library's mollifier kernels or with classical smoothers.
"""

from .estimate import SMOOTHERS, NetworkFreeResult, estimate_parameter
from .radius import auto_radius, noise_std

__all__ = ["SMOOTHERS", "NetworkFreeResult", "auto_radius", "estimate_parameter", "noise_std"]
