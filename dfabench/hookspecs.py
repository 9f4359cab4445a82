"""The whole plugin API of dfabench.

A plugin is a module, declared under the ``dfabench`` entry-point group
(``[project.entry-points.dfabench] NAME = "module"``), that implements any of the hooks
below with :data:`dfabench.hookimpl`. Each hook receives one ``register`` callable.
"""

import pluggy

hookspec = pluggy.HookspecMarker("dfabench")


@hookspec
def dfabench_register_models(register):
    """Register models.

    ``register(name, factory, *, aliases=(), capabilities=("generate",), description="")``.
    ``factory`` is a callable or a ``"module:attr"`` string (imported only when the model is
    created); it is called with the model arguments as keyword arguments and returns a
    :class:`dfabench.models.Model`. ``capabilities`` is a subset of ``generate``, ``score``,
    ``localize``.
    """


@hookspec
def dfabench_register_tasks(register):
    """Register task specs: ``register(spec)`` with a mapping (same fields as tasks/*.yaml)
    or ``register(path)`` with the path of a YAML file."""


@hookspec
def dfabench_register_importers(register):
    """Register dataset importers: ``register(format_name, importer, *, description="")``.

    ``importer`` is a callable or ``"module:attr"`` string with the signature
    ``importer(src: Path, out: Path, **options) -> dfabench.data.importers.ImportReport``.
    """


@hookspec
def dfabench_register_metrics(register):
    """Register metrics: ``register(name, compute, *, tasks=(), needs="labels", description="")``.

    ``compute`` is a callable or ``"module:attr"`` string; see :mod:`dfabench.metrics`.
    """
