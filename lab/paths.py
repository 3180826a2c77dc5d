"""Where the lab finds what is not Python code: the scenario catalog and the harness sources.

Each location is one explicit setting with a default that works where the files are known to
be, so nothing depends on the current directory or on guessing a checkout from `__file__`
alone:

* the scenario catalog: `--scenarios-dir` where a command reads it, else `KCP_SCENARIOS_DIR`,
  else the catalog shipped inside the package (`lab/catalog`, which is the top-level
  `scenarios/` folder in a checkout and its copy in a wheel);
* the client harness sources: `KCP_HARNESS_DIR`, else `tests/clients` of the source checkout
  this package runs from. A wheel has no harness sources (Go/Java builds and Python harness
  scripts live with the tests), so there the setting is the only way, and its absence is a
  one-line error that names it.

Settings are read when asked for, not at import, so a test or a caller can set them late.
"""

from __future__ import annotations

import os
from pathlib import Path

SCENARIOS_DIR_ENV = "KCP_SCENARIOS_DIR"
HARNESS_DIR_ENV = "KCP_HARNESS_DIR"

#: The source checkout this package lives in (meaningful only when running from one): the
#: matrix starts its proxy subprocesses there and puts it on their PYTHONPATH.
REPO_ROOT = Path(__file__).resolve().parents[1]

#: The catalog as packaged: `lab/catalog` is a link to `scenarios/` in a checkout (resolved, so
#: messages name the file a developer edits) and the copied files in a wheel.
PACKAGED_CATALOG = (Path(__file__).resolve().parent / "catalog").resolve()


class LabPathError(RuntimeError):
    """A lab location that does not exist; the message names the setting that chose it."""


def scenarios_dir(explicit: Path | None = None) -> Path:
    """The scenario catalog directory: `explicit` (a command's option), else the
    `KCP_SCENARIOS_DIR` setting, else the packaged catalog."""
    if explicit is not None:
        path, source = Path(explicit), "--scenarios-dir"
    elif os.environ.get(SCENARIOS_DIR_ENV):
        path, source = Path(os.environ[SCENARIOS_DIR_ENV]), SCENARIOS_DIR_ENV
    else:
        path, source = PACKAGED_CATALOG, "the packaged catalog"
    if not path.is_dir():
        raise LabPathError(f"scenario catalog {path} (from {source}) is not a directory; "
                           f"set {SCENARIOS_DIR_ENV} or --scenarios-dir to a folder of "
                           "scenario *.yaml files")
    return path


def harness_dir() -> Path:
    """The client harness sources (the folder holding go/, java/ and python/): the
    `KCP_HARNESS_DIR` setting, else `tests/clients` of this source checkout."""
    configured = os.environ.get(HARNESS_DIR_ENV)
    path = Path(configured) if configured else REPO_ROOT / "tests" / "clients"
    if not path.is_dir():
        where = f"{HARNESS_DIR_ENV}={configured}" if configured else "this installation"
        raise LabPathError(
            f"client harness sources not found at {path} ({where}): set {HARNESS_DIR_ENV} to "
            "the tests/clients directory of a kafka-chaos-proxy source checkout"
        )
    return path
