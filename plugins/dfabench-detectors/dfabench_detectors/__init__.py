"""dfabench-detectors: discriminative deepfake detectors for dfabench (DeepfakeBench checkpoints, a learned
baseline trained on a benchmark's own train split)."""

__version__ = "0.1.0"
