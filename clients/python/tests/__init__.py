"""The Python client's tests: a package, so that its `conftest` does not shadow (or
get shadowed by) the repository's other `tests/conftest.py` when pytest collects both."""
