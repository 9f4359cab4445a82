"""Free-text answers -> labels: detection (``fake``/``real``), category (``FS``/``FR``/``FE``/``EFS``).

The parsers are rule-based, deterministic and conservative: when an answer does not commit to one
label they return ``None`` (counted as *unparsed* and scored as wrong), never a guess. They read an
answer by its structure rather than by word windows:

- :mod:`~dfabench.parsing.normalise`: Unicode, markdown, ``<think>`` reasoning, lists, sentences, clauses,
  lettered options; Chinese answers through :mod:`~dfabench.parsing.chinese`;
- :mod:`~dfabench.parsing.scope`: what governs a word (negation scope over a clause and its
  complement, hedges, *whether* / *if*, appearance words, uncertainty);
- :mod:`~dfabench.parsing.detection`: :func:`parse_detection` (yes/no, label words, leading answer);
- :mod:`~dfabench.parsing.category`: :func:`parse_category` (category names, technique names,
  technique descriptions).

Their precision and coverage are measured on a labelled corpus of answers in the styles of real MLLMs
(``tests/answers/``, ``benchmarks/bench_parsing.py``). :data:`TECHNIQUE_CATEGORY` and the other technique
tables come from :mod:`dfabench.vocab` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dfabench.parsing.category import parse_category
from dfabench.parsing.detection import parse_detection
from dfabench.vocab import (
    CATEGORIES,
    OTHER_TECHNIQUE_CATEGORY,
    TECHNIQUE_ALIASES,
    TECHNIQUE_CATEGORY,
    TECHNIQUE_NAMES,
    canonical_technique,
    normalise_technique,
    technique_category,
)

__all__ = [
    "CATEGORIES",
    "OTHER_TECHNIQUE_CATEGORY",
    "PARSERS",
    "TECHNIQUE_ALIASES",
    "TECHNIQUE_CATEGORY",
    "TECHNIQUE_NAMES",
    "canonical_technique",
    "normalise_technique",
    "parse_category",
    "parse_detection",
    "parse_text",
    "technique_category",
]


def parse_text(text: str | None, options: Mapping[str, str] | None = None) -> str | None:
    """The answer text, stripped; ``None`` when empty (AD, FC and FL answers)."""
    del options
    if text is None:
        return None
    text = text.strip()
    return text or None


#: the built-in parsers (``parser:`` in tasks/*.yaml) -> parser. Each is called as ``parser(text)`` or
#: ``parser(text, options)`` and returns the parsed answer or ``None``. :mod:`dfabench.builtin` registers
#: them through ``dfabench_register_parsers``; the runner looks a task's parser up in the plugin manager
#: (``get_manager().parser_for(task)``), so plugins' parsers are used the same way.
PARSERS: dict[str, Callable[..., str | None]] = {
    "detection": parse_detection,
    "category": parse_category,
    "text": parse_text,
}
