"""A test plugin that adds a parser, a sample filter and task specs using them (loaded through DFABENCH_PLUGINS).

- parser ``verdict``: a ``VERDICT: REAL`` / ``VERDICT: FAKE`` line -> ``real`` / ``fake`` (else ``None``);
- sample filter ``named-technique``: the fakes whose technique is known ("fake without a technique" else);
- metric ``fake_rate``: the share of answers read as fake, declared reproducible to ``tolerance=1e-4`` only
  (as a provider whose numbers come from model inference would);
- task ``VERDICT-D``: DF-D's samples and metrics (and ``fake_rate``), answered with that line and parsed by
  ``verdict``;
- task ``VERDICT-T``: the same question, of the fakes with a known technique only;
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


def take_named_technique(task, sample) -> str | None:
    if sample.label != "fake":
        return "real (the task takes fakes)"
    return None if sample.technique else "fake without a technique"


def fake_rate(records, context):
    from dfabench.metrics import MetricOutput, MetricResult

    answered = [r for r in records if r.get("parsed") is not None]
    value = sum(r["parsed"] == "fake" for r in answered) / len(answered) if answered else None
    result = MetricResult(value, None, None, len(answered)) if value is not None else MetricResult.undefined(
        "no parsed answer", n=0)
    return MetricOutput(metrics={"fake_rate": result})


@hookimpl
def dfabench_register_metrics(register):
    register("fake_rate", "dfabench_testparsers:fake_rate", description="share of answers read as fake",
             tolerance=1e-4)


@hookimpl
def dfabench_register_sample_filters(register):
    register("named-technique", "dfabench_testparsers:take_named_technique",
             description="the fakes whose technique is known")


_VERDICT_TASK = {"version": "1", "requires": "generate", "reference": "label",
                 "prompt": "Is this face real or fake? Answer with one line: VERDICT: REAL or VERDICT: FAKE.",
                 "parser": "verdict", "metrics": "detection"}


@hookimpl
def dfabench_register_tasks(register):
    register({"id": "VERDICT-D", "samples": "all", **_VERDICT_TASK, "metrics": "detection, fake_rate"})
    register({"id": "VERDICT-T", "samples": "named-technique", "order": 15, **_VERDICT_TASK})
    extra = os.environ.get("DFABENCH_TEST_TASK_YAML")
    if extra:
        register(extra)
