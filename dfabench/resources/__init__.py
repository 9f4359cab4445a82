"""Data files shipped with dfabench (rubrics, licences, ...)."""
