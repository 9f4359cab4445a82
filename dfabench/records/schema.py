"""The published JSON Schema of the records, generated from their definitions (draft 2020-12).

The files in ``dfabench/resources/schema/`` are written by ``python -m dfabench.records``; a test keeps them
equal to what this module generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfabench.files import SCHEMA_VERSION
from dfabench.records.jsontext import MAX_JSON_DEPTH
from dfabench.records.run import COUNT, COUNTS, RUN_RECORD
from dfabench.records.sample import SAMPLE_RECORD

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "resources" / "schema"
SCHEMA_FILES = {"run-record": "run-record.schema.json", "sample-record": "sample-record.schema.json"}

_TITLES = {"run-record": ("dfabench run record (run.json)", RUN_RECORD),
           "sample-record": ("dfabench per-sample record (one line of samples-<TASK>.jsonl)", SAMPLE_RECORD)}


def json_schema(kind: str = "run-record") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``run-record`` or ``sample-record``, generated from the
    same definitions :func:`validate_run_record` and :func:`sample_record_problem` check."""
    title, root = _TITLES[kind]
    schema = root.schema()
    if kind == "run-record":
        # the three counts every task has (the definition checks them in run_record_problem)
        schema["properties"]["counts"]["additionalProperties"] = {
            **COUNTS.schema(), "additionalProperties": COUNT.schema()}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:dfabench:schema:{kind}:{SCHEMA_VERSION}",
            "title": title, "x-dfabench-schema-version": SCHEMA_VERSION, "x-max-depth": MAX_JSON_DEPTH,
            **schema}


def schema_text(kind: str) -> str:
    """The JSON Schema as it is committed in ``dfabench/resources/schema/``."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """(Re)write the published JSON Schema files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in SCHEMA_FILES.items():
        (directory / name).write_text(schema_text(kind), encoding="utf-8")
        written.append(directory / name)
    return written
