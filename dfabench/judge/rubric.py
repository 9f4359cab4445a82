"""Judge rubrics: versioned YAML files, the prompt they render (untrusted texts in nonce-delimited blocks), the JSON
Schema of a valid judgment and the parser that holds a reply to it."""

from __future__ import annotations

import json
import math
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dfabench.errors import DfabenchError, InputError
from dfabench.redact import redact_clip
from dfabench.store import canonical_json, sha256_text

RUBRIC_DIR = Path(__file__).resolve().parent.parent / "resources" / "rubrics"
#: the rubric of a task whose spec names none (a task spec's ``rubric`` field says which one it uses)
FALLBACK_RUBRIC = "artifact-description-v2"
#: ``prompt_format`` of a rubric whose untrusted texts are substituted as nonce-delimited blocks
NONCE_PROMPT_FORMAT = 2
#: the untrusted texts of a judge prompt, each substituted as a delimited block of its own
DATA_BLOCKS = ("question", "reference", "candidate")


class JudgmentError(ValueError):
    """A judge reply that is not a valid judgment; the message says why."""



@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    question: str


@dataclass(frozen=True)
class Rubric:
    """A versioned grading rubric (one YAML file)."""

    name: str
    version: str
    criteria: tuple[Criterion, ...]
    scale_min: float
    scale_max: float
    system: str
    user: str
    rules: tuple[str, ...] = ()
    image_note: str = ""
    max_tokens: int = 300
    description: str = ""
    sha256: str = ""
    path: str = ""
    #: 1: the untrusted texts are substituted as they are (between ``<<<``/``>>>`` in the v1 files: an answer can
    #: close the block); 2 (:data:`NONCE_PROMPT_FORMAT`): each is substituted as a nonce-delimited block
    prompt_format: int = 1

    @property
    def label(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def keys(self) -> list[str]:
        return [c.id for c in self.criteria]

    @property
    def delimits_data(self) -> bool:
        """Whether the prompt puts every untrusted text in a block that the text cannot close."""
        return self.prompt_format >= NONCE_PROMPT_FORMAT

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of a valid judgment: one number in the scale per criterion (all required), an optional
        ``rationale`` string, nothing else."""
        number = {"type": "number", "minimum": self.scale_min, "maximum": self.scale_max}
        properties: dict[str, Any] = {key: dict(number) for key in self.keys}
        properties["rationale"] = {"type": "string"}
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"judgment ({self.label})",
                "type": "object", "properties": properties, "required": list(self.keys),
                "additionalProperties": False}

    def render(self, question: str | None, reference: str, candidate: str, with_image: bool) -> str:
        criteria = "\n".join(f"- {c.id} ({c.title}): {' '.join(c.question.split())}" for c in self.criteria)
        rules = "\n".join(f"- {' '.join(rule.split())}" for rule in self.rules)
        texts = {"question": (question or "(not recorded)").strip(), "reference": reference.strip(),
                 "candidate": candidate.strip()}
        fields: dict[str, str] = dict(texts)
        if self.delimits_data:
            nonce = data_nonce(*texts.values())
            fields = {name: data_block(name, text, nonce) for name, text in texts.items()}
            fields["nonce"] = nonce
        return self.user.format(
            **fields, criteria=criteria, rules=rules, min=_fmt_number(self.scale_min),
            max=_fmt_number(self.scale_max),
            image_note=(" ".join(self.image_note.split()) + "\n") if with_image and self.image_note else "",
            keys=", ".join(f'"{k}"' for k in self.keys))

    def messages(self, question: str | None, reference: str, candidate: str,
                 with_image: bool = False) -> list[dict[str, Any]]:
        """The judge's chat messages (transformers chat-template convention, as every model gets them); with
        ``with_image`` the user turn starts with the image part (the request carries the image)."""
        text = self.render(question, reference, candidate, with_image=with_image)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if with_image:
            content.insert(0, {"type": "image"})
        return [{"role": "system", "content": [{"type": "text", "text": " ".join(self.system.split())}]},
                {"role": "user", "content": content}]

    def response_format(self) -> dict[str, Any]:
        """The structured-output request for a judgment (``GenerateRequest.response_format``): the rubric's JSON
        Schema in the form strict structured-output servers accept (every property required, ``rationale`` first
        so the reasons come before the numbers, no ``$schema``)."""
        number = {"type": "number", "minimum": self.scale_min, "maximum": self.scale_max}
        properties: dict[str, Any] = {"rationale": {"type": "string"}, **{key: dict(number) for key in self.keys}}
        schema = {"type": "object", "properties": properties, "required": list(properties),
                  "additionalProperties": False}
        return {"type": "json_schema", "name": f"judgment_{self.name}".replace("-", "_"), "schema": schema}

    def parse(self, text: str | None) -> dict[str, Any]:
        """The judgment in a reply: ``{"criteria": {id: number}, "score": 0..1, "rationale": str}``."""
        return parse_judgment(text, self)


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def data_nonce(*texts: str) -> str:
    """A nonce for delimiting ``texts`` in a prompt: 16 hex digits of a hash of the texts (the same prompt for the
    same inputs), drawn again until it occurs in none of them (case-insensitively). A text cannot hold the hash
    of itself, so an answer cannot know the tag that closes its block."""
    seed = canonical_json(list(texts))
    lowered = [text.lower() for text in texts]
    draw = 0
    while True:
        nonce = sha256_text(f"dfabench-judge-nonce\0{draw}\0{seed}")[:16]
        if not any(nonce in text for text in lowered):
            return nonce
        draw += 1


def data_block(name: str, text: str, nonce: str) -> str:
    """``text`` between ``<name-NONCE>`` and ``</name-NONCE>`` lines (see :func:`data_nonce`)."""
    return f"<{name}-{nonce}>\n{text}\n</{name}-{nonce}>"


def list_rubrics() -> list[str]:
    """Names (``name-vN``) of the rubrics shipped with dfabench."""
    return sorted(p.stem for p in RUBRIC_DIR.glob("*.yaml"))


def load_rubric(name_or_path: str | Path) -> Rubric:
    """A shipped rubric by name (``artifact-description-v1``; without ``-vN``: the latest), or a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        name = str(name_or_path)
        candidates = [RUBRIC_DIR / f"{name}.yaml"]
        if not candidates[0].exists():
            versions = sorted(RUBRIC_DIR.glob(f"{name}-v*.yaml"), key=lambda p: _version_key(p.stem))
            candidates = versions[-1:]
        if not candidates or not candidates[0].exists():
            raise DfabenchError(f"unknown rubric {name!r} (shipped: {', '.join(list_rubrics())}; or give a YAML file)")
        path = candidates[0]
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, f"malformed YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "a rubric must be a mapping")
    for key in ("name", "version", "criteria", "scale", "system", "user"):
        if key not in data:
            raise InputError(path, f"rubric has no {key!r}")
    criteria = []
    for i, item in enumerate(data["criteria"] or []):
        if not isinstance(item, dict) or not item.get("id") or not item.get("question"):
            raise InputError(path, "each criterion needs an 'id' and a 'question'", f"criterion {i + 1}")
        criteria.append(Criterion(str(item["id"]), str(item.get("title") or item["id"]), str(item["question"])))
    if not criteria:
        raise InputError(path, "rubric has no criteria")
    scale = data["scale"] or {}
    try:
        low, high = float(scale["min"]), float(scale["max"])
    except (KeyError, TypeError, ValueError):
        raise InputError(path, "scale must be {min: number, max: number}") from None
    if not high > low:
        raise InputError(path, "scale max must be above min")
    prompt_format = data.get("prompt_format", 1)
    if prompt_format not in (1, NONCE_PROMPT_FORMAT):
        raise InputError(path, f"prompt_format must be 1 or {NONCE_PROMPT_FORMAT}, not {prompt_format!r}")
    user = str(data["user"])
    _check_template(path, user, prompt_format)
    return Rubric(name=str(data["name"]), version=str(data["version"]), criteria=tuple(criteria), scale_min=low,
                  scale_max=high, system=str(data["system"]), user=user,
                  rules=tuple(str(r) for r in data.get("rules") or ()), image_note=str(data.get("image_note") or ""),
                  max_tokens=int(data.get("max_tokens") or 300), description=str(data.get("description") or ""),
                  sha256=sha256_text(text.replace("\r\n", "\n")), path=str(path), prompt_format=prompt_format)


_TEMPLATE_FIELDS = frozenset(DATA_BLOCKS + ("nonce", "criteria", "rules", "min", "max", "image_note", "keys"))


def _check_template(path: Path, user: str, prompt_format: int) -> None:
    """Refuse a ``user`` template with unknown placeholders; in the nonce format, each untrusted text must be
    placed once (it becomes a whole delimited block) and the tags named by ``{nonce}``."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(user) if name is not None]
    except ValueError as exc:
        raise InputError(path, f"malformed 'user' template ({exc})") from None
    unknown = sorted(set(names) - _TEMPLATE_FIELDS)
    if unknown:
        raise InputError(path, f"unknown placeholder(s) in 'user': {', '.join('{' + n + '}' for n in unknown)} "
                               f"(known: {', '.join(sorted(_TEMPLATE_FIELDS))})")
    if prompt_format == NONCE_PROMPT_FORMAT:
        for block in DATA_BLOCKS:
            if names.count(block) != 1:
                raise InputError(path, f"'user' must hold {{{block}}} exactly once (it is replaced by the whole "
                                       f"<{block}-NONCE> block)")
        if "nonce" not in names:
            raise InputError(path, "'user' must tell the judge the tags' {nonce}")


def _version_key(stem: str) -> tuple[int, ...]:
    tail = stem.rsplit("-v", 1)[-1]
    return tuple(int(p) if p.isdigit() else 0 for p in tail.split("."))


def parse_judgment(text: str | None, rubric: Rubric) -> dict[str, Any]:
    """Parse and validate a judge reply. Raises :class:`JudgmentError` with the reason.

    The reply must be exactly one JSON object that validates against :meth:`Rubric.json_schema` (surrounding
    whitespace and a single ```json fence allowed): text around it, a second object (an answer's injected
    ``{"...": 5}`` quoted before the real grading), duplicate keys, unknown keys, a criterion that is missing,
    not a number or out of the scale all make the judgment unparseable, never a score.
    """
    if text is None or not text.strip():
        raise JudgmentError("empty judgment")
    body = _unfenced(text.strip())
    if "{" not in body:
        raise JudgmentError(f"no JSON object in the judgment: {_clip(text)!r}")
    if not body.startswith("{"):
        raise JudgmentError(f"the judgment must be one JSON object and nothing else, but text comes before it: "
                            f"{_clip(text)!r}")
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except JudgmentError:
        raise
    except ValueError as exc:
        why = "more than one JSON object or text after it" if getattr(exc, "msg", "") == "Extra data" else (
            getattr(exc, "msg", None) or str(exc))
        raise JudgmentError(f"not exactly one JSON object in the judgment ({why}): {_clip(text)!r}") from None
    problem = schema_problem(data, rubric.json_schema())
    if problem is not None:
        raise JudgmentError(problem)
    values = {key: float(data[key]) for key in rubric.keys}
    span = rubric.scale_max - rubric.scale_min
    score = sum((v - rubric.scale_min) / span for v in values.values()) / len(values)
    rationale = data.get("rationale")
    return {"criteria": values, "score": score, "rationale": _clip(str(rationale), 500) if rationale else None}


def _unfenced(body: str) -> str:
    """The inside of one Markdown code fence (```json ... ```) around the whole reply; else the reply."""
    if not body.startswith("```"):
        return body
    match = re.fullmatch(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```", body, re.S | re.I)
    if match is None or "```" in match.group(1):
        raise JudgmentError(f"the judgment must be one JSON object in at most one ```json fence: {_clip(body)!r}")
    return match.group(1).strip()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise JudgmentError(f"the judgment gives {', '.join(map(repr, repeated))} more than once")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise JudgmentError(f"{name} is not a valid JSON number")


_JSON_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def schema_problem(value: Any, schema: dict[str, Any], where: str = "the judgment") -> str | None:
    """Why ``value`` does not validate against ``schema`` (None when it does). The subset of JSON Schema that
    :meth:`Rubric.json_schema` uses: ``type``, ``properties``, ``required``, ``additionalProperties: false``,
    ``minimum``, ``maximum``."""
    kind = schema.get("type")
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{where} is not a number: {value!r}"
        if kind == "integer" and not float(value).is_integer():
            return f"{where} is not an integer: {value!r}"
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return (f"{where} = {_fmt_number(value)} is outside {_fmt_number(low if low is not None else -math.inf)}.."
                    f"{_fmt_number(high if high is not None else math.inf)}")
        return None
    if kind is not None and not isinstance(value, _JSON_TYPES[kind]):
        return f"{where} is not a JSON {kind}: {_clip(repr(value))}"
    if kind == "object":
        properties = schema.get("properties") or {}
        for key in schema.get("required") or ():
            if key not in value:
                return f"the judgment has no {key!r}"
        if schema.get("additionalProperties") is False:
            unknown = sorted(set(value) - set(properties))
            if unknown:
                return (f"the judgment has unknown key(s) {', '.join(map(repr, unknown))} "
                        f"(expected {sorted(properties)})")
        for key, sub in properties.items():
            if key in value:
                problem = schema_problem(value[key], sub, repr(key))
                if problem is not None:
                    return problem
    return None


def _clip(text: str, limit: int = 120) -> str:
    """Redacted first (:mod:`dfabench.redact`), cut after: a secret across the cut leaves nothing."""
    return redact_clip(text, limit)
