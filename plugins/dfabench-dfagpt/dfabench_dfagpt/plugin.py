"""The dfabench entry point of dfabench-dfagpt: registers the ``dfagpt`` model and the ``dfabench dfagpt train``
command (nothing heavy imported)."""

from dfabench.api import hookimpl


@hookimpl
def dfabench_register_models(register):
    register(
        "dfagpt",
        "dfabench_dfagpt.model:DFAGPTModel",
        aliases=("dfa-gpt",),
        capabilities=("generate",),
        description="DFA-GPT: LLaVA-style base + LoRA adapter + projector (args: base, adapter, projector, "
                    "and the hf model's dtype, device, max_new_tokens, ...)",
    )


@hookimpl
def dfabench_register_commands(register):
    register("dfagpt", help="DFA-GPT tools (LoRA instruction tuning)")
    register("dfagpt train", "dfabench_dfagpt.cli:add_train_arguments", "dfabench_dfagpt.cli:train_command",
             help="LoRA instruction tuning on a benchmark's train-split conversations")
