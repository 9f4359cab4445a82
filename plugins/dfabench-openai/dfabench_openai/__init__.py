"""dfabench-openai: any OpenAI-compatible chat-completions endpoint as a dfabench model.

The model class lives in :mod:`dfabench_openai.model` and is imported only when a model is
created, so listing models imports neither ``openai`` nor ``PIL``.
"""

from dfabench import hookimpl

__version__ = "0.1.0"


@hookimpl
def dfabench_register_models(register):
    register(
        "openai",
        "dfabench_openai.model:OpenAIModel",
        aliases=("openai-compatible",),
        capabilities=("generate",),
        description="an OpenAI-compatible chat endpoint with image input (args: model, base_url, api_key_env, "
                    "concurrency, timeout, max_retries, detail, logprobs)",
    )
