"""The run record (``run.json``): its definition, checked on every read, and its validation."""

from __future__ import annotations

from typing import Any

from dfabench.errors import InputError
from dfabench.files import SCHEMA_VERSION
from dfabench.records.types import (
    BOOL,
    CAPABILITY,
    COUNT,
    COUNT_OR_NULL,
    FILE_NAME,
    INT,
    NUMBER_OR_NULL,
    SHA256,
    STR,
    STR_OR_NULL,
    AnyValue,
    ListOf,
    MapOf,
    Obj,
    Scalar,
    path_of,
)

METRIC = Obj({
    "value": Scalar("number", "null", description="the number; null when it cannot be computed (see reason)"),
    "ci_low": NUMBER_OR_NULL,
    "ci_high": NUMBER_OR_NULL,
    "n": Scalar("integer", minimum=0, description="samples the number is computed over"),
    "reason": Scalar("string", "null", description="why value is null"),
    "unavailable": Scalar("boolean", description="true when a resource it needs is not installed here"),
}, required=("value", "ci_low", "ci_high", "n"))

COUNTS = Obj({
    "n": COUNT, "n_failed": COUNT, "n_unparsed": COUNT,
}, required=("n", "n_failed", "n_unparsed"))

MODEL = Obj({
    "name": STR,
    "plugin": STR_OR_NULL,
    "distribution": STR_OR_NULL,
    "version": STR_OR_NULL,
    "args": MapOf(AnyValue(), description="the --model-arg values"),
    "identity": MapOf(AnyValue(), description="what the model adds to its identity (weights hash, endpoint model id)"),
    "capabilities": ListOf(CAPABILITY),
    "operational_args": ListOf(STR, description="arguments that do not change answers (out of the fingerprint)"),
    "source": Obj({"install": Scalar("string", enum=("editable", "unpackaged")), "sha256": SHA256},
                  description="hash of the plugin's source files, for editable and unpackaged plugins"),
    "fingerprint": STR,
}, required=("name",), description="the model's identity: it keys the response cache")

BENCHMARK = Obj({
    "path": STR_OR_NULL,
    "name": STR_OR_NULL,
    "description": STR_OR_NULL,
    "fingerprint": STR,
    "split": STR_OR_NULL,
    "n_samples": COUNT_OR_NULL,
}, required=("fingerprint",))

GENERATION = Obj({
    "max_new_tokens": INT, "temperature": Scalar("number"), "top_p": Scalar("number"), "seed": INT,
})

SELECTION = Obj({
    "split": STR_OR_NULL, "limit": COUNT_OR_NULL, "n": COUNT, "n_available": COUNT, "n_pool": COUNT,
    "excluded": MapOf(COUNT), "ids_sha256": STR,
    "frames_per_video": Scalar("integer", minimum=1, description="--frames-per-video: at most this many frames of each "
                               "video were taken (absent: every frame)"),
    "frames_seed": Scalar("integer", description="the seed of the frame sampling (with frames_per_video)"),
}, description="which samples of the split the task asked (dfabench.selection)")

TASK = Obj({
    "version": STR,
    "fingerprint": STR,
    "spec": MapOf(AnyValue(), description="the task spec the run used (TaskSpec.canonical)"),
    "capability": Scalar("string", "null", enum=("generate", "score", "localize")),
    "status": STR,
    "generation": GENERATION,
    "selection": SELECTION,
    "variant": Scalar("string", description="the prompt variant this task is (TASK@NAME; absent: the default)"),
    "base": Scalar("string", description="the task a prompt variant paraphrases"),
}, required=("version", "fingerprint", "spec"))

SPREAD = Obj({
    "values": MapOf(NUMBER_OR_NULL, description="variant name -> its value"),
    "min": NUMBER_OR_NULL, "max": NUMBER_OR_NULL, "range": NUMBER_OR_NULL,
    "std": Scalar("number", "null", description="population standard deviation (ddof 0) across the variants"),
    "reason": STR,
}, required=("values", "min", "max", "range", "std"))

VARIANTS = Obj({
    "tasks": MapOf(STR, description="variant name (default: the spec's own prompt) -> task key"),
    "spread": MapOf(SPREAD, description="metric (and unparsed_rate) -> the spread across the variants"),
    "reason": STR,
}, required=("tasks",), description="the prompt variants of one task (dfabench.scoring.variant_summary)")

SAMPLES_FILE = Obj({
    "file": FILE_NAME,
    "sha256": SHA256,
    "masks": MapOf(SHA256, description="path of each predicted mask the log names -> its SHA-256 (schema 2)"),
}, required=("file", "sha256"))

JUDGE_TASK = Obj({
    "model": STR_OR_NULL, "rubric": STR_OR_NULL, "rubric_version": Scalar("string", "integer", "null"),
    "rubric_sha256": STR_OR_NULL, "with_image": BOOL, "n_judged": COUNT, "n_failed": COUNT,
})

JUDGE = Obj({
    "model": STR_OR_NULL, "rubric": STR_OR_NULL, "rubric_version": Scalar("string", "integer", "null"),
    "rubric_sha256": STR_OR_NULL, "with_image": BOOL, "endpoint": STR_OR_NULL,
    "tasks": MapOf(JUDGE_TASK), "last_run": MapOf(AnyValue()),
}, nullable=True, description="the judge identity (never a key); null when the run was not judged")

ENVIRONMENT = Obj({
    "python": STR, "platform": STR, "packages": MapOf(STR),
})

RUN_RECORD = Obj({
    "schema_version": Scalar("integer", minimum=1, maximum=SCHEMA_VERSION),
    "dfabench_version": STR,
    "created": STR,
    "updated": STR,
    "command": ListOf(STR),
    "model": MODEL,
    "benchmark": BENCHMARK,
    "tasks": MapOf(TASK, description="task id -> what was run"),
    "seed": INT,
    "limit": COUNT_OR_NULL,
    "n_boot": Scalar("integer", minimum=1),
    "environment": ENVIRONMENT,
    "judge": JUDGE,
    "metrics": MapOf(MapOf(METRIC), description="task id -> metric name -> number"),
    "counts": MapOf(MapOf(COUNT), description="task id -> n, n_failed, n_unparsed and further counts"),
    "breakdowns": MapOf(MapOf(AnyValue()), description="task id -> tables that are not one number"),
    "samples": MapOf(SAMPLES_FILE, description="task id -> its per-sample log"),
    "variants": MapOf(VARIANTS, description="task id -> its prompt variants and their spread (only when run)"),
}, required=("schema_version", "dfabench_version", "model", "benchmark", "tasks", "metrics", "counts", "samples"),
    description="run.json: the record of one run folder (DESIGN.md, 'Stages and files')")


def run_record_problem(record: Any) -> str | None:
    """The first problem of a decoded run record, as ``"<json path>: <problem>"`` (None: valid)."""
    if not isinstance(record, dict) or "schema_version" not in record:
        return "not a dfabench run record (no schema_version)"
    version = record["schema_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return (f"schema version {version} is newer than this dfabench understands ({SCHEMA_VERSION}); "
                "upgrade dfabench")
    problem = RUN_RECORD.problem(record, "$")
    if problem:
        return problem
    # the counts of each task: n, n_failed, n_unparsed are required (further counts are integers)
    for task_id, counts in record["counts"].items():
        problem = COUNTS.problem(counts, path_of(path_of("$", "counts"), task_id))
        if problem:
            return problem
    return None


def validate_run_record(record: Any, path: Any) -> dict[str, Any]:
    """Return ``record`` when it is a valid run record; else raise :class:`InputError` ``(path, problem)``."""
    problem = run_record_problem(record)
    if problem is not None:
        raise InputError(path, problem)
    return record
