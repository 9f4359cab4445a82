"""DF-D at the video level, as DeepfakeBench computes it: a video's score is the mean of its frames' scores.

A video is the frames that share :func:`dfabench.selection.video_key` — ``source_id`` (the sample id where it is
missing), label and technique: one source video under one manipulation; never a folder name (frames of different
videos merged because they share a folder name is a trap DeepfakeBench's users hit). Its reference is its frames'
label (one by construction); a ``source_id`` whose frames carry both labels is counted in the breakdown
(``source_ids_with_both_labels``): its real and fake frames are different videos.

Metrics (provider ``video``): ``video_auc``, ``video_ap``, ``video_eer`` (:func:`dfabench.metrics.classification.
ranking_metrics` on one record per video) and ``video_accuracy`` (mean score >= 0.5 is fake, as a frame's answer),
each over the videos with at least one scored frame (``n`` = videos). A frame without a score (failed, no
probability) is left out of its video's mean and counted. Confidence intervals: the cluster bootstrap over
``source_id`` (the videos of one source are resampled together), seeded with the run's seed. The metrics are
reported only when some video has more than one frame; otherwise the ``video`` breakdown says why.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from dfabench.metrics import MetricContext, MetricOutput, MetricResult
from dfabench.metrics.classification import _mean_result, ranking_metrics, scored_columns

ONE_FRAME = "every video has one frame: the video level is the frame level"


class _Frame:
    __slots__ = ("id", "label", "source_id", "technique")

    def __init__(self, sample_id: Any, label: str, source_id: Any, technique: Any):
        self.id, self.label, self.source_id, self.technique = sample_id, label, source_id, technique


def video_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-D video-level metrics from the mean frame score per video (see the module docstring). Read from the
    log's columns (a log is not parsed again), as the records give them."""
    from dfabench.selection import video_key

    columns, failed = scored_columns(records, context)
    output = MetricOutput()
    videos: dict[tuple[Any, ...], list[float]] = {}
    frames: dict[tuple[Any, ...], int] = {}
    clusters: dict[tuple[Any, ...], Hashable] = {}
    labels_of_source: dict[Hashable, set[str]] = {}
    n_without_score = 0
    reference, source, technique = columns["reference"], columns["source_id"], columns["technique"]
    scores = columns.scores.tolist()
    for sample_id, label, source_id, kind, score, no_score in zip(
            columns.ids, reference.decoded(), source.decoded(), technique.decoded(), scores, failed.tolist(),
            strict=True):
        key = video_key(_Frame(sample_id, label, source_id, kind))
        frames[key] = frames.get(key, 0) + 1
        clusters[key] = key[0]
        labels_of_source.setdefault(key[0], set()).add(label)
        if no_score or math.isnan(score):
            n_without_score += 1
            videos.setdefault(key, [])
        else:
            videos.setdefault(key, []).append(score)
    scored = {k: v for k, v in videos.items() if v}
    info: dict[str, Any] = {
        "n_videos": len(frames), "n_videos_scored": len(scored), "n_frames": len(records),
        "n_frames_without_score": n_without_score, "max_frames_per_video": max(frames.values(), default=0),
        "source_ids_with_both_labels": sum(1 for labels in labels_of_source.values() if len(labels) > 1),
        "grouping": "source_id, label, technique",
    }
    output.breakdowns["video"] = info
    if not frames or max(frames.values()) < 2:
        info["reported"] = False
        info["reason"] = ONE_FRAME
        return output
    info["reported"] = True
    video_records = [{"id": repr(key), "reference": key[1], "score": float(np.mean(scores)),
                      "source_id": clusters[key]} for key, scores in scored.items()]
    ranked = ranking_metrics(video_records, context)
    for name in ("auc", "ap", "eer"):
        output.metrics[f"video_{name}"] = ranked.metrics[name]
    if video_records:
        correct = np.array([(r["score"] >= 0.5) == (r["reference"] == "fake") for r in video_records], dtype=bool)
        output.metrics["video_accuracy"] = _mean_result(correct, [r["source_id"] for r in video_records], context)
    else:
        output.metrics["video_accuracy"] = MetricResult.undefined("the model gave no scores")
    return output
