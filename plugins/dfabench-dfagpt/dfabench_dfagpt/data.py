"""Training examples from DFA-Instruct-style conversations.

A benchmark sample's ``conversations`` (``[{"from": "human"|"gpt", "value": str}, ...]``,
the LLaVA format; ``<image>`` marks where the image goes) become chat messages in the
transformers convention, then one token sequence per sample through the base model's own
chat template and processor. The loss covers only the assistant tokens: for each assistant
turn, its tokens are those between the prompt rendered up to that turn (with the generation
prompt) and the conversation rendered up to and including that turn. When the template
does not end an assistant turn with the end-of-sequence token (LLaVA-1.5's does not), it is
appended after the last turn, so the model learns to stop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfabench.api import Benchmark, DfabenchError, InputError, Sample, open_rgb

log = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"
_ROLES = {"human": "user", "gpt": "assistant"}


def conversation_messages(conversations: list[dict[str, str]] | tuple, where: str = "") -> list[dict[str, Any]]:
    """LLaVA-format turns -> chat messages; the image part goes where ``<image>`` was (else first)."""
    messages: list[dict[str, Any]] = []
    placed = False
    for turn in conversations:
        role = _ROLES[turn["from"]]
        text = turn["value"]
        content: list[dict[str, Any]] = []
        if role == "user" and IMAGE_PLACEHOLDER in text:
            if placed:
                raise DfabenchError(f"{where}: more than one {IMAGE_PLACEHOLDER} in the conversation")
            before, _, after = text.partition(IMAGE_PLACEHOLDER)
            if before.strip():
                content.append({"type": "text", "text": before.strip()})
            content.append({"type": "image"})
            text = after
            placed = True
        content.append({"type": "text", "text": text.strip()})
        messages.append({"role": role, "content": content})
    if not placed:
        first_user = next((m for m in messages if m["role"] == "user"), None)
        if first_user is None:
            raise DfabenchError(f"{where}: the conversation has no user turn")
        first_user["content"].insert(0, {"type": "image"})
    if not any(m["role"] == "assistant" for m in messages):
        raise DfabenchError(f"{where}: the conversation has no assistant turn")
    return messages


@dataclass
class Example:
    """One training sequence: its text (with the template applied), image and assistant spans."""

    sample_id: str
    image_path: Path
    text: str
    length: int
    spans: list[tuple[int, int]]

    @property
    def n_target_tokens(self) -> int:
        return sum(end - start for start, end in self.spans)


def training_samples(benchmark: Benchmark, split: str | None, limit: int | None = None) -> list[Sample]:
    """Samples of ``split`` that have conversations (the first ``limit`` of them)."""
    chosen = [s for s in benchmark.select(split) if s.conversations]
    if not chosen:
        raise InputError(benchmark.manifest, f"no sample of split {split!r} has 'conversations' to train on")
    return chosen[:limit] if limit else chosen


def _token_ids(processor, text: str, image) -> list[int]:
    """Token ids of ``text`` with the image's placeholder expanded (the processor's own way)."""
    inputs = processor(text=[text], images=[[image]], return_tensors="pt")
    return inputs["input_ids"][0].tolist()


def build_example(processor, sample: Sample, image_path: Path) -> Example:
    """Render one sample's conversation and find its assistant token spans.

    The image goes through the processor once, for the whole conversation; each prompt prefix
    is tokenized as text only, its length shifted by the number of tokens the image placeholder
    expands to (the placeholder is a special token in the first user turn, before every
    assistant turn). A prefix that does not line up that way goes through the processor itself.
    """
    where = f"sample {sample.id!r}"
    messages = conversation_messages(sample.conversations, where)
    image = open_rgb(image_path)
    render = processor.apply_chat_template
    full = render(messages, tokenize=False)
    tokenizer = processor.tokenizer
    eos = tokenizer.eos_token
    last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    last_prompt = render(messages[:last_assistant], tokenize=False, add_generation_prompt=True)
    if eos and eos not in full[len(last_prompt):]:
        full = full.rstrip() + eos
    full_ids = _token_ids(processor, full, image)
    text_ids = tokenizer(full)["input_ids"]
    shift = len(full_ids) - len(text_ids)
    aligned_from = len(text_ids) - _common_suffix(full_ids, text_ids)

    def boundary(text: str) -> int:
        """Where the rendering ``text`` ends in ``full_ids``."""
        count = _common_prefix(tokenizer(text)["input_ids"], text_ids)
        if count >= aligned_from:
            return count + shift
        return _common_prefix(_token_ids(processor, text, image), full_ids)

    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = boundary(render(messages[:index], tokenize=False, add_generation_prompt=True))
        end = len(full_ids) if index == last_assistant else boundary(render(messages[: index + 1], tokenize=False))
        if end > start:
            spans.append((start, end))
    if not spans:
        raise DfabenchError(f"{where}: no assistant tokens found with this chat template")
    return Example(sample.id, image_path, full, len(full_ids), spans)


def _common_prefix(ids: list[int], full: list[int]) -> int:
    count = 0
    for a, b in zip(ids, full, strict=False):
        if a != b:
            break
        count += 1
    if count != len(ids):
        log.debug("a rendered prefix is not a token prefix of the whole conversation (%d of %d tokens agree)",
                  count, len(ids))
    return count


def _common_suffix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        count += 1
    return count


def build_examples(processor, benchmark: Benchmark, split: str | None, limit: int | None = None) -> list[Example]:
    return [build_example(processor, sample, benchmark.path_of(sample.image))
            for sample in training_samples(benchmark, split, limit)]


def collate(processor, examples: list[Example]):
    """A right-padded batch and its labels (-100 outside the assistant spans)."""
    import torch

    images = []
    for example in examples:
        images.append([open_rgb(example.image_path)])
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        inputs = processor(text=[e.text for e in examples], images=images, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = side
    labels = torch.full_like(inputs["input_ids"], -100)
    for row, example in enumerate(examples):
        if int(inputs["attention_mask"][row].sum()) != example.length:
            raise RuntimeError(f"sample {example.sample_id!r}: batched tokenization differs from the single one")
        for start, end in example.spans:
            labels[row, start:end] = inputs["input_ids"][row, start:end]
    return dict(inputs), labels
