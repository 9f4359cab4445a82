"""Manifest validation: every bad input is refused with one line naming the file, record and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfabench.data.manifest import Sample, load_benchmark, write_manifest
from dfabench.errors import InputError


def _write(root: Path, records: list, raw_lines: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "img.png").write_bytes(b"")
    lines = raw_lines if raw_lines is not None else [json.dumps(r) for r in records]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


GOOD = {"id": "a", "image": "img.png", "label": "fake", "category": "FS", "technique": "simswap",
        "source_id": "v1", "split": "test"}


def test_good_manifest_loads(tmp_path):
    bench = load_benchmark(_write(tmp_path / "b", [GOOD, {**GOOD, "id": "b", "label": "real", "category": None}]))
    assert [s.id for s in bench.samples] == ["a", "b"]
    assert bench.samples[0].category == "FS" and bench.samples[1].category is None
    assert bench.splits() == {"test": 2}


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({k: v for k, v in GOOD.items() if k != "label"}, "missing field 'label'"),
        ({k: v for k, v in GOOD.items() if k != "image"}, "missing field 'image'"),
        ({**GOOD, "label": "FAKE!"}, "unknown label 'FAKE!'"),
        ({**GOOD, "category": "XX"}, "unknown category 'XX'"),
        ({**GOOD, "label": "real"}, "a real image cannot have category 'FS'"),
        ({**GOOD, "image": "../outside.png"}, "escapes the benchmark folder"),
        ({**GOOD, "image": "a/../../outside.png"}, "escapes the benchmark folder"),
        ({**GOOD, "image": "/etc/passwd"}, "is absolute"),
        ({**GOOD, "mask": "../m.png"}, "escapes the benchmark folder"),
        ({**GOOD, "conversations": [{"from": "bot", "value": "x"}]}, "conversations"),
        ({**GOOD, "colour": "red"}, "unknown field(s) 'colour'"),
        ({**GOOD, "technique": 3}, "field 'technique' must be a string"),
    ],
)
def test_bad_record_is_refused_with_file_record_and_problem(tmp_path, record, problem):
    root = _write(tmp_path / "b", [GOOD | {"id": "ok"}, record])
    with pytest.raises(InputError) as info:
        load_benchmark(root)
    message = str(info.value)
    assert str(root / "manifest.jsonl") in message
    assert "line 2" in message
    assert problem in message
    assert "\n" not in message


def test_duplicate_id_names_both_lines(tmp_path):
    root = _write(tmp_path / "b", [GOOD, GOOD])
    with pytest.raises(InputError, match=r"line 2 \(id 'a'\): duplicate id 'a' \(first on line 1\)"):
        load_benchmark(root)


def test_malformed_json_line(tmp_path):
    root = _write(tmp_path / "b", [], raw_lines=[json.dumps(GOOD), '{"id": "b", "image": '])
    with pytest.raises(InputError, match=r"manifest.jsonl: line 2: malformed JSON"):
        load_benchmark(root)


def test_not_an_object_and_empty(tmp_path):
    with pytest.raises(InputError, match="must be a JSON object"):
        load_benchmark(_write(tmp_path / "a", [], raw_lines=["[1, 2]"]))
    with pytest.raises(InputError, match="no records"):
        load_benchmark(_write(tmp_path / "b", [], raw_lines=[""]))


def test_missing_folder_and_manifest(tmp_path):
    with pytest.raises(InputError, match="no such benchmark folder"):
        load_benchmark(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no manifest.jsonl"):
        load_benchmark(tmp_path / "empty")


def test_missing_image_is_found_before_any_model_call(tmp_path):
    root = _write(tmp_path / "b", [GOOD, {**GOOD, "id": "b", "image": "missing.png"}])
    bench = load_benchmark(root)
    with pytest.raises(InputError, match=r"id 'b': image file 'missing.png' does not exist"):
        bench.check_files(bench.samples)


def test_symlink_escaping_the_folder_is_refused(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    root = _write(tmp_path / "b", [{**GOOD, "image": "link.png"}])
    (root / "link.png").symlink_to(outside)
    bench = load_benchmark(root)
    with pytest.raises(InputError, match="escapes the benchmark folder"):
        bench.check_files(bench.samples)


def test_fingerprint_covers_manifest_and_image_bytes(tmp_path):
    root = _write(tmp_path / "b", [GOOD])
    (root / "img.png").write_bytes(b"one")
    first = load_benchmark(root).fingerprint()
    assert load_benchmark(root).fingerprint() == first  # cached by stat, same value
    (root / "img.png").write_bytes(b"two")
    second = load_benchmark(root).fingerprint()
    assert second != first
    (root / "manifest.jsonl").write_text(json.dumps({**GOOD, "technique": "other"}) + "\n")
    assert load_benchmark(root).fingerprint() not in (first, second)


def test_write_manifest_round_trip(tmp_path):
    samples = [Sample(id="x", image="i.png", label="fake", category="EFS", conversations=(
        {"from": "human", "value": "<image>\nHas this face been forged?"}, {"from": "gpt", "value": "Yes."}))]
    (tmp_path / "i.png").write_bytes(b"")
    assert write_manifest(tmp_path / "manifest.jsonl", samples) == 1
    assert load_benchmark(tmp_path).samples == samples
