"""Errors the command line turns into one clear line and exit code 2."""


class DfabenchError(Exception):
    """Bad usage or bad input: reported as one line, exit code 2, no traceback."""

    exit_code = 2


class InputError(DfabenchError):
    """A file given to dfabench is malformed. The message names the file (and record)."""

    def __init__(self, path, problem: str, record: str | None = None):
        self.path = str(path)
        self.record = record
        self.problem = problem
        where = self.path if record is None else f"{self.path}: {record}"
        super().__init__(f"{where}: {problem}")


class UnknownNameError(DfabenchError):
    """A model, task, importer or metric name that is not registered."""

    def __init__(self, kind: str, name: str, known):
        import difflib

        self.kind, self.name = kind, name
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if not close:
            lowered = {k.lower(): k for k in known}
            close = [lowered[k] for k in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = f" (known: {', '.join(known)})" if len(known) <= 12 else ""
        super().__init__(f"unknown {kind} {name!r}{hint}{listing}")
