"""A matrix finding reproduced the way a user's own test suite would: examples/python's test,
which uses only the public API and the pytest plugin's fixtures, collected here too so the
suite runs it against its own broker (tests/conftest.py's `kafka_broker` is `kafka_cluster`).
test_examples_python.py runs the same folder from a built wheel in a clean venv."""

from examples.python.test_syncgroup_not_coordinator import (  # noqa: F401  (collected here)
    test_kafka_python_rejoins_after_two_syncgroup_not_coordinator,
)
