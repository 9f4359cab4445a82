"""The MMTT v2 importer: instance_id and multilabel, JSON list and JSON lines, the train/val/test files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dfabench.data.importers import import_mmtt
from dfabench.data.manifest import load_benchmark
from dfabench.errors import InputError
from dfabench.metrics.regions import multilabel
from dfabench.vocab import FACE_REGIONS

CAPTIONS = {"train": "The eyes and the nose are blurred.", "eval": "The lips show a color mismatch with the skin.",
            "test": "Wrinkles near the forehead and the chin look painted."}


def _release(root, layout_of):
    """A v2 release folder: one annotation file per split, in the layout ``layout_of[split]``."""
    files = {"train": "train-mutilabel-simple.json", "eval": "eval-mutilabel-simple.json",
             "test": "test-mutilabel.json"}
    for n, (split, name) in enumerate(files.items()):
        records = []
        for k in range(2):
            rel = f"fake/{split}/{k}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), n * 40 + k, np.uint8)).save(root / rel)
            (root / "masks").mkdir(exist_ok=True)
            Image.fromarray(np.full((8, 8), 255, np.uint8)).save(root / f"masks/{split}{k}.png")
            records.append({"image_id": f"{split}-{k}", "instance_id": 10 * n + k, "img_path": rel,
                            "mask_path": f"masks/{split}{k}.png", "caption": CAPTIONS[split],
                            "multilabel": multilabel(CAPTIONS[split])})
        text = json.dumps(records) if layout_of[split] == "list" else "".join(json.dumps(r) + "\n" for r in records)
        (root / name).write_text(text)
    (root / "README.json").write_text("{}")  # not an annotation file: no split in its name
    return root


@pytest.mark.parametrize("layouts", [("list", "list", "list"), ("lines", "list", "lines")])
def test_a_v2_release_folder_imports_every_split(tmp_path, layouts):
    src = _release(tmp_path / "MMTT", dict(zip(("train", "eval", "test"), layouts, strict=True)))
    report = import_mmtt(src, tmp_path / "bench", strict=True)
    bench = load_benchmark(report.out)
    by_id = {s.id: s for s in bench.samples}
    assert sorted({s.split for s in bench.samples}) == ["test", "train", "val"]
    assert by_id["eval-1"].split == "val" and by_id["eval-1"].meta["instance_id"] == 11
    labels = by_id["test-0"].meta["multilabel"]
    assert [r for r, v in zip(FACE_REGIONS, labels, strict=True) if v] == ["forehead", "chin", "wrinkle"]
    assert all(s.mask for s in bench.samples) and report.warnings == []


def test_malformed_or_disagreeing_multilabel_is_named(tmp_path):
    src = _release(tmp_path / "MMTT", {"train": "list", "eval": "list", "test": "list"})
    path = src / "test-mutilabel.json"
    records = json.loads(path.read_text())
    records[0]["multilabel"] = [1] * 3  # not 21 values
    records[1]["multilabel"] = [0] * 21  # 21 values, but the caption names three regions
    path.write_text(json.dumps(records))
    report = import_mmtt(path, tmp_path / "bench")
    assert [r for r, _ in report.skipped] == ["record 0 (image_id 'test-0')"]
    assert "'multilabel' must be 21 zeros and ones" in report.skipped[0][1]
    assert report.warnings == [("record 1 (image_id 'test-1')",
                                "'multilabel' differs from the regions the caption names in: forehead, chin, wrinkle")]
    with pytest.raises(InputError, match=r"test-mutilabel.json: record 0 \(image_id 'test-0'\): malformed record"):
        import_mmtt(path, tmp_path / "strict", strict=True)


def test_a_folder_without_annotation_files_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no MMTT annotation file"):
        import_mmtt(tmp_path / "empty", tmp_path / "bench")
