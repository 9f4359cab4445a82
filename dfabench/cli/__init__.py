"""The ``dfabench`` command: one module per command in this package, each registered through the
``dfabench_register_commands`` hook like a plugin's (:mod:`dfabench.builtin`, :mod:`dfabench.cli._commands`).

Exit codes: 0 success; 1 the work ran but something does not hold (e.g. a verify failure);
2 bad usage or bad input (one clear line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from dfabench import __version__
from dfabench.cli._commands import build, command_words
from dfabench.cli._common import parse_model_args, print_results, results_table
from dfabench.errors import DfabenchError
from dfabench.plugins import BrokenProviderError, get_manager
from dfabench.redact import redact

__all__ = ["build_parser", "main", "parse_model_args", "results_table"]

#: the name the results printer had before the CLI became a package (tests and plugins import it)
_print_results = print_results


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``dfabench`` parser: every registered command (only the one ``argv`` names, fully, when given)."""
    parser = argparse.ArgumentParser(
        prog="dfabench",
        description="Benchmark harness for interactive deepfake analysis (DFA-Bench: DF-D, DF-C, AD, FC; MMTT: FL).",
        epilog="Exit codes: 0 success, 1 a check did not hold, 2 bad usage or bad input.",
    )
    parser.add_argument("--version", action="version", version=f"dfabench {__version__}")
    manager = get_manager()
    build(manager, parser, command_words(manager, argv) if argv is not None else None)
    return parser


class _RedactingStream:
    """A text stream that redacts what is written to it (argparse's usage errors quote arguments)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(redact(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _error(text: Any) -> None:
    """Print one error line on stderr, scrubbed of secrets and credentials (dfabench.redact)."""
    print(f"dfabench: error: {redact(text)}", file=sys.stderr)


def _broken_provider(argv: list[str]) -> BrokenProviderError | None:
    """The error naming the broken plugin that would provide the command ``argv`` names, if so."""
    words = [t for t in argv[:1] if not t.startswith("-")]
    if not words or command_words(get_manager(), words) is not None:
        return None
    try:
        get_manager().commands.resolve(words[0])
    except BrokenProviderError as exc:
        return exc
    except DfabenchError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    broken = _broken_provider(argv)
    if broken is not None:
        _error(broken)
        return broken.exit_code
    parser = build_parser(argv)
    with contextlib.redirect_stderr(_RedactingStream(sys.stderr)):
        args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DfabenchError as exc:
        _error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dfabench: interrupted (what was answered is in the response cache; run the same command to resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a read-only folder, a file where a folder should be, a full disk, ...
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return 2
