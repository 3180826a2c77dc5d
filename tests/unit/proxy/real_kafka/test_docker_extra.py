"""testcontainers is the optional `[docker]` extra: without it the local broker is chosen, and a
forced container provider says in one line which extra to install.

Why: a plain `pip install kafka-chaos-proxy` must run the proxy and its embedded broker on a
machine that happens to have Docker, and a user who asks for containers explicitly should
learn what is missing, not read an ImportError traceback.
"""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy import logging as proxy_logging
from kafka_chaos_proxy.proxy.cli import app
from kafka_chaos_proxy.proxy.real_kafka import ProviderUnavailable, provider


@pytest.fixture
def no_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import testcontainers...` fail as it does where the extra is not installed."""
    for name in [m for m in sys.modules if m.split(".")[0] == "testcontainers"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "testcontainers", None)  # type: ignore[arg-type]
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)


def test_docker_without_the_extra_means_the_local_broker(
    monkeypatch: pytest.MonkeyPatch, no_testcontainers: None
) -> None:
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)
    monkeypatch.setattr(provider, "docker_engine_answers", lambda timeout_s=3.0: True)
    assert provider.testcontainers_installed() is False
    assert provider.choose_kind(1) == "local"


def test_docker_with_the_extra_means_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setattr(provider, "testcontainers_installed", lambda: True)
    monkeypatch.setattr(provider, "docker_engine_answers", lambda timeout_s=3.0: True)
    assert provider.choose_kind(1) == "testcontainers"


def test_the_engine_is_not_asked_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, no_testcontainers: None
) -> None:
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)

    def must_not_run(timeout_s: float = 3.0) -> bool:
        raise AssertionError("docker pinged although testcontainers is missing")

    monkeypatch.setattr(provider, "docker_engine_answers", must_not_run)
    assert provider.choose_kind(1) == "local"


def test_forced_testcontainers_without_the_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, no_testcontainers: None
) -> None:
    monkeypatch.setenv("KCP_KAFKA_PROVIDER", "testcontainers")
    with pytest.raises(ProviderUnavailable) as info, provider.provide_kafka():
        pass
    message = str(info.value)
    assert "\n" not in message
    assert "kafka-chaos-proxy[docker]" in message and "KCP_KAFKA_PROVIDER" in message


def test_cli_run_prints_one_error_line(
    monkeypatch: pytest.MonkeyPatch, no_testcontainers: None
) -> None:
    monkeypatch.setenv("KCP_KAFKA_PROVIDER", "testcontainers")
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
    # --port 0: the start-up check of fixed ports must not meet a proxy someone else runs.
    result = CliRunner().invoke(app, ["run", "--no-admin", "--port", "0", "--log-format",
                                      "json"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {provider.DOCKER_EXTRA_MISSING}"]
    assert "Traceback" not in result.output
