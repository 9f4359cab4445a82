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
    """Register metrics: ``register(name, compute, *, tasks=(), description="", tolerance=0.0)``.

    ``compute`` is a callable or ``"module:attr"`` string; see :mod:`dfabench.metrics`. ``tolerance``: the
    absolute difference within which ``dfabench verify`` accepts a re-derived number (0: exactly); give
    one only when the numbers come from floating-point model inference that differs across machines.
    """


@hookspec
def dfabench_register_parsers(register):
    """Register answer parsers: ``register(name, parse, *, description="")``.

    ``parse`` is a callable or ``"module:attr"`` string called as ``parse(text)`` (or
    ``parse(text, options)`` with lettered options) that returns the parsed answer, or ``None`` when
    the answer commits to nothing (counted as unparsed). A task spec names it in ``parser:``.
    """


@hookspec
def dfabench_register_sample_filters(register):
    """Register sample filters: ``register(name, select, *, description="")``.

    ``select`` is a callable or ``"module:attr"`` string called as ``select(task, sample)`` for each
    sample of the split (a :class:`~dfabench.tasks.TaskSpec` and a manifest
    :class:`~dfabench.data.manifest.Sample`); it returns ``None`` when the task takes the sample, else a
    short reason it is left out ("fake without a mask"), counted by reason in the run's selection
    record. A task spec names it in ``samples:``.
    """


@hookspec
def dfabench_register_commands(register):
    """Register ``dfabench`` subcommands:
    ``register(name, add_arguments, handler, *, help="")``, or ``register(name, help="")`` for a group.

    ``name`` is one word (``"judge"``) or several (``"dfagpt train"``: the command ``train`` of the
    group ``dfagpt``; a group that is not registered itself is made, without help, on first use).
    ``add_arguments(parser)`` fills an ``argparse.ArgumentParser``; ``handler(args)`` runs the command
    and returns its exit code (0 ok, 1 a check does not hold; raise ``DfabenchError`` for bad input,
    exit 2). Both are callables or ``"module:attr"`` strings: ``add_arguments`` is imported when the
    command is run or listed (``dfabench --help``, ``dfabench plugins``), ``handler`` only when it runs,
    so keep heavy imports inside the handler. A command whose ``add_arguments`` fails to import or
    raises is listed as broken with its error, and running it prints that error (exit 2).
    """
