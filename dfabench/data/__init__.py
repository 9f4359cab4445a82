"""Benchmark data: manifests, fingerprints, importers, the smoke benchmark."""
