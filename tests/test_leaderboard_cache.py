"""The build's verification cache (dfabench/leaderboard/verified.py): an entry whose bytes, benchmark and verifying
code are unchanged is not re-derived again, the files are byte-identical with and without the cache, and anything
that changes the outcome (an edited log, other code, a damaged cache file) is verified afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmaker import submitted_entries

from dfabench.leaderboard import build_leaderboard, verified
from dfabench.leaderboard.verified import entry_key


@pytest.fixture
def entries(cli, tiny_bench, tmp_path) -> Path:
    folder = submitted_entries(cli, tiny_bench, tmp_path)
    (folder / "broken").mkdir()  # excluded for a reason, which is kept too
    (folder / "broken" / "run.json").write_text("{")
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_verifying(monkeypatch) -> None:
    import dfabench.verify

    def refuse(*args, **kwargs):
        raise AssertionError("verify ran although the cache holds this entry")

    monkeypatch.setattr(dfabench.verify, "verify", refuse)


def test_a_second_build_verifies_nothing_and_writes_the_same_files(entries, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    assert (first.verified, first.cached, first.cache) == (4, 0, cache)
    assert len(first.excluded) == 1 and first.excluded[0].startswith("broken: cannot be read")
    fresh = build_leaderboard(entries, tmp_path / "fresh", jobs=1, cache=False)
    assert (fresh.verified, fresh.cached, fresh.cache) == (4, 0, None)

    _no_verifying(monkeypatch)
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert (again.verified, again.cached) == (0, 4)
    assert again.excluded == first.excluded
    assert _files(tmp_path / "again") == _files(tmp_path / "first") == _files(tmp_path / "fresh")
    # the tie test ran on the cached rows: the paired bootstrap, not the point values
    assert again.data["boards"][0]["tasks"]["DF-D"]["ranking"]["method"] == "paired cluster bootstrap"


def test_parallel_builds_fill_and_read_the_same_cache(entries, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "one", jobs=2, cache=cache)
    _no_verifying(monkeypatch)  # the forked workers inherit the patch
    again = build_leaderboard(entries, tmp_path / "two", jobs=2, cache=cache)
    assert again.cached == 4 and _files(tmp_path / "one") == _files(tmp_path / "two")


def test_an_edited_log_is_verified_again_and_excluded(entries, tmp_path):
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    log = entries / "constant" / "samples-DF-C.jsonl"
    log.write_text(log.read_text().replace('"parsed": "FS"', '"parsed": "FR"', 1))
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert (again.verified, again.cached) == (1, 3)
    assert any(line.startswith("constant: does not verify") and "SHA-256" in line for line in again.excluded)
    assert "constant" not in [r["entry"] for b in again.data["boards"] for t in b["tasks"].values()
                              for r in t["rows"]]


def test_an_entry_moved_elsewhere_is_verified_again(entries, tmp_path):
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    moved = tmp_path / "moved"
    entries.rename(moved)
    assert build_leaderboard(moved, tmp_path / "again", jobs=1, cache=cache).cached == 0


def test_other_verifying_code_verifies_again(entries, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    monkeypatch.setattr(verified, "code_identity", lambda: "another version of dfabench")
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert (again.verified, again.cached) == (4, 0)
    assert _files(tmp_path / "again") == _files(tmp_path / "first")


def test_a_damaged_cache_file_is_only_a_miss(entries, tmp_path):
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    kept = sorted(cache.glob("*/*.npz"))
    assert len(kept) == 4
    kept[0].write_bytes(b"not a cache file")
    kept[1].write_bytes(kept[1].read_bytes()[:100])  # cut short
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert (again.verified, again.cached) == (2, 2)
    assert _files(tmp_path / "again") == _files(tmp_path / "first")
    assert build_leaderboard(entries, tmp_path / "third", jobs=1, cache=cache).cached == 4  # mended


def test_a_cache_that_cannot_be_written_is_skipped(entries, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    result = build_leaderboard(entries, tmp_path / "out", jobs=1, cache=blocked)
    assert result.verified == 4 and not result.excluded[1:]


def test_the_key_pins_every_byte_of_the_folder_the_benchmark_and_the_code(entries):
    folder = entries / "random-1"
    key = entry_key(folder, None, "code")
    assert entry_key(folder, None, "code") == key
    assert entry_key(folder, "fingerprint", "code") != key
    assert entry_key(folder, None, "other code") != key
    (folder / "masks").mkdir()
    (folder / "masks" / "x.png").write_bytes(b"\x89PNG")
    with_file = entry_key(folder, None, "code")
    assert with_file != key
    (folder / "masks" / "x.png").write_bytes(b"\x89PNH")  # same size, one byte other
    assert entry_key(folder, None, "code") not in (key, with_file)


def test_the_code_identity_covers_the_plugins_sources(monkeypatch, tmp_path):
    import sys

    before = verified.code_identity()
    assert verified.code_identity() == before  # stable
    package = tmp_path / "cache_probe_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import cache_probe_plugin

    from dfabench.plugins import get_manager

    manager = get_manager()
    manager.pm.register(cache_probe_plugin, name="cache-probe")
    try:
        with_plugin = verified.code_identity()
        (package / "__init__.py").write_text("VALUE = 2\n")
        assert with_plugin != before and verified.code_identity() != with_plugin
    finally:
        manager.pm.unregister(cache_probe_plugin)
        sys.modules.pop("cache_probe_plugin", None)


def test_the_cli_says_what_came_from_the_cache_and_no_cache_verifies_all(cli, entries, tmp_path):
    code, out, _ = cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "a"))
    assert code == 1 and "verified 4 entries here; 0 unchanged" in out  # 1: the broken entry
    code, out, _ = cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "b"))
    assert "verified 0 entries here; 4 unchanged since an earlier build" in out and "--no-cache" in out
    code, out, _ = cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "c"), "--no-cache")
    assert "verified 4 entries here (the verification cache is not used)" in out
    assert _files(tmp_path / "a") == _files(tmp_path / "b") == _files(tmp_path / "c")


def test_outcomes_not_used_for_long_are_pruned(entries, tmp_path):
    import os
    import time

    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    stale = cache / "ab" / ("ab" + "0" * 62 + ".npz")
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"old")
    old = time.time() - (verified.KEEP_DAYS + 1) * 86400
    os.utime(stale, (old, old))
    build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert not stale.exists() and len(list(cache.glob("*/*.npz"))) == 4


def test_the_code_identity_covers_the_installed_distributions(monkeypatch, tmp_path):
    site = tmp_path / "site"
    (site / "numpy-1.0.0.dist-info").mkdir(parents=True)
    before = verified.code_identity()
    monkeypatch.syspath_prepend(str(site))
    with_old = verified.code_identity()
    (site / "numpy-1.0.0.dist-info").rename(site / "numpy-1.0.1.dist-info")  # an upgrade
    assert len({before, with_old, verified.code_identity()}) == 3


def test_an_entry_edited_while_it_is_verified_is_not_kept(entries, tmp_path, monkeypatch):
    import dfabench.verify

    real = dfabench.verify.verify
    log = entries / "random-1" / "samples-DF-D.jsonl"

    def verify_then_edit(path, **kwargs):
        report = real(path, **kwargs)
        if Path(path).name == "random-1":  # someone edits the log after it was hashed and verified
            log.write_text(log.read_text().replace('"parsed": "fake"', '"parsed": "real"', 1))
        return report

    monkeypatch.setattr(dfabench.verify, "verify", verify_then_edit)
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    assert len(list(cache.glob("*/*.npz"))) == 3  # all but the edited one
    monkeypatch.setattr(dfabench.verify, "verify", real)
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert any(line.startswith("random-1: does not verify") for line in again.excluded)


def test_files_under_a_pycache_folder_or_behind_a_link_are_in_the_key(entries, tmp_path):
    folder = entries / "random-1"
    (folder / "masks" / "__pycache__").mkdir(parents=True)
    hidden = folder / "masks" / "__pycache__" / "m.png"
    hidden.write_bytes(b"one")
    key = entry_key(folder, None, "code")
    hidden.write_bytes(b"two")
    assert entry_key(folder, None, "code") != key
    store = tmp_path / "maskstore"
    store.mkdir()
    (store / "m.png").write_bytes(b"one")
    (folder / "linked").symlink_to(store, target_is_directory=True)
    key = entry_key(folder, None, "code")
    (store / "m.png").write_bytes(b"two")  # the folder's bytes changed through the link
    assert entry_key(folder, None, "code") != key
    (store / "loop").symlink_to(store, target_is_directory=True)  # a cycle is walked once
    entry_key(folder, None, "code")
    # an entries folder that itself lies under a __pycache__ folder is hashed all the same
    moved = tmp_path / "__pycache__" / "random-1"
    moved.parent.mkdir()
    folder.rename(moved)
    key = entry_key(moved, None, "code")
    (moved / "entry.json").write_text('{"name": "edited"}')
    assert entry_key(moved, None, "code") != key


def test_a_cache_file_copied_under_another_key_is_a_miss(entries, tmp_path):
    cache = tmp_path / "cache"
    build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    kept = sorted(cache.glob("*/*.npz"))
    kept[1].write_bytes(kept[0].read_bytes())  # another entry's outcome under this key
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert (again.verified, again.cached) == (1, 3)
    assert _files(tmp_path / "again") == _files(tmp_path / "first")


def test_an_entry_that_cannot_be_re_derived_here_is_verified_again_next_time(entries, tmp_path, monkeypatch):
    import dfabench.verify

    real = dfabench.verify.verify

    def missing_resource(path, **kwargs):
        report = real(path, **kwargs)
        if Path(path).name == "random-2":
            report.cannot("METEOR: WordNet not found (run `dfabench resources wordnet`)")
        return report

    monkeypatch.setattr(dfabench.verify, "verify", missing_resource)
    cache = tmp_path / "cache"
    first = build_leaderboard(entries, tmp_path / "first", jobs=1, cache=cache)
    assert any(line.startswith("random-2: cannot be re-derived here") for line in first.excluded)
    monkeypatch.setattr(dfabench.verify, "verify", real)  # the resource was installed
    again = build_leaderboard(entries, tmp_path / "again", jobs=1, cache=cache)
    assert (again.verified, again.cached) == (1, 3) and not any("random-2" in e for e in again.excluded)


def test_the_code_identity_covers_where_the_text_resources_are(monkeypatch, tmp_path):
    before = verified.code_identity()
    monkeypatch.setenv("DFABENCH_NLTK_DATA", str(tmp_path / "no-wordnet-here"))
    without_wordnet = verified.code_identity()
    monkeypatch.setenv("DFABENCH_EMBEDDING_MODEL", str(tmp_path / "no-model-here"))
    assert len({before, without_wordnet, verified.code_identity()}) == 3


def test_reasons_name_the_entry_not_where_the_entries_folder_is(entries, tmp_path, monkeypatch):
    log = entries / "constant" / "samples-DF-C.jsonl"
    log.write_text(log.read_text() + "not json\n")
    cache = tmp_path / "cache"
    absolute = build_leaderboard(entries.absolute(), tmp_path / "abs", jobs=1, cache=cache)
    monkeypatch.chdir(entries.parent)
    relative = build_leaderboard(Path(entries.name), tmp_path / "rel", jobs=1, cache=cache)
    fresh = build_leaderboard(Path(entries.name), tmp_path / "fresh", jobs=1, cache=False)
    assert relative.cached == 4
    assert absolute.excluded == relative.excluded == fresh.excluded
    assert not any(str(tmp_path) in line for line in absolute.excluded)
    assert _files(tmp_path / "abs") == _files(tmp_path / "rel") == _files(tmp_path / "fresh")


def test_the_cli_warns_when_nothing_can_be_kept(cli, entries, tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setattr(verified, "default_root", lambda: blocked / "verified")
    code, out, err = cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "a"))
    assert "warning: nothing can be kept in the verification cache" in err and "verified 4 entries here" in out
