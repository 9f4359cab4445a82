"""`dfabench --help` and `dfabench models` of this tree against another revision's, in the same run.

The issue-9 restructuring (CLI package, registries, records package) must not make the start of the CLI
slower. This runs both commands alternately, ``--repeat`` times each, in this checkout and in a temporary
git worktree of ``--ref`` (default: the last commit before the restructuring), with the same interpreter
and the same installed plugins (each tree's own plugin code first on the path), and prints the medians and
their ratio (this tree / the reference; below 1.05 is "no slower"). A bare ``python -c pass`` is measured
too, as the floor.

Usage: python benchmarks/bench_cli_startup.py [--ref 11ca2ea] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "models": ["models"]}
CALL = "import sys; from dfabench.cli import main; sys.exit(main(sys.argv[1:]))"


def tree_env(tree: Path) -> dict[str, str]:
    """The environment that makes ``tree``'s core and first-party plugins win over the installed ones."""
    plugins = sorted(str(p) for p in (tree / "plugins").iterdir() if p.is_dir())
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), *plugins])}


def seconds(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="11ca2ea", help="the revision to compare with")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(ref), args.ref], check=True)
        try:
            # the task specs are the package dfabench.task_specs (tasks/ in the source tree)
            (ref / "dfabench" / "task_specs").symlink_to(ref / "tasks")
            here_env, ref_env = tree_env(ROOT), tree_env(ref)
            floor = [seconds([sys.executable, "-c", "pass"], here_env, ROOT) for _ in range(args.repeat)]
            print(f"python -c pass: median {statistics.median(floor):.3f} s")
            for name, argv in COMMANDS.items():
                here, there = [], []
                for _ in range(args.repeat):  # alternate, so drift in the machine's load hits both alike
                    here.append(seconds([sys.executable, "-c", CALL, *argv], here_env, ROOT))
                    there.append(seconds([sys.executable, "-c", CALL, *argv], ref_env, ref))
                a, b = statistics.median(here), statistics.median(there)
                print(f"dfabench {name}: this tree {a:.3f} s, {args.ref} {b:.3f} s, ratio {a / b:.2f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
