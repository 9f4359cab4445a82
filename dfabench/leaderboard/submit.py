"""``dfabench leaderboard submit RUN_DIR``: a verified run copied into ``leaderboard/entries/``.

The copy holds the run record, its per-sample logs and predicted masks (the response cache stays behind)
and an ``entry.json`` naming the entry. A run that does not verify, or that still holds what looks like a
credential (written by an older dfabench), is refused before anything is written; the copy is one
transaction, so an interrupted submit leaves the entries as they were.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.redact import credential_paths, redact, scrub_value
from dfabench.store import RUN_RECORD, RunFolder

__all__ = ["credential_problems", "submit_run"]


def submit_run(run_dir: Path, entries: Path, *, name: str | None = None, force: bool = False,
               meta: dict[str, Any] | None = None) -> Path:
    """Copy a run's record and per-sample logs (and predicted masks) into the entries folder; ``meta``: more
    fields of the entry's entry.json (the display name, notes), written in the same commit."""
    from dfabench.verify import verify

    folder = RunFolder(run_dir)
    record = folder.read_record()
    shard = record.get("shard")
    if shard:
        raise DfabenchError(f"{run_dir} is shard {shard.get('index')}/{shard.get('count')} of a run, not a run: "
                            "`dfabench merge` its shards into one folder and submit that")
    report = verify(run_dir)
    if not report.ok:
        raise DfabenchError(f"{run_dir} does not verify; fix it before submitting: "
                            f"{'; '.join((report.failed + report.unverifiable)[:3])}")
    leaks = credential_problems(folder, record)
    if leaks:
        more = f" (and {len(leaks) - 3} more places)" if len(leaks) > 3 else ""
        raise DfabenchError(f"{run_dir} is not submitted: {'; '.join(leaks[:3])}{more}: what looks like a credential "
                            "(an older dfabench stored it unredacted); re-run with this dfabench, which stores "
                            "credentials as ***, and submit that run")
    model = record.get("model", {})
    name = name or f"{model.get('name', 'model')}-{str(model.get('fingerprint', ''))[:8]}"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise DfabenchError(f"bad entry name {name!r}: use letters, digits, '-', '_' and '.'")
    target = Path(entries) / name
    if target.exists() and not force:
        raise DfabenchError(f"entry {target} exists (use --force to replace it)")
    changed = DfabenchError(f"{run_dir} changed while it was being submitted; submit it again (nothing was changed)")
    with RunFolder(target).transaction(create=True) as tx:  # one commit; --force replaces the old entry at the switch
        tx.delete_tree()
        copied = folder.record_path.read_bytes()
        if json.loads(copied) != record:
            raise changed
        command = scrub_value(record.get("command"))
        if command != record.get("command"):  # informative only (no hash covers it): scrubbed, not refused
            copied = (json.dumps({**record, "command": command}, indent=2, ensure_ascii=False, default=str)
                      + "\n").encode("utf-8")
        tx.write_bytes(RUN_RECORD, copied)
        for info in record.get("samples", {}).values():
            if tx.write_bytes(info["file"], (folder.path / info["file"]).read_bytes()) != info.get("sha256"):
                raise changed
        if (folder.path / "masks").is_dir():
            for path in sorted(p for p in (folder.path / "masks").rglob("*") if p.is_file()):
                tx.write_bytes(path.relative_to(folder.path).as_posix(), path.read_bytes())
        if any(tx.staged().get(rel) != digest for info in record.get("samples", {}).values()
               for rel, digest in (info.get("masks") or {}).items()):
            raise changed
        tx.write_text("entry.json", json.dumps({"name": name, **(meta or {})}, indent=2) + "\n")
    return target


def credential_problems(folder: RunFolder, record: dict[str, Any]) -> list[str]:
    """Where a run still holds a credential (:mod:`dfabench.redact`), apart from its command line: the model's
    arguments and identity, the judge record, and the error fields of the per-sample logs. A run written by
    this version holds none; one written by an older version could."""
    found = [f"run.json {where}" for where in credential_paths(
        {name: record[name] for name in ("model", "judge") if record.get(name) is not None})]
    for info in (record.get("samples") or {}).values():
        with open(folder.path / info["file"], encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if '"error": null' in line and '"judge": null' in line:
                    continue  # the common case: nothing that could hold one
                try:
                    sample = json.loads(line)
                except ValueError:
                    continue  # verify has judged the log already
                if not isinstance(sample, dict):
                    continue
                judge = sample.get("judge")
                texts = [sample.get("error"), judge.get("error") if isinstance(judge, dict) else None]
                if any(isinstance(text, str) and redact(text) != text for text in texts):
                    found.append(f"{info['file']} line {lineno}")
    return found
