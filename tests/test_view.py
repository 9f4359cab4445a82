"""``dfabench view``: the local sample viewer — 127.0.0.1 only, filters, runs side by side, hand ratings to CSV,
escaping, and no file served from outside the given folders."""

from __future__ import annotations

import csv
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dfabench.view import Catalogue, make_server

PAYLOAD = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


@pytest.fixture
def runs(cli, tiny_bench, tmp_path):
    out = {}
    for name, args in (("constant", ["--model-arg", f"description={PAYLOAD}"]), ("random", ["--model-arg", "seed=3"])):
        run = tmp_path / "runs" / name
        assert cli("run", "--model", name, *args, "--tasks", "DF-D,AD", "--bench", str(tiny_bench), "--out", str(run),
                   "--no-progress")[0] == 0
        out[name] = run
    return out


@pytest.fixture
def served(runs, tiny_bench, tmp_path):
    catalogue = Catalogue([runs["constant"], runs["random"]], tiny_bench)
    server = make_server(catalogue, tmp_path / "ratings.csv", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "ratings.csv"
    server.shutdown()
    server.server_close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def test_the_server_listens_on_loopback_only(runs, tmp_path):
    server = make_server(Catalogue([runs["constant"]]), tmp_path / "r.csv", port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_filters_narrow_the_samples_and_both_runs_are_side_by_side(served):
    base, _ = served
    _, everything = _get(f"{base}/?task=DF-D")
    _, fakes_fs = _get(f"{base}/?task=DF-D&category=FS")
    _, wrong = _get(f"{base}/?task=DF-D&outcome=wrong")
    assert everything.count('<tr class="sample">') == 20
    assert fakes_fs.count('<tr class="sample">') == 3
    assert wrong.count('<tr class="sample">') == 8  # the constant model calls every face fake: the 8 reals
    assert "<th>constant</th><th>random</th>" in everything


def test_a_sample_page_shows_the_answers_escaped_and_the_image(served):
    base, _ = served
    status, page = _get(f"{base}/sample?task=AD&id=s0010")
    assert status == 200
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&gt;&lt;img" in page
    assert page.count('<div class="run">') == 2 and 'src="/file/' in page
    assert '<p class="model">model <code>constant description=&lt;script&gt;alert(1)' in page  # the model, escaped
    assert '<p class="model">model <code>random seed=3</code>' in page
    image = page.split('<img src="')[1].split('"')[0]
    assert _get(base + image)[0] == 200


def test_the_browser_s_favicon_request_is_answered_without_an_error(served):
    base, _ = served
    assert _get(f"{base}/favicon.ico")[0] == 204  # a 404 would be an error in the browser's console


@pytest.mark.parametrize("path", ["/file/0/../../etc/passwd", "/file/0/%2e%2e/%2e%2e/etc/passwd", "/file/0//etc/passwd",
                                  "/file/9/run.json", "/file/x/run.json", "/file/0/"])
def test_files_outside_the_served_folders_are_refused(served, path):
    base, _ = served
    status, _ = _get(base + path)
    assert status in (403, 404)


def test_a_symlink_out_of_a_served_folder_is_refused(runs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (runs["constant"] / "leak.txt").symlink_to(secret)
    catalogue = Catalogue([runs["constant"]])
    with pytest.raises(PermissionError):
        catalogue.resolve(catalogue.root_of(runs["constant"]), "leak.txt")
    assert catalogue.resolve(catalogue.root_of(runs["constant"]), "run.json").name == "run.json"


def test_hand_ratings_of_an_ad_answer_are_appended_to_the_csv(served):
    base, ratings = served
    _, page = _get(f"{base}/sample?task=AD&id=s0010")
    criteria = [part.split('"')[0] for part in page.split('type="number" name="')[1:]]
    assert len(criteria) >= 3
    form = "&".join(["id=s0010", "task=AD"] + [f"{c}=4" for c in criteria]).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/rate", data=form), timeout=10) as response:
        assert response.status == 200
    rows = list(csv.DictReader(ratings.open()))
    assert [(r["sample_id"], r["score"]) for r in rows] == [("s0010", "4")] * len(criteria)
    assert sorted(r["criterion"] for r in rows) == sorted(criteria)
    bad = "&".join(["id=s0010"] + [f"{c}=9" for c in criteria]).encode()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(f"{base}/rate", data=bad), timeout=10)


def test_leaderboard_folder_means_its_entries(cli, runs, tmp_path):
    entries = tmp_path / "lb" / "entries"
    assert cli("leaderboard", "submit", str(runs["random"]), "--entries", str(entries), "--name", "r")[0] == 0
    assert [r.name for r in Catalogue([tmp_path / "lb"]).runs] == ["r"]
    with pytest.raises(Exception, match="neither a run folder"):
        Catalogue([tmp_path])
    assert json.loads((entries / "r" / "entry.json").read_text())["name"] == "r"
    assert Path(entries / "r" / "run.json").exists()


def _post(url: str, form: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=form.encode()), timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def test_a_rating_for_a_sample_task_or_criterion_the_runs_do_not_hold_is_refused(served):
    base, ratings = served
    _, page = _get(f"{base}/sample?task=AD&id=s0010")
    criteria = [part.split('"')[0] for part in page.split('type="number" name="')[1:]]
    scores = [f"{c}=1" for c in criteria]
    for form, says in ((["id=nope", "task=AD", *scores], "sample &#x27;nope&#x27; is not in"),
                       (["id=s0010", "task=DF-D", *scores], "only AD answers"),
                       (["id=s0010", "task=QA", *scores], "only AD answers"),
                       (["id=s0010", "task=AD", *scores, "detal=3"], "&#x27;detal&#x27;: not a criterion")):
        status, body = _post(f"{base}/rate", "&".join(form))
        assert status == 400 and says in body, (form, body)
    assert not ratings.exists()  # nothing appended for any of them
    assert _post(f"{base}/rate", "&".join(["id=s0010", "task=AD", *scores]))[0] == 200


def test_a_sweep_round_s_entries_and_built_leaderboard_folders_are_viewed_as_their_entries(cli, runs, tmp_path):
    out = tmp_path / "round"
    assert cli("leaderboard", "submit", str(runs["random"]), "--entries", str(out / "entries"), "--name", "r")[0] == 0
    assert cli("leaderboard", "build", "--entries", str(out / "entries"), "--out", str(out / "leaderboard"),
               "--replicates", "10")[0] == 0
    assert (out / "leaderboard" / "leaderboard.json").is_file()
    assert [r.name for r in Catalogue([out / "entries"]).runs] == ["r"]
    assert [r.name for r in Catalogue([out / "leaderboard"]).runs] == ["r"]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "leaderboard.json").write_text("{}")
    with pytest.raises(Exception, match="give the entries folder it was built from"):
        Catalogue([alone])
