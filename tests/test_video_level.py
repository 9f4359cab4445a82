"""Video-level DF-D (mean frame score per video) and seeded frames-per-video sampling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dfabench.metrics import MetricContext
from dfabench.metrics.classification import ranking_metrics
from dfabench.metrics.video import ONE_FRAME, video_metrics
from dfabench.plugins import get_task
from dfabench.selection import FRAMES_LEFT_OUT, sample_frames, select_samples, video_key


def _frame(i, source, label, score, technique=None):
    return {"id": f"f{i}", "source_id": source, "reference": label, "label": label, "score": score,
            "technique": technique if label == "fake" else None, "error": None}


def _context():
    return MetricContext(task="DF-D", seed=0, n_boot=200)


def test_video_score_is_the_mean_of_its_frames():
    records = [_frame(0, "a", "real", 0.9), _frame(1, "a", "real", 0.1),   # video mean 0.5
               _frame(2, "b", "fake", 0.6), _frame(3, "b", "fake", 0.6, ),  # 0.6
               _frame(4, "c", "real", 0.2), _frame(5, "c", "real", 0.2)]    # 0.2
    output = video_metrics(records, _context())
    assert output.breakdowns["video"]["n_videos"] == 3 and output.breakdowns["video"]["reported"]
    assert output.metrics["video_auc"].value == 1.0 and output.metrics["video_auc"].n == 3
    frame_auc = ranking_metrics(records, _context()).metrics["auc"].value
    assert frame_auc < 1.0  # frame 0 (real, 0.9) outranks the fakes
    assert output.metrics["video_accuracy"].value == pytest.approx(2 / 3)  # video a: 0.5 >= 0.5 reads fake


def test_videos_are_split_by_label_and_technique_never_merged_by_name():
    records = [_frame(0, "000_003", "fake", 0.9, "FF-DF"), _frame(1, "000_003", "fake", 0.9, "FF-DF"),
               _frame(2, "000_003", "fake", 0.1, "FF-F2F"), _frame(3, "000", "real", 0.2),
               _frame(4, "000", "fake", 0.8, "FF-FS")]
    info = video_metrics(records, _context()).breakdowns["video"]
    assert info["n_videos"] == 4 and info["source_ids_with_both_labels"] == 1


def test_one_frame_per_video_reports_no_video_metrics():
    records = [_frame(0, "a", "real", 0.1), _frame(1, "b", "fake", 0.9)]
    output = video_metrics(records, _context())
    assert not output.metrics and output.breakdowns["video"]["reason"] == ONE_FRAME


def test_frames_without_a_score_are_left_out_and_counted():
    records = [_frame(0, "a", "real", None), _frame(1, "a", "real", 0.2), _frame(2, "b", "fake", 0.7),
               {**_frame(3, "b", "fake", 0.1), "error": "model failed"}, _frame(4, "c", "fake", None),
               _frame(5, "c", "fake", None)]
    output = video_metrics(records, _context())
    info = output.breakdowns["video"]
    assert info["n_frames_without_score"] == 4 and info["n_videos_scored"] == 2
    assert output.metrics["video_auc"].value == 1.0 and output.metrics["video_auc"].n == 2


def test_the_bootstrap_is_seeded():
    records = [_frame(i, f"s{i // 4}", "fake" if i % 8 >= 4 else "real", (i * 37 % 11) / 10) for i in range(40)]
    first, second = video_metrics(records, _context()), video_metrics(records, _context())
    assert first.metrics["video_auc"].to_dict() == second.metrics["video_auc"].to_dict()


def _samples(n_videos, frames):
    return [SimpleNamespace(id=f"v{v}-{f}", source_id=f"v{v}", label="fake" if v % 2 else "real",
                            technique="t" if v % 2 else None, category="FS" if v % 2 else None)
            for v in range(n_videos) for f in range(frames)]


def test_frame_sampling_keeps_at_most_n_evenly_spaced_frames_per_video_seeded():
    samples = _samples(3, 64)
    kept = sample_frames(samples, 32, seed=0)
    assert len(kept) == 96
    assert sample_frames(samples, 32, seed=0) == kept
    assert sample_frames(samples, 32, seed=1) != kept
    first = [int(s.id.split("-")[1]) for s in kept if s.source_id == "v0"]
    assert first == sorted(first) and {b - a for a, b in zip(first[:-1], first[1:], strict=True)} == {2}
    assert sample_frames(_samples(2, 5), 32) == _samples(2, 5)  # short videos are kept whole
    assert len({video_key(s) for s in kept}) == 3


def test_select_samples_records_the_frames_left_out():
    task = get_task("DF-D")
    pool = _samples(4, 10)
    chosen, record = select_samples(task, pool, "test", frames_per_video=4, seed=7)
    assert len(chosen) == 16 and record["n"] == record["n_available"] == 16 and record["n_pool"] == 40
    assert record["excluded"] == {FRAMES_LEFT_OUT: 24}
    assert record["frames_per_video"] == 4 and record["frames_seed"] == 7
    _, plain = select_samples(task, pool, "test")
    assert "frames_per_video" not in plain and plain["n"] == 40


def _videos_record_by_record(records, context):
    """The video level computed record by record from the parsed records (what video_metrics did before it read
    the log's columns): the reference its columns must reproduce."""
    import numpy as np

    videos, frames, missing = {}, {}, 0
    for record in records:
        key = video_key(SimpleNamespace(id=record.get("id"), label=record["reference"],
                                        source_id=record.get("source_id"), technique=record.get("technique")))
        frames[key] = frames.get(key, 0) + 1
        score = None if record.get("error") else record.get("score")
        if score is None:
            missing += 1
            videos.setdefault(key, [])
        else:
            videos.setdefault(key, []).append(float(score))
    video_records = [{"id": repr(k), "reference": k[1], "score": float(np.mean(v)), "source_id": k[0]}
                     for k, v in videos.items() if v]
    return len(frames), missing, ranking_metrics(video_records, context).metrics["auc"].to_dict()


def test_the_columns_give_what_the_records_give_from_a_log_too(tmp_path):
    import json
    import random

    from dfabench.store import open_sample_log

    rng = random.Random(5)
    records = []
    for i in range(300):
        label = rng.choice(["real", "fake"])
        source = rng.choice([None, f"s{i // 6}", i // 6, f"s{i // 6}"])  # no source, text and number ids
        score = rng.choice([None, round(rng.random(), 3), 1, 0])
        records.append({**_frame(i, source, label, score, rng.choice(["FF-DF", "FF-FS", None])),
                        "task": "DF-D", "image": f"i{i}.png",
                        "error": "timeout" if rng.random() < 0.05 else None})
    log_path = tmp_path / "samples-DF-D.jsonl"
    log_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    n_videos, missing, auc = _videos_record_by_record(records, _context())
    with open_sample_log(log_path) as log:
        for given in (records, log):
            output = video_metrics(given, _context())
            info = output.breakdowns["video"]
            assert (info["n_videos"], info["n_frames_without_score"]) == (n_videos, missing)
            assert output.metrics["video_auc"].to_dict() == auc


def test_a_bad_reference_is_refused_naming_the_sample():
    from dfabench.errors import InputError

    records = [_frame(0, "a", "real", 0.1), _frame(1, "a", "maybe", 0.2)]
    with pytest.raises(InputError, match="'f1'.*|.*reference must be 'real' or 'fake', not 'maybe'"):
        video_metrics(records, _context())
