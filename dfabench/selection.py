"""Which samples of a benchmark a task takes, and the record of that choice.

A run records, per task, ``run.json["tasks"][TASK]["selection"]``::

    {"split": "test", "limit": null, "n": 181, "n_available": 181, "n_pool": 226,
     "excluded": {"real (the task takes fakes)": 45}, "ids_sha256": "..."}

- ``n_pool``: samples of the split; ``excluded``: how many of them the task's own rule leaves out, by
  reason (DF-C leaves out fakes without a category: counted, never silent);
- ``n_available``: what the task takes from the split (``n_pool`` minus the excluded); ``limit`` (``--limit``)
  then keeps the first ``limit`` of them, in manifest order; ``n`` is what was asked;
- ``ids_sha256``: :func:`ids_sha256` of the ids asked;
- with ``--frames-per-video N`` (DeepfakeBench reports 32): ``frames_per_video`` and ``frames_seed``; at most N
  frames of each video (:func:`video_key`) are taken, evenly spaced with a seeded offset (:func:`sample_frames`),
  before ``limit``; the others are counted in ``excluded`` as ``"frames beyond frames_per_video"``.

The selection is *complete* when ``n == n_available``: the whole split as the task defines it. ``dfabench
verify`` checks a log's ids against the record (and, with ``--bench``, against the benchmark); the
leaderboard ranks only complete selections of one and the same id set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from dfabench.plugins import get_manager
from dfabench.store import sha256_text

#: the reason counted for a real sample left out of a task that takes fakes only
REAL_LEFT_OUT = "real (the task takes fakes)"


def ids_sha256(ids: Iterable[Any]) -> str:
    """SHA-256 of a set of sample ids: the sorted ids, one per line (order-independent, so a log
    and the benchmark agree whatever order a run answered in)."""
    return sha256_text("\n".join(sorted(str(i) for i in ids)))


# --------------------------------------------------------------------------- the built-in sample filters
#
# A task spec's ``samples`` field names a sample filter: ``select(task, sample)`` returns ``None`` when the
# task takes the sample, else the reason it is left out. These are dfabench's (registered by
# :mod:`dfabench.builtin`); a plugin adds more through ``dfabench_register_sample_filters``.


def take_all(task: Any, sample: Any) -> str | None:
    """Every sample (DF-D)."""
    return None


def take_fakes(task: Any, sample: Any) -> str | None:
    """The fakes; a task whose reference is the category takes only fakes that have one (DF-C)."""
    if sample.label != "fake":
        return REAL_LEFT_OUT
    return "fake without a category" if task.reference == "category" and sample.category is None else None


def take_described(task: Any, sample: Any) -> str | None:
    """The fakes with a reference description (AD)."""
    if sample.label != "fake":
        return REAL_LEFT_OUT
    return None if sample.description else "fake without a description"


def take_masked(task: Any, sample: Any) -> str | None:
    """The fakes with a forgery mask (FL)."""
    if sample.label != "fake":
        return REAL_LEFT_OUT
    return None if sample.mask else "fake without a mask"


def take_conversation(task: Any, sample: Any) -> str | None:
    """The samples, real or fake, that carry a conversation (FC)."""
    return None if sample.conversations else "without a conversation"


# --------------------------------------------------------------------------- selection


def takes(task: Any, sample: Any) -> bool:
    """Whether ``task`` takes ``sample`` (its registered sample filter)."""
    return get_manager().sample_filter_for(task)(task, sample) is None


#: the reason counted for frames left out by ``--frames-per-video``
FRAMES_LEFT_OUT = "frames beyond frames_per_video"


def video_key(sample: Any) -> tuple[Any, ...]:
    """The video a frame belongs to: its ``source_id`` (the sample id where it has none), label and technique.

    A source video under one manipulation is one video: DeepfakeBench's FaceForensics++ index names the fakes of
    different techniques alike (``000_003`` under FF-DF and FF-F2F), and a benchmark's ``source_id`` may be the
    identity that real and fake frames share, so the label and the technique keep them apart. Never the folder."""
    source = getattr(sample, "source_id", None)
    return (source if source is not None else f"id:{sample.id}", sample.label, sample.technique)


def sample_frames(samples: Sequence[Any], frames_per_video: int, seed: int = 0) -> list[Any]:
    """At most ``frames_per_video`` frames of each video (:func:`video_key`), in manifest order.

    Like DeepfakeBench's frame sampling, a video's frames (in manifest order) are taken evenly spaced: frame
    ``floor((j + offset) * n / N)`` for ``j < N``, where ``offset`` in [0, 1) is drawn per video from a hash of
    ``seed`` and the video, so the choice is stable (the same seed and benchmark give the same frames, whatever
    the other videos) and another seed shifts it."""
    import hashlib

    if frames_per_video < 1:
        raise ValueError(f"frames_per_video must be at least 1, not {frames_per_video}")
    videos: dict[tuple[Any, ...], list[int]] = {}
    for i, sample in enumerate(samples):
        videos.setdefault(video_key(sample), []).append(i)
    keep: set[int] = set()
    for key, positions in videos.items():
        n = len(positions)
        if n <= frames_per_video:
            keep.update(positions)
            continue
        digest = hashlib.sha256(repr((int(seed), *key)).encode()).digest()
        offset = int.from_bytes(digest[:8], "big") / 2**64
        keep.update(positions[int((j + offset) * n / frames_per_video)] for j in range(frames_per_video))
    return [s for i, s in enumerate(samples) if i in keep]


def select_samples(task: Any, pool: Sequence[Any], split: str, limit: int | None = None, *,
                   frames_per_video: int | None = None, seed: int = 0) -> tuple[list[Any], dict[str, Any]]:
    """The samples of ``pool`` (one split of a benchmark, in manifest order) that ``task`` asks,
    and their selection record (see the module docstring).

    ``frames_per_video``: keep at most that many frames of each video (:func:`sample_frames`, seeded with
    ``seed``); the frames left out are counted in ``excluded`` under :data:`FRAMES_LEFT_OUT`, and the record
    gains ``frames_per_video`` and ``frames_seed``."""
    select = get_manager().sample_filter_for(task)
    eligible: list[Any] = []
    excluded: Counter = Counter()
    for sample in pool:
        reason = select(task, sample)
        if reason is None:
            eligible.append(sample)
        else:
            excluded[str(reason)] += 1
    if frames_per_video is not None:
        sampled = sample_frames(eligible, int(frames_per_video), seed)
        if len(sampled) < len(eligible):
            excluded[FRAMES_LEFT_OUT] += len(eligible) - len(sampled)
        eligible = sampled
    chosen = eligible if limit is None else eligible[:limit]
    record = {"split": split, "limit": limit, "n": len(chosen), "n_available": len(eligible),
              "n_pool": len(pool), "excluded": dict(sorted(excluded.items())),
              "ids_sha256": ids_sha256(s.id for s in chosen)}
    if frames_per_video is not None:
        record.update(frames_per_video=int(frames_per_video), frames_seed=int(seed))
    return chosen, record


def left_out_note(task_id: str, selection: dict[str, Any]) -> str | None:
    """One line for ``dfabench run`` when a task leaves out samples the split has for other reasons
    than being real in a fakes-only task (e.g. fakes without a category in DF-C); else ``None``."""
    notable = {k: v for k, v in (selection.get("excluded") or {}).items()
               if k not in (REAL_LEFT_OUT, FRAMES_LEFT_OUT) and v}
    if not notable:
        return None
    listed = ", ".join(f"{n} {reason}" for reason, n in notable.items())
    # the reals of a fakes-only task and the frames beyond --frames-per-video are named too, so the numbers add up
    also = [f"{n} {reason}" for reason, n in (selection.get("excluded") or {}).items()
            if reason in (REAL_LEFT_OUT, FRAMES_LEFT_OUT) and n]
    return (f"{task_id}: {selection['n_available']} of the {selection['n_pool']} samples of split "
            f"{selection['split']} are usable; left out by the task's rule: {listed}"
            + (f" (besides {', '.join(also)})" if also else ""))


def is_complete(selection: Any) -> bool:
    """Whether a recorded selection is the whole split as the task defines it."""
    return (isinstance(selection, dict) and isinstance(selection.get("n"), int)
            and selection.get("n") == selection.get("n_available"))
