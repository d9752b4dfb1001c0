"""The alert tests run on copies of the small city of tests/api/conftest.py."""

from tests.api.conftest import city  # noqa: F401  (a fixture)
