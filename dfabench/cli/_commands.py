"""The ``dfabench`` argument parser, built from the command registry (:func:`dfabench_register_commands`).

Every command, the core's included (:mod:`dfabench.builtin`), is a registry entry naming an
``add_arguments(parser)`` and a ``handler(args)`` by ``"module:attr"``. Running a command imports the
``add_arguments`` of that command only, and its handler; ``dfabench --help`` and ``dfabench plugins``
import every command's ``add_arguments`` (never a handler), so a command whose module fails to import,
whose ``add_arguments`` raises, or whose name two plugins claim is listed as broken with its error, and
running it prints that error (exit 2): a command is never silently missing.

A command may have subcommands of its own (``judge`` and ``judge agree``): ``dfabench judge RUN ...`` runs the
command, ``dfabench judge agree ...`` the subcommand (its word comes first after the command's; a run folder
that happens to be named like a subcommand is given as ``./agree``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.plugins import CommandEntry, PluginManager
from dfabench.redact import redact


@dataclass
class _Node:
    """One word of the command tree: a command (``entry`` with arguments), a group, or both unknown."""

    entry: CommandEntry | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    #: why the command cannot be used (a clash between plugins), if so
    problem: str | None = None


def _tree(manager: PluginManager) -> _Node:
    root = _Node()
    registry = manager.commands
    for entry in registry.entries.values():
        node = root
        for word in entry.name.split():
            node = node.children.setdefault(word, _Node())
        node.entry = entry
    for name in registry.clashes():
        node = root
        for word in name.split():
            node = node.children.setdefault(word, _Node())
        try:
            registry.resolve(name)
        except DfabenchError as exc:
            node.problem = str(exc)
    return root


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DfabenchError):  # already one clear line (e.g. "cannot import 'module' for ...")
        return redact(exc)
    return f"{type(exc).__name__}: {redact(exc)}"


class _BrokenCommandParser(argparse.ArgumentParser):
    """The parser of a command that cannot be built: it takes any arguments and runs :meth:`fail`."""

    def __init__(self, prog: str, name: str, problem: str):
        super().__init__(prog=prog, add_help=False)
        self.command_name, self.problem = name, problem

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        namespace = namespace if namespace is not None else argparse.Namespace()
        namespace.func = self.fail
        return namespace, []

    def fail(self, args: argparse.Namespace) -> int:
        raise DfabenchError(f"command {self.command_name!r} is broken: {self.problem} (see `dfabench plugins`)")


def _run_handler(entry: CommandEntry) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            handler = entry.load_handler()
        except Exception as exc:  # noqa: BLE001 - a plugin's handler that cannot be imported is bad input, exit 2
            raise DfabenchError(f"command {entry.name!r} is broken: {_describe(exc)} (plugin {entry.plugin})") from None
        return handler(args)
    return run


def _group_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return show


class _Builder:
    def __init__(self) -> None:
        #: plugin name -> [(command name, problem)] for every command that could not be built
        self.problems: dict[str, list[tuple[str, str]]] = {}

    def _broken(self, prog: str, name: str, node: _Node, problem: str) -> argparse.ArgumentParser:
        owner = node.entry.plugin if node.entry is not None else "?"
        self.problems.setdefault(owner, []).append((name, problem))
        return _BrokenCommandParser(prog, name, problem)

    def _command(self, prog: str, name: str, node: _Node, selected: list[str] | None) -> argparse.ArgumentParser:
        if node.problem:
            return self._broken(prog, name, node, node.problem)
        entry = node.entry
        if node.children and entry is not None and not entry.is_group:
            # a command with subcommands of its own: the first word after it chooses
            if selected and selected[0] in node.children:
                parser = argparse.ArgumentParser(prog=prog)
                self.add_children(parser.add_subparsers(dest=f"{name.replace(' ', '_')}_command", metavar="COMMAND"),
                                  prog, name, _Node(children={selected[0]: node.children[selected[0]]}), selected)
                return parser
            if selected is None:  # listing every command: each subcommand is built too (broken ones reported)
                for word, child in node.children.items():
                    self._command(f"{prog} {word}", f"{name} {word}", child, None)
            subcommands = "; ".join(f"{prog} {word} ...: {child.entry.help if child.entry else ''}".rstrip(": ")
                                    for word, child in node.children.items())
            return self._with_arguments(prog, name, node, epilog=f"subcommands: {subcommands}")
        if node.children:
            parser = argparse.ArgumentParser(prog=prog, description=entry.help if entry else None)
            sub = parser.add_subparsers(dest=f"{name.replace(' ', '_')}_command", metavar="COMMAND")
            parser.set_defaults(func=_group_help(parser))
            self.add_children(sub, prog, name, node, selected)
            return parser
        return self._with_arguments(prog, name, node)

    def _with_arguments(self, prog: str, name: str, node: _Node, epilog: str | None = None) -> argparse.ArgumentParser:
        """The parser of a command: its ``add_arguments``, then its handler (broken when the arguments fail)."""
        parser = argparse.ArgumentParser(prog=prog, epilog=epilog)
        try:
            node.entry.load_arguments()(parser)
        except Exception as exc:  # noqa: BLE001 - a broken command is listed with its error, never missing
            return self._broken(prog, name, node, _describe(exc))
        parser.set_defaults(func=_run_handler(node.entry))
        return parser

    def add_children(self, sub: Any, prog: str, prefix: str, node: _Node, selected: list[str] | None) -> None:
        """Add the commands under ``node`` to the subparsers action ``sub``; with ``selected`` (the words
        of the command line) only the chosen one is built, the others get their help line only."""
        for word, child in node.children.items():
            name = f"{prefix} {word}".strip()
            help_text = child.entry.help if child.entry is not None else None
            if selected is not None and (not selected or selected[0] != word):
                sub.add_parser(word, help=help_text)
                continue
            parser = self._command(f"{prog} {word}", name, child, selected[1:] if selected is not None else None)
            if isinstance(parser, _BrokenCommandParser):
                help_text = f"{help_text + ' ' if help_text else ''}(broken: {parser.problem})"
            sub.add_parser(word, help=help_text)
            sub.choices[word] = parser


def build(manager: PluginManager, parser: argparse.ArgumentParser,
          selected: list[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Add every registered command to ``parser``; returns the problems (plugin -> [(command, error)])."""
    builder = _Builder()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    builder.add_children(sub, parser.prog, "", _tree(manager), selected)
    return builder.problems


def command_words(manager: PluginManager, argv: list[str]) -> list[str] | None:
    """The leading words of ``argv`` when they name a registered command, else ``None`` (build them all)."""
    words = []
    for token in argv:
        if token.startswith("-"):
            break
        words.append(token)
    return words if words and words[0] in _tree(manager).children else None


def command_problems(manager: PluginManager) -> dict[str, list[tuple[str, str]]]:
    """Plugin name -> [(command, error)] for every registered command that cannot be built."""
    return build(manager, argparse.ArgumentParser(prog="dfabench"))
