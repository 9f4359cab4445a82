"""DFA-Instruct-style LLaVA conversation JSON -> benchmark; which turn is which is read from the question."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dfabench.data.importers.base import (
    ImportJob,
    ImportReport,
    PathResolver,
    is_file,
    read_json,
    records_of,
    relative_parts,
    split_from_name,
)
from dfabench.parsing import parse_category, parse_detection

_ROLE = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}
_YES_NO = re.compile(r"^\s*(is|are|has|have|does|do|was|were|did)\b")
_CATEGORY_WORDS = re.compile(r"\b(technique|kind|type|category|categories|method|approach|which forgery)\b")
_REGION_WORDS = re.compile(r"\b(regions?|where|areas?|artifacts?|artefacts?|describe|details?|explain|parts?)\b")
_FORGERY_WORDS = re.compile(r"\b(forged|forgery|fake|real|authentic|genuine|manipulated|manipulation|deepfake|"
                            r"tampered|altered|synthesi[sz]ed|pristine|edited)\b")


_ASKS_REAL = re.compile(r"\b(real|authentic|genuine|pristine|original|unaltered|unmanipulated|untampered)\b")
_ASKS_FAKE = re.compile(r"\b(forged|forgery|fake|manipulated|manipulation|deepfake|tampered|altered|"
                        r"synthesi[sz]ed|edited|generated|doctored)\b")


def question_polarity(question: str) -> str | None:
    """What a *yes* answers to a DF-D question: ``"fake"`` ("Has this face been forged?"), ``"real"``
    ("Is this face authentic?") or None when the question names both or neither ("real or fake?")."""
    text = question.replace("<image>", " ").lower()
    asks_real, asks_fake = bool(_ASKS_REAL.search(text)), bool(_ASKS_FAKE.search(text))
    if asks_fake and not asks_real:
        return "fake"
    if asks_real and not asks_fake:
        return "real"
    return None


def question_task(question: str) -> str | None:
    """Which DFA capability a DFA-Instruct question asks about: ``DF-D``, ``DF-C``, ``AD`` or None (FC)."""
    text = question.replace("<image>", " ").strip().lower()
    if _CATEGORY_WORDS.search(text):
        return "DF-C"
    if _YES_NO.match(text) and _FORGERY_WORDS.search(text):
        return "DF-D"
    if _REGION_WORDS.search(text):
        return "AD"
    if _FORGERY_WORDS.search(text):
        return "DF-D"
    return None


def _conversation_pairs(turns: list[dict[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for first, second in zip(turns, turns[1:], strict=False):
        if first["from"] == "human" and second["from"] == "gpt":
            pairs.append((first["value"], second["value"]))
    return pairs


def _clean_turns(raw: Any) -> list[dict[str, str]] | None:
    if not isinstance(raw, list) or not raw:
        return None
    turns = []
    for turn in raw:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return None
        role = _ROLE.get(str(turn.get("from", "")).lower())
        if role is None:
            return None
        turns.append({"from": role, "value": turn["value"]})
    return turns


def import_dfa_instruct(src: Path, out: Path, *, root: Path | None = None,
                        replace_prefix: tuple[str, str] | None = None, strict: bool = False, copy: str = "link",
                        split: str | None = None) -> ImportReport:
    """Import DFA-Instruct-style LLaVA conversation JSON: ``[{"id", "image", "conversations": [...]}]``.

    The label comes from the DF-D answer (``parse_detection``), the category of a fake from the
    DF-C answer (``parse_category``), the reference description from the AD answer; the
    conversations are kept. Which turn is which is read from the question (:func:`question_task`).
    Optional per-record fields ``split``, ``source_id``, ``technique``, ``mask`` are kept; ``split``
    (option) sets the split of records that have none (default: from the file name, e.g. ``test.json``).
    """
    src = Path(src)
    job = ImportJob("dfa-instruct", src, Path(out), strict, copy)
    resolve = PathResolver(src, root, replace_prefix)
    items = records_of(read_json(src), src, ("data", "annotations", "samples"), "{id, image, conversations}")
    default_split = split if split is not None else split_from_name(src)
    for index, item in enumerate(items):
        where = f"record {index}"
        if not isinstance(item, dict):
            job.skip(where, "malformed record: expected an object {id, image, conversations}")
            continue
        raw_id = item.get("id")
        if raw_id is not None:
            where += f" (id {raw_id!r})"
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or raw_id == "":
            job.skip(where, "malformed record: 'id' must be a non-empty string or an integer")
            continue
        image = item.get("image")
        if not isinstance(image, str) or not image:
            job.skip(where, "malformed record: 'image' must be a non-empty path string")
            continue
        turns = _clean_turns(item.get("conversations"))
        if turns is None:
            job.skip(where, "malformed record: 'conversations' must be a non-empty list of "
                            "{\"from\": \"human\"|\"gpt\", \"value\": str}")
            continue
        answers: dict[str, str] = {}
        questions: dict[str, str] = {}
        for question, answer in _conversation_pairs(turns):
            task = question_task(question)
            if task is not None and task not in answers:
                answers[task], questions[task] = answer, question
        if "DF-D" in answers:
            # "Is this face real?" -> "Yes." means real: a yes answers the question's own polarity
            label = parse_detection(answers["DF-D"], yes_means=question_polarity(questions["DF-D"]) or "fake")
            if label is None:
                job.skip(where, f"unparseable DF-D answer {answers['DF-D'][:80]!r}")
                continue
        elif "DF-C" in answers and parse_category(answers["DF-C"]) is not None:
            label = "fake"  # a DF-C answer naming a category presupposes a fake
        else:
            job.skip(where, "no DF-D (detection) turn to take the label from")
            continue
        category = None
        if label == "fake":
            if "DF-C" in answers:
                category = parse_category(answers["DF-C"])
                if category is None:
                    job.skip(where, f"unparseable DF-C answer {answers['DF-C'][:80]!r}")
                    continue
            else:
                job.warn(where, "a fake with no DF-C turn: imported with no category")
        path = resolve(image)
        if not is_file(path):
            job.skip(where, f"image file {str(path)!r} does not exist")
            continue
        mask_path = None
        if isinstance(item.get("mask"), str) and item["mask"]:
            mask_path = resolve(item["mask"])
            if not is_file(mask_path):
                job.warn(where, f"mask {item['mask']!r} does not exist: imported without a mask")
                mask_path = None
        parts = relative_parts(image)
        record: dict[str, Any] = {
            "id": job.unique_id(str(raw_id)),
            "image": job.destination("images", parts, path.suffix),
            "label": label,
            "category": category,
            "technique": item.get("technique") if isinstance(item.get("technique"), str) else None,
            "source_id": str(item["source_id"]) if isinstance(item.get("source_id"), (str, int)) else None,
            "split": item.get("split") if isinstance(item.get("split"), str) else default_split,
            "description": answers.get("AD") if label == "fake" else None,
            "conversations": turns,
        }
        if mask_path is not None:
            record["mask"] = job.destination("masks", parts, mask_path.suffix)
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)
    return job.finish({"name": src.stem, "description": f"imported from the DFA-Instruct-style file {src.name}"})

