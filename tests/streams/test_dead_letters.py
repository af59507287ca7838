"""Malformed input of every kind ends in the dead-letter topic with its reason and source position."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from streams.kafka_security import aiokafka_options
from streams.replay import ReplayInput, run_replay
from streams.settings import Settings
from tests.detectors.test_validation import GOOD

pytestmark = pytest.mark.integration

BAD_CANONICAL = [
    (b'{"event_id": "e1", ', "not_json"),
    (b"\xff\xfe\x00\x01", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'{"declared_weight_kg": NaN}', "not_json"),
    (orjson.dumps(GOOD | {"event_type": "teleported"}), "schema"),
    (orjson.dumps(GOOD | {"items": []}), "schema"),
    (orjson.dumps(GOOD | {"declared_weight_kg": -5}), "schema"),
    (orjson.dumps(GOOD | {"event_time": "2026-11-01 09:30"}), "bad_time"),
    (orjson.dumps(GOOD | {"event_time": 5}), "bad_time"),
    (b"{" * 3000 + b"}" * 3000, "not_json"),
]


async def dead_letters(settings: Settings) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        settings.topic("deadletter"),
        **aiokafka_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        records = []
        for _ in range(20):
            batches = await consumer.getmany(timeout_ms=500)
            records += [orjson.loads(r.value) for rs in batches.values() for r in rs]
        return records
    finally:
        await consumer.stop()


def test_every_kind_of_bad_record_is_dead_lettered_with_reason_and_offset(
    live_settings: Settings, tmp_path: Path
) -> None:
    canonical = tmp_path / "bad.jsonl"
    canonical.write_bytes(b"\n".join([orjson.dumps(GOOD)] + [raw for raw, _ in BAD_CANONICAL]) + b"\n")
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(
        "运单号,快递公司,寄件人,寄件人电话,寄件地址,收件人,收件人电话,收件地址,物品名称,数量,重量(kg),揽收时间\n"
        "SF9,SF,张伟,13800138000,广东省深圳市人民路1号,李娜,139,浙江省杭州市人民路2号,面霜,two,1.2,2026-11-01 09:30:00\n"
        "SF8,SF,张伟\n",
        encoding="utf-8",
    )
    xml_file = tmp_path / "bad.xml"
    xml_file.write_bytes(b"<CEB603Message><Inventory><InventoryHead></InventoryHead></Inventory></CEB603Message>")
    summary = run_replay(
        live_settings,
        [
            ReplayInput(canonical, "canonical"),
            ReplayInput(csv_file, "waybill-csv"),
            ReplayInput(xml_file, "export-9610"),
        ],
        None,
        timeout_s=240,
    )
    expected = {"not_json": 4, "not_object": 1, "schema": 3, "bad_time": 2, "bad_field": 2, "bad_csv": 1}
    assert summary.dead_letter_reasons == expected
    records = asyncio.run(dead_letters(live_settings))
    assert len(records) == sum(expected.values())
    by_stage = {r["stage"] for r in records}
    assert by_stage == {"validate", "adapter:waybill-csv", "adapter:export-9610"}
    validate = [r for r in records if r["stage"] == "validate"]
    raws = {base64.b64decode(str(r["raw_b64"])) for r in validate}
    assert raws == {raw for raw, _ in BAD_CANONICAL}
    for record in records:
        assert str(record["source_topic"]).startswith(live_settings.topic_prefix)
        assert isinstance(record["source_offset"], int) and isinstance(record["source_partition"], int)
        assert record["detail"]
    csv_rows = sorted(r["record_no"] for r in records if r["stage"] == "adapter:waybill-csv")
    assert csv_rows == [1, 2]
