"""A test plugin that adds commands through ``dfabench_register_commands`` (loaded with
``DFABENCH_PLUGINS=dfabench_testcommands`` or given to ``PluginManager(extra_plugins=...)``):

- ``dfabench greet NAME [--shout]``: prints a greeting (exit 0), or exits 1 for the name ``nobody``;
- ``dfabench testgroup hello``: a command in a group;
- ``dfabench broken-import``: its arguments module does not exist;
- ``dfabench broken-args``: its ``add_arguments`` raises.
"""

from __future__ import annotations

import argparse

from dfabench import hookimpl


def add_greet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--shout", action="store_true")


def greet(args: argparse.Namespace) -> int:
    if args.name == "nobody":
        return 1
    text = f"hello {args.name}"
    print(text.upper() if args.shout else text)
    return 0


def add_no_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def hello(args: argparse.Namespace) -> int:
    print("hello from the group")
    return 0


def add_arguments_that_raise(parser: argparse.ArgumentParser) -> None:
    raise RuntimeError("this add_arguments is broken on purpose")


@hookimpl
def dfabench_register_commands(register):
    register("greet", add_greet_arguments, "dfabench_testcommands:greet", help="say hello")
    register("testgroup", help="a group of test commands")
    register("testgroup hello", "dfabench_testcommands:add_no_arguments", "dfabench_testcommands:hello",
             help="a command in a group")
    register("broken-import", "dfabench_no_such_module:add_arguments", "dfabench_no_such_module:run",
             help="cannot be imported")
    register("broken-args", add_arguments_that_raise, greet, help="its add_arguments raises")
