"""``dfabench import FORMAT SRC --out DIR``: turn a public dataset layout into a benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.plugins import get_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", help="importer name (see `dfabench importers`)")
    parser.add_argument("src", help="the dataset's index / annotation file")
    parser.add_argument("--out", required=True, help="benchmark folder to write")
    parser.add_argument("--root", help="folder the image paths are relative to (default: the index file's folder)")
    parser.add_argument("--replace-prefix", metavar="OLD=NEW", help="rewrite absolute paths starting with OLD")
    parser.add_argument("--copy", choices=["link", "copy"],
                        help="hard-link (default, falls back to copy) or copy images")
    parser.add_argument("--strict", action="store_true", help="fail on the first record that cannot be imported")
    parser.add_argument("--split", help="split to give every record (dfa-instruct, mmtt)")
    parser.add_argument("--compression",
                        help="df40: the compression level to take (e.g. c23) when the index has several")


def run(args: argparse.Namespace) -> int:
    entry = get_manager().importers.get(args.format)
    importer = entry.load()
    options: dict[str, Any] = {"strict": args.strict}
    if args.root:
        options["root"] = Path(args.root)
    if args.replace_prefix:
        old, sep, new = args.replace_prefix.partition("=")
        if not sep:
            raise DfabenchError(f"bad --replace-prefix {args.replace_prefix!r}: expected OLD=NEW")
        options["replace_prefix"] = (old, new)
    if args.copy:
        options["copy"] = args.copy
    if args.split:
        options["split"] = args.split
    if args.compression:
        options["compression"] = args.compression
    try:
        report = importer(Path(args.src), Path(args.out), **options)
    except TypeError as exc:
        raise DfabenchError(f"importer {entry.name!r} does not take these options: {exc}") from None
    print(f"imported {report.n_imported} samples into {report.out}")
    for warning in getattr(report, "warnings", [])[:20]:
        text = ": ".join(map(str, warning)) if isinstance(warning, (tuple, list)) else str(warning)
        print(f"warning: {text}", file=sys.stderr)
    if report.skipped:
        print(f"skipped {len(report.skipped)} records:", file=sys.stderr)
        for record, reason in report.skipped[:20]:
            print(f"  {record}: {reason}", file=sys.stderr)
        if len(report.skipped) > 20:
            print(f"  ... and {len(report.skipped) - 20} more (see {report.out}/import-report.json)", file=sys.stderr)
    return 0
