"""DF-D answers -> ``fake`` / ``real``: yes/no answers, label words, negation by scope, leading answer.

How an answer is read:

1. A lettered answer (``B``, ``(B)``, ``Answer: B``) resolves to the offered option, when options were given.
2. The normalised answer (:mod:`dfabench.parsing.normalise`) is cut into sentences and clauses. Each
   clause is searched for label words: fake words (*forged*, *manipulated*, *deepfake*, *synthesized*,
   ...), real words (*real*, *authentic*, *genuine*, ...; not *real-time* / *real-world*) and the cues of
   a manipulation category (:func:`dfabench.parsing.category.category_cues`: "a face swap", "produced by
   a diffusion model", "the hair color was changed" all say fake). A word governed by a negation
   (:func:`dfabench.parsing.scope.is_negated`, by scope: "there is no indication that this face has been
   forged") flips. A clause that only continues a list ("..., edited or forged") keeps the negation of
   the clause before it. Words after *whether* / *if* are not assertions.
3. A leading *yes* / *no* answers the DF-D question "Has this face been forged?" (yes -> fake;
   ``yes_means="real"`` for a question asked the other way round); so does an elliptical "It has not." /
   "It is.". It is rejected (``None``) when the clause right after it says the opposite ("No, it is
   fake"). Sentences before it that assert nothing (a description, the question restated) are skipped.
4. The **leading answer wins**: the first sentence that asserts something decides. Inside it, words of
   appearance (*looks*, *seems*) are weak ("It looks real, but it is fake" -> fake); a clause that says
   both labels, a hedged lead ("it might be fake", "possibly real") or an uncertainty phrase before the
   first label ("hard to tell", "I can't determine") gives ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dfabench.parsing.category import category_cues
from dfabench.parsing.normalise import CONTRAST, clauses, letter_option, normalise, sentences, strip_prefix
from dfabench.parsing.scope import is_embedded, is_hedged, is_negated, is_weak, uncertainty
from dfabench.vocab import LABELS

_FAKE_TERMS = (
    r"fake[sd]?|fakery|forg(?:ed|ery|eries|ing)|counterfeit|manipulat(?:ed|ion|ions|ing)|"
    r"synthe(?:tic|sized|sised|sis)|deep[- ]?fakes?|tamper(?:ed|ing)|doctored|altered|alterations?|falsified|"
    r"spoof(?:ed)?|fabricated|(?:ai|computer|gan|diffusion|digitally)[- ]generated|generated|"
    r"artificial(?:ly (?:created|generated|made))?|edited|swapped|reenacted|morphed|modified|inauthentic|"
    r"photoshopped|retouched|cgi"
)
_REAL_TERMS = (
    r"real|authentic(?:ity)?|genuine|pristine|unaltered|unmanipulated|non[- ]?manipulated|un-manipulated|"
    r"untampered|unedited|unmodified|unforged|unretouched|legitimate|bona fide|"
    r"original (?:photo|photograph|image|picture|capture)"
)
_TERM = re.compile(r"\b(?P<fake>" + _FAKE_TERMS + r")\b|\b(?P<real>" + _REAL_TERMS + r")\b(?![- ](?:time|world|life))")
_CONTINUATION = re.compile(r"(?:(?:and|or|nor|in any way|otherwise|digitally|\w+ly)\s*|(?:" + _FAKE_TERMS + r")\s*)+")

_YES = re.compile(r"^(?:yes|yeah|yep|yup|affirmative|correct)\b")
_NO = re.compile(r"^(?:no|nope|nah)\b")
_ELLIPTICAL = re.compile(r"^(?:it|this|this one|this face|the face|this image|the image|that)\s+"
                         r"(?:is|has|was|does|did)(?P<not>\s+not)?(?:\s+been)?$")
_FLIP = {"fake": "real", "real": "fake"}


def _terms(clause: str) -> list[tuple[str, int]]:
    """``(label, start)`` of each label word and category cue of a clause, in order, without overlaps."""
    found = [(m.lastgroup or "", m.start(), m.end()) for m in _TERM.finditer(clause)]
    for cue in category_cues(clause, abbreviations=False):
        if not any(start < cue.end and cue.start < end for _, start, end in found):
            found.append(("fake", cue.start, cue.end))
    return [(label, start) for label, start, _ in sorted(found, key=lambda t: t[1])]


class _Clause:
    """The detection assertions of one clause: strong and weak (after *looks*, *appears*) labels, in order."""

    __slots__ = ("strong", "weak", "uncertain", "hedged", "contrast", "last_negated")

    def __init__(self, text: str, previous: _Clause | None = None):
        self.strong: list[str] = []
        self.weak: list[str] = []
        self.contrast = bool(CONTRAST.match(text))
        self.hedged = False
        self.last_negated = False
        continuation = previous is not None and previous.last_negated and _CONTINUATION.fullmatch(text)
        doubt = uncertainty(text)
        first_term = None
        for label, start in _terms(text):
            if is_embedded(text, start):
                continue
            if first_term is None:
                first_term = start
                self.hedged = is_hedged(text, start)
            self.last_negated = bool(continuation) or is_negated(text, start)
            if self.last_negated:
                label = _FLIP[label]
            (self.weak if is_weak(text, start) else self.strong).append(label)
        self.uncertain = doubt is not None and (first_term is None or doubt.start() <= first_term)

    @property
    def labels(self) -> list[str]:
        return self.strong or self.weak

    @property
    def empty(self) -> bool:
        return not self.strong and not self.weak and not self.uncertain


def _read_clauses(sentence: str) -> list[_Clause]:
    out: list[_Clause] = []
    for text in clauses(sentence):
        out.append(_Clause(text, out[-1] if out else None))
    return out


_AMBIGUOUS = object()


def _decide(parts: list[_Clause]) -> str | None | object:
    """The label a sentence commits to; ``None`` when it asserts nothing; :data:`_AMBIGUOUS` when it
    asserts something but not one label."""
    asserting = [c for c in parts if not c.empty]
    if not asserting:
        return None
    if asserting[0].uncertain:
        return _AMBIGUOUS
    pool = [c for c in asserting if c.strong] or asserting
    lead = pool[0]
    if len(set(lead.labels)) != 1 or lead.hedged:
        return _AMBIGUOUS
    return lead.labels[0]


def _yes_no(sentence: str, yes_means: str, first: bool) -> str | None | object:
    """The answer of a sentence that starts with yes / no (or is an elliptical "It has not."): the label,
    :data:`_AMBIGUOUS` when the rest contradicts it, ``None`` when the sentence is no yes/no answer."""
    elliptical = _ELLIPTICAL.match(sentence)
    if elliptical:
        return _FLIP[yes_means] if elliptical.group("not") else yes_means
    yes, no = _YES.match(sentence), _NO.match(sentence)
    if not (yes or no):
        return None
    label = yes_means if yes else _FLIP[yes_means]
    rest = sentence[(yes or no).end():]
    if no and not re.match(r"^\s*(?:[,.!;:-]|$)", rest):
        # "No signs of manipulation": the "no" negates the rest, which must agree or say nothing (a later
        # sentence "No seams are visible." is a description, not an answer)
        verdict = _decide(_read_clauses(sentence))
        if verdict is None and not first:
            return None
        return label if verdict in (None, label) else _AMBIGUOUS
    # the clauses right after the yes/no ("No, it is fake" is a contradiction), up to a contrast word
    for clause in _read_clauses(rest.lstrip(" ,.!;:-")):
        if clause.contrast:
            break
        if clause.uncertain or (clause.strong and set(clause.strong) != {label}):
            return _AMBIGUOUS
    return label


def parse_detection(text: str | None, options: Mapping[str, str] | None = None, *,
                    yes_means: str = "fake") -> str | None:
    """``"fake"``, ``"real"`` or ``None`` (unparseable) from a free-text DF-D answer.

    ``options`` maps option letters to ``fake``/``real`` (or to option texts, parsed in turn) when the
    prompt offered lettered options. ``yes_means`` is what a leading *yes* answers (``"fake"`` for
    "Has this face been forged?"). See the module docstring for the rules.
    """
    if text is None:
        return None
    if yes_means not in LABELS:
        raise ValueError(f"yes_means must be 'fake' or 'real', not {yes_means!r}")
    if options:
        chosen = letter_option(text, options)
        if chosen is not None:
            value = str(chosen).strip().lower()
            return value if value in LABELS else parse_detection(chosen, yes_means=yes_means)
    for index, sentence in enumerate(sentences(strip_prefix(normalise(text)))):
        sentence = strip_prefix(sentence)
        verdict = _yes_no(sentence, yes_means, index == 0)
        if verdict is None:
            verdict = _decide(_read_clauses(sentence))
        if verdict is _AMBIGUOUS:
            return None
        if verdict is not None:
            return verdict  # type: ignore[return-value]
    return None
