"""``dfabench plugins``: installed plugins, versions, hooks, load errors (broken commands included)."""

from __future__ import annotations

import argparse
import json

from dfabench.cli._commands import command_problems
from dfabench.cli._common import table
from dfabench.plugins import get_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    manager = get_manager()
    problems = command_problems(manager)
    rows = []
    for info in manager.plugins:
        hooks = ", ".join(h.replace("dfabench_register_", "") for h in info.hooks)
        status = " | ".join((["BROKEN: " + info.error] if info.error else [])
                            + [f"BROKEN command {name!r}: {error}" for name, error in problems.get(info.name, [])]
                            + ["CLASH: " + line for line in info.clashes]) or "ok"
        rows.append([info.name, info.distribution or "", info.version or "", hooks, status])
    if args.json:
        print(json.dumps([{**vars(p), **({"broken_commands": dict(problems[p.name])} if problems.get(p.name) else {})}
                          for p in manager.plugins], indent=2))
    else:
        print(table(rows, ["plugin", "distribution", "version", "hooks", "status"]))
    return 0
