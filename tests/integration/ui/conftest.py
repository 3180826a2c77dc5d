"""A proxy with its admin API (token set, as a user beyond loopback would run it) in front of
the session's real broker, and a real headless Chromium driven by selenium.

The browser is Debian's `chromium` with its `chromium-driver` (.ci/run installs both when
missing). Without them the browser tests skip and say so; nothing is downloaded here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions, build_control_plane
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.events import EventLogOptions
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "ui-test-token"
ROOT = Path(__file__).resolve().parents[3]
#: Screenshots and SVGs the browser tests keep (gitignored, kept by CI as artifacts).
ARTIFACTS = ROOT / "artifacts" / "ui"


@dataclass
class UiProxy:
    proxy: EmbeddedProxy
    admin_url: str
    token: str

    @property
    def bootstrap_servers(self) -> str:
        return self.proxy.bootstrap_servers


@pytest.fixture
def ui_proxy(kafka_cluster: KafkaCluster, tmp_path: Path) -> Iterator[UiProxy]:
    cp = build_control_plane(ControlPlaneOptions(
        admin_port=0, admin_token=TOKEN, seed=5,
        events=EventLogOptions(path=tmp_path / "events.jsonl")))
    config = ProxyConfig(parse_bootstrap(kafka_cluster.bootstrap_servers),
                         listen_host="127.0.0.1", port=0)
    proxy = EmbeddedProxy(config, cp.decider, cp.observers, cp.triggers).start()
    assert proxy.loop is not None and proxy.server is not None
    try:
        asyncio.run_coroutine_threadsafe(cp.start(proxy.server), proxy.loop).result(30)
        assert cp.admin_url is not None
        yield UiProxy(proxy, cp.admin_url, TOKEN)
    finally:
        asyncio.run_coroutine_threadsafe(cp.stop(), proxy.loop).result(15)
        proxy.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium with its console and network logs kept."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"no browser: {', '.join(missing)} missing; install with "
                    "`apt-get install -y chromium chromium-driver` (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1300", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    log = ARTIFACTS / "chromedriver.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
