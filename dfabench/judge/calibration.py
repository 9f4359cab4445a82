"""The judge's reliability beside its scores: each rubric ships a calibration set, judged with every judge run.

A calibration set (``dfabench/resources/rubrics/calibration/<rubric>-v<version>.yaml``) holds fixed (question,
reference, candidate) triples, each with the judge-score range (0..1) a careful grader gives under the rubric
(clearly right, partly right, hallucinated, wrong artefacts, a refusal, a claim that the face is real, an answer
that addresses the grader), and **bias checks**: a candidate of the set padded with irrelevant text (it must not
score higher) or the same content reordered (it should score the same).

Every judge run judges the set too, through the same judge model, output mode and cache as the samples
(:func:`calibration_items`), and records :func:`calibration_report` in ``run.json["judge"]["calibration"]``: the
score of every item (the judge's *behavioural fingerprint*, hashed), the items outside their range, the bias
figures, and ``flagged`` when any item is outside its range or padding raised a score. Flagged does not change a
number: it tells the reader that this judge does not grade as the rubric intends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfabench.errors import InputError
from dfabench.judge.plan import WorkItem, cache_key
from dfabench.judge.rubric import RUBRIC_DIR, Rubric
from dfabench.records import JudgeIdentity
from dfabench.store import canonical_json, sha256_text

CALIBRATION_DIR = RUBRIC_DIR / "calibration"
#: bias checks: ``padding`` (the variant must not score higher than its item), ``reorder`` (it should score the same)
BIAS_CHECKS = ("padding", "reorder")
#: a padded variant "scores higher" when it gains more than this (judges are not perfectly consistent)
PADDING_MARGIN = 0.05


@dataclass(frozen=True)
class CalibrationItem:
    id: str
    kind: str
    question: str
    reference: str
    candidate: str
    expected: tuple[float, float] | None = None  # None: a bias variant
    of: str | None = None
    check: str | None = None


@dataclass(frozen=True)
class Calibration:
    rubric: str
    version: str
    items: tuple[CalibrationItem, ...]
    sha256: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.rubric} calibration v{self.version}"


def load_calibration(rubric: Rubric) -> Calibration | None:
    """The calibration set shipped for ``rubric`` (None: the rubric has none, e.g. a user's own rubric file)."""
    path = CALIBRATION_DIR / f"{rubric.label}.yaml"
    return read_calibration(path, rubric) if path.is_file() else None


def read_calibration(path: Path, rubric: Rubric) -> Calibration:
    """Read and check a calibration file; :class:`InputError` naming the file and the item when malformed."""
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, f"malformed YAML ({exc})") from None
    if not isinstance(data, dict) or data.get("rubric") != rubric.label:
        raise InputError(path, f"not a calibration set of the rubric {rubric.label} (its 'rubric' field must say so)")
    items: list[CalibrationItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("items") or []):
        where = f"items[{index}]"
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw.get(k).strip()
                                                for k in ("id", "kind", "question", "reference", "candidate")):
            raise InputError(path, "an item needs the strings id, kind, question, reference and candidate", where)
        expected = raw.get("expected")
        if (not isinstance(expected, list) or len(expected) != 2
                or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in expected) or expected[0] > expected[1]):
            raise InputError(path, "'expected' must be [low, high] with 0 <= low <= high <= 1", where)
        if raw["id"] in seen:
            raise InputError(path, f"id {raw['id']!r} is used twice", where)
        seen.add(raw["id"])
        items.append(CalibrationItem(raw["id"], raw["kind"], raw["question"].strip(), raw["reference"].strip(),
                                     raw["candidate"].strip(), (float(expected[0]), float(expected[1]))))
    by_id = {item.id: item for item in items}
    for index, raw in enumerate(data.get("bias") or []):
        where = f"bias[{index}]"
        if not isinstance(raw, dict) or raw.get("of") not in by_id or raw.get("check") not in BIAS_CHECKS or not (
                isinstance(raw.get("id"), str) and isinstance(raw.get("candidate"), str)):
            raise InputError(path, f"a bias check needs id, candidate, 'of' (an item id) and 'check' "
                                   f"({' or '.join(BIAS_CHECKS)})", where)
        if raw["id"] in seen:
            raise InputError(path, f"id {raw['id']!r} is used twice", where)
        seen.add(raw["id"])
        base = by_id[raw["of"]]
        items.append(CalibrationItem(raw["id"], f"{raw['check']} of {base.id}", base.question, base.reference,
                                     raw["candidate"].strip(), None, base.id, raw["check"]))
    if not any(item.expected for item in items):
        raise InputError(path, "a calibration set needs at least one item")
    return Calibration(rubric=rubric.label, version=str(data.get("version", "1")), items=tuple(items),
                       sha256=sha256_text(text), path=str(path))


def calibration_task(calibration: Calibration) -> str:
    """The pseudo-task the calibration items are judged and cached under."""
    return f"calibration:{calibration.rubric}"


def calibration_items(calibration: Calibration, rubric: Rubric, identity: JudgeIdentity) -> list[WorkItem]:
    """The calibration set as work items for the judge (no image: the set grades text against text)."""
    task = calibration_task(calibration)
    items = []
    for item in calibration.items:
        sample = {"id": item.id, "prompt": item.question}
        key = cache_key(identity, task, sample, item.candidate, [item.reference], None)
        items.append(WorkItem(task=task, sample_id=item.id, key=key, input_sha256=key, rubric=rubric,
                              messages=rubric.messages(item.question, item.reference, item.candidate)))
    return items


def calibration_report(calibration: Calibration, scores: dict[str, float | None]) -> dict[str, Any]:
    """What run.json records of a calibration run; ``scores``: item id -> judge score (None: the judgment failed)."""
    graded = [item for item in calibration.items if item.expected is not None]
    outside = []
    for item in graded:
        score = scores.get(item.id)
        if score is not None and not item.expected[0] - 1e-9 <= score <= item.expected[1] + 1e-9:
            outside.append({"id": item.id, "kind": item.kind, "score": score, "expected": list(item.expected)})
    failed = sorted(item.id for item in calibration.items if scores.get(item.id) is None)
    bias: dict[str, Any] = {}
    for check in BIAS_CHECKS:
        pairs = [(item, scores.get(item.id), scores.get(item.of)) for item in calibration.items if item.check == check]
        differences = [(item.id, variant - base) for item, variant, base in pairs
                       if variant is not None and base is not None]
        if not pairs:
            continue
        entry: dict[str, Any] = {"n": len(differences)}
        if differences:
            if check == "padding":
                entry["mean_gain"] = sum(d for _, d in differences) / len(differences)
                entry["raised"] = [i for i, d in differences if d > PADDING_MARGIN]
            else:
                entry["mean_abs_difference"] = sum(abs(d) for _, d in differences) / len(differences)
        bias[check] = entry
    fingerprint = sha256_text(canonical_json({k: (round(v, 4) if v is not None else None)
                                              for k, v in sorted(scores.items())}))
    flagged = bool(outside) or bool((bias.get("padding") or {}).get("raised"))
    n_failed = sum(1 for item in graded if scores.get(item.id) is None)
    return {"set": calibration.label, "sha256": calibration.sha256, "n": len(graded),
            "n_in_range": len(graded) - len(outside) - n_failed, "n_failed": n_failed,
            "out_of_range": outside, "failed": failed, "bias": bias,
            "scores": {k: scores.get(k) for k in sorted(scores)}, "fingerprint": fingerprint, "flagged": flagged}


def describe(report: dict[str, Any]) -> str:
    """One line: ``calibration: 8/9 in range, 1 failed; padding +0.02, reorder 0.00; FLAGGED (...)``."""
    parts = [f"{report['n_in_range']}/{report['n']} in range"]
    if report["n_failed"]:
        parts.append(f"{report['n_failed']} failed")
    bias = report.get("bias") or {}
    figures = []
    if "mean_gain" in (bias.get("padding") or {}):
        figures.append(f"padding {bias['padding']['mean_gain']:+.2f}")
    if "mean_abs_difference" in (bias.get("reorder") or {}):
        figures.append(f"reorder {bias['reorder']['mean_abs_difference']:.2f}")
    text = f"calibration ({report['set']}): {', '.join(parts)}" + (f"; {', '.join(figures)}" if figures else "")
    if report["flagged"]:
        outside = report["out_of_range"]
        reasons = [f"{o['id']} ({o['kind']}) scored {o['score']:.2f}, expected {o['expected'][0]:.2f}-"
                   f"{o['expected'][1]:.2f}" for o in outside[:3]]
        if len(outside) > 3:
            reasons.append(f"{len(outside) - 3} more out of range (run.json judge.calibration)")
        if (bias.get("padding") or {}).get("raised"):
            reasons.append(f"padding raised {', '.join(bias['padding']['raised'])}")
        text += f"; FLAGGED: {'; '.join(reasons)}"
    return text
