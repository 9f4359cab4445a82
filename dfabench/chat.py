"""``dfabench chat``: a multi-turn conversation about one image with any generate-capable model.

The interactive deepfake analysis the DFA-Bench paper is about: ask whether a face is forged,
which kind of manipulation made it, where the artifacts are, then follow up freely. Every turn
sends the whole conversation so far (earlier questions and answers, the image attached to the
first question), so a model with a chat template sees the history.

Commands (anything else is a question)::

    /detect            ask the DF-D prompt (is this face forged?) and show the parsed answer
    /classify          ask the DF-C prompt (which manipulation?) and show the parsed category
    /describe          ask the AD prompt (which regions show artifacts?)
    /history           show the conversation so far
    /save FILE         write the transcript as JSON
    /reset             forget the conversation (the image stays)
    /help              this list
    /quit              end (so does end of input)

It reads questions from standard input, so it also works from a pipe or a file
(``printf '/detect\\nWhy?\\n' | dfabench chat --model constant face.png``): each line is a turn,
and the conversation ends at end of input. A model error is shown and the conversation goes on;
a failed turn is kept in the transcript but not sent as history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dfabench.errors import DfabenchError, InputError
from dfabench.models import GenerateRequest, GenerationSettings, Model, Response
from dfabench.plugins import get_manager, get_task
from dfabench.redact import redact, scrub_value

#: the task a free question is recorded under in the transcript
FREE_TASK = "FC"
_COMMANDS_HELP = """  /history     show the conversation so far
  /save FILE   write the transcript as JSON
  /reset       forget the conversation
  /quit        end (so does end of input)
anything else is a question about the image; earlier turns are sent as history."""


def shortcuts() -> dict[str, Any]:
    """Chat command -> the registered task that it asks (the ``chat`` field of the task specs:
    ``/detect`` DF-D, ``/classify`` DF-C, ``/describe`` AD), in the tasks' listed order."""
    registry = get_manager().tasks
    specs = sorted((registry.entries[name] for name in registry), key=lambda t: t.sort_key)
    return {spec.chat: spec for spec in specs if spec.chat}


def help_text() -> str:
    lines = ["commands:"] + [f"  {command:<12} {spec.prompt.splitlines()[0][:60]} (the {spec.id} prompt)"
                             for command, spec in shortcuts().items()]
    return "\n".join(lines) + "\n" + _COMMANDS_HELP


@dataclass
class Turn:
    """One question and what the model answered (or why it failed)."""

    question: str
    task: str
    command: str | None = None
    answer: str | None = None
    error: str | None = None
    parsed: Any = None
    p_fake: float | None = None
    seconds: float = 0.0
    tokens: dict[str, int | None] | None = None
    #: whether the answer was read by a label parser (DF-D, DF-C): the parsed value is shown
    labelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"question": self.question, "task": self.task, "command": self.command,
                               "answer": self.answer, "error": self.error, "seconds": round(self.seconds, 3)}
        if self.parsed is not None:
            out["parsed"] = self.parsed
        if self.p_fake is not None:
            out["p_fake"] = self.p_fake
        if self.tokens is not None:
            out["tokens"] = self.tokens
        return out


@dataclass
class ChatSession:
    """The conversation about one image with one model."""

    model: Model
    image_path: Path
    image: Any
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    system: str | None = None
    model_name: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    resets: int = 0

    def messages(self, question: str) -> list[dict[str, Any]]:
        """The chat messages for ``question``: the answered turns so far, then the question.
        The image is attached to the first user turn."""
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        history = [t for t in self.turns if t.error is None and t.answer is not None]
        for index, turn in enumerate(history):
            content: list[dict[str, Any]] = [{"type": "text", "text": turn.question}]
            if index == 0:
                content.insert(0, {"type": "image"})
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
        content = [{"type": "text", "text": question}]
        if not history:
            content.insert(0, {"type": "image"})
        messages.append({"role": "user", "content": content})
        return messages

    def ask(self, question: str, task_id: str = FREE_TASK, command: str | None = None) -> Turn:
        """Ask one question (with the history); never raises for a model failure."""
        from dataclasses import replace

        spec = _task_or_none(task_id) if task_id != FREE_TASK else None
        settings = self.settings
        choices: tuple[str, ...] = ()
        if spec is not None:
            settings = replace(spec.generation, seed=self.settings.seed)
            choices = spec.choices
        turn = Turn(question=question, task=task_id, command=command)
        request = GenerateRequest(sample_id=f"chat-{len(self.turns) + 1}", image=self.image,
                                  image_path=str(self.image_path), messages=self.messages(question),
                                  settings=settings, task=task_id, choices=choices,
                                  reference=spec.reference if spec is not None else "")
        start = time.perf_counter()
        try:
            answers = self.model.generate([request])
            if len(answers) != 1:
                raise DfabenchError(f"the model returned {len(answers)} answers for 1 question")
            response: Response = answers[0]
        except Exception as exc:  # noqa: BLE001 - shown to the user; the conversation goes on
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            turn.error = f"{type(exc).__name__}" + (f": {redact(text)}" if text else "")
        else:
            if response.error:
                turn.error = redact(response.error)
            else:
                turn.answer = response.text or ""
                if response.prompt_tokens is not None or response.completion_tokens is not None:
                    turn.tokens = {"prompt": response.prompt_tokens, "completion": response.completion_tokens}
                if spec is not None and spec.parser != "text":
                    turn.labelled = True
                    turn.parsed = _parse(spec, turn.answer)
                    turn.p_fake = spec.fake_probability(response.choice_logprobs)
        turn.seconds = time.perf_counter() - start
        self.turns.append(turn)
        return turn

    def reset(self) -> None:
        self.turns.clear()
        self.resets += 1

    def transcript(self) -> dict[str, Any]:
        from dfabench import __version__
        from dfabench.store import sha256_file

        try:
            identity = self.model.identity()
        except Exception as exc:  # noqa: BLE001 - the transcript is still worth saving
            identity = {"error": f"{type(exc).__name__}: {redact(exc)}"}
        return {
            "kind": "dfabench-chat-transcript",
            "dfabench_version": __version__,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {"name": self.model_name, "args": scrub_value(self.model_args), "identity": scrub_value(identity)},
            "image": {"path": str(self.image_path), "sha256": sha256_file(self.image_path)},
            "system": self.system,
            "settings": self.settings.to_dict(),
            "turns": [t.to_dict() for t in self.turns],
        }

    def save(self, path: str | Path) -> Path:
        from dfabench.store import atomic_write_text

        path = Path(path).expanduser()
        if path.parent and not path.parent.exists():
            raise InputError(path, f"the folder {path.parent} does not exist")
        atomic_write_text(path, json.dumps(self.transcript(), indent=2, ensure_ascii=False, default=str) + "\n")
        return path


def _task_or_none(task_id: str):
    try:
        return get_task(task_id)
    except DfabenchError:
        return None


def _parse(spec, text: str) -> Any:
    try:
        parser = get_manager().parser_for(spec)
    except DfabenchError:
        return None
    return parser(text)


# ----------------------------------------------------------------------------- the loop


def _show_turn(turn: Turn, out: TextIO) -> None:
    if turn.error is not None:
        out.write(f"model error: {turn.error}\n(the conversation goes on; this turn is not sent as history)\n")
        return
    out.write(f"model> {turn.answer}\n")
    notes = []
    if turn.command is not None and turn.labelled:
        notes.append(f"parsed: {turn.parsed if turn.parsed is not None else 'unparseable'}")
    if turn.p_fake is not None:
        notes.append(f"P(fake) = {turn.p_fake:.3f}")
    if notes:
        out.write(f"       ({'; '.join(notes)})\n")


def _show_history(session: ChatSession, out: TextIO) -> None:
    if not session.turns:
        out.write("(no turns yet)\n")
        return
    for number, turn in enumerate(session.turns, 1):
        tag = f" [{turn.command}]" if turn.command else ""
        out.write(f"{number}. you{tag}: {turn.question}\n")
        if turn.error is not None:
            out.write(f"   error: {turn.error}\n")
        else:
            out.write(f"   model: {turn.answer}\n")


def run_chat(session: ChatSession, lines: Iterable[str], out: TextIO, echo: bool = True) -> int:
    """Read questions and commands from ``lines`` until ``/quit`` or their end; returns 0.

    With ``echo`` (input from a pipe), each question is written after ``you>`` so the output
    reads as a transcript; at a terminal the prompt and the typed line are already there.
    """
    out.write(f"chat with {session.model_name or type(session.model).__name__} about {session.image_path} "
              f"(/help for commands)\n")
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if echo:
            out.write(f"you> {text}\n")
        if text.startswith("/"):
            command, _, argument = text.partition(" ")
            command = command.lower()
            argument = argument.strip()
            if command in ("/quit", "/exit", "/q"):
                break
            spec = shortcuts().get(command)
            if spec is not None:
                out.write(f"[{spec.id}] {spec.prompt}\n")
                _show_turn(session.ask(spec.prompt, spec.id, command=command), out)
            elif command == "/history":
                _show_history(session, out)
            elif command == "/reset":
                session.reset()
                out.write("(conversation forgotten; the next question starts afresh with the image)\n")
            elif command == "/save":
                if not argument:
                    out.write("usage: /save FILE\n")
                    continue
                try:
                    path = session.save(argument)
                except (OSError, DfabenchError) as exc:
                    out.write(f"error: cannot save the transcript: {exc}\n")
                else:
                    out.write(f"(transcript saved to {path})\n")
            elif command in ("/help", "/?"):
                out.write(help_text() + "\n")
            else:
                out.write(f"unknown command {command}; /help lists them\n")
            continue
        _show_turn(session.ask(text), out)
        out.flush()
    return 0


def load_image(path: Path):
    """The image as an RGB PIL image; an :class:`InputError` naming the file when it cannot be read."""
    from PIL import UnidentifiedImageError

    from dfabench.images import open_rgb

    if not path.is_file():
        raise InputError(path, "no such image file")
    try:
        return open_rgb(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the image ({exc})") from None


def create_chat_model(name: str, args: dict[str, Any]) -> tuple[Model, str]:
    """Create a registered model for chatting; refuses one that cannot generate."""
    entry = get_manager().models.get(name)
    if "generate" not in entry.capabilities:
        raise DfabenchError(f"model {entry.name!r} cannot chat: it has {', '.join(entry.capabilities)}, "
                            "chat needs a generate-capable model")
    model = entry.create(**args)
    if "generate" not in model.capabilities:
        model.close()
        raise DfabenchError(f"model {entry.name!r} with these arguments cannot generate "
                            f"(capabilities: {', '.join(sorted(model.capabilities)) or 'none'})")
    return model, entry.name
