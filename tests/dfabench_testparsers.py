"""A test plugin that adds a parser and a task spec using it (loaded through DFABENCH_PLUGINS).

- parser ``verdict``: a ``VERDICT: REAL`` / ``VERDICT: FAKE`` line -> ``real`` / ``fake`` (else ``None``);
- task ``VERDICT-D``: DF-D's samples and metrics, answered with that line and parsed by ``verdict``;
- when ``DFABENCH_TEST_TASK_YAML`` names a file, that task spec is registered too (tests of bad specs).
"""

from __future__ import annotations

import os
import re

from dfabench import hookimpl

_VERDICT = re.compile(r"verdict:\s*(real|fake)\b", re.I)


def parse_verdict(text: str | None, options=None) -> str | None:
    found = _VERDICT.search(text or "")
    return found.group(1).lower() if found else None


@hookimpl
def dfabench_register_parsers(register):
    register("verdict", "dfabench_testparsers:parse_verdict", description="VERDICT: REAL/FAKE -> real/fake")


@hookimpl
def dfabench_register_tasks(register):
    register({"id": "VERDICT-D", "version": "1", "requires": "generate", "samples": "all", "reference": "label",
              "prompt": "Is this face real or fake? Answer with one line: VERDICT: REAL or VERDICT: FAKE.",
              "parser": "verdict", "metrics": "detection"})
    extra = os.environ.get("DFABENCH_TEST_TASK_YAML")
    if extra:
        register(extra)
