"""What governs a word of a clause: negation (by scope, not by distance), hedges, embedding, uncertainty.

A label word found at some position of a clause is read in the context of the words before it:

- **negation scope**: a negator reaches forward over the rest of its clause, its complement included:
  "there is no indication that this face has been *forged*", "I don't see anything suggesting it was
  *altered*", "nothing here points to *manipulation*" all negate the label. A scope ends at a clause
  boundary (the clause splitter), at a consequence or cause word (*so*, *therefore*, *because*) and at
  an *and* / *or* that opens a new predicate ("no artifacts and *is* real"). Negators that take a noun
  (*lack of*, *absence of*, *free of*, *without*, *rather than*, *unlike*) reach only over their noun
  phrase, up to the next verb: "the absence of pores suggests it is *synthetic*" is not negated.
  Negators in a chain cancel ("no evidence that it is not genuine" -> genuine); coordinated negators
  do not stack ("neither swapped nor edited", "not swapped and not edited").
- **hedges**: a modal (*may*, *might*, *could*, *possibly*, *perhaps*, *maybe*) governing the word: the
  answer does not commit to it. *likely* / *probably* do commit (a best guess is an answer).
- **embedding**: words after *whether* / *if* are not assertions.
- **weak** assertions: words of appearance (*looks*, *appears*, *seems*) right before the word.
- **uncertainty**: "hard to tell", "not sure", "I cannot determine", refusals.
"""

from __future__ import annotations

import re

# "unlikely / improbable / I doubt / chances are slim" deny what follows as "not" does (a lean, like "probably not")
_VERBAL = (r"not|no|never|neither|nor|none|nothing|nobody|isnt|doesnt|hardly|ruled out|rule out|unlikely|"
           r"improbable|doubt|doubtful|chances are slim|far from")
_NOMINAL = r"without|lacks?|lacking|lack of|free of|free from|absence of|absent|rather than|instead of|unlike|" \
           r"as opposed to|other than"
_NEGATOR = re.compile(r"\b(?:(?P<nominal>" + _NOMINAL + r")|(?P<verbal>" + _VERBAL + r"))\b")
# a consequence, a cause or a new predicate ends every negation scope ("no artifacts and is real", "and it is")
_BREAK = re.compile(r"\b(?:so|thus|therefore|hence|because|since|then|meaning|which means)\b"
                    r"|\b(?:and|or)\s+(?:is|are|was|were|has|have|had|it|i|this|there|looks?|appears?|seems?|shows?)\b")
# "and the face is real" starts a new predicate too, except inside a complement clause ("no sign that the
# skin or eyes were generated": the that-clause continues)
_NEW_SUBJECT = re.compile(r"\b(?:and|or)\s+(?:[\w'-]+\s+){1,2}?"
                          r"(?:is|are|was|were|has|have|had|looks?|appears?|seems?)\b")
_COMPLEMENT = re.compile(r"\b(?:that|suggesting|indicating|showing|to suggest|to indicate|to believe|to think)\b")
# a nominal negator's noun phrase ends at its first verb ("being" / "having been" stay inside)
_VERB = re.compile(r"\b(?:is|are|was|were|be|been|has|have|had|suggests?|indicates?|shows?|points?|implies|"
                   r"means|reveals?|confirms?|proves?|makes?|gives?|leads?|hints?|betrays?)\b")
_COORDINATOR = re.compile(r"\b(?:and|or|nor)\b")

_HEDGE = re.compile(r"\b(?:(?:may|might)(?: not)?|could)(?: well| also| possibly| even)?\s+"
                    r"(?:be|have|indicate|suggest|show|point|look|appear|seem|involve|come)\b"
                    r"|\b(?:possibly|perhaps|maybe|potentially|conceivably)\b"
                    r"|\b(?:it is|it's|it seems) (?:possible|conceivable|plausible)\b|\ba possibility\b")
_EMBEDDED = re.compile(r"\b(?:whether|if)\b")
_WEAK = re.compile(r"\b(?:looks?|looking|appears?|appearing|seems?|seeming|at first glance|superficially)\b"
                   r"(?:\s+[\w'-]+){0,3}\s*$")
UNCERTAIN = re.compile(
    r"\b(?:can not|could not|unable to|impossible to|hard to|difficult to|not possible to|no way to|not able to)"
    r"(?:\s+\w+){0,2}?\s+(?:determine|tell|say|know|judge|assess|conclude|decide|verify|confirm|be sure|"
    r"be certain|identify|distinguish|classify|answer|make a reliable)\b"
    r"|\bnot (?:entirely |completely |totally |fully |100% )?(?:sure|certain)\b"
    r"|\b(?:unclear|uncertain|undetermined|indeterminate|inconclusive|unsure|cannot be determined)\b"
    r"|\b(?:do|does) not know\b|\bno idea\b|\bi am sorry\b|\bi'm sorry\b|\bas an ai\b")


def _reaches(negator: re.Match[str], before: str) -> bool:
    """Whether a negator found in ``before`` (the clause up to a word) governs the word."""
    gap = before[negator.end():]
    if _BREAK.search(gap):
        return False
    new_subject = _NEW_SUBJECT.search(gap)
    if new_subject and not _COMPLEMENT.search(gap[:new_subject.start()]):
        return False
    if negator.group("nominal") is not None:
        return _VERB.search(re.sub(r"\b(?:being|having been)\b", " ", gap)) is None
    return True


def is_negated(clause: str, start: int) -> bool:
    """Whether the word at ``start`` of ``clause`` is negated (an odd number of negators govern it)."""
    before = clause[:start]
    reaching = [m for m in _NEGATOR.finditer(before) if _reaches(m, before)]
    count = 0
    for i, negator in enumerate(reaching):
        following = reaching[i + 1] if i + 1 < len(reaching) else None
        # a coordinated negator ("neither X nor Y", "not X and not Y") replaces the one before it
        if following is not None and (following.group(0) == "nor"
                                      or _COORDINATOR.search(before[negator.end():following.start()])):
            continue
        count += 1
    return count % 2 == 1


def is_hedged(clause: str, start: int) -> bool:
    before = clause[:start]
    hedges = list(_HEDGE.finditer(before))
    return bool(hedges) and not _BREAK.search(before[hedges[-1].end():])


def is_embedded(clause: str, start: int) -> bool:
    return _EMBEDDED.search(clause[:start]) is not None


def is_weak(clause: str, start: int) -> bool:
    return _WEAK.search(clause[:start]) is not None


def uncertainty(clause: str) -> re.Match[str] | None:
    return UNCERTAIN.search(clause)
