"""The dfabench entry point of dfabench-dfagpt: registers the ``dfagpt`` model (nothing heavy imported)."""

from dfabench import hookimpl


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
