"""Importers: public dataset layouts -> dfabench benchmarks (``dfabench import FORMAT SRC --out DIR``).

Each importer reads an index / annotation file, turns every record it can into a manifest record,
materialises the images (and masks) inside ``out`` (a benchmark's paths are relative to its folder)
and returns an :class:`ImportReport`. A record that cannot be imported (a missing image file, an
unknown label, an unparseable answer, a malformed entry) is listed in ``ImportReport.skipped`` with
the reason, and also in ``out/import-report.json``; with ``strict=True`` the first such record
raises an :class:`~dfabench.errors.InputError` naming the file and the record instead. A file
that is not valid JSON raises an ``InputError`` naming the file. When nothing can be imported,
nothing is written.

Common options:

- ``root``: the folder relative image paths are resolved against (default: the index file's folder);
- ``replace_prefix=(old, new)``: published index files carry their authors' absolute paths;
  a path starting with ``old`` gets ``new`` instead (before it is resolved);
- ``copy``: ``"link"`` (default: a hard link when the file system allows it, else a copy) or
  ``"copy"``. Symbolic links are not offered: the core refuses links that leave the benchmark folder.

Formats: :func:`import_df40` (DeepfakeBench / DF40 index JSON), :func:`import_dfa_instruct`
(DFA-Instruct-style LLaVA conversation JSON), :func:`import_mmtt` (MMTT / ForgeryTalker annotations),
:func:`import_ddvqa` (DD-VQA question/answer annotations of FaceForensics++ frames).

Layout: :mod:`~dfabench.data.importers.base` holds the shared machinery, one module per format the rest
(:mod:`~dfabench.data.importers.df40`, :mod:`~.dfa_instruct`, :mod:`~.mmtt`, :mod:`~.ddvqa`); the names
below are re-exported here, where the built-in plugin registers them.
"""

from dfabench.data.importers.base import COPY_MODES, REPORT_FILE, ImportReport
from dfabench.data.importers.ddvqa import DDVQA_MANIPULATIONS, ddvqa_key, import_ddvqa
from dfabench.data.importers.df40 import df40_label, import_df40
from dfabench.data.importers.dfa_instruct import import_dfa_instruct, question_polarity, question_task
from dfabench.data.importers.mmtt import import_mmtt

__all__ = ["COPY_MODES", "DDVQA_MANIPULATIONS", "REPORT_FILE", "ImportReport", "ddvqa_key", "df40_label",
           "import_ddvqa", "import_df40", "import_dfa_instruct", "import_mmtt", "question_polarity", "question_task"]
