"""What a judgment depends on in a sample: the question, the answer and the reference(s).

Shared by the judge stage (:mod:`dfabench.judge`), which records :func:`judge_input_sha256` with every
judgment, and the ``judge`` metric (:mod:`dfabench.metrics.judge`), which treats a judgment whose hash no
longer matches its sample as stale.
"""

from __future__ import annotations

from typing import Any

from dfabench.metrics.text import candidate_text, reference_texts
from dfabench.store import canonical_json, sha256_text


def answer_and_references(record: dict[str, Any]) -> tuple[str, list[str]]:
    """The answer text of a sample (``""`` when empty) and its reference texts (``[]`` when none)."""
    return candidate_text(record), reference_texts(record)


def judge_input_sha256(record: dict[str, Any]) -> str:
    """Hash of what a judgment depends on in the sample: question, answer, reference(s)."""
    candidate, references = answer_and_references(record)
    return sha256_text(canonical_json([record.get("prompt"), candidate, references]))
