"""dfabench-openai: any OpenAI-compatible chat-completions endpoint as a dfabench model.

The ``dfabench`` entry point is :mod:`dfabench_openai.plugin`; the model class lives in
:mod:`dfabench_openai.model` and is imported only when a model is created, so listing models
imports neither ``openai`` nor ``PIL``.
"""

__version__ = "0.1.0"
