"""The records, each defined once: the run record, the per-sample record, the model and the judge identity;
validation and the published JSON Schema.

A run folder's ``run.json`` (written by :mod:`dfabench.runner`, re-written by ``score`` and ``judge``)
and each line of its ``samples-<TASK>.jsonl`` are untrusted input when they are read back: a
leaderboard entry, a folder sent by someone else, a file edited by hand. Everything that reads them
goes through this module:

- :func:`load_json` / :func:`loads_json` parse JSON and refuse nesting deeper than
  :data:`MAX_JSON_DEPTH` levels with one clear line (never a ``RecursionError``);
- :func:`validate_run_record` checks a run record against :data:`RUN_RECORD` and raises
  :class:`~dfabench.errors.InputError` ``(path, "<json path>: <problem>")`` for the first problem;
- :func:`sample_record_problem` is the fast check of the per-sample fields scoring relies on (it
  runs for every sample);
- :func:`json_schema` turns the same definitions into JSON Schema (draft 2020-12); the files in
  ``dfabench/resources/schema/`` are generated from it (``python -m dfabench.records`` rewrites them)
  and a test keeps them equal.

The definitions are strict on the types of the fields that exist and permissive on additions: a
field this version does not know is accepted (newer dfabench versions and plugins add fields), a
known field of the wrong type is refused.

The package's modules: :mod:`~dfabench.records.jsontext` (JSON with a depth limit),
:mod:`~dfabench.records.types` (the schema language), :mod:`~dfabench.records.run` and
:mod:`~dfabench.records.sample` (the definitions and their checks), :mod:`~dfabench.records.identity`
(:class:`ModelIdentity`, :class:`JudgeIdentity`) and :mod:`~dfabench.records.schema` (JSON Schema). Import
from the package: the names below are its API.
"""

from __future__ import annotations

from dfabench.records.identity import (
    GRADER_FIELDS,
    JudgeIdentity,
    ModelIdentity,
    judge_without_tasks,
    model_fingerprint,
    run_judge_identity,
)
from dfabench.records.jsontext import MAX_JSON_DEPTH, depth_problem, load_json, loads_json, nesting_problem
from dfabench.records.run import COUNTS, MODEL, RUN_RECORD, run_record_problem, validate_run_record
from dfabench.records.sample import ENTRY_META, SAMPLE_JUDGE, SAMPLE_RECORD, load_entry_meta, sample_record_problem
from dfabench.records.schema import SCHEMA_DIR, SCHEMA_FILES, json_schema, schema_text, write_schemas

__all__ = [
    "COUNTS", "ENTRY_META", "GRADER_FIELDS", "MAX_JSON_DEPTH", "MODEL", "RUN_RECORD", "SAMPLE_JUDGE", "SAMPLE_RECORD",
    "SCHEMA_DIR", "SCHEMA_FILES", "JudgeIdentity", "ModelIdentity", "depth_problem", "json_schema",
    "judge_without_tasks", "load_entry_meta", "load_json", "loads_json", "model_fingerprint", "nesting_problem",
    "run_judge_identity", "run_record_problem", "sample_record_problem", "schema_text", "validate_run_record",
    "write_schemas",
]
