"""Answer extraction as a measured instrument: the DF-D / DF-C parsers on a labelled answer corpus.

    python benchmarks/bench_parsing.py [--json] [--dev PATH] [--heldout PATH]

The corpus (``tests/answers/dev.jsonl`` and ``tests/answers/heldout.jsonl``, see ``tests/answers/README.md``)
holds answers in the styles of real MLLMs, each with the label a careful human reads, or ``null`` when a
human cannot tell. For each file and task this prints:

- **precision**: the share of the parser's confident labels that are right;
- **coverage**: the share of answers with a human label that got a label (right or wrong);
- **confident wrong**: labels that differ from the human's, with their ids; a label given to a
  "cannot tell" answer is confident wrong;
- **abstention**: the share of "cannot tell" answers the parser left unparsed (``None``);
- the **confusion matrix** (rows: human label, ``-`` = cannot tell; columns: parsed, ``-`` = unparsed).

Exit status 1 when the held-out file has a confident wrong label or a coverage under 97% in a task
(the aims of issue 11), else 0. :func:`measure` is what the tests call. Not a timed benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from dfabench.parsing import parse_category, parse_detection
from dfabench.vocab import CATEGORIES, LABELS

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests" / "answers" / "dev.jsonl"
HELDOUT = ROOT / "tests" / "answers" / "heldout.jsonl"
TASK_LABELS: dict[str, tuple[str, ...]] = {"DF-D": LABELS, "DF-C": CATEGORIES}
FIELDS = {"id", "task", "style", "question", "options", "yes_means", "answer", "label"}
AIM_COVERAGE = 0.97


def load_corpus(path: Path) -> list[dict[str, Any]]:
    """The answers of a corpus file, checked: a malformed line is an error naming the file and the line."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: malformed JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected an object")
        problems = sorted(set(row) - FIELDS)
        if problems:
            raise ValueError(f"{where}: unknown fields {problems}")
        for key in ("id", "task", "style", "answer"):
            if not isinstance(row.get(key), str) or (key != "answer" and not row[key]):
                raise ValueError(f"{where}: {key!r} must be a string")
        if row["task"] not in TASK_LABELS:
            raise ValueError(f"{where}: task {row['task']!r} is not one of {sorted(TASK_LABELS)}")
        if row.get("label") is not None and row["label"] not in TASK_LABELS[row["task"]]:
            raise ValueError(f"{where}: label {row['label']!r} is not a {row['task']} label or null")
        if "label" not in row:
            raise ValueError(f"{where}: 'label' is missing (null for an answer a human cannot read)")
        if row.get("yes_means") not in (None, *LABELS) or (row.get("yes_means") and row["task"] != "DF-D"):
            raise ValueError(f"{where}: yes_means must be 'fake' or 'real', on a DF-D answer")
        options = row.get("options")
        if options is not None and not (isinstance(options, dict) and options
                                        and all(isinstance(v, str) for v in options.values())):
            raise ValueError(f"{where}: options must map letters to option texts")
        rows.append(row)
    return rows


def parse(row: dict[str, Any]) -> str | None:
    """The parser's reading of a corpus answer, with the row's options and question polarity."""
    if row["task"] == "DF-D":
        return parse_detection(row["answer"], row.get("options"), yes_means=row.get("yes_means") or "fake")
    return parse_category(row["answer"], row.get("options"))


def _task_report(rows: list[dict[str, Any]], labels: tuple[str, ...]) -> dict[str, Any]:
    confusion: Counter[tuple[str, str]] = Counter()
    wrong, labelled, covered, confident, right, cannot_tell, abstained = [], 0, 0, 0, 0, 0, 0
    for row in rows:
        parsed = parse(row)
        confusion[(row["label"] or "-", parsed or "-")] += 1
        if parsed is not None:
            confident += 1
            if parsed == row["label"]:
                right += 1
            else:
                wrong.append(row["id"])
        if row["label"] is None:
            cannot_tell += 1
            abstained += parsed is None
        else:
            labelled += 1
            covered += parsed is not None
    keys = [*labels, "-"]
    return {
        "n": len(rows),
        "precision": right / confident if confident else None,
        "coverage": covered / labelled if labelled else None,
        "confident_wrong": wrong,
        "abstention": abstained / cannot_tell if cannot_tell else None,
        "n_cannot_tell": cannot_tell,
        "confusion": {human: {got: confusion[(human, got)] for got in keys} for human in keys},
    }


def measure(path: Path) -> dict[str, Any]:
    """Per task: precision, coverage, confident-wrong ids, abstention and confusion matrix of a corpus file."""
    rows = load_corpus(path)
    return {task: _task_report([r for r in rows if r["task"] == task], labels)
            for task, labels in TASK_LABELS.items()}


def meets_aims(report: dict[str, Any]) -> bool:
    """Issue 11's aims for the held-out file: no confident wrong label, coverage >= 97% in every task."""
    return all(not task["confident_wrong"] and (task["coverage"] or 0.0) >= AIM_COVERAGE for task in report.values())


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _print(name: str, report: dict[str, Any]) -> None:
    for task, result in report.items():
        print(f"{name} {task}: n={result['n']}  precision {_percent(result['precision'])}  "
              f"coverage {_percent(result['coverage'])}  confident wrong {len(result['confident_wrong'])}"
              f"{' ' + ', '.join(result['confident_wrong']) if result['confident_wrong'] else ''}  "
              f"abstention on cannot-tell {_percent(result['abstention'])} (of {result['n_cannot_tell']})")
        keys = list(result["confusion"])
        print("    human\\parsed " + " ".join(f"{k:>5}" for k in keys))
        for human, row in result["confusion"].items():
            print(f"    {human:>13} " + " ".join(f"{row[k]:>5}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the reports as one JSON object")
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--heldout", type=Path, default=HELDOUT)
    args = parser.parse_args(argv)
    reports = {"dev": measure(args.dev), "heldout": measure(args.heldout)}
    ok = meets_aims(reports["heldout"])
    if args.json:
        print(json.dumps({**reports, "heldout_meets_aims": ok}, indent=1))
    else:
        for name, report in reports.items():
            _print(name, report)
        print(f"held-out aims (no confident wrong, coverage >= {AIM_COVERAGE:.0%}): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
