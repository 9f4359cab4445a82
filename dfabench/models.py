"""The model contract, and the built-in reference models ``constant`` and ``random``.

A model declares its capabilities:

- ``generate``: chat about an image -> text (:meth:`Model.generate`);
- ``score``: image -> probability of fake, optionally per-category probabilities
  (:meth:`Model.score`);
- ``localize``: image -> forgery mask (:meth:`Model.generate` returning ``Response.mask``).

The runner hands a model batches of requests; batching inside a batch is the model's
business. A model reports a failure for one item by returning a response with ``error`` set,
or by raising: the runner then retries the batch one by one and records what still fails.
"""

from __future__ import annotations

import hashlib
import random as _random
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dfabench.vocab import CATEGORIES, LABELS

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from dfabench.data.manifest import Benchmark

CAPABILITIES = ("generate", "score", "localize")


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings of one task run. ``temperature == 0`` means greedy (deterministic)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenerateRequest:
    """One chat request about one image.

    ``messages`` follow the transformers chat-template convention: a list of
    ``{"role": "system"|"user"|"assistant", "content": [part, ...]}`` where a part is
    ``{"type": "image"}`` (the request's image goes there) or ``{"type": "text", "text": str}``.
    ``choices`` lists answer options (e.g. ``("yes", "no")``); a model that can compute
    next-token log-probabilities returns them in ``Response.choice_logprobs``. ``task`` is the task's id
    and ``reference`` what its answer is compared with (the spec's ``reference``: ``label``, ``category``,
    ``description``, ``conversation`` or ``mask_and_description``): a model that answers each kind of
    question its own way dispatches on ``reference``, so it serves a plugin's task of the same kind too.
    """

    sample_id: str
    image: Image
    image_path: str
    messages: list[dict[str, Any]]
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    task: str = ""
    choices: tuple[str, ...] = ()
    reference: str = ""
    #: the shape the answer must take, for a model that can enforce one (see ``Model.structured_output``):
    #: ``{"type": "json_schema", "name": ..., "schema": {...}}`` or ``{"type": "json_object"}``; a model
    #: that cannot enforce it answers in free text and the caller parses it strictly (the judge does)
    response_format: dict[str, Any] | None = None

    @property
    def prompt_text(self) -> str:
        """The text of the last user turn."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return "".join(p.get("text", "") for p in message["content"] if p.get("type") == "text")
        return ""


@dataclass
class ScoreRequest:
    """One image for a discriminative (score-capable) model."""

    sample_id: str
    image: Image
    image_path: str
    task: str = ""
    #: what the task compares the answer with (see :class:`GenerateRequest`)
    reference: str = ""


@dataclass
class Response:
    """What a model answered for one :class:`GenerateRequest`.

    ``mask`` (localize capability) is a 2-D ``numpy.uint8`` array, 0 = authentic,
    255 = forged, of the image's size. ``error`` set means this item failed; ``error_kind`` may
    classify it (``http_500``, ``rate_limited``, ``timeout``, ``connection``, ``malformed_response``).
    ``model``: the model id the endpoint reported for this answer (hosted APIs answer with a dated
    snapshot); ``refusal``: the model declined (its text is the refusal); ``output_format``: the
    ``response_format`` type the answer was produced under (``json_schema``, ``json_object``; ``None``:
    free text), when the request asked for one.
    """

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    choice_logprobs: dict[str, float] | None = None
    mask: Any = None
    error: str | None = None
    error_kind: str | None = None
    model: str | None = None
    refusal: bool = False
    output_format: str | None = None


@dataclass
class Scores:
    """What a score-capable model gives for one image.

    ``fake``: probability that the image is fake (0..1). ``categories``: probabilities over
    ``FS``/``FR``/``FE``/``EFS`` given that it is fake (optional). ``error`` set = failed.
    """

    fake: float | None = None
    categories: dict[str, float] | None = None
    error: str | None = None


class Model:
    """Base class of dfabench models. Subclasses set ``capabilities`` and implement the
    methods that go with them."""

    #: subset of :data:`CAPABILITIES`
    capabilities: frozenset[str] = frozenset()
    #: whether the same request always gives the same answer (only then responses are cached)
    deterministic: bool = True
    #: the batch size the runner uses when the user gives none
    default_batch_size: int = 8
    #: model arguments that do not change any answer (concurrency, timeouts, retries): they are
    #: recorded but left out of the model fingerprint, so changing them keeps the response cache
    #: and lets an interrupted run resume
    operational_args: tuple[str, ...] = ()
    #: the ``GenerateRequest.response_format`` types the model enforces (``json_schema``, ``json_object``);
    #: empty: it answers in free text whatever is asked (the judge then prompts for JSON and parses strictly)
    structured_output: frozenset[str] = frozenset()

    def identity(self) -> dict[str, Any]:
        """Extra identity (e.g. ``{"weights_sha256": ...}`` or the endpoint's model id).

        It becomes part of the run record and of the response-cache key, so anything that
        changes the answers must be in it. Never put a secret here.
        """
        return {}

    def prepare(self, benchmark: Benchmark) -> None:
        """Called once before predicting on ``benchmark`` (e.g. to fit on its train split)."""

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        raise NotImplementedError(f"{type(self).__name__} cannot generate")

    def score(self, requests: list[ScoreRequest]) -> list[Scores]:
        raise NotImplementedError(f"{type(self).__name__} cannot score")

    def close(self) -> None:
        """Release resources (GPU memory, HTTP sessions)."""


# --------------------------------------------------------------------------- reference models

_CATEGORY_ANSWERS = {
    "FS": "Face swapping is used: the face was replaced with another identity.",
    "FR": "Face reenactment is used: the expression and mouth motion were transferred.",
    "FE": "Face editing is used: local facial attributes were modified.",
    "EFS": "Entire face synthesis is used: the whole face was generated.",
}
_DEFAULT_DESCRIPTION = (
    "The face shows artifacts around the eyes, the mouth and lips, and the jawline: "
    "blurred boundaries, unnatural skin texture and inconsistent lighting."
)


def _answer_for(reference: str, label: str, category: str, description: str) -> str:
    """The reference models' answer to a question whose answer is compared with ``reference``."""
    if reference == "label":
        return "Yes, this face has been forged." if label == "fake" else "No, this face is real."
    if reference == "category":
        return _CATEGORY_ANSWERS[category]
    return description


class ConstantModel(Model):
    """Always gives the same answer: a floor and a sanity check.

    Arguments: ``label`` (``fake``/``real``, DF-D answer), ``category`` (DF-C answer),
    ``description`` (AD/FC/FL answer), ``text`` (if set, the answer to every question).
    """

    capabilities = frozenset({"generate"})
    default_batch_size = 256

    def __init__(self, label: str = "fake", category: str = "FS", description: str = _DEFAULT_DESCRIPTION,
                 text: str | None = None):
        from dfabench.errors import DfabenchError

        if label not in LABELS:
            raise DfabenchError(f"constant: label must be 'real' or 'fake', not {label!r}")
        if category not in _CATEGORY_ANSWERS:
            raise DfabenchError(f"constant: category must be one of {', '.join(CATEGORIES)}, not {category!r}")
        for name, value in (("description", description), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise DfabenchError(f"constant: {name} must be a string, not {type(value).__name__} {value!r:.80} "
                                    f'(quote JSON text: --model-arg {name}=\'"..."\')')
        self.label, self.category, self.description, self.text = label, category, description, text

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        out = []
        for request in requests:
            text = self.text if self.text is not None else _answer_for(
                request.reference, self.label, self.category, self.description)
            out.append(Response(text=text))
        return out


class RandomModel(Model):
    """Answers at random, reproducibly: the chance level.

    Each answer depends only on ``seed`` and the sample id, so it does not change with the batch
    size or the order. It gives DF-D scores (a uniform probability of fake, and log-probabilities
    of the yes/no options when generating) and DF-C category probabilities.
    Arguments: ``seed`` (int, default 0), ``mode`` (``generate`` or ``score``).
    """

    default_batch_size = 256

    def __init__(self, seed: int = 0, mode: str = "generate"):
        from dfabench.errors import DfabenchError

        if mode not in ("generate", "score"):
            raise DfabenchError(f"random: mode must be 'generate' or 'score', not {mode!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DfabenchError(f"random: seed must be an integer, not {seed!r}")
        self.seed = seed
        self.capabilities = frozenset({mode})

    def identity(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _rng(self, sample_id: str, task: str) -> _random.Random:
        digest = hashlib.sha256(f"{self.seed}\0{task}\0{sample_id}".encode()).digest()
        return _random.Random(int.from_bytes(digest[:8], "big"))

    def _draw(self, sample_id: str, task: str) -> tuple[float, dict[str, float]]:
        rng = self._rng(sample_id, task)
        p_fake = rng.random()
        weights = [rng.random() + 1e-9 for _ in CATEGORIES]
        total = sum(weights)
        return p_fake, {c: w / total for c, w in zip(CATEGORIES, weights, strict=True)}

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        import math

        out = []
        for request in requests:
            p_fake, categories = self._draw(request.sample_id, request.task)
            label = "fake" if p_fake >= 0.5 else "real"
            category = max(categories, key=categories.get)
            text = _answer_for(request.reference, label, category, _DEFAULT_DESCRIPTION)
            logprobs = None
            if request.reference == "label" and len(request.choices) == 2:
                yes, no = request.choices[0], request.choices[1]
                logprobs = {yes: math.log(max(p_fake, 1e-12)), no: math.log(max(1 - p_fake, 1e-12))}
            out.append(Response(text=text, choice_logprobs=logprobs))
        return out

    def score(self, requests: list[ScoreRequest]) -> list[Scores]:
        out = []
        for request in requests:
            p_fake, categories = self._draw(request.sample_id, request.task)
            out.append(Scores(fake=p_fake, categories=categories))
        return out
