"""Task specs shipped with dfabench (installed as the package dfabench.task_specs)."""
