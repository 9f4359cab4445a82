"""dfabench-hf: image-text-to-text transformers models (LLaVA, Qwen2-VL, Idefics3 / SmolVLM, ...)
as dfabench models.

Importing this package imports nothing heavy; torch and transformers load when a model is
created (:mod:`dfabench_hf.model`).
"""

__version__ = "0.1.0"
