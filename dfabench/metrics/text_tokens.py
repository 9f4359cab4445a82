"""The tokenizer of the reference text metrics (:mod:`dfabench.metrics.text`): :func:`tokenize`.

Version :data:`TOKENIZER_VERSION` gives what the COCO caption tools' PTBTokenizer (Stanford CoreNLP 3.4.1
with ``-lowerCase``) gives after their punctuation removal, re-implemented in pure Python (no Java):
lower-case; clitics split (``it's`` -> ``it 's``, ``don't`` -> ``do n't``, ``cannot`` -> ``can not``);
hyphenated words, ``and/or``, ``e.g.``, ``etc.``, numbers such as ``3.5`` and ``1,000`` kept whole;
brackets become ``-lrb-``/``-rrb-``/``-lsb-``/``-rsb-``/``-lcb-``/``-rcb-`` and are *kept* (the COCO tools
compare their upper-case names with lower-cased tokens, so they never remove them); quotes, ``. , ; : ? ! -
-- ...`` are removed; other symbols (``%``, ``&``, ``$``, ``#``, runs of ``*``) are tokens. It agrees with the
Java tokenizer on ordinary English text (a test compares them when Java is installed); rare constructs
(HTML tags, ``'tis``, ``y'all``, ``v1.2``) may differ. BLEU, ROUGE-L, CIDEr-D, METEOR and the embedding
similarity all use these tokens (the embedding model reads them joined by spaces).
"""

from __future__ import annotations

import re

__all__ = ["REMOVED_TOKENS", "TOKENIZER_VERSION", "tokenize"]

TOKENIZER_VERSION = "coco-ptb-py-1"

#: tokens the COCO tools remove after PTB tokenisation (their PUNCTUATIONS, as lower-cased output)
REMOVED_TOKENS = frozenset(["''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"])
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_ABBREVIATIONS = ("etc", "vs", "mr", "mrs", "ms", "dr", "prof", "jr", "sr", "fig", "figs", "inc", "ltd", "corp",
                  "dept", "univ", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_CLITICS = r"(?:s|re|ve|ll|d|m)"
_TOKEN_RE = re.compile(
    r"https?://\S+|www\.\S+"                                   # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                          # e-mail addresses
    r"|[@#][^\W\d_]\w*"                                       # handles and hashtags
    r"|(?<!\w)(?:can(?=not\b)|gon(?=na\b)|wan(?=na\b)|got(?=ta\b)|lem(?=me\b))"  # can|not, gon|na ...
    r"|\w+(?=n't\b)|n't\b"                                    # do|n't
    rf"|'{_CLITICS}\b"                                        # 's 're 've 'll 'd 'm
    r"|(?:[^\W\d_]\.){2,}"                                    # e.g. i.e. u.s.
    rf"|\b(?:{'|'.join(_ABBREVIATIONS)})\.|\bno\.(?=\s*\d)"    # etc. vs. fig. no. 5
    r"|\d+(?:[.,:]\d+)+"                                      # 3.5  1,000  10:30
    rf"|\w+(?:(?:[-/&.]|'(?!(?:{_CLITICS}|t)\b))\w+)*"        # words: off-color and/or o'clock at&t
    r"|\.{2,}|\*+|[!?]+"                                      # ellipsis, markdown stars, !! ?!
    r"|\S"                                                    # any other symbol on its own
)
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "`", "\u201c": '"', "\u201d": '"', "\u2013": "--",
                            "\u2014": "--", "\u2026": "...", "\n": " ", "\r": " ", "\t": " "})


def tokenize(text: str | None) -> list[str]:
    """Tokens of ``text`` as the COCO caption tools produce them (see the module docstring)."""
    if not text:
        return []
    tokens = []
    for token in _TOKEN_RE.findall(text.lower().translate(_NORMALISE)):
        if token in REMOVED_TOKENS or token == '"':
            continue
        if token[0] == "." and len(token) > 1 and set(token) == {"."}:
            continue  # ".." and longer runs of dots: an ellipsis
        tokens.append(_BRACKETS.get(token, token))
    return tokens

