"""Fixes from the QA pass as a new user that have no better home among the test files."""

from __future__ import annotations


def test_a_folder_that_lost_its_run_json_points_to_its_reusable_cache(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--model", "constant", "--tasks", "DF-D", "--bench", str(tiny_bench), "--no-progress"]
    assert cli(*args, "--out", str(out))[0] == 0
    (out / "run.json").unlink()
    code, _, err = cli(*args, "--out", str(out))
    assert code == 2 and "holds no run" in err
    assert f"--out NEW --cache {out / 'cache.sqlite'}" in err, err
    assert cli(*args, "--out", str(tmp_path / "new"), "--cache", str(out / "cache.sqlite"))[0] == 0  # the advice works
    code, _, err = cli(*args, "--out", str(tiny_bench))  # no cache there: no such advice
    assert code == 2 and "holds no run" in err and "--cache" not in err
