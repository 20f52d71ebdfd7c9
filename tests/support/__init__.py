"""Helpers shared by tests of more than one tier (importable because tests/ is on sys.path)."""
