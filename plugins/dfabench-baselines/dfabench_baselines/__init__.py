"""dfabench-baselines: discriminative deepfake detectors for dfabench (no torch needed).

Models (registered through the ``dfabench`` entry point, see :mod:`dfabench_baselines.plugin`):

- ``spectrum``: the frequency-spectrum detector of Durall et al. (azimuthally averaged log-FFT
  magnitude + logistic regression), capability ``score`` (DF-D probability of fake and DF-C
  category probabilities).
"""

__version__ = "0.1.0"
