"""Model arguments of the ``hf`` model: strings from the command line, parsed and checked.

This module imports nothing heavy, so bad arguments are refused before torch loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dfabench.api import DfabenchError

DTYPES = ("auto", "float32", "bfloat16", "float16")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(name: str, value: Any) -> bool:
    """``true``/``false``/``1``/``0``/``yes``/``no`` (or a bool) -> bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DfabenchError(f"model argument {name}={value!r}: expected true or false")


def parse_positive_int(name: str, value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise DfabenchError(f"model argument {name}={value!r}: expected a positive integer") from None
    if number <= 0:
        raise DfabenchError(f"model argument {name}={value!r}: expected a positive integer")
    return number


def parse_dtype(value: Any) -> str:
    text = str(value).strip().lower()
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}
    text = aliases.get(text, text)
    if text not in DTYPES:
        raise DfabenchError(f"model argument dtype={value!r}: expected one of {', '.join(DTYPES)}")
    return text


def parse_device(value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("auto", "cpu", "mps") or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise DfabenchError(f"model argument device={value!r}: expected auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class HFOptions:
    """The ``hf`` model arguments.

    ``path``: a local checkpoint folder or a hub name; ``revision``: a hub branch, tag or commit;
    ``dtype``: ``auto`` (the checkpoint's dtype on a GPU, float32 on the CPU), ``float32``,
    ``bfloat16``, ``float16``; ``device``: ``auto`` (every visible GPU, else the CPU), ``cpu``,
    ``cuda``, ``cuda:N``; ``max_new_tokens``: overrides each task's limit; ``trust_remote_code``;
    ``attn_implementation`` (``sdpa``, ``eager``, ``flash_attention_2``); ``batch_size``: the
    batch size used when the run gives none.
    """

    path: str
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    max_new_tokens: int | None = None
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    batch_size: int | None = None

    @classmethod
    def parse(cls, model: str = "hf", **args: Any) -> HFOptions:
        """Parse string arguments; unknown names and bad values raise :class:`DfabenchError`."""
        known = {"path", "revision", "dtype", "device", "max_new_tokens", "trust_remote_code",
                 "attn_implementation", "batch_size"}
        unknown = sorted(set(args) - known)
        if unknown:
            raise DfabenchError(f"{model}: unknown model argument(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(known))})")
        path = args.get("path")
        if path is None or not str(path).strip():
            raise DfabenchError(f"{model}: the model argument 'path' is required (a local checkpoint folder "
                                "or a hub name, e.g. --model-arg path=llava-hf/llava-1.5-7b-hf)")
        attn = args.get("attn_implementation")
        return cls(
            path=str(path).strip(),
            revision=str(args["revision"]).strip() if args.get("revision") else None,
            dtype=parse_dtype(args.get("dtype", "auto")),
            device=parse_device(args.get("device", "auto")),
            max_new_tokens=(parse_positive_int("max_new_tokens", args["max_new_tokens"])
                            if args.get("max_new_tokens") not in (None, "") else None),
            trust_remote_code=parse_bool("trust_remote_code", args.get("trust_remote_code", False)),
            attn_implementation=str(attn).strip() if attn else None,
            batch_size=(parse_positive_int("batch_size", args["batch_size"])
                        if args.get("batch_size") not in (None, "") else None),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
