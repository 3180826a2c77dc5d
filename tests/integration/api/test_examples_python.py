"""examples/python runs as a user runs it: the wheel built from these sources, installed with
the example's requirements.txt into a fresh virtual environment (no checkout on its path),
`pytest` in a copy of the folder, KAFKA_BOOTSTRAP_SERVERS pointing at the session's broker.

Slow by nature (a venv and an install); pip's cache keeps the install to downloads done once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "python"
#: What a wheel is built from (kafka_chaos_proxy/ links to the layer folders, lab/catalog to
#: scenarios/): copied, so no build/ left in the checkout is mixed into it.
SOURCES = ("pyproject.toml", "README.md", "kafka_chaos_proxy", "codec", "faults", "proxy",
           "lab", "scenarios")
STEP_TIMEOUT_S = 600


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{output[-4000:]}"
    return output


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point the venv back at the checkout."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "KCP_KAFKA_PROVIDER", "KCP_ADMIN_TOKEN",
            "KCP_SCENARIOS_DIR", "PYTEST_ADDOPTS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}


def test_the_python_example_passes_from_a_built_wheel(tmp_path: Path,
                                                      kafka_bootstrap: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q",
          "--disable-pip-version-check", "-w", str(wheels)], cwd=src, env=_clean_env())
    (wheel,) = wheels.glob("kafka_chaos_proxy-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, str(wheel)], cwd=tmp_path, env=_clean_env())
    # The wheel satisfies the example's `kafka-chaos-proxy` line: only the others are fetched.
    _run([*pip, "-r", str(EXAMPLE / "requirements.txt")], cwd=tmp_path, env=_clean_env())

    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=ignore)
    out = _run([python, "-m", "pytest", "-p", "no:cacheprovider", "-v"], cwd=example,
               env=_clean_env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap))
    assert "test_kafka_python_rejoins_after_two_syncgroup_not_coordinator PASSED" in out, out
    assert f"rootdir: {example}" in out and "kafka-chaos-proxy" in out
    where = _run([python, "-c", "import kafka_chaos_proxy; print(kafka_chaos_proxy.__file__)"],
                 cwd=tmp_path, env=_clean_env())
    assert where.startswith(str(env_dir)), where  # the installed wheel, not the checkout
