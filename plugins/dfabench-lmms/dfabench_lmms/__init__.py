"""dfabench-lmms: run any lmms-eval model (by its registry name and model args) as a dfabench model.

The model class is in :mod:`dfabench_lmms.model`, imported only when a model is created, so
listing models imports neither lmms-eval nor torch. The opposite direction (DFA-Bench tasks for
lmms-eval's own CLI) is the core's ``dfabench export lmms-eval``.
"""

from dfabench import hookimpl

__version__ = "0.1.0"


@hookimpl
def dfabench_register_models(register):
    register(
        "lmms",
        "dfabench_lmms.model:LmmsModel",
        aliases=("lmms-eval",),
        capabilities=("generate",),
        description="any lmms-eval model (args: lmms_model, lmms_args, batch_size, device, chat)",
    )
