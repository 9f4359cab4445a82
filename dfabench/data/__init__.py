"""Benchmark data: manifests, fingerprints, importers, the smoke benchmark."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def cache_dir() -> Path:
    """dfabench's cache folder: ``$DFABENCH_CACHE_DIR``, else ``~/.cache/dfabench``."""
    return Path(os.environ.get("DFABENCH_CACHE_DIR") or Path.home() / ".cache" / "dfabench")


def load_or_train(path: Path, load: Callable[[Path], T], train: Callable[[], T]) -> tuple[T, Path | None]:
    """A trained model kept in the cache folder: the one at ``path`` when it is there and sound, else trained.

    ``load(path)`` raises :class:`~dfabench.errors.InputError` for a damaged file, which is then trained again and
    replaced; a fresh model is kept with its ``save(path)``. Returns the model and the file it is kept in, or
    ``None`` when the cache cannot be written (a read-only cache: the model is used without being kept).
    """
    from dfabench.errors import InputError

    if path.is_file():
        try:
            return load(path), path
        except InputError:
            pass  # a damaged cache entry: train again and replace it
    model = train()
    try:
        model.save(path)  # type: ignore[attr-defined]
    except OSError:
        return model, None
    return model, path


def resolve_bench(value: str | Path, seed: int = 0) -> Path:
    """A benchmark folder as given, or for ``smoke`` the built-in smoke benchmark (built once into
    the cache folder on first use) unless ``./smoke`` is itself a benchmark folder."""
    if str(value) != "smoke" or (Path(value) / "manifest.jsonl").exists():
        return Path(value)
    from dfabench.data.smoke import ensure_smoke, is_smoke_build

    root = cache_dir() / f"smoke-seed{seed}"
    if not is_smoke_build(root, seed=seed, size="default"):
        print(f"building the smoke benchmark into {root} ...", file=sys.stderr)
    return ensure_smoke(root, seed=seed)
