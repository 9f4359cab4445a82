"""``dfabench tasks``: registered tasks, versions and fingerprints."""

from __future__ import annotations

import argparse
import json

from dfabench.cli._common import table, warn_broken
from dfabench.plugins import get_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    registry = get_manager().tasks
    warn_broken()  # a plugin whose tasks failed to load: said, not silently missing from the list
    tasks = sorted((registry.entries[name] for name in registry), key=lambda t: t.sort_key)
    if args.json:
        print(json.dumps([{**t.to_dict(), "fingerprint": t.fingerprint} for t in tasks], indent=2))
        return 0
    rows = [[t.id, t.name, t.version, "/".join(t.requires), t.samples, ", ".join(t.metrics), t.fingerprint[:12]]
            for t in tasks]
    print(table(rows, ["task", "name", "version", "needs", "samples", "metrics", "fingerprint"]))
    variants = [t.with_variant(name) for t in tasks for name in t.variants]
    if variants:
        print("\nprompt variants (`dfabench run --prompt-variant NAME|all`; the tasks above ask their own question, "
              "the variant 'default'):")
        print(table([[v.id, v.fingerprint[:12], _one_line(v.prompt)] for v in variants],
                    ["task", "fingerprint", "prompt"]))
    return 0


def _one_line(text: str, width: int = 72) -> str:
    """A prompt on one line of at most ``width`` characters."""
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= width else flat[:width - 3] + "..."
