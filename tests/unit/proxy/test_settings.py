"""`run` settings: flag > KCP_* > config file > default, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka import maven
from kafka_chaos_proxy.proxy.settings import SettingsProblem, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KCP_PORT", "KCP_ADMIN_PORT", "KCP_LOG_LEVEL", "KCP_BOOTSTRAP_SERVER",
                 "KCP_KAFKA_VERSION", "KCP_NODE_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_precedence_flag_over_env_over_file_over_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "kcp.toml"
    config.write_text('port = 7000\nadmin_port = 7001\nbootstrap_server = "file:9092"\n'
                      'log_level = "debug"\n')
    monkeypatch.setenv("KCP_ADMIN_PORT", "8001")
    monkeypatch.setenv("KCP_BOOTSTRAP_SERVER", "env:9092")
    settings = load_settings({"bootstrap_server": "flag:9092"}, config)
    assert settings.bootstrap_server == "flag:9092"  # flag
    assert settings.admin_port == 8001  # env over file
    assert settings.port == 7000 and settings.log_level == "debug"  # file over default
    assert settings.listen_host == "127.0.0.1"  # default


def test_yaml_file_and_list_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "kcp.yaml"
    config.write_text("node_port: ['1=9301']\nno_admin: true\n")
    settings = load_settings({}, config)
    assert settings.node_port == ["1=9301"] and settings.no_admin is True
    monkeypatch.setenv("KCP_NODE_PORT", '["2=9302"]')
    assert load_settings({}, config).node_port == ["2=9302"]


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "kcp.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsProblem) as info:
        load_settings({}, config)
    message = str(info.value)
    assert "'prot'" in message and str(config) in message and "'port'" in message
    assert "\n" not in message


def test_bad_values_name_the_key_and_what_is_allowed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KCP_LOG_LEVEL", "loud")
    with pytest.raises(SettingsProblem, match=r"KCP_LOG_LEVEL: .*'debug'.*'error'"):
        load_settings({})
    monkeypatch.delenv("KCP_LOG_LEVEL")
    monkeypatch.setenv("KCP_KAFKA_VERSION", "2.8.1")
    with pytest.raises(SettingsProblem, match=r"KCP_KAFKA_VERSION: a Kafka release 3.x"):
        load_settings({})
    monkeypatch.delenv("KCP_KAFKA_VERSION")
    config = tmp_path / "kcp.toml"
    config.write_text("port = 70000\n")
    with pytest.raises(SettingsProblem, match=r"port in .*kcp.toml: .*65535"):
        load_settings({}, config)
    monkeypatch.setenv("KCP_NODE_PORT", "1=9301")
    with pytest.raises(SettingsProblem, match="KCP_NODE_PORT: expected a JSON list"):
        load_settings({})
    config.write_text("port = [")
    with pytest.raises(SettingsProblem, match="not valid TOML"):
        load_settings({}, config)


def test_kafka_version_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCP_KAFKA_VERSION", "3.9.2")
    assert load_settings({}).kafka_version == "3.9.2"


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KCP_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert maven.cache_root() == Path.home() / ".cache" / "kafka-chaos-proxy"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert maven.cache_root() == tmp_path / "xdg" / "kafka-chaos-proxy"
    monkeypatch.setenv("KCP_CACHE_DIR", str(tmp_path / "own"))
    assert maven.cache_root() == tmp_path / "own"


def test_security_keys_come_from_env_and_file_and_a_password_is_never_shown(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "kcp.yaml"
    config.write_text("tls_self_signed: true\nupstream_tls_ca: /etc/kafka/ca.pem\n"
                      "upstream_sasl_mechanism: scram-sha-512\n")
    monkeypatch.setenv("KCP_UPSTREAM_SASL_USERNAME", "admin")
    monkeypatch.setenv("KCP_UPSTREAM_SASL_PASSWORD", "hunter2")
    settings = load_settings({}, config)
    assert settings.tls_self_signed and settings.tls_min_version == "1.2"
    assert settings.upstream_tls_ca == Path("/etc/kafka/ca.pem")
    assert settings.upstream_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.upstream_sasl_password is not None
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    config.write_text("upstream_sasl_password: [1, 2]\n")
    monkeypatch.delenv("KCP_UPSTREAM_SASL_PASSWORD")
    with pytest.raises(SettingsProblem) as info:
        load_settings({}, config)
    assert "[1, 2]" not in str(info.value) and "upstream_sasl_password" in str(info.value)
    monkeypatch.setenv("KCP_TLS_MIN_VERSION", "1.1")
    with pytest.raises(SettingsProblem, match=r"KCP_TLS_MIN_VERSION: .*'1.2'.*'1.3'"):
        load_settings({})
