"""``dfabench verify`` re-derives numbers exactly, except those of a metric provider that declares a tolerance
(numbers from floating-point model inference, e.g. sentence embeddings, differ across CPUs in the last
digits): those agree within the tolerance, and the report says so. The committed leaderboard entries were
scored on another machine than CI's; their embedding similarity is what made this necessary."""

from __future__ import annotations

import json

import pytest

from dfabench.errors import DfabenchError
from dfabench.plugins import PluginManager


def _run(cli, monkeypatch, tiny_bench, tmp_path):
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testparsers")
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "constant", "--model-arg", "text=VERDICT: FAKE", "--tasks", "VERDICT-D",
                       "--bench", str(tiny_bench), "--out", str(out), "--no-progress")
    assert code == 0, err
    return out


def _nudge(out, metric: str, delta: float) -> None:
    path = out / "run.json"
    record = json.loads(path.read_text())
    record["metrics"]["VERDICT-D"][metric]["value"] += delta
    path.write_text(json.dumps(record))


def test_a_tolerant_metric_verifies_within_its_tolerance_and_says_so(cli, monkeypatch, tiny_bench, tmp_path):
    out = _run(cli, monkeypatch, tiny_bench, tmp_path)
    _nudge(out, "fake_rate", 5e-5)
    code, stdout, _ = cli("verify", str(out))
    assert code == 0, stdout
    assert "fake_rate to within 0.0001, its declared tolerance" in stdout


def test_the_verify_line_is_the_same_whether_or_not_this_machine_needed_the_tolerance(cli, monkeypatch, tiny_bench,
                                                                                     tmp_path):
    """The leaderboard's per-entry report quotes verify's lines: they must not depend on the machine's last digits
    (the committed reports were byte-different on a machine whose embeddings matched exactly)."""
    out = _run(cli, monkeypatch, tiny_bench, tmp_path)
    code, exact, _ = cli("verify", str(out))
    assert code == 0
    _nudge(out, "fake_rate", 5e-5)
    code, nudged, _ = cli("verify", str(out))
    assert code == 0

    def line(stdout):
        return next(x for x in stdout.splitlines() if "metrics re-derived" in x)

    assert line(exact) == line(nudged) and "fake_rate to within 0.0001" in line(exact)


def test_beyond_the_tolerance_it_fails(cli, monkeypatch, tiny_bench, tmp_path):
    out = _run(cli, monkeypatch, tiny_bench, tmp_path)
    _nudge(out, "fake_rate", 2e-4)
    code, stdout, _ = cli("verify", str(out))
    assert code == 1 and "FAIL" in stdout and "fake_rate.value" in stdout


def test_an_exact_metric_gets_no_tolerance(cli, monkeypatch, tiny_bench, tmp_path):
    out = _run(cli, monkeypatch, tiny_bench, tmp_path)
    _nudge(out, "accuracy", 1e-7)
    code, stdout, _ = cli("verify", str(out))
    assert code == 1 and "accuracy.value" in stdout


def test_the_embedding_provider_declares_a_tolerance_and_a_bad_one_is_refused():
    manager = PluginManager(load_entry_points=False)
    assert 0 < manager.metrics.get("embedding_similarity").tolerance <= 1e-4
    assert manager.metrics.get("detection").tolerance == 0

    import types

    from dfabench import hookimpl

    module = types.ModuleType("bad_tolerance")
    module.dfabench_register_metrics = hookimpl(lambda register: register("m", lambda r, c: None, tolerance=2))
    manager = PluginManager(load_entry_points=False, extra_plugins=[module])
    broken = [p for p in manager.plugins if p.name == "bad_tolerance"]
    assert broken and "tolerance must be a number" in broken[0].error
    with pytest.raises(DfabenchError):
        manager.metrics.get("m")
