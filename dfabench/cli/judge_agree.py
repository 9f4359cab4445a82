"""``dfabench judge agree RUN_DIR --judges A,B`` (or ``--judges A --human ratings.csv``): how far two graders of the
same answers agree (see :mod:`dfabench.judge.agree`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dfabench.cli._common import table
from dfabench.errors import DfabenchError
from dfabench.escape import terminal_text as clean
from dfabench.judge.agree import CURRENT, HUMAN, archives, compare, grades_of, human_grades, read_archive, resolve
from dfabench.judge.rubric import load_rubric
from dfabench.store import RunFolder, canonical_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a judged run folder")
    parser.add_argument("--judges", metavar="A,B", default=CURRENT,
                        help=f"two judges to compare: names of the run's judgment archives (a unique part of the name "
                             f"is enough) or '{CURRENT}' (the judgments in the logs); with --human, one judge "
                             f"(default {CURRENT})")
    parser.add_argument("--human", metavar="CSV", help="human ratings: columns sample_id, criterion, score (and task)")
    parser.add_argument("--tasks", metavar="AD,FC", help="the judged tasks to compare (default: every judged task "
                                                         "that shares the first one's rubric)")
    parser.add_argument("--list", action="store_true", help="list the run's judgment archives and stop")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    folder = RunFolder(args.run_dir)
    record = folder.read_record()
    if args.list:
        for name in archives(folder):
            n = len(read_archive(folder.path / f"judgments-{name}.jsonl"))
            print(f"{name}  ({n} judgments)")
        return 0
    judged = (record.get("judge") or {}).get("tasks") or {}
    if not judged:
        raise DfabenchError(f"{folder.path}: the run has not been judged (dfabench judge RUN_DIR ...)")
    wanted = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    tasks = wanted or sorted(judged)
    unknown = [t for t in tasks if t not in judged]
    if unknown:
        raise DfabenchError(f"task(s) {', '.join(unknown)} of --tasks were not judged (judged: {', '.join(judged)})")
    rubrics = {f"{judged[t].get('rubric')}-v{judged[t].get('rubric_version')}" for t in tasks}
    if len(rubrics) > 1:
        if wanted:
            raise DfabenchError(f"the tasks {', '.join(tasks)} were judged under different rubrics "
                                f"({', '.join(sorted(rubrics))}): compare them one rubric at a time (--tasks)")
        first = f"{judged[tasks[0]].get('rubric')}-v{judged[tasks[0]].get('rubric_version')}"
        tasks = [t for t in tasks if f"{judged[t].get('rubric')}-v{judged[t].get('rubric_version')}" == first]
        rubrics = {first}
    rubric = load_rubric(next(iter(rubrics)))
    criteria = {c.id: (rubric.scale_min, rubric.scale_max) for c in rubric.criteria}
    names = [n.strip() for n in args.judges.split(",") if n.strip()]
    if args.human:
        if len(names) != 1:
            raise DfabenchError("with --human, give one judge in --judges (default: current)")
        names.append(HUMAN)
    elif len(names) != 2:
        raise DfabenchError("--judges needs two judges, e.g. --judges current,gpt-4o (see --list), or one with --human")
    names = [resolve(folder, name) for name in names]  # recorded under the full archive names
    folder.check_integrity(record, "compare its judges")
    snapshot = canonical_json(record)
    first = grades_of(folder, record, names[0], tasks)
    second = (human_grades(Path(args.human), folder, record, tasks, criteria) if args.human
              else grades_of(folder, record, names[1], tasks))
    figures = {**compare(first, second, criteria), "tasks": tasks, "rubric": rubric.label,
               "judges": names, "human_ratings": str(args.human) if args.human else None}
    with folder.transaction() as tx:
        current = folder.read_record()
        if canonical_json(current) != snapshot:
            raise DfabenchError(f"{folder.path} was changed by another process meanwhile; nothing was written")
        current["judge"].setdefault("agreement", {})[" vs ".join(names)] = figures
        tx.write_record(current)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{clean(names[0])} vs {clean(names[1])} on {', '.join(tasks)} ({rubric.label}): {figures['n_common']} "
          f"sample{'' if figures['n_common'] == 1 else 's'} graded by both ({figures['n_only_first']} by the first "
          f"only, {figures['n_only_second']} by the second only)")
    if not figures["n_common"]:
        print("no sample was graded by both (an archive of a judge run whose judgments all failed is empty): every "
              "figure is undefined")
    rows = []
    for name, values in [*figures["criteria"].items(), ("score (overall)", figures["score"])]:
        n = values["n"]
        rows.append([name, n, _fmt(values.get("spearman"), n), _fmt(values.get("kendall_tau_b"), n),
                     _fmt(values.get("weighted_kappa"), n) if "weighted_kappa" in values else ""])
    print(table(rows, ["criterion", "n", "spearman", "kendall tau-b", "weighted kappa"]))
    return 0


def _fmt(value: float | None, n: int) -> str:
    """A figure, or why it is undefined: too few samples graded by both, else grades that do not vary (a grader
    gave every sample the same grade)."""
    if value is not None:
        return f"{value:.3f}"
    return "undefined (fewer than 2 samples)" if n < 2 else "undefined (the grades do not vary)"
