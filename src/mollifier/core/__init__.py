"""The numerical core: mollifier kernels, stencils, separable convolution, the layer, engines.

Depends on torch and numpy only.
"""
