"""dfabench: the open benchmark harness for interactive deepfake analysis.

The core is deliberately light: importing it pulls in no deep-learning library.
Plugins register models, tasks, dataset importers and metrics through the hooks in
:mod:`dfabench.hookspecs`, implemented with :data:`hookimpl`.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("dfabench")

__all__ = ["__version__", "hookimpl"]
