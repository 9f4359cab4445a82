"""``dfabench importers``: registered dataset importers."""

from __future__ import annotations

import argparse

from dfabench.cli._common import table
from dfabench.plugins import get_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    registry = get_manager().importers
    print(table([[registry.entries[n].name, registry.entries[n].plugin, registry.entries[n].description]
                 for n in registry], ["format", "plugin", "description"]))
    return 0
