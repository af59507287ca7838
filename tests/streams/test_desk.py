"""The analyst desk in a real browser (headless Chromium), over a Redis filled by a real replay.

The test opens the queue, filters it, opens an alert, checks the chart and the parcels table
against the alert, marks it a false positive, and then replays more parcels of that entity: the
memory store, without the decision, would raise a new episode for that rule; the worker, with it,
raises none. Screenshots of the queue and of the alert page go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.entities import Pseudonymizer
from detectors.offline import detect_in_order, parse_valid
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store_memory import MemoryWindowStore
from detectors.windows import WindowConfig
from streams.replay import ReplayInput, export_alerts, run_replay, settings_env
from streams.servers import desk_server
from streams.settings import Settings
from tests.replay_expectations import RULES, SECRET, STREAM

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
CHROMEDRIVER = shutil.which("chromedriver")
HOUR_MS = 3_600_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMEDRIVER is None, reason="chromium-driver is installed by setup.sh"),
]


def get(url: str) -> tuple[bytes, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback server
        return response.read(), response.headers


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Any, timeout_s: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001, S110 - the page may be between renders; try again
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def clones(evidence: list[str], after_ms: int, copies: int) -> list[bytes]:
    """``copies`` new parcels for each evidence parcel, same sender and goods, packed into a few hours."""
    wanted = set(evidence)
    out, n = [], 0
    for event in parse_valid(STREAM.read_bytes().splitlines()):
        if event.parcel_key not in wanted or event.event_type != "declared":
            continue
        event = next(  # the raw record, to clone it as a feed would send it
            e for e in map(_load, STREAM.read_bytes().splitlines()) if e.get("event_id") == event.event_id
        )
        for k in range(copies):
            n += 1
            t = after_ms + n * HOUR_MS // 4
            clone = event | {"parcel_id": f"{event['parcel_id']}R{k}", "event_time": t}
            clone["event_id"] = f"{clone['parcel_id']}:declared"
            out.append(orjson.dumps(clone))
    return out


def _load(line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def offline_alerts(lines: list[bytes]) -> list[dict[str, Any]]:
    detector = Detector(load_reference(), load_rules(RULES), Pseudonymizer(SECRET.encode()))
    store = MemoryWindowStore(WindowConfig.for_rules(detector.rules.longest_window_s))
    return asyncio.run(detect_in_order(parse_valid(lines), detector, store, store.config.allowed_lateness_s))


def test_an_analyst_triages_an_alert_and_the_decision_silences_the_rule(
    live_settings: Settings, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    run_replay(live_settings, [ReplayInput(STREAM, "canonical")], None, timeout_s=240)
    with desk_server(settings_env(live_settings), tmp_path) as desk:
        url = desk.url
        # The queue, counted and live.
        api = json.loads(get(url + "/api/alerts")[0])
        browser.get(url + "/")
        wait_for(lambda: browser.find_element(By.ID, "count-total").text == f"{api['total']} alerts", what="counts")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")) == min(api["total"], 500)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "desk-queue.png"))

        # Filter to one rule: every row shows it, and the count follows.
        Select(browser.find_element(By.ID, "filter-rule")).select_by_value("cluster_7d")
        expected = [a for a in api["alerts"] if a["rule"] == "cluster_7d"]
        wait_for(lambda: browser.find_element(By.ID, "count-total").text == f"{len(expected)} alerts", what="filtered")
        rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
        assert {r.find_element(By.CSS_SELECTOR, "a.open").text for r in rows} == {"cluster_7d"}
        target = rows[0].get_attribute("data-alert-id")
        rows[0].find_element(By.CSS_SELECTOR, "a.open").click()

        # The alert page: reasons, the chart and the parcels table match the alert.
        wait_for(lambda: browser.find_element(By.ID, "parcels"), what="alert page")
        alert = json.loads(get(f"{url}/api/alerts?rule=cluster_7d")[0])["alerts"]
        alert = next(a for a in alert if a["alert_id"] == target)
        stored = next(
            a
            for a in map(orjson.loads, _export(live_settings, tmp_path).read_bytes().splitlines())
            if a["alert_id"] == target
        )
        chart = browser.find_element(By.CSS_SELECTOR, "svg.chart")
        assert int(chart.get_attribute("data-points")) == len(stored["evidence"])
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart circle.parcel")) == len(stored["evidence"])
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart line.threshold")
        table = browser.find_elements(By.CSS_SELECTOR, "#parcels tbody tr")
        assert {r.find_elements(By.TAG_NAME, "td")[1].text for r in table} == set(stored["parcel_ids"])
        masses = sorted(float(r.find_elements(By.TAG_NAME, "td")[9].text) for r in table)
        assert masses == sorted(round(e["suspect_mass_kg"], 2) for e in stored["evidence"])
        assert all(r.find_elements(By.TAG_NAME, "td")[4].text for r in table)  # declared goods are shown
        assert int(browser.find_element(By.CSS_SELECTOR, "svg.graph").get_attribute("data-nodes")) >= 2
        assert stored["reasons"][0] in browser.find_element(By.CSS_SELECTOR, ".reasons").text
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1366, min(int(height) + 140, 4000))  # the whole page in one picture
        browser.save_screenshot(str(SCREENSHOTS / "desk-alert.png"))
        browser.set_window_size(1366, 900)

        # The case file stands alone; the CSV holds the queue.
        case, _ = get(f"{url}/alerts/{target}/case.html")
        assert b"<svg" in case and b"src=" not in case and b"http" not in case.replace(b"http-equiv", b"")
        csv_body, headers = get(url + "/queue.csv?rule=cluster_7d")
        assert headers["Content-Type"].startswith("text/csv") and len(csv_body.splitlines()) == len(expected) + 1
        assert "default-src 'self'" in get(url + "/")[1]["Content-Security-Policy"]

        # Decide: false positive, with a name and a note; the page shows it.
        browser.find_element(By.ID, "analyst").send_keys("Analyst Li")
        browser.find_element(By.ID, "note").send_keys("honest exporter, checked")
        browser.find_element(By.ID, "false-positive").click()
        wait_for(lambda: browser.find_element(By.ID, "status").text == "false_positive", what="decision")
        assert "Analyst Li" in browser.find_element(By.ID, "decisions").text

        # More parcels of that entity: without the decision they would raise a new episode of the rule.
        last_ms = max(e.event_time_ms for e in parse_valid(STREAM.read_bytes().splitlines()))
        more = clones(stored["parcel_ids"], last_ms + 24 * HOUR_MS, copies=3)
        key = (alert["rule"], alert["entity_type"], alert["entity_key"])
        stored_now = [orjson.loads(line) for line in _export(live_settings, tmp_path).read_bytes().splitlines()]
        before = {a["alert_id"]: a["episode"] for a in stored_now if _key(a) == key}
        assert target in before
        undecided = offline_alerts([*STREAM.read_bytes().splitlines(), *more])
        assert max(a["episode"] for a in undecided if _key(a) == key) > max(before.values())

        # The queue stays open while they are replayed: new alerts appear in it without a reload.
        browser.get(url + "/")
        wait_for(lambda: browser.find_element(By.ID, "count-total").text == f"{api['total']} alerts", what="queue")
        marker = browser.find_element(By.ID, "queue")
        extra = tmp_path / "more.jsonl"
        extra.write_bytes(b"\n".join(more) + b"\n")
        run_replay(live_settings, [ReplayInput(extra, "canonical")], None, timeout_s=240)
        after = [orjson.loads(line) for line in _export(live_settings, tmp_path).read_bytes().splitlines()]
        assert len(after) > api["total"]  # the replay did alert, on other rules and entities
        wait_for(lambda: browser.find_element(By.ID, "count-total").text == f"{len(after)} alerts", what="live queue")
        assert browser.find_element(By.ID, "queue") == marker  # the same page: no reload
        assert browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr.fresh")
        assert {a["alert_id"] for a in after if _key(a) == key} == set(before)  # but none for that rule and entity


def _key(alert: dict[str, Any]) -> tuple[str, str, str]:
    return (alert["rule"], alert["entity_type"], alert["entity_key"])


def _export(settings: Settings, tmp_path: Path) -> Path:
    out = tmp_path / "export.jsonl"
    asyncio.run(export_alerts(settings, out))
    return out
