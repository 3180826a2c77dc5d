"""The settings of `kafka-chaos-proxy run`, from flags, the environment and a config file.

Why one model: a container wants `KCP_PORT=...`, a team wants a checked-in `kcp.toml`, a
person at a terminal wants flags; all three must mean the same thing and fail the same way.
Precedence is flag > environment (`KCP_<FLAG_NAME>`) > config file > default. Keys are the
flag names with underscores (`--port-base` is `port_base`, `KCP_PORT_BASE`). A mistake in any
layer is one line naming the key, where it came from and what is allowed.

The CLI (proxy.cli.run) hands over only the flags given on the command line, so that a
flag's default never hides an environment variable or a file entry.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from kafka_chaos_proxy.faults.engine import DEFAULT_MAX_RULES
from kafka_chaos_proxy.proxy.config import (
    DEFAULT_HANDSHAKE_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_LISTEN_BACKLOG,
    DEFAULT_MAX_BROKERS,
    DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION,
    DEFAULT_MAX_BUFFERED_BYTES_TOTAL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_REQUEST_TIMEOUT_S,
)
from kafka_chaos_proxy.proxy.events import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_FILE_KEEP,
    DEFAULT_FILE_MAX_BYTES,
)
from kafka_chaos_proxy.proxy.tls.settings import DEFAULT_TLS_MIN_VERSION

TlsVersion = Literal["1.2", "1.3"]
OwnSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

ENV_PREFIX = "KCP_"
#: Settings whose values an error message must not repeat.
_SECRET_KEYS = frozenset({"upstream_sasl_password", "admin_token"})
LOG_LEVELS = ("debug", "info", "warning", "error")

class SettingsProblem(ValueError):
    """A setting that cannot be used; the message is the one line the user is shown."""


class RunSettings(BaseSettings):
    """Every `run` flag, under its own name with underscores."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid",
                                      validate_default=False)

    # Upstream
    bootstrap_server: str | None = None
    kafka_version: str | None = None
    # Listeners
    listen_host: str = "127.0.0.1"
    advertised_host: str | None = None
    port: int = Field(9192, ge=0, le=65535)
    port_base: int | None = Field(None, ge=0, le=65535)  # 0: ephemeral
    node_port: list[str] = Field(default_factory=list)
    # Admin
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(9190, ge=0, le=65535)
    no_admin: bool = False
    admin_token: str | None = None
    admin_token_file: Path | None = None
    admin_allowed_host: list[str] = Field(default_factory=list)
    metrics_client_ids: bool = False
    # Faults
    faults: Path | None = None
    seed: int | None = None
    # Events
    event_log: Path | None = None
    event_log_max_bytes: int = Field(DEFAULT_FILE_MAX_BYTES, ge=1)
    event_log_keep: int = Field(DEFAULT_FILE_KEEP, ge=0)
    event_buffer_bytes: int = Field(DEFAULT_BUFFER_BYTES, ge=1)
    fetch_events: bool = False
    # Limits
    max_frame_bytes: int = Field(DEFAULT_MAX_FRAME_BYTES, ge=1)
    max_inflight: int = Field(DEFAULT_MAX_INFLIGHT, ge=1)
    max_brokers: int = Field(DEFAULT_MAX_BROKERS, ge=1)
    listen_backlog: int = Field(DEFAULT_LISTEN_BACKLOG, ge=1)
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1)
    max_connections_per_ip: int | None = Field(DEFAULT_MAX_CONNECTIONS_PER_IP, ge=1)
    max_buffered_bytes_per_connection: int = Field(
        DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION, ge=1)
    max_buffered_bytes_total: int = Field(DEFAULT_MAX_BUFFERED_BYTES_TOTAL, ge=1)
    idle_timeout_s: float = Field(DEFAULT_IDLE_TIMEOUT_S or 0, ge=0)
    request_timeout_s: float = Field(DEFAULT_REQUEST_TIMEOUT_S or 0, ge=0)
    handshake_timeout_s: float = Field(DEFAULT_HANDSHAKE_TIMEOUT_S or 0, ge=0)
    max_rules: int = Field(DEFAULT_MAX_RULES, ge=1)
    # Logging
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    capture: Path | None = None
    capture_api: list[str] = Field(default_factory=list)
    # TLS on the listeners (`proxy.tls.settings.ListenerTls`)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_min_version: TlsVersion = DEFAULT_TLS_MIN_VERSION
    tls_self_signed: bool = False
    tls_self_signed_dir: Path | None = None
    # TLS and the proxy's own SASL login to the brokers (`UpstreamTls`, `UpstreamSasl`)
    upstream_tls: bool = False
    upstream_tls_ca: Path | None = None
    upstream_tls_cert: Path | None = None
    upstream_tls_key: Path | None = None
    upstream_tls_insecure: bool = False
    upstream_tls_min_version: TlsVersion = DEFAULT_TLS_MIN_VERSION
    upstream_sasl_mechanism: OwnSaslMechanism | None = None
    upstream_sasl_username: str | None = None
    upstream_sasl_password_file: Path | None = None
    # No flag on purpose (a flag's value shows in `ps`): KCP_UPSTREAM_SASL_PASSWORD or the
    # config file's upstream_sasl_password; SecretStr keeps it out of reprs and errors.
    upstream_sasl_password: SecretStr | None = None

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        """`KCP_LOG_LEVEL=DEBUG` means what `debug` means."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("upstream_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        """`scram-sha-512` means what Kafka calls SCRAM-SHA-512."""
        return value.upper() if isinstance(value, str) else value

    @field_validator("kafka_version")
    @classmethod
    def _known_major(cls, value: str | None) -> str | None:
        """Refuse a version the local broker cannot run before any jar is fetched."""
        if value is None:
            return None
        from kafka_chaos_proxy.proxy.real_kafka.versions import SUPPORTED_VERSIONS, distribution

        try:
            distribution(value)
        except ValueError:
            raise ValueError(f"a Kafka release 3.x (KRaft) or 4.x, e.g. "
                             f"{' or '.join(SUPPORTED_VERSIONS)}") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) over the environment over the config file; no .env, no secrets dir."""
        return init_settings, env_settings, _ConfigFileSource(settings_cls)


#: The config file of the `load_settings` call in progress (a source has no other input).
_CONFIG_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("kcp_config_values",
                                                               default=None)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The config file's values, already read and key-checked by `read_config_file`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_CONFIG_VALUES.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_CONFIG_VALUES.get() or {})


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or YAML mapping of run settings; an unknown key names the key and the file."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SettingsProblem(f"--config {path}: use a .toml, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsProblem(f"--config {path}: cannot read it: {exc}") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise SettingsProblem(f"--config {path}: not valid {suffix[1:].upper()}: {detail}"
                              ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsProblem(f"--config {path}: expected a mapping of settings, got "
                              f"{type(data).__name__}")
    known = set(RunSettings.model_fields)
    for key in data:
        if key not in known:
            raise SettingsProblem(f"--config {path}: unknown key {key!r}{_did_you_mean(key)}; "
                                  "keys are the run flags with underscores (port, "
                                  "bootstrap_server, admin_port, ...)")
    return dict(data)


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(str(key).replace("-", "_"), RunSettings.model_fields, 1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_settings(flags: dict[str, Any], config_file: Path | None = None) -> RunSettings:
    """The settings: `flags` (only those given on the command line) over `KCP_*` over the
    config file over the defaults. Raises `SettingsProblem` with one line to show."""
    values = read_config_file(config_file) if config_file is not None else {}
    token = _CONFIG_VALUES.set(values)
    try:
        return RunSettings(**flags)
    except SettingsError as exc:  # an environment value that is not valid JSON for a list
        field = _field_in(str(exc))
        where = f"{ENV_PREFIX}{field.upper()}" if field else "a KCP_ variable"
        raise SettingsProblem(f"{where}: expected a JSON list, e.g. '[\"a\", \"b\"]'") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "?"
        where = _origin(name, flags, values, config_file)
        message = str(error["msg"]).removeprefix("Value error, ")
        got = "a value" if name in _SECRET_KEYS else repr(error.get("input"))
        raise SettingsProblem(f"{where}: {message} (got {got})") from None
    finally:
        _CONFIG_VALUES.reset(token)


def _field_in(message: str) -> str | None:
    for name in RunSettings.model_fields:
        if f'"{name}"' in message:
            return name
    return None


def _origin(name: str, flags: dict[str, Any], values: dict[str, Any],
            config_file: Path | None) -> str:
    """Which layer supplied the bad value: the same precedence as the sources."""
    flag = "--" + name.replace("_", "-")
    if name in flags:
        return flag
    env = f"{ENV_PREFIX}{name.upper()}"
    if env in os.environ:
        return env
    if name in values:
        return f"{name} in {config_file}"
    return flag
