"""``dfabench chat IMAGE --model NAME``: a multi-turn conversation about one image (see :mod:`dfabench.chat`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from dfabench.chat import ChatSession, create_chat_model, help_text, load_image, run_chat
from dfabench.cli._common import parse_model_args
from dfabench.errors import DfabenchError
from dfabench.models import GenerationSettings


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dfabench chat``."""
    parser.add_argument("image", help="the image to talk about")
    parser.add_argument("--model", required=True, help="a generate-capable model (see `dfabench models`)")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument("--max-new-tokens", type=int, default=256,
                        help="for free questions (the /detect, /classify, /describe prompts use their task's)")
    parser.add_argument("--temperature", type=float, default=0.0, help="for free questions (default 0: greedy)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transcript", metavar="FILE", help="also save the transcript here when the chat ends")
    parser.epilog = help_text()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def chat_command(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """``dfabench chat``: returns the exit code (0; bad input raises :class:`DfabenchError`)."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise DfabenchError("--max-new-tokens must be at least 1")
    image_path = Path(args.image)
    image = load_image(image_path)
    model_args = parse_model_args(args.model_arg)
    model, name = create_chat_model(args.model, model_args)
    interactive = stdin is sys.stdin and stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:  # pragma: no cover
            pass
    session = ChatSession(model=model, image_path=image_path, image=image, system=args.system,
                          settings=GenerationSettings(max_new_tokens=args.max_new_tokens,
                                                      temperature=args.temperature, seed=args.seed),
                          model_name=name, model_args=model_args)
    try:
        lines = _interactive_lines() if interactive else stdin
        try:
            code = run_chat(session, lines, stdout, echo=not interactive)
        except KeyboardInterrupt:  # Ctrl-C ends the chat like /quit (the transcript is still saved)
            stdout.write("\n(chat ended)\n")
            code = 0
        if args.transcript:
            path = session.save(args.transcript)
            stdout.write(f"(transcript saved to {path})\n")
        return code
    finally:
        model.close()


def _interactive_lines():
    """Lines typed at the terminal (with readline editing), until end of input."""
    while True:
        try:
            yield input("you> ")
        except EOFError:
            print()
            return


add_arguments = add_chat_arguments
run = chat_command
