"""Models in a role: the judge (and, later, the answer extractor) is any registered generate-capable model.

A role model is created exactly like a model under test — the same registry, plugins, arguments, retries,
concurrency and identity (:class:`dfabench.records.ModelIdentity`) — so a hosted API, a vLLM or SGLang
server (the ``openai`` plugin), a local transformers model (``hf``) or an lmms-eval model can judge. What
differs is only what it is asked: :func:`ask` hands it requests in batches of its own batch size and never
raises for one bad item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dfabench.answers import describe_exception
from dfabench.errors import DfabenchError
from dfabench.models import GenerateRequest, Model, Response
from dfabench.plugins import get_manager
from dfabench.records import ModelIdentity


@dataclass
class RoleModel:
    """A created model in a role, with its identity."""

    role: str
    model: Model
    identity: ModelIdentity

    @property
    def label(self) -> str:
        """``NAME (served-model-or-id)``: how the role model is named in messages."""
        served = self.served_id
        return f"{self.identity.name} ({served})" if served and served != self.identity.name else self.identity.name

    @property
    def served_id(self) -> str:
        """The model id as the model itself names it: the endpoint's served model, else its ``model`` / ``path``
        argument, else the registered name."""
        own = self.identity.identity if isinstance(self.identity.identity, Mapping) else {}
        args = self.identity.args if isinstance(self.identity.args, Mapping) else {}
        for value in (own.get("served_model"), args.get("model"), args.get("path"), own.get("model")):
            if isinstance(value, str) and value:
                return value
        return self.identity.name

    @property
    def structured_output(self) -> frozenset[str]:
        return frozenset(getattr(self.model, "structured_output", frozenset()) or ())

    def close(self) -> None:
        close = getattr(self.model, "close", None)
        if close is not None:
            close()


def check_role_entry(role: str, name: str) -> Any:
    """The registry entry of ``name``, refused with one line when it is not registered or cannot generate."""
    entry = get_manager().models.get(name)
    if "generate" not in entry.capabilities:
        raise DfabenchError(f"{role} model {entry.name!r} cannot {role}: it has {', '.join(entry.capabilities)}; a "
                            f"{role} must be a generate-capable model (see `dfabench models`)")
    return entry


def create_role_model(role: str, name: str, args: Mapping[str, Any] | None = None) -> RoleModel:
    """Create the registered model ``name`` with ``args`` for ``role`` (``judge``, ``extractor``); a model that
    cannot generate is refused with one line."""
    entry = check_role_entry(role, name)
    args = dict(args or {})
    model = entry.create(**args)
    if "generate" not in model.capabilities:
        close = getattr(model, "close", None)
        if close is not None:
            close()
        raise DfabenchError(f"{role} model {entry.name!r} with these arguments cannot generate")
    try:
        identity = ModelIdentity.create(entry, args, model)
    except DfabenchError:
        model.close()
        raise
    return RoleModel(role=role, model=model, identity=identity)


def ask(role_model: RoleModel, requests: list[GenerateRequest], on_batch: Callable[[list[tuple[GenerateRequest,
        Response]]], None] | None = None, batch_size: int | None = None) -> list[Response]:
    """Send ``requests`` in batches (the model's ``default_batch_size``); one :class:`Response` per request, an
    exception of the model becoming a failed response for each item of its batch. ``on_batch`` sees each batch's
    (request, response) pairs as soon as it is answered (the judge commits them to its cache there)."""
    size = max(1, int(batch_size or getattr(role_model.model, "default_batch_size", 8) or 8))
    out: list[Response] = []
    for start in range(0, len(requests), size):
        batch = requests[start:start + size]
        try:
            answers = list(role_model.model.generate(batch))
            if len(answers) != len(batch):
                raise DfabenchError(f"the {role_model.role} model returned {len(answers)} answers for {len(batch)} "
                                    "requests")
        except Exception as exc:  # noqa: BLE001 - a failing batch fails its items, never the stage
            answers = [Response(error=describe_exception(exc), error_kind="model_error") for _ in batch]
        out.extend(answers)
        if on_batch is not None:
            on_batch(list(zip(batch, answers, strict=True)))
    return out

