"""Free-text answers -> labels: detection (``fake``/``real``), category (``FS``/``FR``/``FE``/``EFS``).

The parsers are rule-based, deterministic and conservative: when an answer does not commit to
one label they return ``None`` (counted as *unparsed* and scored as wrong), never a guess.

How an answer is read (both parsers):

1. The text is normalised: Unicode NFKC, lower case, markdown marks (``*``, ``_``, `````, ``#``) and
   ``<think>...</think>`` blocks removed, ``n't`` expanded to `` not``, "no doubt"-style phrases
   neutralised. A leading ``Answer:`` / ``The answer is`` / ``Verdict:`` is dropped.
2. When the prompt offered lettered options (``options={"A": "fake", "B": "real"}``), an answer that is
   a letter (``B``, ``(B)``, ``B.``, ``Answer: B``, ``(B) real``) resolves to that option.
3. The text is cut into sentences (questions are skipped) and each sentence into clauses (at commas,
   ``;``, ``:`` and contrast words such as *but*, *however*, *although*). Each clause is searched for
   label words; a negation (*not*, *no*, *never*, *without*, *free of*, *rather than*, ...) up to five words
   before a word flips it (detection) or cancels it (category) within that clause. Words after
   *whether* / *if* are not assertions. An uncertainty phrase ("hard to tell", "not sure") before the
   first assertion makes the answer unparsed.
4. The **leading answer wins**: the first sentence that asserts something decides. Inside it, a clause
   that says both labels ("could be real or fake"), or a hedged clause (*could*, *might*, *possibly*,
   *either*) contradicted by another clause of the sentence, gives ``None``.

Detection specifics: a leading *yes* / *no* answers the DF-D question "Has this face been forged?"
(yes -> fake, no -> real; ``yes_means="real"`` for a question asked the other way round); it is
rejected (``None``) when the clause right after it says the opposite ("No, it is fake"). Words of
appearance (*looks*, *appears*, *seems*) make an assertion weak: "It looks real, but it is fake" -> fake.

Category specifics: names and synonyms of the four DF40 categories, their abbreviations as whole words
(``FS``, ``FR``, ``FE``, ``EFS``) and the names of the 40 DF40 techniques (``simswap`` -> FS,
``stylegan2`` -> EFS; :data:`TECHNIQUE_CATEGORY`, from :mod:`dfabench.vocab`, re-exported here).
Two different categories asserted in the answer sentence give ``None``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping

from dfabench.vocab import (
    CATEGORIES,
    DF40_TECHNIQUES,
    LABELS,
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


# --------------------------------------------------------------------------- normalisation

_SEP = r"[\s\-_./]?"


def _name_pattern(name: str) -> str:
    """A regex for a technique name that tolerates separators: "StyleGAN-XL" ~ "stylegan xl", "styleganxl"."""
    chunks = re.findall(r"[a-z]+|[0-9]+", name.lower())
    return _SEP.join(re.escape(c) for c in chunks)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(?is)<think>.*?</think>", " ", text)
    text = re.sub(r"<\|[^|>]{0,40}\|>|</?s>", " ", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", " ")
    text = re.sub(r"[*#~]+", " ", text)
    text = re.sub(r"(?<![a-z0-9])_+|_+(?![a-z0-9])", " ", text, flags=re.I)
    text = text.lower()
    text = re.sub(r"\bcan ?not\b|\bcan't\b", "can not", text)
    text = re.sub(r"\bwon't\b", "will not", text)
    text = re.sub(r"\bshan't\b", "shall not", text)
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"\b(e\.g|i\.e|etc|vs)\.", r"\1", text)
    # phrases whose "no" / "without" is not a negation of the verdict
    text = re.sub(r"\b(?:there is |there's )?(?:no |without (?:a |any )?)(?:doubt|question)\b(?: that)?",
                  " clearly ", text)
    text = re.sub(r"\bnot only\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


_ANSWER_PREFIX = re.compile(
    r"^(?:(?:assistant|gpt|model)\s*:\s*)?"
    r"(?:(?:my|the|final|short|correct)\s+)*(?:answer|verdict|conclusion|prediction|label|response|output|result)"
    r"\s*(?:is\s*|would be\s*)?[:\-]?\s*")


def _strip_prefix(text: str) -> str:
    return _ANSWER_PREFIX.sub("", text, count=1).strip()


_CLAUSE_SPLIT = re.compile(
    r"\s*[,:;()\[\]]\s*|\s+[-\u2013\u2014]+\s+|\s+(?=(?:but|however|although|though|whereas|while|yet|except|"
    r"nevertheless|nonetheless|instead|rather)\b)")
_CONTRAST = re.compile(r"^(?:but|however|although|though|whereas|while|yet|except|nevertheless|nonetheless|"
                       r"even though|even if)\b")


def _sentences(text: str) -> list[str]:
    """Sentences of the normalised text, questions dropped."""
    out = []
    for part in re.split(r"(?<=[.!?;])\s+|\n+", text):
        part = part.strip()
        if not part or part.endswith("?"):
            continue
        out.append(part.rstrip(".!;").strip())
    return [s for s in out if s]


def _clauses(sentence: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(sentence) if c and c.strip()]


# --------------------------------------------------------------------------- shared machinery

_NEGATORS = (r"not|no|never|without|neither|nor|none|nothing|lacks?|lacking|free of|absence of|absent|"
             r"rather than|instead of|unlike|as opposed to|other than|ruled out|rule out|isnt|doesnt")
# a negator reaches at most five words forward and stops at a conjunction ("no artifacts and is real")
_NEGATION_BEFORE = re.compile(r"\b(?:" + _NEGATORS + r")\b"
                              r"(?:\s+(?!(?:and|so|thus|therefore|hence|which|because|since)\b)[\w'-]+){0,5}\s*$")
_EMBEDDED = re.compile(r"\b(?:whether|if)\b")
_HEDGE = re.compile(r"\b(?:could|might|may|possibly|perhaps|maybe|either|or|probably not|potentially)\b")
_WEAK = re.compile(r"\b(?:looks?|looking|appears?|appearing|seems?|seeming|at first glance|superficially)\b"
                   r"(?:\s+[\w'-]+){0,3}\s*$")
_UNCERTAIN = re.compile(
    r"\b(?:can not|could not|unable to|impossible to|hard to|difficult to|not possible to|no way to|not able to)"
    r"(?:\s+\w+){0,2}?\s+(?:determine|tell|say|know|judge|assess|conclude|decide|verify|confirm|be sure|"
    r"be certain|identify|distinguish|classify)\b"
    r"|\bnot (?:entirely |completely |totally |fully |100% )?(?:sure|certain)\b"
    r"|\b(?:unclear|uncertain|undetermined|indeterminate|inconclusive|unsure|cannot be determined)\b"
    r"|\b(?:do|does) not know\b|\bno idea\b|\bi am sorry\b|\bi'm sorry\b|\bas an ai\b")


def _is_negated(clause: str, start: int) -> bool:
    return _NEGATION_BEFORE.search(clause[:start]) is not None


def _is_embedded(clause: str, start: int) -> bool:
    return _EMBEDDED.search(clause[:start]) is not None


def _letter_option(text: str, options: Mapping[str, str]) -> str | None:
    """The option value chosen by a lettered answer ("B", "(B)", "Answer: B", "B) real"), or ``None``."""
    keys = {str(k).strip().upper(): v for k, v in options.items()}
    raw = unicodedata.normalize("NFKC", text)
    raw = re.sub(r"(?is)<think>.*?</think>", " ", raw)
    raw = re.sub(r"[*_`#~]+", " ", raw).strip()
    prefix = (r"^\s*(?i:(?:(?:assistant|gpt)\s*:\s*)?(?:(?:(?:the|my|final|correct)\s+)*"
              r"(?:answer|option|choice)\s*(?:is\s*|would be\s*)?[:\-]?\s*)?)")
    patterns = (
        prefix + r"\(\s*([A-Za-z])\s*\)",      # (B) ..., Answer: (b)
        prefix + r"([A-Z])\s*(?:[.):,]|$)",   # B. / B) / Answer: B / B  (upper case: "a" may be an article)
        r"^\s*([A-Za-z])\s*[.):]?\s*$",        # b
        r"^\s*(?i:(?:the\s+)?(?:answer|option|choice)\s*(?:is\s*)?[:\-]?\s*)([A-Za-z])\s*(?:[.):,]|$)",
    )
    for pattern in patterns:
        match = re.match(pattern, raw)
        if match and match.group(1).upper() in keys:
            return keys[match.group(1).upper()]
    return None


# --------------------------------------------------------------------------- detection

_FAKE_TERMS = (
    r"fake[sd]?|fakery|forg(?:ed|ery|eries|ing)|counterfeit|manipulat(?:ed|ion|ions|ing)|"
    r"synthe(?:tic|sized|sised|sis)|deep[- ]?fakes?|tamper(?:ed|ing)|doctored|altered|alterations?|falsified|"
    r"spoof(?:ed)?|fabricated|(?:ai|computer|gan|diffusion|digitally)[- ]generated|generated|"
    r"artificial(?:ly (?:created|generated|made))?|edited|swapped|reenacted|morphed|modified|inauthentic|"
    r"photoshopped"
)
_REAL_TERMS = (
    r"real|authentic(?:ity)?|genuine|pristine|unaltered|unmanipulated|non[- ]?manipulated|un-manipulated|"
    r"untampered|unedited|unmodified|unforged|legitimate|bona fide"
)
_TERM = re.compile(r"\b(?P<fake>" + _FAKE_TERMS + r")\b|\b(?P<real>" + _REAL_TERMS + r")\b(?![- ](?:time|world|life))")

_YES = re.compile(r"^(?:yes|yeah|yep|yup|affirmative|correct)\b")
_NO = re.compile(r"^(?:no|nope|nah)\b")
_FLIP = {"fake": "real", "real": "fake"}


class _Clause:
    """The detection assertions of one clause: strong and weak (after *looks*, *appears*) labels, in order."""

    __slots__ = ("strong", "weak", "uncertain", "hedged", "contrast")

    def __init__(self, text: str):
        self.strong: list[str] = []
        self.weak: list[str] = []
        self.contrast = bool(_CONTRAST.match(text))
        self.hedged = bool(_HEDGE.search(text))
        uncertain = _UNCERTAIN.search(text)
        first_term = None
        for match in _TERM.finditer(text):
            if _is_embedded(text, match.start()):
                continue
            label = match.lastgroup
            if label is None:
                continue
            if first_term is None:
                first_term = match.start()
            if _is_negated(text, match.start()):
                label = _FLIP[label]
            (self.weak if _WEAK.search(text[:match.start()]) else self.strong).append(label)
        self.uncertain = uncertain is not None and (first_term is None or uncertain.start() <= first_term)

    @property
    def labels(self) -> list[str]:
        return self.strong or self.weak

    @property
    def empty(self) -> bool:
        return not self.strong and not self.weak and not self.uncertain


_SENTINEL_AMBIGUOUS = object()


def _decide(clauses: list[_Clause]) -> str | None | object:
    """The label a sentence commits to; ``None`` when it asserts nothing; the ambiguous sentinel when it
    asserts something but not one label."""
    asserting = [c for c in clauses if not c.empty]
    if not asserting:
        return None
    if asserting[0].uncertain:
        return _SENTINEL_AMBIGUOUS
    strong = [c for c in asserting if c.strong]
    pool = strong or asserting
    lead = pool[0]
    lead_labels = set(lead.labels)
    if len(lead_labels) != 1:
        return _SENTINEL_AMBIGUOUS
    (label,) = lead_labels
    others = {x for c in pool[1:] for x in c.labels}
    if lead.hedged and others - {label}:
        return _SENTINEL_AMBIGUOUS
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
        chosen = _letter_option(text, options)
        if chosen is not None:
            value = str(chosen).strip().lower()
            return value if value in LABELS else parse_detection(chosen, yes_means=yes_means)
    norm = _strip_prefix(_normalise(text))
    sentences = _sentences(norm)
    if not sentences:
        return None
    lead = _strip_prefix(sentences[0])
    yes, no = _YES.match(lead), _NO.match(lead)
    if yes or no:
        label = yes_means if yes else _FLIP[yes_means]
        rest = lead[(yes or no).end():]
        if no and not re.match(r"^\s*[,.!;:-]", rest):
            # "No signs of manipulation": the "no" negates the rest, which must agree or say nothing
            verdict = _decide([_Clause(c) for c in _clauses(lead)])
            return label if verdict in (None, label) else None
        # the clauses right after the yes/no ("No, it is fake" is a contradiction), up to a contrast word
        for clause_text in _clauses(rest.lstrip(" ,.!;:-")):
            clause = _Clause(clause_text)
            if clause.contrast:
                break
            if clause.uncertain or (clause.strong and set(clause.strong) != {label}):
                return None
        return label
    for sentence in sentences:
        verdict = _decide([_Clause(c) for c in _clauses(sentence)])
        if verdict is _SENTINEL_AMBIGUOUS:
            return None
        if verdict is not None:
            return verdict  # type: ignore[return-value]
    return None


# --------------------------------------------------------------------------- category

_CATEGORY_PHRASES: dict[str, tuple[str, ...]] = {
    "FS": (
        r"face[- ]?swap(?:s|ped|ping|per|pers)?",
        r"swap(?:ped|ping|s)?\s+(?:of\s+)?(?:the\s+)?(?:faces?|identit(?:y|ies))",
        r"identity[- ]swap(?:s|ped|ping)?",
        r"face[- ]?replace(?:ment|d)?|face[- ]transplant(?:ation)?",
        r"(?:faces?|identit(?:y|ies))\s+(?:was|has been|had been|is|were|have been|are)\s+"
        r"(?:replaced|swapped|exchanged)",
        r"replaced (?:with|by) (?:that of )?(?:another|a different) (?:person|identity|face|individual)",
        r"fs",
    ),
    "FR": (
        r"(?:face |facial )?re-?enact(?:ment|ments|ed|ing|s)?",
        r"lip[- ]?sync(?:ed|ing|s|hroni[sz](?:ation|ed))?",
        r"talking[- ]heads?",
        r"(?:facial )?expressions? (?:transfer(?:red)?|swap(?:ping)?|manipulation)",
        r"expressions? (?:was|were|has been|have been) transferred",
        r"(?:motion|pose|head pose) transfer(?:red)?",
        r"puppet(?:eer(?:ing|ed)?|ry)",
        r"(?:face|facial|portrait) animation|animated (?:face|portrait)",
        r"audio[- ]driven",
        r"fr",
    ),
    "FE": (
        r"(?:face|facial) edit(?:ing|ed|s)?",
        r"attributes? (?:edit(?:ing|ed|s)?|manipulation|modification|change|alteration)s?",
        r"edited (?:facial )?attributes?",
        r"(?:facial )?attributes? (?:was|were|has been|have been|had been|are|is) "
        r"(?:edited|modified|manipulated|changed|altered)",
        r"(?:local|semantic|text[- ]guided|latent) (?:facial )?edit(?:ing|s)?",
        r"styleclip[- ]like(?: edits?)?",
        r"fe",
    ),
    "EFS": (
        r"entire(?:ly)?[- ]face[- ]synthe(?:sis|sized|sised)",
        r"(?:entire|whole|full|complete)(?:ly)?[- ](?:face[- ])?synthe(?:sis|sized|sised|tic)",
        r"(?:fully|entirely|completely|wholly|totally)[- ](?:ai[- ])?(?:synthe(?:sized|sised|tic)|generated|"
        r"fabricated|artificial)",
        r"synthetic (?:face|image|person|portrait|identity)",
        r"face synthesis",
        r"generated from scratch|synthesi[sz]ed from scratch|created from scratch",
        r"(?:gan|diffusion|ai|stylegan|model|text[- ]to[- ]image)[- ]generated(?: whole)?(?: face)?",
        r"generated (?:by|with|using) (?:an? )?(?:gan|generative adversarial network|diffusion(?: model)?|ai|"
        r"text[- ]to[- ]image(?: model)?|generative model)",
        r"text[- ]to[- ]image",
        r"stable diffusion|dall[- ]?e",
        r"(?:person|face|identity) (?:that |who )?does not exist|non[- ]?existent (?:person|identity|face)",
        r"efs",
    ),
}

# technique names recognised in answers (English words and generic terms left out: "sit", "dit", "deepfakes")
_TEXT_TECHNIQUES: dict[str, str] = {
    **{name: TECHNIQUE_CATEGORY[normalise_technique(name)] for names in DF40_TECHNIQUES.values() for name in names},
    **{alias: TECHNIQUE_CATEGORY[key] for alias, key in TECHNIQUE_ALIASES.items() if alias not in ("dit", "sit")},
    "StyleGAN": "EFS", "Face2Face": "FR", "NeuralTextures": "FR", "FaceShifter": "FS", "Roop": "FS",
    "one shot free": "FR", "which face is real": "EFS", "this person does not exist": "EFS",
}


def _category_single(category: str) -> re.Pattern[str]:
    phrases = list(_CATEGORY_PHRASES[category])
    phrases += [_name_pattern(name) for name, c in _TEXT_TECHNIQUES.items() if c == category]
    phrases = sorted(set(phrases), key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(phrases) + r")(?![a-z0-9])")


_CATEGORY_SINGLE: dict[str, re.Pattern[str]] = {c: _category_single(c) for c in CATEGORIES}
_CATEGORY_ANY = re.compile("|".join(f"(?:{p.pattern})" for p in _CATEGORY_SINGLE.values()))


def _category_matches(clause: str) -> list[tuple[str, int]]:
    """``(category, start)`` of each mention, left to right, without overlaps; where mentions of several
    categories start at the same place the longest wins ("fs vid2vid" is FR, not FS)."""
    found: list[tuple[str, int]] = []
    pos = 0
    while True:
        first = _CATEGORY_ANY.search(clause, pos)
        if first is None:
            return found
        start, best, end = first.start(), None, -1
        for category, pattern in _CATEGORY_SINGLE.items():
            match = pattern.match(clause, start)
            if match is not None and match.end() > end:
                best, end = category, match.end()
        if best is None:  # cannot happen: the union matched here
            pos = start + 1
            continue
        found.append((best, start))
        pos = end


def parse_category(text: str | None, options: Mapping[str, str] | None = None) -> str | None:
    """``"FS"``, ``"FR"``, ``"FE"``, ``"EFS"`` or ``None`` (unparseable) from a free-text DF-C answer.

    ``options`` maps option letters to categories (``{"A": "FS", ...}``) or to option texts (parsed in
    turn) when the prompt offered lettered options. See the module docstring for the rules.
    """
    if text is None:
        return None
    if options:
        chosen = _letter_option(text, options)
        if chosen is not None:
            value = str(chosen).strip().upper()
            return value if value in CATEGORIES else parse_category(chosen)
    norm = _strip_prefix(_normalise(text))
    for sentence in _sentences(norm):
        positive: list[str] = []
        uncertain_first = False
        for clause in _clauses(sentence):
            matches = _category_matches(clause)
            uncertain = _UNCERTAIN.search(clause)
            if uncertain and not positive and (not matches or uncertain.start() <= matches[0][1]):
                uncertain_first = True
                break
            for category, start in matches:
                if _is_embedded(clause, start) or _is_negated(clause, start):
                    continue
                positive.append(category)
        if uncertain_first:
            return None
        if positive:
            return positive[0] if len(set(positive)) == 1 else None
    return None


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
