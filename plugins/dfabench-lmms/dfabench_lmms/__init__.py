"""dfabench-lmms: run any lmms-eval model (by its registry name and model args) as a dfabench model.

The ``dfabench`` entry point is :mod:`dfabench_lmms.plugin`; the model class is in
:mod:`dfabench_lmms.model`, imported only when a model is created, so listing models imports
neither lmms-eval nor torch. The opposite direction (DFA-Bench tasks for lmms-eval's own CLI) is
the core's ``dfabench export lmms-eval``.
"""

__version__ = "0.1.0"
