"""dfabench-dfagpt: DFA-GPT (an MLLM base + LoRA adapter + projector) as a dfabench model, and
its LoRA instruction tuning (``dfabench-dfagpt train``).

Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
