"""Child JVMs that must never outlive us.

Why so many layers: a broker left running holds ports and CPU on a shared 2-core machine
and makes the next test run flaky. The context manager stops nodes on the normal path;
`atexit` covers an unwinding interpreter; SIGTERM/SIGHUP handlers cover a killed pytest; and
PR_SET_PDEATHSIG covers SIGKILL of the Python process itself. Each JVM runs in its own
process group so helper children die with it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_STOP_TIMEOUT_S = 30.0
_KILL_TIMEOUT_S = 10.0

_live: set[subprocess.Popen[bytes]] = set()
_dirs: set[Path] = set()
_lock = threading.Lock()
_handlers_installed = False


def _pdeathsig() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGKILL the child when its parent thread exits.

    Only used when launched from the main thread: the signal fires when the *thread* that
    forked exits, which would kill brokers started from short-lived worker threads.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return hook


def spawn(
    cmd: list[str], *, log_path: os.PathLike[str], cwd: os.PathLike[str]
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session with stdout+stderr appended to `log_path`."""
    install_handlers()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_pdeathsig(),
        )
    with _lock:
        _live.add(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], *, graceful: bool = True) -> None:
    """Stop a spawned process group: SIGTERM (controlled shutdown) then SIGKILL."""
    try:
        if proc.poll() is None:
            if graceful:
                _signal_group(proc, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_STOP_TIMEOUT_S)
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_KILL_TIMEOUT_S)
        else:
            # The leader is gone; make sure no group member lingers.
            _signal_group(proc, signal.SIGKILL)
    finally:
        with _lock:
            _live.discard(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def remove_on_exit(path: Path, *, enabled: bool = True) -> None:
    """Delete `path` in `stop_all` (a fatal signal skips the owner's own clean-up)."""
    with _lock:
        if enabled:
            _dirs.add(path)
        else:
            _dirs.discard(path)


def stop_all() -> None:
    """Hard-stop every live child and drop registered temp dirs; used on interpreter exit
    and fatal signals."""
    with _lock:
        procs = list(_live)
        dirs = list(_dirs)
        _dirs.clear()
    for proc in procs:
        stop(proc, graceful=False)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_handlers() -> None:
    """Register cleanup once. Only default SIGTERM/SIGHUP handlers are replaced, so an
    application's own handlers keep working (it then owns cleanup via the context manager)."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_signal)
