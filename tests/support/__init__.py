"""Helpers shared by tests of more than one tier (importable because tests/ is on sys.path)."""

import pytest

# the engine contract's tests live here: their failed asserts should show the values too
pytest.register_assert_rewrite("support.engines")
