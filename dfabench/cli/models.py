"""``dfabench models``: registered models and their capabilities."""

from __future__ import annotations

import argparse
import json

from dfabench.cli._common import table, warn_broken
from dfabench.plugins import get_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    registry = get_manager().models
    warn_broken()  # --json too: stderr, the JSON on stdout stays clean
    entries = [registry.entries[name] for name in registry]
    if args.json:
        print(json.dumps([{"name": e.name, "aliases": list(e.aliases), "capabilities": list(e.capabilities),
                           "plugin": e.plugin, "distribution": e.distribution, "version": e.version,
                           "description": e.description} for e in entries]
                         + [{"name": name, "clash": providers} for name, providers in registry.clashes().items()],
                         indent=2))
        return 0
    rows = [[e.name, ", ".join(e.capabilities), f"{e.distribution or e.plugin} {e.version or ''}".strip(),
             e.description] for e in entries]
    rows += [[name, "", "CLASH: " + "; ".join(providers), "refused: registered by more than one plugin"]
             for name, providers in registry.clashes().items()]
    print(table(rows, ["model", "capabilities", "plugin", "description"]))
    return 0
