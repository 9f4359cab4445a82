"""``dfabench view RUN_DIR|leaderboard/``: a local web viewer of the samples behind a number.

Served on 127.0.0.1 only, with the standard library (no framework to install): the image with the FL masks
overlaid, the question, each run's answer, the reference, per-sample scores and the judge's rationale;
filters by task, category, technique and outcome; several runs side by side on the same sample; hand ratings
of AD answers (0-5 per rubric criterion) appended to a CSV (``sample_id, criterion, score``) that the judge
agreement command reads. :mod:`~dfabench.view.data` loads the runs and decides which files may be served;
:mod:`~dfabench.view.server` renders the pages and serves them.
"""

from __future__ import annotations

from dfabench.view.data import Catalogue, append_rating, outcome
from dfabench.view.server import HOST, make_server

__all__ = ["HOST", "Catalogue", "append_rating", "make_server", "outcome"]
