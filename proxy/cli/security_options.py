"""The TLS and SASL options of `kafka-chaos-proxy run`: their flags, and how the settings
become `ProxyConfig`'s `listener_tls`, `upstream_tls` and `upstream_sasl`.

Kept apart from `proxy.cli.run` so that the security options are one block there (a line per
option) and their checks one function here. Defaults come from `proxy.tls.settings` (defined
once); the settings model (`proxy.settings.RunSettings`) holds the same keys, so every option
is also `KCP_<NAME>` and a config file key. The proxy's own SASL password has no flag (a
flag's value shows in `ps`): `--upstream-sasl-password-file`, `KCP_UPSTREAM_SASL_PASSWORD` or
the config file's `upstream_sasl_password`; it is never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kafka_chaos_proxy.proxy.settings import RunSettings, SettingsProblem
from kafka_chaos_proxy.proxy.tls.certs import listener_names
from kafka_chaos_proxy.proxy.tls.settings import (
    DEFAULT_TLS_MIN_VERSION,
    ListenerTls,
    UpstreamSasl,
    UpstreamTls,
    default_self_signed_dir,
)

TLS_PANEL = "TLS to clients (every listener)"
UPSTREAM_PANEL = "Upstream security (TLS and the proxy's own SASL login to the brokers)"

TlsCert = Annotated[Path | None, typer.Option(
    help="Serve TLS on every listener with this PEM certificate (chain).",
    rich_help_panel=TLS_PANEL)]
TlsKey = Annotated[Path | None, typer.Option(
    help="The PEM private key of --tls-cert (unencrypted).", rich_help_panel=TLS_PANEL)]
TlsClientCa = Annotated[Path | None, typer.Option(
    help="mTLS: clients must present a certificate that verifies against this PEM CA bundle.",
    rich_help_panel=TLS_PANEL)]
TlsMinVersion = Annotated[str, typer.Option(
    help="Lowest TLS version clients may use: 1.2 or 1.3.", rich_help_panel=TLS_PANEL)]
TlsSelfSigned = Annotated[bool, typer.Option(
    "--tls-self-signed", help="Serve TLS with a certificate made at start-up for the listener "
    "names, signed by a CA kept in --tls-self-signed-dir; hand its ca.pem (printed) to "
    "clients.", rich_help_panel=TLS_PANEL)]
TlsSelfSignedDir = Annotated[Path | None, typer.Option(
    help="Where --tls-self-signed keeps its CA, made once and reused (default: the tls folder "
    "of the cache, ~/.cache/kafka-chaos-proxy/tls unless KCP_CACHE_DIR says otherwise).",
    rich_help_panel=TLS_PANEL)]
UpstreamTlsOn = Annotated[bool, typer.Option(
    "--upstream-tls", help="Connect to the brokers with TLS, verified against the system's "
    "trust store (implied by the other --upstream-tls-* options).",
    rich_help_panel=UPSTREAM_PANEL)]
UpstreamTlsCa = Annotated[Path | None, typer.Option(
    help="Verify the brokers' certificates against this PEM CA bundle (SNI and the name "
    "checked: the broker's advertised host).", rich_help_panel=UPSTREAM_PANEL)]
UpstreamTlsCert = Annotated[Path | None, typer.Option(
    help="PEM client certificate for brokers that require mTLS.",
    rich_help_panel=UPSTREAM_PANEL)]
UpstreamTlsKey = Annotated[Path | None, typer.Option(
    help="The PEM private key of --upstream-tls-cert (unencrypted).",
    rich_help_panel=UPSTREAM_PANEL)]
UpstreamTlsInsecure = Annotated[bool, typer.Option(
    "--upstream-tls-insecure", help="TLS to the brokers WITHOUT verifying them: for tests "
    "only (start-up warns).", rich_help_panel=UPSTREAM_PANEL)]
UpstreamTlsMinVersion = Annotated[str, typer.Option(
    help="Lowest TLS version towards the brokers: 1.2 or 1.3.", rich_help_panel=UPSTREAM_PANEL)]
UpstreamSaslMechanism = Annotated[str | None, typer.Option(
    help="The proxy's own login (discovery, broker-consistent faults) to brokers that require "
    "SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Clients' SASL always passes through.",
    rich_help_panel=UPSTREAM_PANEL)]
UpstreamSaslUsername = Annotated[str | None, typer.Option(
    help="User of the proxy's own login.", rich_help_panel=UPSTREAM_PANEL)]
UpstreamSaslPasswordFile = Annotated[Path | None, typer.Option(
    help="File whose first line is that user's password (or KCP_UPSTREAM_SASL_PASSWORD).",
    rich_help_panel=UPSTREAM_PANEL)]

__all__ = ["DEFAULT_TLS_MIN_VERSION", "security_config"]


def _listener_tls(s: RunSettings, listen_host: str, advertised: str) -> ListenerTls | None:
    if s.tls_self_signed and (s.tls_cert or s.tls_key):
        raise SettingsProblem("--tls-self-signed and --tls-cert/--tls-key: choose one")
    if s.tls_self_signed:
        return ListenerTls(client_ca_file=s.tls_client_ca, min_version=s.tls_min_version,
                           self_signed_dir=s.tls_self_signed_dir or default_self_signed_dir(),
                           names=listener_names(listen_host, advertised))
    if s.tls_cert or s.tls_key:
        if s.tls_cert is None or s.tls_key is None:
            missing = "--tls-key" if s.tls_key is None else "--tls-cert"
            raise SettingsProblem(f"{missing}: TLS on the listeners needs both --tls-cert and "
                                  "--tls-key (PEM files), or --tls-self-signed")
        return ListenerTls(cert_file=s.tls_cert, key_file=s.tls_key,
                           client_ca_file=s.tls_client_ca, min_version=s.tls_min_version)
    if s.tls_client_ca is not None:
        raise SettingsProblem("--tls-client-ca: client certificates need TLS on the listeners "
                              "(--tls-cert and --tls-key, or --tls-self-signed)")
    return None


def _upstream_tls(s: RunSettings) -> UpstreamTls | None:
    wanted = (s.upstream_tls or s.upstream_tls_insecure or s.upstream_tls_ca is not None
              or s.upstream_tls_cert is not None or s.upstream_tls_key is not None)
    if not wanted:
        return None
    if s.upstream_tls_insecure and s.upstream_tls_ca is not None:
        raise SettingsProblem("--upstream-tls-insecure and --upstream-tls-ca: choose one "
                              "(insecure verifies nothing)")
    return UpstreamTls(ca_file=s.upstream_tls_ca, cert_file=s.upstream_tls_cert,
                       key_file=s.upstream_tls_key, insecure=s.upstream_tls_insecure,
                       min_version=s.upstream_tls_min_version)


def _password(s: RunSettings) -> str | None:
    path = s.upstream_sasl_password_file
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsProblem(f"--upstream-sasl-password-file: cannot read {path}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
        if not lines or not lines[0]:
            raise SettingsProblem(f"--upstream-sasl-password-file: {path} has an empty first "
                                  "line")
        return lines[0]
    if s.upstream_sasl_password is not None:
        return s.upstream_sasl_password.get_secret_value()
    return None


def _upstream_sasl(s: RunSettings) -> UpstreamSasl | None:
    password = _password(s)
    given = {"--upstream-sasl-mechanism": s.upstream_sasl_mechanism,
             "--upstream-sasl-username": s.upstream_sasl_username,
             "--upstream-sasl-password-file (or KCP_UPSTREAM_SASL_PASSWORD)": password}
    if not any(given.values()):
        return None
    missing = [flag for flag, value in given.items() if not value]
    if missing:
        raise SettingsProblem(f"{missing[0]}: the proxy's own SASL login needs a mechanism, a "
                              "user name and a password")
    assert s.upstream_sasl_mechanism and s.upstream_sasl_username and password
    return UpstreamSasl(s.upstream_sasl_mechanism, s.upstream_sasl_username, password)


def security_config(s: RunSettings, listen_host: str, advertised: str) -> dict[str, Any]:
    """`ProxyConfig` fields from the settings; raises `SettingsProblem` (one line)."""
    return {"listener_tls": _listener_tls(s, listen_host, advertised),
            "upstream_tls": _upstream_tls(s), "upstream_sasl": _upstream_sasl(s)}
