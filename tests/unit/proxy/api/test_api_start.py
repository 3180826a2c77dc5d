"""Starting and attaching: a real proxy, in-process and as `kafka-chaos-proxy run`, in front
of an address nothing listens on (a proxy starts without its broker; clients would fail,
these tests have none). And what importing the package and the plugin costs."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.api import (
    AdminRefused,
    AdminUnreachable,
    AsyncChaosProxy,
    ChaosProxy,
    ProxyStartError,
)
from kafka_chaos_proxy.proxy.api.options import StartArgs

NOWHERE = "127.0.0.1:1"


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_a_proxy_starts_on_free_ports_and_stops(mode: str) -> None:
    with ChaosProxy.start(NOWHERE, mode=mode) as chaos:  # type: ignore[arg-type]
        host, _, port = chaos.bootstrap.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        assert chaos.admin_url.startswith("http://127.0.0.1:")
        assert chaos.admin.healthy() and chaos.rules() == []
        admin_url = chaos.admin_url
    with pytest.raises(AdminUnreachable):
        ChaosProxy.attach(admin_url)


def test_a_token_given_at_start_is_required(tmp_path: Path) -> None:
    with ChaosProxy.start(NOWHERE, mode="subprocess", token="s3cret",
                          log_path=tmp_path / "proxy.log") as chaos:
        assert chaos.rules() == []
        with pytest.raises(AdminRefused) as info:
            ChaosProxy.attach(chaos.admin_url, token="wrong")
        assert info.value.status == 401
        with ChaosProxy.attach(chaos.admin_url, token="s3cret", bootstrap=chaos.bootstrap) as a:
            assert a.bootstrap == chaos.bootstrap
    assert "bootstrap servers for clients" in (tmp_path / "proxy.log").read_text()


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_a_start_that_fails_says_why(mode: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- match: {apis: [SyncGrup]}\n  action: {type: error, error: 16}\n")
    with pytest.raises(ProxyStartError, match="SyncGrup"):
        ChaosProxy.start(NOWHERE, mode=mode, faults_file=rules,  # type: ignore[arg-type]
                         log_path=tmp_path / "proxy.log")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="inprocess, subprocess"):
        ChaosProxy.start(NOWHERE, mode="thread")  # type: ignore[arg-type]


def test_an_attached_proxy_without_bootstrap_says_what_to_pass() -> None:
    with (ChaosProxy.start(NOWHERE) as chaos, ChaosProxy.attach(chaos.admin_url) as attached,
          pytest.raises(ValueError, match="bootstrap=")):
        _ = attached.bootstrap


def test_the_async_start_takes_the_sync_starts_keywords() -> None:
    params = inspect.signature(ChaosProxy.start).parameters
    keywords = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == set(StartArgs.__annotations__)


async def test_the_async_api_awaits_the_same_calls() -> None:
    async with AsyncChaosProxy.start(NOWHERE) as chaos:
        async with chaos.fault(api="SyncGroup", group="g").error("NOT_COORDINATOR",
                                                                 times=1) as fault:
            assert [r["id"] for r in await chaos.rules()] == [fault.id]
            assert await fault.injections() == 0
        assert await chaos.rules() == []
        installed = await chaos.fault(api="Heartbeat").delay(10)
        assert await chaos.clear() == 1 and installed.id
        assert await chaos.events.list() == []


def test_importing_the_package_or_the_plugin_loads_no_api() -> None:
    code = ("import sys, kafka_chaos_proxy.codec, kafka_chaos_proxy.proxy.pytest_plugin\n"
            "heavy = sorted(m for m in sys.modules if m.startswith(("
            "'kafka_chaos_proxy.proxy.', 'httpx', 'fastapi', 'uvicorn', 'pydantic')) "
            "and m != 'kafka_chaos_proxy.proxy.pytest_plugin')\n"
            "assert not heavy, heavy\n"
            "from kafka_chaos_proxy import ChaosProxy, RuleRejected\n"
            "assert ChaosProxy.__module__ == 'kafka_chaos_proxy.proxy.api.chaos'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
