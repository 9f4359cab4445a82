"""Benchmark data: manifests, fingerprints, importers, the smoke benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """dfabench's cache folder: ``$DFABENCH_CACHE_DIR``, else ``~/.cache/dfabench``."""
    return Path(os.environ.get("DFABENCH_CACHE_DIR") or Path.home() / ".cache" / "dfabench")


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
