"""Helpers shared by the test suite: no tests here, nothing collected.

Imported as `tests.support.<module>` (pytest puts the repository root on `sys.path`, see
`pythonpath` in pyproject.toml), never through `sys.path` tricks in a test file.

* ``imports``   our modules and the imports between them, read with `ast`
* ``kafka_python_stall``   kafka-python's start-up stall, the one definition tests use
"""
