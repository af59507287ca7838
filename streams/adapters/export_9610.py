"""Cross-border e-commerce export list in the style of China's 9610 declaration (CEB603).

A message is one ``<CEB603Message>`` document with one or more ``<Inventory>`` elements: a head
(order no., logistics no., destination, gross weight, parties) and item lines (HS code, name,
quantity, unit, price). Real CEB messages use customs country and unit codes; this adapter reads
ISO 3166 alpha-2 countries and plain units (docs/adapters/export-9610.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from streams.adapters.common import FieldError, Rejected, china_time, chinese_address, number

TIME_FORMAT = "%Y%m%d%H%M%S"
_NS = re.compile(r"^\{[^}]*\}")
_END = b"</CEB603Message>"


def _local(tag: str) -> str:
    return _NS.sub("", tag)


def _children(element: Element) -> dict[str, str]:
    return {_local(child.tag): (child.text or "").strip() for child in element}


def _find(element: Element, name: str) -> list[Element]:
    return [child for child in element.iter() if _local(child.tag) == name]


def _inventory_to_event(inventory: Element) -> dict[str, Any]:
    heads = _find(inventory, "InventoryHead")
    if len(heads) != 1:
        raise FieldError("an Inventory needs exactly one InventoryHead")
    head = _children(heads[0])
    for name in ("orderNo", "logisticsNo", "logisticsCode", "appTime", "country"):
        if not head.get(name):
            raise FieldError(f"InventoryHead/{name} is empty")
    when = china_time(head["appTime"], TIME_FORMAT)
    items = []
    for line in _find(inventory, "InventoryList"):
        fields = _children(line)
        item = {
            "description": fields.get("gname") or "",
            "hs_code": fields.get("gcode") or None,
            "quantity": number(fields.get("qty"), "qty", required=True),
            "unit": fields.get("unit") or None,
            "value": number(fields.get("totalPrice"), "totalPrice"),
            "currency": fields.get("currency") or None,
        }
        items.append({k: v for k, v in item.items() if v is not None})
    app_status = head.get("appStatus", "2")
    return {
        "schema_version": 1,
        "event_id": f"9610:{head['logisticsCode']}:{head['logisticsNo']}:{head['appTime']}:{app_status}",
        "parcel_id": head["logisticsNo"],
        "event_type": "cancelled" if head.get("appType") == "3" else "declared",
        "event_time": when,
        "courier": head["logisticsCode"],
        "channel": "cross_border_ecommerce",
        "platform": head.get("ebpName") or head.get("ebpCode") or None,
        "order_id": head["orderNo"],
        "sender": {
            "name": head.get("sender") or None,
            "phone": head.get("senderTelephone") or None,
            "account_id": head.get("ebcCode") or None,
            "company": head.get("ebcName") or None,
            "address": chinese_address(head.get("senderAddress")),
        },
        "recipient": {
            "name": head.get("consignee") or None,
            "phone": head.get("consigneeTelephone") or None,
            "address": {"country": head["country"], "street": head["consigneeAddress"]}
            if head.get("consigneeAddress")
            else None,
        },
        "destination_country": head["country"],
        "items": items,
        "declared_weight_kg": number(head.get("grossWeight"), "grossWeight"),
    }


def parse(raw: bytes) -> list[dict[str, Any] | Rejected]:
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        # LookupError: an encoding declaration naming no known codec (found by atheris)
        return [Rejected("bad_xml", str(exc)[:300], raw=raw)]
    if _local(root.tag) != "CEB603Message":
        return [Rejected("bad_xml", f"root element is {_local(root.tag)[:40]!r}, expected CEB603Message", raw=raw)]
    inventories = _find(root, "Inventory")
    if not inventories:
        return [Rejected("bad_xml", "no Inventory element", raw=raw)]
    results: list[dict[str, Any] | Rejected] = []
    for number_, inventory in enumerate(inventories, start=1):
        try:
            results.append(_inventory_to_event(inventory))
        except FieldError as exc:
            results.append(Rejected("bad_field", f"Inventory {number_}: {exc}", number_))
    return results


def split(path: Path) -> Iterator[bytes]:
    """Cut a file holding one or more CEB603Message documents into one message each."""
    data = path.read_bytes()
    start = 0
    while True:
        end = data.find(_END, start)
        if end < 0:
            rest = data[start:].strip()
            if rest and not rest.startswith(b"<?xml"):
                yield rest
            return
        chunk = data[start : end + len(_END)].strip()
        if chunk.startswith(b"<?xml"):
            decl_end = chunk.find(b"?>")
            chunk = chunk[decl_end + 2 :].strip()
        yield chunk
        start = end + len(_END)
