"""Build small benchmark folders for tests (no dataset needed)."""

from __future__ import annotations

import json
from pathlib import Path

CATEGORIES = ("FS", "FR", "FE", "EFS")
TECHNIQUES = {"FS": "simswap", "FR": "fomm", "FE": "stylegan2_edit", "EFS": "stylegan3"}


def make_benchmark(root: Path, n_real: int = 8, n_per_category: int = 3, size: int = 16, split: str = "test",
                   with_description: bool = True, with_masks: bool = False,
                   extra_records: list[dict] | None = None) -> Path:
    """Write ``root/manifest.jsonl`` and small PNG images; return ``root``."""
    import numpy as np
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    index = 0

    def add(label: str, category: str | None) -> None:
        nonlocal index
        image = f"images/{index:04d}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / image)
        record = {"id": f"s{index:04d}", "image": image, "label": label, "category": category,
                  "technique": TECHNIQUES[category] if category else None, "source_id": f"src{index // 2}",
                  "split": split}
        if label == "fake" and with_description:
            record["description"] = f"1. Eyes: blurred edges around the eyes. 2. Mouth: color mismatch {index}."
        if label == "fake" and with_masks:
            (root / "masks").mkdir(exist_ok=True)
            mask = np.zeros((size, size), dtype=np.uint8)
            mask[: size // 2, :] = 255  # the top half is forged
            Image.fromarray(mask).save(root / f"masks/{index:04d}.png")
            record["mask"] = f"masks/{index:04d}.png"
        records.append(record)
        index += 1

    for _ in range(n_real):
        add("real", None)
    for category in CATEGORIES:
        for _ in range(n_per_category):
            add("fake", category)
    records.extend(extra_records or [])
    with open(root / "manifest.jsonl", "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return root


def submitted_entries(cli, bench: Path, tmp_path: Path) -> Path:
    """Three entries of DF-D and DF-C on ``bench``: ``constant``, ``random-1`` and ``random-2`` (other seeds)."""
    folder = tmp_path / "entries"
    for name, args in (("constant", []), ("random-1", ["--model-arg", "seed=1"]), ("random-2", ["--model-arg",
                                                                                                 "seed=2"])):
        run = tmp_path / "runs" / name
        assert cli("run", "--model", name.split("-")[0], *args, "--tasks", "DF-D,DF-C", "--bench", str(bench),
                   "--out", str(run), "--no-progress")[0] == 0
        assert cli("leaderboard", "submit", str(run), "--entries", str(folder), "--name", name)[0] == 0
    return folder
