"""The text of an answer as the rules read it: normalised, cut into sentences and clauses.

- :func:`normalise`: Unicode NFKC; ``<think>...</think>`` reasoning dropped (the answer is what follows);
  Chinese words translated (:mod:`dfabench.parsing.chinese`); markdown marks, JSON quotes and braces,
  list bullets removed; parentheses opened up (their commas become *and*: "attributes (makeup,
  glasses) were edited" stays one clause); lower case; ``n't`` -> `` not``; "no doubt"-style phrases
  neutralised. Line breaks are kept: each line is a sentence.
- :func:`sentences` (questions dropped: an answer that restates the question does not assert it) and
  :func:`clauses` (cut at commas, ``;``, ``:``, dashes and contrast words such as *but*, *however*).
- :func:`strip_prefix` drops a leading ``Answer:`` / ``The answer is`` / ``Verdict:``.
- :func:`letter_option`: the option chosen by a lettered answer (``B``, ``(B)``, ``Answer: B``, ``答案：B``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from dfabench.parsing.chinese import has_chinese, translate

_THINK = re.compile(r"(?is)<think>.*?</think>|^.*?</think>|<think>(?!.*</think>).*\Z")


def _drop_reasoning(text: str) -> str:
    """The text without ``<think>`` blocks; an unclosed block or a lone ``</think>`` drops all before it."""
    stripped = _THINK.sub(" ", text)
    return stripped if stripped.strip() or "</think>" not in text else text


def _open_parentheses(text: str) -> str:
    return re.sub(r"\(([^()]*)\)", lambda m: " " + m.group(1).replace(",", " and") + " ", text)


def normalise(text: str) -> str:
    """The answer in the form the rules read: see the module docstring."""
    text = unicodedata.normalize("NFKC", text)
    text = _drop_reasoning(text)
    text = re.sub(r"<\|[^|>]{0,40}\|>|</?s>", " ", text)
    if has_chinese(text):
        text = translate(text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", " ")
    text = re.sub(r"[\u201c\u201d\"{}]", " ", text)
    text = re.sub(r"\s*[\u2013\u2014]+\s*", " - ", text)
    text = re.sub(r"[*#~]+", " ", text)
    text = re.sub(r"(?<![a-z0-9])_+|_+(?![a-z0-9])", " ", text, flags=re.I)
    text = re.sub(r"(?m)^\s*(?:[-\u2022>]+\s+|\d{1,2}[.)]\s+|step \d+\s*[:.)]\s*)", "", text, flags=re.I)
    text = _open_parentheses(text).lower()
    text = re.sub(r"\bcan ?not\b|\bcan't\b", "can not", text)
    text = re.sub(r"\bwon't\b", "will not", text)
    text = re.sub(r"\bshan't\b", "shall not", text)
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"\b(e\.g|i\.e|etc|vs)\.", r"\1", text)
    # phrases whose "no" / "without" is not a negation of the verdict
    text = re.sub(r"\b(?:there is |there's )?(?:no |without (?:a |any )?)(?:doubt|question)\b(?: that)?",
                  " clearly ", text)
    text = re.sub(r"\bnot only\b", " ", text)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\s*\n\s*", "\n", text).strip()


_ANSWER_PREFIX = re.compile(
    r"^(?:(?:assistant|gpt|model)\s*:\s*)?"
    r"(?:(?:my|the|final|short|correct|overall)\s+)*"
    r"(?:answer|verdict|conclusion|prediction|label|response|output|result|classification|category|technique)\b"
    r"\s*(?:is\s*|would be\s*)?[:\-]?\s*")


def strip_prefix(text: str) -> str:
    return _ANSWER_PREFIX.sub("", text, count=1).strip()


_CLAUSE_SPLIT = re.compile(
    r"\s*[,:;\[\]]\s*|\s+-+\s+|\s+(?=(?:but|however|although|though|whereas|while|yet|except|"
    r"nevertheless|nonetheless|instead|rather)\b)")
CONTRAST = re.compile(r"^(?:but|however|although|though|whereas|while|yet|except|nevertheless|nonetheless|"
                      r"even though|even if)\b")


def sentences(text: str) -> list[str]:
    """Sentences of the normalised text, questions dropped."""
    out = []
    for part in re.split(r"(?<=[.!?;])\s+|\n+", text):
        part = part.strip()
        if not part or part.endswith("?"):
            continue
        out.append(part.rstrip(".!;").strip())
    return [s for s in out if s]


def clauses(sentence: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(sentence) if c and c.strip()]


_OPTION_PREFIX = (r"^\s*(?i:(?:(?:assistant|gpt)\s*:\s*)?(?:(?:(?:the|my|final|correct)\s+)*"
                  r"(?:answer|option|choice|答案|选项|选择)\s*(?:is\s*|would be\s*)?[:\-]?\s*)?"
                  r"(?:i(?:'d| would| will|'ll)? (?:choose|pick|select|go with)\s+(?:option\s+)?)?)")
_OPTION_PATTERNS = (
    _OPTION_PREFIX + r"\(\s*([A-Za-z])\s*\)",          # (B) ..., Answer: (b)
    _OPTION_PREFIX + r"([A-Z])\s*(?:[.):,\-]|$)",      # B. / B) / B - / Answer: B  (upper case: "A" may be an article)
    r"^\s*([A-Za-z])\s*[.):]?\s*$",                    # b
    r"^\s*(?i:(?:the\s+)?(?:answer|option|choice)\s*(?:is\s*)?[:\-]?\s*)([A-Za-z])\s*(?:[.):,]|$)",
)


def letter_option(text: str, options: Mapping[str, str]) -> str | None:
    """The option value chosen by a lettered answer ("B", "(B)", "Answer: B", "B) real"), or ``None``."""
    keys = {str(k).strip().upper(): v for k, v in options.items()}
    raw = _drop_reasoning(unicodedata.normalize("NFKC", text))
    raw = re.sub(r"[*_`#~]+", " ", raw)
    raw = re.sub(r"\s*[\u2013\u2014]+\s*", " - ", raw).strip()
    for pattern in _OPTION_PATTERNS:
        match = re.match(pattern, raw)
        if match and match.group(1).upper() in keys:
            return keys[match.group(1).upper()]
    return None
