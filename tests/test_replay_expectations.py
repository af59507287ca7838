"""The golden alerts of the recorded replay stream: still what the core computes, and right."""

from __future__ import annotations

import json
from collections import Counter

from tests.replay_expectations import STREAM, TRUTH, memory_store_alerts, read_expected


def test_golden_alerts_equal_the_memory_store_result() -> None:
    assert memory_store_alerts(STREAM.read_bytes().splitlines()) == read_expected()


def test_every_golden_alert_is_one_campaign_and_every_campaign_is_alerted() -> None:
    truth = json.loads(TRUTH.read_text(encoding="utf-8"))
    campaign_of = {p: c["id"] for c in truth["campaigns"] for p in c["parcel_ids"]}
    alerted: Counter[str] = Counter()
    for alert in read_expected():
        owners = {campaign_of.get(p, "legitimate") for p in alert["parcel_ids"]}
        assert len(owners) == 1 and "legitimate" not in owners, alert
        alerted[owners.pop()] += 1
    assert set(alerted) == {c["id"] for c in truth["campaigns"]}
