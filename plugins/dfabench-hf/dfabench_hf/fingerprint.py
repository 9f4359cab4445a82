"""Fingerprints of checkpoint files, for model identities.

A file is hashed whole when it is at most :data:`WHOLE_FILE_LIMIT` bytes; a bigger one (a
weight shard of several GB) by its size and its first and last :data:`EDGE_BYTES` bytes.
For safetensors the first block holds the header (every tensor's name, dtype, shape and
offsets) and the start of the data, so a changed architecture, dtype or fine-tune changes
the fingerprint while hashing a 14 GB checkpoint takes milliseconds. A change confined to
the middle of a big shard is not seen: that is the documented price.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

WHOLE_FILE_LIMIT = 32 * 1024 * 1024
EDGE_BYTES = 1024 * 1024
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".index.json", ".npz", ".h5", ".msgpack")
#: files that change the prompts and the decoding, beside the weights
PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json",
                   "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file (whole, or size + first and last MiB for a big one)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= WHOLE_FILE_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(f"partial:{size}:".encode())
            digest.update(handle.read(EDGE_BYTES))
            handle.seek(size - EDGE_BYTES)
            digest.update(handle.read(EDGE_BYTES))
    return digest.hexdigest()


def files_digest(folder: str | Path, names: Iterable[str]) -> str | None:
    """One SHA-256 over ``name, size, file_digest`` of each named file (sorted); ``None`` if none."""
    folder = Path(folder)
    digest = hashlib.sha256()
    count = 0
    for name in sorted(set(names)):
        path = folder / name
        digest.update(f"{name}\0{path.stat().st_size}\0{file_digest(path)}\n".encode())
        count += 1
    return digest.hexdigest() if count else None


def list_files(folder: str | Path) -> list[str]:
    """Relative paths of the regular files under ``folder`` (symbolic links followed, dot files skipped)."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or name.endswith(".lock"):
                continue
            found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


def is_weight_file(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES)


def checkpoint_fingerprint(folder: str | Path) -> dict[str, str | None]:
    """``weights_sha256`` (weight files), ``config_sha256`` (config.json, generation_config.json)
    and ``processor_sha256`` (tokenizer, chat template, image processor) of a checkpoint folder."""
    names = list_files(folder)
    return {
        "weights_sha256": files_digest(folder, [n for n in names if is_weight_file(n)]),
        "config_sha256": files_digest(folder, [n for n in names if n in ("config.json", "generation_config.json")]),
        "processor_sha256": files_digest(folder, [n for n in names if n in PROCESSOR_FILES]),
    }


def module_fingerprint(module) -> str:
    """SHA-256 over a loaded torch module's parameter names, shapes, dtypes and first 4096
    values (for checkpoints whose files cannot be found)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)[:4096].float().cpu().numpy()
        digest.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\n".encode())
        digest.update(flat.tobytes())
    return digest.hexdigest()


def local_checkpoint_folder(path: str, revision: str | None = None) -> tuple[Path | None, str | None]:
    """The local folder holding the checkpoint's files, and the hub commit it was resolved to.

    A local folder is returned as it is (no revision). A hub name is looked up in the
    huggingface cache (where ``from_pretrained`` put it); its snapshot folder is named by
    the commit hash.
    """
    local = Path(path).expanduser()
    if local.is_dir():
        return local, None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return None, None
    cached = try_to_load_from_cache(path, "config.json", revision=revision)
    if isinstance(cached, str):
        snapshot = Path(cached).parent
        return snapshot, snapshot.name
    return None, None
