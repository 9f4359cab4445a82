"""dfabench-baselines: baseline models for dfabench without deep learning (no torch needed).

Models (registered through the ``dfabench`` entry point, see :mod:`dfabench_baselines.plugin`):

- ``spectrum``: the frequency-spectrum detector of Durall et al. (azimuthally averaged log-FFT
  magnitude + logistic regression), capability ``score`` (DF-D probability of fake and DF-C
  category probabilities).
- ``noise-inconsistency``: a classical forgery localizer (local noise-level inconsistency of a
  high-pass residual), capabilities ``generate`` and ``localize`` (FL mask and region report; DF-D,
  DF-C and AD answers from the same map), see :mod:`dfabench_baselines.noise`.
"""

__version__ = "0.1.0"
