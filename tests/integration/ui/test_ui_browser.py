"""The `/ui` page in a real headless Chromium, against a proxy with a token in front of the
session's real broker, while real confluent-kafka (librdkafka) consumers rebalance through it.

What is checked is what a person at the page would see: the page asks for the token once and
keeps it for the tab; it loads with no console error and no request off its own origin (nor
does `/docs`); a group appears while it forms; a rule added in the form (its 422 shown next to
the field first) fires on the next rebalance and its span appears in the live timeline; the
picture of that two-member rebalance with its injected SyncGroup error is kept as a screenshot
(artifacts/ui/) and checked by the positions of its SVG elements, not against a golden image.
Every wait is bounded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import Consumer
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.ui.conftest import ARTIFACTS, UiProxy
from tests.support.chaos import create_topic

WAIT_S = 60


class Member(threading.Thread):
    """A librdkafka consumer polling in its own thread until stopped.

    Not kafka-python: in one CI run a kafka-python 3.0.12 member went quiet right after the
    two back-to-back generations a new topic causes (the broker dropped it from the next
    generation exactly one session timeout after the last one), so the two-member picture
    never formed. Why it stopped heartbeating is not established here; a page test should
    not rest on it."""

    def __init__(self, bootstrap: str, topic: str, group: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest", "retry.backoff.ms": 100,
            "topic.metadata.refresh.interval.ms": 5000})
        self.consumer.subscribe([topic])

    def run(self) -> None:
        while not self.stopping.is_set():
            self.consumer.poll(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        self.consumer.close()


@contextmanager
def members(ui: UiProxy, topic: str, group: str) -> Iterator[list[Member]]:
    started: list[Member] = []
    try:
        yield started
    finally:
        for member in started:
            member.stop()


def start_member(started: list[Member], ui: UiProxy, topic: str, group: str) -> Member:
    member = Member(ui.bootstrap_servers, topic, group, f"{group}-m{len(started)}")
    started.append(member)
    member.start()
    return member


def wait(driver: Any, what: str, check: Any) -> Any:
    """Until `check` is truthy; the page re-renders its tables every poll, so an element
    gone stale in between is looked up again."""
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)
                         ).until(check, message=what)


def click(driver: Any, css: str) -> None:
    wait(driver, f"to click {css}", lambda d: d.find_element(By.CSS_SELECTOR, css).click() or 1)


def rule_cell(driver: Any, rule: str, column: int) -> str:
    row = driver.find_element(By.CSS_SELECTOR, f'#rules tbody tr[data-rule="{rule}"]')
    return str(row.find_elements(By.TAG_NAME, "td")[column].text)


def open_ui(driver: Any, ui: UiProxy, path: str = "/ui") -> None:
    """The page with the token already in the tab's sessionStorage, as after entering it."""
    driver.get(ui.admin_url + "/ui/static/ui.css")
    driver.execute_script("sessionStorage.setItem('kcp-admin-token', arguments[0])", ui.token)
    driver.get(ui.admin_url + path)
    wait(driver, "the page to reach the API",
         lambda d: d.find_element(By.ID, "status").text.startswith("connected"))


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked for: the network log and the resource timing entries."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    urls += driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    return urls


def off_origin(urls: list[str], origin: str) -> list[str]:
    return [u for u in urls if not u.startswith("data:")
            and "{0.scheme}://{0.netloc}".format(urlsplit(u)) != origin]


def test_page_asks_for_the_token_once_and_loads_only_its_own(browser: Any,
                                                            ui_proxy: UiProxy) -> None:
    driver = browser
    driver.get(ui_proxy.admin_url + "/ui")
    form = driver.find_element(By.ID, "token-form")
    wait(driver, "the token form", lambda d: "hidden" not in form.get_attribute("class"))
    driver.find_element(By.ID, "token").send_keys(ui_proxy.token)
    form.find_element(By.TAG_NAME, "button").click()
    wait(driver, "the page to reach the API with the token",
         lambda d: d.find_element(By.ID, "status").text.startswith("connected"))
    assert driver.execute_script(
        "return sessionStorage.getItem('kcp-admin-token')") == ui_proxy.token
    rows = driver.find_elements(By.CSS_SELECTOR, "#connections tbody tr")
    assert isinstance(rows, list)
    driver.get_log("browser"), driver.get_log("performance")  # what came before the token

    driver.refresh()  # the token is kept: no form, no 401, nothing from elsewhere
    wait(driver, "the reloaded page to reach the API",
         lambda d: d.find_element(By.ID, "status").text.startswith("connected"))
    assert "hidden" in driver.find_element(By.ID, "token-form").get_attribute("class")
    urls = requested_urls(driver)
    assert ui_proxy.admin_url + "/ui/static/ui.js" in urls
    assert off_origin(urls, ui_proxy.admin_url) == []
    assert console_errors(driver) == []

    # /docs with the token sent by the browser on every request: the vendored Swagger UI
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                           {"headers": {"Authorization": f"Bearer {ui_proxy.token}"}})
    driver.get(ui_proxy.admin_url + "/docs")
    wait(driver, "Swagger UI to list the operations",
         lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10)
    urls = requested_urls(driver)
    assert ui_proxy.admin_url + "/ui/static/swagger/swagger-ui-bundle.js" in urls
    assert ui_proxy.admin_url + "/openapi.json" in urls
    assert off_origin(urls, ui_proxy.admin_url) == []
    assert console_errors(driver) == []


def _svg_layout(driver: Any) -> dict[str, Any]:
    """Lanes and spans of the timeline on the page, with their positions on screen."""
    return driver.execute_script("""
        const box = (el) => { const r = el.getBoundingClientRect();
                              return {x: r.left, y: r.top, w: r.width, h: r.height}; };
        const svg = document.querySelector('#timeline svg');
        if (!svg) return null;
        const lanes = [...svg.querySelectorAll('g.lane')].map((g) => ({
            ref: g.dataset.lane, member: g.dataset.member || null,
            box: box(g.querySelector('rect.lane-bg'))}));
        const spans = [...svg.querySelectorAll('rect.span')].map((r) => ({
            lane: r.dataset.lane, api: r.dataset.api, kind: r.dataset.outcome,
            rule: r.dataset.rule || null, seq: Number(r.dataset.seq),
            generation: Number(r.dataset.generation ?? -1), box: box(r)}));
        return {lanes, spans};
    """)


def _settled_after_error(layout: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two members, the injected SyncGroup, its member synced ok after it, and the other
    synced ok in that generation or a later one (it may have synced first: the leader often
    does, and the follower's retry then needs no new generation)."""
    if not layout:
        return None
    lanes = [lane["ref"] for lane in layout["lanes"] if lane["member"]]
    injected = [s for s in layout["spans"] if s["kind"] == "injected" and s["api"] == "SyncGroup"]
    if len(lanes) < 2 or not injected:
        return None
    hit = injected[0]
    synced = [s for s in layout["spans"] if s["api"] == "SyncGroup" and s["kind"] == "ok"]
    if not any(s["lane"] == hit["lane"] and s["box"]["x"] > hit["box"]["x"] for s in synced):
        return None
    others = {s["lane"] for s in synced if s["generation"] >= hit["generation"]}
    return layout if set(lanes) - {hit["lane"]} <= others else None


def _fill(form: Any, name: str, value: str) -> None:
    field = form.find_element(By.NAME, name)
    field.clear()
    if value:
        field.send_keys(value)


def test_live_rebalance_rule_from_the_form_and_its_injected_sync_error(
        browser: Any, ui_proxy: UiProxy, unique_name: Any) -> None:
    driver = browser
    topic, group = unique_name("t"), unique_name("g")
    create_topic(ui_proxy.bootstrap_servers, topic, 2)
    open_ui(driver, ui_proxy)
    with members(ui_proxy, topic, group) as started:
        start_member(started, ui_proxy, topic, group)
        wait(driver, "the group to appear while it forms", lambda d: any(
            r.get_attribute("data-group") == group
            for r in d.find_elements(By.CSS_SELECTOR, "#groups tbody tr")))
        click(driver, f'#groups tbody tr[data-group="{group}"]')
        wait(driver, "the group's live timeline with its first member", lambda d: (
            (layout := _svg_layout(d)) and any(lane["member"] for lane in layout["lanes"])))

        form = driver.find_element(By.ID, "rule-form")
        Select(form.find_element(By.NAME, "action.type")).select_by_visible_text("delay")
        _fill(form, "action.fixed_ms", "soon")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        fixed_ms_error = form.find_element(By.CSS_SELECTOR, '[data-field="action.fixed_ms"] .err')
        wait(driver, "the 422 next to the delay field", lambda d: fixed_ms_error.text)
        assert "integer" in fixed_ms_error.text

        _fill(form, "action.fixed_ms", "")
        _fill(form, "id", "ui-sync-error")
        _fill(form, "match.apis", "SyncGroup")
        _fill(form, "match.group_id", group)
        Select(form.find_element(By.NAME, "action.type")).select_by_visible_text("error")
        _fill(form, "action.error", "REBALANCE_IN_PROGRESS")
        _fill(form, "dosage.max_injections", "1")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(driver, "the rule to be added",
             lambda d: d.find_element(By.ID, "rule-form-error").text == "added ui-sync-error")
        assert fixed_ms_error.text == ""

        start_member(started, ui_proxy, topic, group)  # the rebalance the rule hits
        layout = wait(driver, "the injected SyncGroup and both members settled after it",
                      lambda d: _settled_after_error(_svg_layout(d)))
        wait(driver, "the rules table to count the injection",
             lambda d: rule_cell(d, "ui-sync-error", 5) == "1")

        lanes = {lane["ref"]: lane["box"] for lane in layout["lanes"]}
        for span in layout["spans"]:  # every span inside its member's lane
            lane = lanes[span["lane"]]
            assert lane["y"] <= span["box"]["y"]
            assert span["box"]["y"] + span["box"]["h"] <= lane["y"] + lane["h"] + 0.5
        tops = sorted(box["y"] for box in lanes.values())
        assert len(tops) == len(set(tops))  # one lane per member, stacked
        (injected,) = [s for s in layout["spans"] if s["kind"] == "injected"]
        assert injected["rule"] == "ui-sync-error"
        joined_before = {s["lane"] for s in layout["spans"]
                         if s["api"] == "JoinGroup" and s["box"]["x"] <= injected["box"]["x"]}
        assert len(joined_before) >= 2  # both members joined the generation the error hit

        click(driver, f'#timeline rect.span[data-seq="{injected["seq"]}"]')
        detail = driver.find_element(By.ID, "span-detail").text
        assert "fault: rule ui-sync-error (error" in detail and "SyncGroup" in detail

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "two-member-sync-error.png"
        driver.find_element(By.ID, "timeline").screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        (ARTIFACTS / "two-member-sync-error.svg").write_text(driver.execute_script(
            "return document.querySelector('#timeline svg').outerHTML"))

        rule = '#rules tr[data-rule="ui-sync-error"]'
        for label, state in (("disable", "no"), ("enable", "yes")):
            click(driver, f'{rule} button[data-action="{label}"]')
            wait(driver, f"the rule to {label}",
                 lambda d, state=state: rule_cell(d, "ui-sync-error", 1) == state)
        click(driver, f'{rule} button[data-action="delete"]')
        wait(driver, "the rule to be deleted", lambda d: not d.find_elements(
            By.CSS_SELECTOR, '#rules tr[data-rule="ui-sync-error"]'))
