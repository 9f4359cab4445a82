"""The leaderboard: submitted runs and reported numbers -> ranked, comparable, verifiable tables and a site.

- :mod:`~dfabench.leaderboard.submit` — ``dfabench leaderboard submit``: a verified run copied into the entries;
- :mod:`~dfabench.leaderboard.entries` — loading and verifying entries; what makes two comparable;
- :mod:`~dfabench.leaderboard.ties` — ranks with statistical ties (paired cluster bootstrap);
- :mod:`~dfabench.leaderboard.reported` — reported entries (numbers from papers, never ranked) and their format;
- :mod:`~dfabench.leaderboard.build` — ``dfabench leaderboard build``: the data, and every output file from it;
- :mod:`~dfabench.leaderboard.markdown`, :mod:`~dfabench.leaderboard.tables`, :mod:`~dfabench.leaderboard.site`
  (with :mod:`~dfabench.leaderboard.svg` and :mod:`~dfabench.leaderboard.assets`) — README.md, the CSV, index.html;
- :mod:`~dfabench.leaderboard.check` — ``dfabench leaderboard check``: the submission checker's report.

The names below are the package's API.
"""

from __future__ import annotations

from dfabench.leaderboard.build import LOWER_IS_BETTER, BuildResult, build_leaderboard
from dfabench.leaderboard.check import CheckResult, check_entry
from dfabench.leaderboard.entries import column_identity
from dfabench.leaderboard.submit import credential_problems, submit_run
from dfabench.leaderboard.ties import TieSettings

__all__ = ["LOWER_IS_BETTER", "BuildResult", "CheckResult", "TieSettings", "build_leaderboard", "check_entry",
           "column_identity", "credential_problems", "submit_run"]
