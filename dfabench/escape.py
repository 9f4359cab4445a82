"""Escaping untrusted text (entry names, model names and arguments, notes, benchmark names and
descriptions, reasons, answers) for the format it is written into. One module, used everywhere:

- :func:`markdown_text` — inline Markdown (a table cell, a list item, a heading, a blockquote line);
- :func:`markdown_code` — a Markdown code span (for identifiers such as fingerprints);
- :func:`html_text` — HTML text or a quoted attribute value (the site, the viewer);
- :func:`terminal_text` — a line or table cell printed on a terminal.

Every function takes any value (``None`` reads as an empty string, others through ``str``) and never raises.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

__all__ = ["html_text", "markdown_code", "markdown_text", "terminal_text"]

#: ANSI / VT escape sequences: CSI (``ESC [ ... final``), OSC (``ESC ] ... BEL|ST``), DCS/PM/APC/SOS strings,
#: two-character escapes; and their 8-bit forms (CSI = U+009B, OSC = U+009D, ...)
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI ... final byte
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # other escapes (ESC c, ESC ( B, ...)
)
#: format characters that reorder or hide text (bidirectional overrides and isolates, zero-width marks)
_INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068"
                       "\u2069\ufeff")
#: characters with a meaning in inline Markdown (GFM), escaped with a backslash
_MARKDOWN_SPECIAL = frozenset("\\`*[]|#~")


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _visible(text: str, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences, control characters and invisible format characters; each
    control character (tab, newline, ...) becomes a space, or stays a newline with ``keep_newlines``."""
    text = _ANSI.sub("", text).replace("\r\n", "\n")
    out = []
    for char in text:
        if char in _INVISIBLE:
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            out.append("\n" if keep_newlines and char in "\n\r\u2028\u2029\x85" else " ")
            continue
        out.append(char)
    return "".join(out)


def _one_line(value: Any) -> str:
    return " ".join(_visible(_text(value)).split())


def terminal_text(value: Any) -> str:
    """One line safe to print on a terminal: escape sequences and control characters removed, whitespace
    collapsed (a newline or a carriage return in a name cannot break or overwrite a table)."""
    return _one_line(value)


def markdown_text(value: Any) -> str:
    """Inline Markdown that reads as exactly ``value``: one line (newlines collapsed), ``&``, ``<``, ``>`` as HTML
    entities (no raw HTML, no autolink), the Markdown punctuation (``\\ ` * _ [ ] | # ~``) backslash-escaped, and a
    leading list / heading / rule marker neutralised, so that it can be put in a table cell, a list item, a heading
    or a blockquote."""
    text = _one_line(value)
    out = []
    for i, char in enumerate(text):
        if char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append("&gt;")
        elif char in _MARKDOWN_SPECIAL:
            out.append("\\" + char)
        elif char == "_":
            # an underscore between two letters or digits cannot open or close emphasis (CommonMark)
            inner = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append("_" if inner else "\\_")
        else:
            out.append(char)
    escaped = "".join(out)
    # "- x", "+ x", "1. x", "1) x", "---" at the start of a list item or a cell would open a (nested) list or
    # draw a rule
    if escaped[:1] in ("-", "+", "="):
        return "\\" + escaped
    number = re.match(r"\d{1,9}(?=[.)](?: |$))", escaped)
    if number:
        return escaped[:number.end()] + "\\" + escaped[number.end():]
    return escaped


def markdown_code(value: Any) -> str:
    """A Markdown code span holding ``value`` (one line): fenced by more backticks than any run inside it, so it
    cannot be closed early; inside a code span nothing is interpreted (no HTML, no emphasis). Not for table cells
    (a ``|`` splits a GFM cell even inside a code span): use :func:`markdown_text` there."""
    text = _one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text else "` `"


def html_text(value: Any) -> str:
    """HTML text (or a quoted attribute value) that reads as exactly ``value``: ``& < > " '`` as entities, escape
    sequences, control and invisible format characters removed (newlines kept)."""
    return html.escape(_visible(_text(value), keep_newlines=True), quote=True)
