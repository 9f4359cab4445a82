"""The dfabench entry point of dfabench-hf: registers the ``hf`` model (nothing heavy imported)."""

from dfabench.api import hookimpl


@hookimpl
def dfabench_register_models(register):
    register(
        "hf",
        "dfabench_hf.model:HFModel",
        aliases=("transformers",),
        capabilities=("generate",),
        description="any image-text-to-text transformers checkpoint; DF-D scores from answer log-probabilities "
                    "(args: path, revision, dtype, device, max_new_tokens, trust_remote_code, "
                    "attn_implementation, batch_size)",
    )
