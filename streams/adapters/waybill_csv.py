"""Courier waybill export: CSV with Chinese column headers, one parcel event per row.

A message is a small CSV document: the header line and one or more rows. Times are China time
(``2026-11-01 09:30:00``); ``重量(kg)`` is the courier's scale reading, ``申报重量(kg)`` the
sender's declaration. docs/adapters/waybill-csv.md lists every column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.adapters.common import FieldError, Rejected, china_time, chinese_address, number

REQUIRED = (
    "运单号",
    "快递公司",
    "寄件人",
    "寄件人电话",
    "寄件地址",
    "收件人",
    "收件人电话",
    "收件地址",
    "物品名称",
    "数量",
    "重量(kg)",
    "揽收时间",
)
OPTIONAL = (
    "状态",
    "业务类型",
    "单位",
    "申报重量(kg)",
    "寄件人账号",
    "平台",
    "订单号",
    "揽收网点",
    "目的国",
    "长(cm)",
    "宽(cm)",
    "高(cm)",
    "申报价值",
    "币种",
    "海关编码",
)
STATUS = {
    "已下单": "declared",
    "已揽收": "picked_up",
    "运输中": "scanned",
    "已扫描": "scanned",
    "中转": "scanned",
    "已出口": "exported",
    "已出境": "exported",
    "已签收": "delivered",
    "已取消": "cancelled",
    "取消": "cancelled",
}
CHANNEL = {"快递": "express", "快运": "ltl", "零担": "ltl", "跨境电商": "cross_border_ecommerce", "邮政": "postal"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_ROWS = 10_000


def _cell(row: dict[str, str], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _row_to_event(row: dict[str, str]) -> dict[str, Any]:
    status = _cell(row, "状态") or "已揽收"
    if status not in STATUS:
        raise FieldError(f"状态 {status[:20]!r} is not one of {', '.join(STATUS)}")
    event_type = STATUS[status]
    channel_text = _cell(row, "业务类型") or "快递"
    if channel_text not in CHANNEL:
        raise FieldError(f"业务类型 {channel_text[:20]!r} is not one of {', '.join(CHANNEL)}")
    waybill, courier = _cell(row, "运单号"), _cell(row, "快递公司")
    if not waybill or not courier:
        raise FieldError("运单号 and 快递公司 must not be empty")
    when = china_time(row["揽收时间"], TIME_FORMAT)
    destination = _cell(row, "目的国")
    scale = number(row.get("重量(kg)"), "重量(kg)")
    dims = [number(row.get(f"{side}(cm)"), f"{side}(cm)") for side in ("长", "宽", "高")]
    item: dict[str, Any] = {
        "description": _cell(row, "物品名称") or "",
        "quantity": number(row.get("数量"), "数量", required=True),
        "unit": _cell(row, "单位"),
        "hs_code": _cell(row, "海关编码"),
        "value": number(row.get("申报价值"), "申报价值"),
        "currency": _cell(row, "币种"),
    }
    return {
        "schema_version": 1,
        "event_id": f"{courier}:{waybill}:{event_type}:{when}",
        "parcel_id": waybill,
        "event_type": event_type,
        "event_time": when,
        "courier": courier,
        "channel": CHANNEL[channel_text],
        "platform": _cell(row, "平台"),
        "order_id": _cell(row, "订单号"),
        "pickup_point": _cell(row, "揽收网点"),
        "sender": {
            "name": _cell(row, "寄件人"),
            "phone": _cell(row, "寄件人电话"),
            "account_id": _cell(row, "寄件人账号"),
            "address": chinese_address(_cell(row, "寄件地址")),
        },
        "recipient": {
            "name": _cell(row, "收件人"),
            "phone": _cell(row, "收件人电话"),
            "address": chinese_address(_cell(row, "收件地址"), destination or "CN"),
        },
        "destination_country": destination,
        "items": [{k: v for k, v in item.items() if v is not None}],
        "declared_weight_kg": number(row.get("申报重量(kg)"), "申报重量(kg)"),
        "measured_weight_kg": scale,
        "dimensions_cm": {"l": dims[0], "w": dims[1], "h": dims[2]} if all(d is not None for d in dims) else None,
    }


def parse(raw: bytes) -> list[dict[str, Any] | Rejected]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [Rejected("bad_encoding", f"not UTF-8 at byte {exc.start}", raw=raw)]
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\x00extra")
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        return [Rejected("bad_csv", f"header: {exc}", raw=raw)]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        return [Rejected("missing_columns", f"missing column(s) {', '.join(missing)}", raw=raw)]
    results: list[dict[str, Any] | Rejected] = []
    try:
        for number_, row in enumerate(reader, start=1):
            if number_ > MAX_ROWS:
                results.append(Rejected("too_large", f"more than {MAX_ROWS} rows in one message", number_))
                break
            line = ",".join(str(v) for v in row.values())[:2000].encode()
            if "\x00extra" in row:
                results.append(Rejected("bad_csv", f"row {number_} has more fields than the header", number_, line))
                continue
            if any(value is None for value in row.values()):
                results.append(Rejected("bad_csv", f"row {number_} has fewer fields than the header", number_, line))
                continue
            try:
                results.append(_row_to_event(row))
            except FieldError as exc:
                results.append(Rejected("bad_field", f"row {number_}: {exc}", number_, line))
    except csv.Error as exc:
        results.append(Rejected("bad_csv", f"line {reader.line_num}: {exc}", raw=raw))
    return results


def _records(data: bytes) -> Iterator[bytes]:
    """Split CSV bytes into records at newlines outside quotes (quoted newlines stay inside)."""
    start, quoted = 0, False
    for pos, byte in enumerate(data):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x0A and not quoted:
            yield data[start : pos + 1]
            start = pos + 1
    if start < len(data):
        yield data[start:]


def split(path: Path, rows_per_message: int = 200) -> Iterator[bytes]:
    records = [r for r in _records(path.read_bytes()) if r.strip()]
    if not records:
        return
    header, rows = records[0], records[1:]
    if not header.endswith(b"\n"):
        header += b"\n"
    for start in range(0, len(rows), rows_per_message):
        yield header + b"".join(r if r.endswith(b"\n") else r + b"\n" for r in rows[start : start + rows_per_message])
