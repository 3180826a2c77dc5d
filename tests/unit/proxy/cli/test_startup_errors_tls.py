"""`run` with bad TLS or SASL input: exit code 2, one line naming the flag and the file, and
nothing started (the proxy never binds; the bad key is caught before the broker would be)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy import logging as proxy_logging
from kafka_chaos_proxy.proxy.cli import app
from tests.support.pki import make_pki


@pytest.fixture(autouse=True)
def _no_kcp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KCP_UPSTREAM_SASL_PASSWORD", "KCP_TLS_CERT", "KCP_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)


def _invoke(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, list[str]]:
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
    result = CliRunner().invoke(app, ["run", "--log-format", "json", "-b", "127.0.0.1:1",
                                      "--port", "0", "--no-admin", *args])
    return result.exit_code, result.stderr.splitlines()


def test_a_key_that_is_not_the_certificates_names_the_key_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pki, other = make_pki(tmp_path / "a"), make_pki(tmp_path / "b")
    code, lines = _invoke(monkeypatch, "--tls-cert", str(pki.server_cert), "--tls-key",
                          str(other.server_key))
    assert code == 2 and len(lines) == 1, lines
    assert "--tls-key" in lines[0] and str(other.server_key) in lines[0]
    assert "does not belong" in lines[0]


def test_an_unreadable_key_names_the_file(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "a")
    missing = tmp_path / "missing-key.pem"
    code, lines = _invoke(monkeypatch, "--upstream-tls-ca", str(pki.ca), "--upstream-tls-cert",
                          str(pki.client_cert), "--upstream-tls-key", str(missing))
    assert code == 2 and len(lines) == 1, lines
    assert "--upstream-tls-key" in lines[0] and str(missing) in lines[0]


def test_conflicting_and_incomplete_security_flags(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "a")
    code, lines = _invoke(monkeypatch, "--tls-self-signed", "--tls-cert", str(pki.server_cert))
    assert code == 2 and "choose one" in lines[0], lines
    code, lines = _invoke(monkeypatch, "--tls-client-ca", str(pki.ca))
    assert code == 2 and "--tls-client-ca" in lines[0], lines
    code, lines = _invoke(monkeypatch, "--upstream-sasl-mechanism", "SCRAM-SHA-512",
                          "--upstream-sasl-username", "admin")
    assert code == 2 and len(lines) == 1 and "password" in lines[0], lines
    code, lines = _invoke(monkeypatch, "--upstream-sasl-mechanism", "GSSAPI")
    assert code == 2 and "--upstream-sasl-mechanism" in lines[0], lines


def test_the_password_file_is_read_and_never_echoed(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, lines = _invoke(monkeypatch, "--upstream-sasl-mechanism", "PLAIN",
                          "--upstream-sasl-username", "admin", "--upstream-sasl-password-file",
                          str(missing))
    assert code == 2 and str(missing) in lines[0], lines
    monkeypatch.setenv("KCP_UPSTREAM_SASL_PASSWORD", "hunter2-from-env")
    monkeypatch.setenv("KCP_TLS_KEY", str(tmp_path / "also-missing.pem"))
    monkeypatch.setenv("KCP_TLS_CERT", str(tmp_path / "missing-cert.pem"))
    code, lines = _invoke(monkeypatch, "--upstream-sasl-mechanism", "PLAIN",
                          "--upstream-sasl-username", "admin")
    assert code == 2 and len(lines) == 1, lines
    assert "missing-cert.pem" in lines[0] and "hunter2" not in "\n".join(lines)
