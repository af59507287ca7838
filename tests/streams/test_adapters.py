"""Each adapter's sample file yields exactly its hand-written canonical twin; bad input is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.validation import parse, to_event
from streams.adapters import ADAPTERS, Rejected

DATA = Path(__file__).parents[1] / "data"


def adapted(fmt: str, path: Path) -> list[object]:
    adapter = ADAPTERS[fmt]
    return [result for message in adapter.split(path) for result in adapter.parse(message)]


@pytest.mark.parametrize(
    ("fmt", "sample"), [("waybill-csv", "waybill_sample.csv"), ("export-9610", "export_9610_sample.xml")]
)
def test_sample_equals_its_canonical_twin(fmt: str, sample: str) -> None:
    results = adapted(fmt, DATA / sample)
    twin = DATA / sample.replace(".csv", ".canonical.jsonl").replace(".xml", ".canonical.jsonl")
    expected = [parse(line) for line in twin.read_bytes().splitlines() if line.strip()]
    assert not [r for r in results if isinstance(r, Rejected)]
    assert [to_event(r) for r in results if isinstance(r, dict)] == expected


def test_canonical_files_split_into_lines() -> None:
    assert len(adapted("canonical", DATA / "waybill_sample.canonical.jsonl")) == 4


HEADER = "运单号,快递公司,寄件人,寄件人电话,寄件地址,收件人,收件人电话,收件地址,物品名称,数量,重量(kg),揽收时间\n"
ROW = "SF1,SF,张伟,13800138000,广东省深圳市南山区科技园路12号,李娜,13900139000,浙江省杭州市人民路1号,面霜,2,1.2,2026-11-01 09:30:00\n"


@pytest.mark.parametrize(
    ("raw", "reason", "detail_part"),
    [
        (b"\xff\xfe" + ROW.encode(), "bad_encoding", "UTF-8"),
        ("运单号,物品名称\nSF1,x\n".encode(), "missing_columns", "快递公司"),
        ((HEADER + ROW.replace("2026-11-01 09:30:00", "01/11/2026")).encode(), "bad_field", "time"),
        ((HEADER + ROW.replace(",2,1.2,", ",two,1.2,")).encode(), "bad_field", "数量"),
        ((HEADER + ROW.replace(",1.2,", ",NaN,")).encode(), "bad_field", "not finite"),
        ((HEADER + ROW.rstrip("\n") + ",extra\n").encode(), "bad_csv", "more fields"),
        ((HEADER + "SF1,SF,张伟\n").encode(), "bad_csv", "fewer fields"),
        ((HEADER.replace("揽收时间", "揽收时间,状态") + ROW.rstrip("\n") + ",已飞走\n").encode(), "bad_field", "状态"),
    ],
)
def test_bad_waybill_rows_are_rejected_with_reasons(raw: bytes, reason: str, detail_part: str) -> None:
    results = ADAPTERS["waybill-csv"].parse(raw)
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert rejected and rejected[0].reason == reason and detail_part in rejected[0].detail


def test_one_bad_row_does_not_take_its_neighbours_down() -> None:
    raw = (HEADER + ROW + ROW.replace(",2,1.2,", ",two,1.2,") + ROW.replace("SF1", "SF2")).encode()
    results = ADAPTERS["waybill-csv"].parse(raw)
    assert [type(r).__name__ for r in results] == ["dict", "Rejected", "dict"]
    assert results[1].record_no == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<CEB603Message><Inventory>", "bad_xml"),
        (b"<Other/>", "bad_xml"),
        (b"<CEB603Message/>", "bad_xml"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><CEB603Message>&b;'
            b"</CEB603Message>",
            "bad_xml",
        ),
        (
            b"<CEB603Message><Inventory><InventoryHead><orderNo>1</orderNo></InventoryHead></Inventory>"
            b"</CEB603Message>",
            "bad_field",
        ),
    ],
)
def test_bad_export_lists_are_rejected(raw: bytes, reason: str) -> None:
    results = ADAPTERS["export-9610"].parse(raw)
    assert isinstance(results[0], Rejected) and results[0].reason == reason


def test_csv_split_keeps_quoted_newlines_inside_a_record(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(HEADER + ROW.replace("面霜", '"面霜\n50ml"') + ROW, encoding="utf-8")
    messages = list(ADAPTERS["waybill-csv"].split(path))
    results = [r for m in messages for r in ADAPTERS["waybill-csv"].parse(m)]
    assert len(results) == 2 and all(isinstance(r, dict) for r in results)
    assert results[0]["items"][0]["description"] == "面霜\n50ml"  # type: ignore[index]
