"""The fuzz target `fuzz_frames.py` in CI: a bounded coverage-guided run over the committed
corpus (in a subprocess: atheris instruments modules as they are imported, and a crash must
not take the test process with it), and a replay of every input under `crashes/`.

atheris is a dev dependency (`pip install -e .[dev]`); when it cannot run, this fails: a
fuzz test that skips itself quietly stops fuzzing. Longer runs: see `fuzz_frames.py`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "fuzz_frames.py"
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
SECONDS = int(os.environ.get("KCP_FUZZ_SECONDS", "30"))


def _fuzz(args: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TARGET), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def test_fuzz_frames_for_a_bounded_time(tmp_path: Path) -> None:
    seeds = sorted(CORPUS.iterdir())
    assert len(seeds) >= 24 and sum(f.stat().st_size for f in seeds) < 2 * 1024 * 1024
    work = tmp_path / "corpus"  # libFuzzer adds what it finds to the first directory
    shutil.copytree(CORPUS, work)
    result = _fuzz([str(work), f"-max_total_time={SECONDS}", "-rss_limit_mb=2048",
                    f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
                   tmp_path, SECONDS + 120)
    output = result.stderr + result.stdout
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert result.returncode == 0 and not crashes, (
        f"the fuzzer failed (rc {result.returncode}, {crashes}): commit the input under "
        f"tests/abuse/crashes/\n{output[-4000:]}")
    done = re.search(r"Done (\d+) runs", output)
    assert done, output[-2000:]
    runs = int(done.group(1))
    assert runs > len(seeds), f"only {runs} executions"
    print(f"\nFUZZ fuzz_frames: {runs} executions in {SECONDS} s over {len(seeds)} seeds")


def test_recorded_crashes_replay_clean(tmp_path: Path) -> None:
    """Every input once found to break the target (none so far). When the fuzzer finds one,
    commit it here and mark this test xfail(strict=True) with the reason until it is fixed."""
    inputs = sorted(p for p in CRASHES.glob("*") if p.is_file()) if CRASHES.is_dir() else []
    result = _fuzz([str(p) for p in inputs] or [str(next(CORPUS.iterdir()))], tmp_path, 120)
    assert result.returncode == 0, (result.stderr + result.stdout)[-4000:]
