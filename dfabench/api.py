"""The plugin SDK: everything a dfabench plugin may import, in one place.

A plugin imports from here (and nothing else of dfabench); the modules behind these names are
internal and may move. First-party plugins (``plugins/dfabench-*``) follow this rule, checked by
``tests/test_api.py``.

Registering (a plugin's ``plugin.py``, its ``dfabench`` entry point):

- :data:`hookimpl`: marks the hook implementations (``dfabench_register_models``, ``_tasks``,
  ``_importers``, ``_metrics``, ...; see :mod:`dfabench.hookspecs`).

The model contract (what a model class implements and receives):

- :class:`Model` (the base class), :data:`CAPABILITIES` (``generate``, ``score``, ``localize``);
- :class:`GenerateRequest` with :class:`GenerationSettings` -> :class:`Response`;
- :class:`ScoreRequest` -> :class:`Scores`.

Errors (shown as one line, exit code 2):

- :class:`DfabenchError`; :class:`InputError` (``InputError(path, problem[, where])``: bad input naming the file).

Talking to services, and secrets:

- :func:`retry_after_seconds` (a ``Retry-After`` header, in seconds);
- :func:`redact`, :func:`redact_clip` (an error text with credentials removed) and
  :func:`register_secret` (a value to remove from everything dfabench writes or shows).

Benchmarks, images and masks:

- :func:`load_benchmark` -> :class:`Benchmark` of :class:`Sample`; :func:`resolve_bench` (a path or
  ``smoke``); :data:`LABELS`, :data:`CATEGORIES`;
- :func:`open_rgb` (an image file, decoded as dfabench decodes it, pixel limit applied);
- :func:`roc_auc` (the AUC of probabilities of fake, as the DF-D metric computes it: ties get half credit),
  for a detector that selects its checkpoint on a validation split;
- :func:`load_mask` (a forgery mask as a boolean array) and :func:`mask_scores` (IoU, precision,
  recall, F1 of a predicted mask, the FL protocol).

Commands: plugins add subcommands with the ``dfabench_register_commands`` hook;
:func:`cli_main` (``cli_main(argv) -> exit code``) runs a ``dfabench`` command line, for a plugin's
old console script kept as an alias.

Files:

- :func:`cache_dir` (``$DFABENCH_CACHE_DIR`` or ``~/.cache/dfabench``: where a plugin keeps trained
  weights, in a folder of its own); :func:`load_or_train` (a trained model kept there: loaded when sound, else
  trained and saved; a read-only cache is no error); :func:`atomic_write_text` (a file written whole or not at all);
  :func:`sha256_file`.

Importing this module is light: every plugin's ``plugin.py`` imports it when the CLI starts, so the
benchmark, image and mask helpers (their modules are not otherwise needed by ``dfabench --help``)
are imported on first use, through :func:`__getattr__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dfabench import hookimpl
from dfabench.data import cache_dir, load_or_train, resolve_bench
from dfabench.errors import DfabenchError, InputError
from dfabench.models import (
    CAPABILITIES,
    GenerateRequest,
    GenerationSettings,
    Model,
    Response,
    ScoreRequest,
    Scores,
)
from dfabench.redact import redact, redact_clip, register_secret
from dfabench.retry import retry_after_seconds
from dfabench.store import atomic_write_text, sha256_file
from dfabench.vocab import CATEGORIES, LABELS

if TYPE_CHECKING:
    from dfabench.cli import main as cli_main
    from dfabench.data.manifest import Benchmark, Sample, load_benchmark
    from dfabench.images import open_rgb
    from dfabench.metrics.localization import load_mask, mask_scores
    from dfabench.metrics.ranking import roc_auc

#: names imported on first use (to keep the CLI start light) -> (the module that defines them, their name there)
_LAZY = {
    "Benchmark": ("dfabench.data.manifest", "Benchmark"),
    "Sample": ("dfabench.data.manifest", "Sample"),
    "load_benchmark": ("dfabench.data.manifest", "load_benchmark"),
    "open_rgb": ("dfabench.images", "open_rgb"),
    "load_mask": ("dfabench.metrics.localization", "load_mask"),
    "mask_scores": ("dfabench.metrics.localization", "mask_scores"),
    "roc_auc": ("dfabench.metrics.ranking", "roc_auc"),
    "cli_main": ("dfabench.cli", "main"),
}

__all__ = [
    "CAPABILITIES",
    "CATEGORIES",
    "LABELS",
    "Benchmark",
    "DfabenchError",
    "GenerateRequest",
    "GenerationSettings",
    "InputError",
    "Model",
    "Response",
    "Sample",
    "ScoreRequest",
    "Scores",
    "atomic_write_text",
    "cache_dir",
    "cli_main",
    "hookimpl",
    "load_benchmark",
    "load_mask",
    "load_or_train",
    "mask_scores",
    "open_rgb",
    "redact",
    "redact_clip",
    "register_secret",
    "resolve_bench",
    "retry_after_seconds",
    "roc_auc",
    "sha256_file",
]


def __getattr__(name: str) -> Any:
    """Import a lazily exported name (:data:`_LAZY`) on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
