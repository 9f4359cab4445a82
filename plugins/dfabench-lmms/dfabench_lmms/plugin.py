"""The ``dfabench`` entry point of dfabench-lmms: registers the ``lmms`` model (nothing heavy imported)."""

from dfabench.api import hookimpl


@hookimpl
def dfabench_register_models(register):
    register(
        "lmms",
        "dfabench_lmms.model:LmmsModel",
        aliases=("lmms-eval",),
        capabilities=("generate",),
        description="any lmms-eval model (args: lmms_model, lmms_args, batch_size, device, chat)",
    )
