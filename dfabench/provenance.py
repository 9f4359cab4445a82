"""Where a plugin's code comes from, and the hash that pins it when its version cannot.

A regular install is identified by its distribution's version. A distribution installed editable
(``pip install -e``) or a module loaded without one (``DFABENCH_PLUGINS``) can change under the same
version: :func:`source_sha256` hashes its package's source so that a run's model fingerprint changes
with the code (:meth:`dfabench.entries.ModelEntry.source_identity`).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

#: the distribution recorded for a plugin module loaded through DFABENCH_PLUGINS
ENV_DISTRIBUTION = "(DFABENCH_PLUGINS)"


def install_kind(distribution: str) -> str | None:
    """``"editable"`` for a distribution installed with ``pip install -e`` (PEP 610 ``direct_url.json``
    with ``dir_info.editable``), ``"unpackaged"`` when no such distribution is installed, else ``None``."""
    import json

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return "unpackaged"
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except (OSError, ValueError):
        return None
    return "editable" if isinstance(direct, dict) and (direct.get("dir_info") or {}).get("editable") else None


def _source_files(module_name: str) -> list[tuple[str, str]]:
    """``(label, path)`` of the ``*.py`` files of the top-level package (or single module) holding
    ``module_name``, without importing anything that is not imported yet."""
    import importlib.util
    import os
    import sys

    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    try:
        spec = module.__spec__ if module is not None else importlib.util.find_spec(top)
    except Exception:  # noqa: BLE001 - not an importable name (a plugin object given in code): no source
        spec = None
    if spec is None:
        return []
    folders = list(spec.submodule_search_locations or ())
    if not folders:
        return [(f"{top}.py", spec.origin)] if spec.origin and spec.origin.endswith(".py") else []
    files = []
    for folder in folders:
        for base, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(base, name)
                    files.append((f"{top}/{os.path.relpath(path, folder).replace(os.sep, '/')}", path))
    return files


def source_sha256(module_names: Iterable[str]) -> str | None:
    """SHA-256 over the source of the packages holding these modules: each ``*.py`` file's path
    (relative to its package, sorted) and bytes. ``None`` when none of them has source files."""
    import hashlib

    files = dict(f for name in module_names for f in _source_files(name))
    if not files:
        return None
    digest = hashlib.sha256(b"dfabench-plugin-source-v1\0")
    for label in sorted(files):
        try:
            with open(files[label], "rb") as handle:
                data = handle.read()
        except OSError:
            data = b"(unreadable)"
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        from dfabench import __version__

        return __version__
