"""``dfabench tasks``: registered tasks, versions and fingerprints."""

from __future__ import annotations

import argparse
import json

from dfabench.cli._common import table
from dfabench.plugins import get_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    registry = get_manager().tasks
    tasks = sorted((registry.entries[name] for name in registry), key=lambda t: t.sort_key)
    if args.json:
        print(json.dumps([{**t.to_dict(), "fingerprint": t.fingerprint} for t in tasks], indent=2))
        return 0
    rows = [[t.id, t.name, t.version, "/".join(t.requires), t.samples, ", ".join(t.metrics), t.fingerprint[:12]]
            for t in tasks]
    print(table(rows, ["task", "name", "version", "needs", "samples", "metrics", "fingerprint"]))
    return 0
