"""The ``dfabench`` entry point of dfabench-openai: registers the ``openai`` model (nothing heavy imported)."""

from dfabench.api import hookimpl


@hookimpl
def dfabench_register_models(register):
    register(
        "openai",
        "dfabench_openai.model:OpenAIModel",
        aliases=("openai-compatible",),
        capabilities=("generate",),
        description="an OpenAI-compatible chat endpoint with image input (args: model, base_url: one URL or "
                    "several, comma-separated, load-balanced with failover; api_key_env, concurrency, timeout, "
                    "max_retries, detail, logprobs, cooloff)",
    )
