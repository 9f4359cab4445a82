"""Test helpers for dfabench and its plugins (fake servers, tiny data)."""
