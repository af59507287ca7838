"""Synthetic recorded streams: legitimate background plus smuggling campaigns, with ground truth.

The background draws real products (weights, box sizes) from the Olist-derived table shipped in
streams/data; honest look-alikes (bottled-water shops, cosmetics sellers, nickel-powder and
ceramic-additive makers) trip naive rules. Campaigns follow the tactics in DOMAIN.md. The stream
also carries what real feeds carry: duplicated deliveries, events out of order and malformed
lines. Everything is drawn from one seeded generator, so a seed gives the same stream.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

START = datetime(2026, 9, 1, tzinfo=UTC)
COURIERS = ("SF", "ZTO", "YTO", "STO", "YUNDA", "JD", "EMS")
CITIES = (
    ("广东省", "深圳市", "南山区"),
    ("浙江省", "杭州市", "余杭区"),
    ("江西省", "赣州市", "章贡区"),
    ("江苏省", "苏州市", "工业园区"),
    ("内蒙古自治区", "包头市", "昆都仑区"),
    ("福建省", "厦门市", "思明区"),
)
ROADS = ("科技园路", "文一西路", "红旗大道", "星湖街", "钢铁大街", "湖滨南路", "人民路", "建设路")
ABROAD = ("TH", "MX", "VN", "MY", "US", "DE", "JP", "KR")


@dataclass
class Identity:
    name: str
    phone: str
    account: str | None
    address: dict[str, Any]
    pickup: str
    courier: str


@dataclass
class Builder:
    rng: random.Random
    days: int
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    parcels: int = 0
    serial: int = 0

    def waybill(self, courier: str) -> str:
        self.serial += 1
        return f"{courier}{self.rng.randrange(10**9, 10**10)}{self.serial:06d}"

    def phone(self) -> str:
        return f"1{self.rng.choice('3578')}{self.rng.randrange(10**8, 10**9)}"

    def address(self, building_style: str = "栋", building: int | None = None) -> dict[str, Any]:
        province, city, district = self.rng.choice(CITIES)
        number = building or self.rng.randrange(1, 40)
        unit, room = self.rng.randrange(1, 6), self.rng.randrange(101, 2800)
        street = (
            f"{self.rng.choice(ROADS)}{self.rng.randrange(1, 300)}号"
            + {
                "栋": f"{number}栋{unit}单元{room}室",
                "幢": f"{number}幢{room}",
                "号楼": f"{number}号楼{unit}单元{room}",
                "dash": f" {number}-{unit}-{room}",
            }[building_style]
        )
        return {"country": "CN", "province": province, "city": city, "district": district, "street": street}

    def identity(self, courier: str | None = None) -> Identity:
        courier = courier or self.rng.choice(COURIERS)
        return Identity(
            name=self.rng.choice("王李张刘陈杨黄赵吴周")
            + self.rng.choice(["伟", "芳", "娜", "敏", "静", "强", "磊", "军"]),
            phone=self.phone(),
            account=f"acct{self.rng.randrange(10**6, 10**7)}" if self.rng.random() < 0.6 else None,
            address=self.address(),
            pickup=f"{courier}-{self.rng.randrange(1000, 9999)}",
            courier=courier,
        )

    def recipient(self, country: str = "CN") -> dict[str, Any]:
        if country == "CN":
            return {"name": "收件人", "phone": self.phone(), "address": self.address()}
        return {
            "name": f"Consignee {self.rng.randrange(1000)}",
            "phone": f"+{self.rng.randrange(10**9, 10**10)}",
            "address": {"country": country, "city": "City", "street": f"{self.rng.randrange(1, 999)} Road"},
        }

    def parcel(
        self,
        sender: Identity,
        recipient: dict[str, Any],
        when: datetime,
        items: list[dict[str, Any]],
        weight: float,
        dims: tuple[float, float, float] | None,
        *,
        channel: str = "express",
        destination: str | None = None,
        measured: float | None = None,
        courier: str | None = None,
    ) -> str:
        courier = courier or sender.courier
        waybill = self.waybill(courier)
        base: dict[str, Any] = {
            "schema_version": 1,
            "parcel_id": waybill,
            "courier": courier,
            "channel": channel,
            "pickup_point": sender.pickup,
            "sender": {
                "name": sender.name,
                "phone": sender.phone,
                "account_id": sender.account,
                "address": sender.address,
            },
            "recipient": recipient,
            "destination_country": destination,
            "items": items,
            "declared_weight_kg": round(weight, 3),
            "dimensions_cm": {"l": dims[0], "w": dims[1], "h": dims[2]} if dims else None,
        }
        t_declared = int(when.timestamp() * 1000)
        declared = base | {"event_id": f"{waybill}:declared", "event_type": "declared", "event_time": t_declared}
        self.events.append((t_declared, declared))
        if measured is not None or self.rng.random() < 0.5:
            scale = measured if measured is not None else round(weight * self.rng.uniform(0.97, 1.03), 3)
            t_pick = t_declared + self.rng.randrange(1, 6) * 3_600_000
            picked = base | {
                "event_id": f"{waybill}:picked_up",
                "event_type": "picked_up",
                "event_time": t_pick,
                "measured_weight_kg": scale,
            }
            self.events.append((t_pick, picked))
        self.parcels += 1
        return f"{courier}:{waybill}"

    def moment(self, day: int) -> datetime:
        return START + timedelta(days=day, seconds=self.rng.randrange(8 * 3600, 21 * 3600))


def _background(b: Builder, scale: float) -> None:
    table = json.loads(resources.files("streams").joinpath("data/olist_background.json").read_text("utf-8"))
    categories = list(table["categories"].items())
    shops = [(b.identity(), b.rng.choice(categories)) for _ in range(max(1, int(40 * scale)))]
    for day in range(b.days):
        for shop, (category, spec) in shops:
            for _ in range(b.rng.randrange(0, 8)):
                weight, length, width, height = b.rng.choice(spec["products"])
                items = [{"description": category.replace("_", " "), "quantity": 1, "unit": "pcs"}]
                b.parcel(shop, b.recipient(), b.moment(day), items, max(weight, 0.05), (length, width, height))
        for _ in range(int(60 * scale)):
            person = b.identity()
            category, spec = b.rng.choice(categories)
            weight, length, width, height = b.rng.choice(spec["products"])
            b.parcel(
                person,
                b.recipient(),
                b.moment(day),
                [{"description": category.replace("_", " "), "quantity": 1}],
                max(weight, 0.05),
                (length, width, height),
            )
    _look_alikes(b, scale)


def _look_alikes(b: Builder, scale: float) -> None:
    """Honest shippers of the goods smugglers hide behind."""
    water = [b.identity() for _ in range(max(1, int(3 * scale)))]
    cosmetics = [b.identity() for _ in range(max(1, int(3 * scale)))]
    mannequins = [b.identity() for _ in range(max(1, int(1 * scale)))]
    for day in range(b.days):
        for shop in water:
            for _ in range(b.rng.randrange(2, 10)):
                bottles = b.rng.choice([12, 24])
                volume = b.rng.choice([350, 550, 570])
                text = b.rng.choice(
                    [f"矿泉水 {volume}ml*{bottles}瓶", f"{bottles} bottles x {volume} ml mineral water"]
                )
                weight = bottles * (0.019 + volume / 1000) + 0.4
                b.parcel(
                    shop,
                    b.recipient(),
                    b.moment(day),
                    [{"description": text, "quantity": 1, "unit": "箱"}],
                    weight * b.rng.uniform(0.98, 1.03),
                    (40, 27, 22 if bottles == 24 else 12),
                )
        for shop in cosmetics:
            for _ in range(b.rng.randrange(2, 10)):
                jars = b.rng.randrange(1, 8)
                country = b.rng.choice(["CN", "CN", "TH", "MY", "VN", "MX", "US"])
                weight = jars * (0.06 + 0.05) + 0.3
                b.parcel(
                    shop,
                    b.recipient(country),
                    b.moment(day),
                    [{"description": "面霜 50ml", "quantity": jars, "unit": "罐"}],
                    weight,
                    (20, 15, 10),
                    destination=None if country == "CN" else country,
                    channel="express" if country == "CN" else "cross_border_ecommerce",
                )
        for shop in mannequins:
            if b.rng.random() < 0.5:
                b.parcel(
                    shop,
                    b.recipient(),
                    b.moment(day),
                    [{"description": "服装模特 全身", "quantity": 1, "unit": "具"}],
                    b.rng.uniform(7, 11),
                    (180, 50, 40),
                    channel="ltl",
                )


def _campaigns(b: Builder) -> list[dict[str, Any]]:
    campaigns: list[dict[str, Any]] = []

    def campaign(tactic: str) -> dict[str, Any]:
        entry = {"id": f"c{len(campaigns) + 1}-{tactic}", "tactic": tactic, "parcel_ids": [], "mass_kg": 0.0}
        campaigns.append(entry)
        return entry

    # 1. One sender fragments powder into bottled-water cases towards a consolidator abroad.
    c = campaign("fragmenting_sender")
    sender, consignee = b.identity(), b.recipient("TH")
    start = b.rng.randrange(0, max(1, b.days // 3))
    for day in range(start, b.days):
        for _ in range(b.rng.randrange(1, 3)):
            bottle = b.rng.uniform(0.9, 1.2)
            weight = 24 * (0.019 + bottle) + 0.4
            c["parcel_ids"].append(
                b.parcel(
                    sender,
                    consignee,
                    b.moment(day),
                    [{"description": "矿泉水 550ml*24瓶", "quantity": 1, "unit": "箱"}],
                    weight,
                    (40, 27, 22),
                    destination="TH",
                    channel="cross_border_ecommerce",
                )
            )
            c["mass_kg"] += 24 * bottle
    # 2. A ring of identities sharing a building (written differently) and a pickup point.
    c = campaign("ring_shared_building")
    consignee = b.recipient("VN")
    building = b.rng.randrange(1, 30)
    shared = b.address("栋", building)
    ring = []
    for i in range(8):
        member = b.identity("ZTO")
        member.address = dict(
            shared,
            street=shared["street"].split("号")[0]
            + "号"
            + b.address(("栋", "幢", "号楼", "dash")[i % 4], building)["street"].split("号", 1)[1],
        )
        member.pickup = "ZTO-5001"
        ring.append(member)
    for day in range(b.days):
        for member in ring:
            if b.rng.random() < 0.35:
                kg = b.rng.uniform(5, 9)
                c["parcel_ids"].append(
                    b.parcel(
                        member,
                        consignee,
                        b.moment(day),
                        [{"description": "陶瓷添加剂 ceramic additive", "quantity": 1}],
                        kg,
                        (20, 15, 12),
                        destination="VN",
                        channel="cross_border_ecommerce",
                    )
                )
                c["mass_kg"] += kg
    # 3. Packed mannequins by LTL to a forwarder.
    c = campaign("packed_mannequins")
    sender, consignee = b.identity("DEPPON"), b.recipient("MX")
    for day in range(0, b.days, 2):
        kg = b.rng.uniform(30, 45)
        c["parcel_ids"].append(
            b.parcel(
                sender,
                consignee,
                b.moment(day),
                [{"description": "服装模特 全身", "quantity": 1, "unit": "具"}],
                kg,
                (180, 50, 40),
                channel="ltl",
                destination="MX",
            )
        )
        c["mass_kg"] += kg - 10
    # 4. Cosmetic jars under-declared, corrected by the hub scale.
    c = campaign("underdeclared_cosmetics")
    sender, consignee = b.identity(), b.recipient("MY")
    for day in range(b.days // 2, b.days):
        jars = 20
        real = jars * (0.06 + 0.25) + 0.3
        c["parcel_ids"].append(
            b.parcel(
                sender,
                consignee,
                b.moment(day),
                [{"description": "面霜 50ml", "quantity": jars, "unit": "罐"}],
                2.5,
                (30, 20, 15),
                destination="MY",
                channel="cross_border_ecommerce",
                measured=round(real, 3),
            )
        )
        c["mass_kg"] += jars * 0.2
    for entry in campaigns:
        entry["mass_kg"] = round(entry["mass_kg"], 1)
    return campaigns


def _noise(b: Builder, lines: list[bytes]) -> tuple[list[bytes], int, int]:
    """Duplicates, local reordering and malformed lines, as real feeds deliver them."""
    duplicated = max(1, len(lines) // 50)
    for _ in range(duplicated):  # a redelivery comes soon after the original (well within the lateness)
        original = b.rng.randrange(len(lines))
        lines.insert(min(len(lines), original + 1 + b.rng.randrange(3)), lines[original])
    for _ in range(len(lines) // 20):  # swap neighbours: out of order by minutes to hours
        i = b.rng.randrange(len(lines) - 1)
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    malformed = [
        b'{"event_id": "broken", "parcel_id": ',
        b'{"event_id":"x1","parcel_id":"P1","event_type":"declared","event_time":"yesterday","courier":"SF",'
        b'"channel":"express","sender":{},"recipient":{},"items":[{"description":"x","quantity":1}]}',
        b'{"event_id":"x2","parcel_id":"P2","event_type":"teleported","event_time":1767225600000,"courier":"SF",'
        b'"channel":"express","sender":{},"recipient":{},"items":[{"description":"x","quantity":1}]}',
        b"[1, 2, 3]",
        b'{"event_id":"x3","parcel_id":"P3","event_type":"declared","event_time":1767225600000,"courier":"SF",'
        b'"channel":"express","sender":{},"recipient":{},"items":[]}',
    ]
    for line in malformed:
        lines.insert(b.rng.randrange(len(lines)), line)
    return lines, duplicated, len(malformed)


def simulate(seed: int, days: int, out: Path, scale: float = 1.0) -> dict[str, Any]:
    if days < 1:
        raise ValueError("days must be at least 1")
    b = Builder(random.Random(seed), days)
    _background(b, scale)
    campaigns = _campaigns(b)
    b.events.sort(key=lambda te: (te[0], te[1]["event_id"]))
    lines = [orjson.dumps(event) for _, event in b.events]
    lines, duplicated, malformed = _noise(b, lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"\n".join(lines) + b"\n")
    truth_path = out.with_suffix(".truth.json")
    truth = {
        "seed": seed,
        "days": days,
        "scale": scale,
        "events": len(lines),
        "parcels": b.parcels,
        "duplicated_lines": duplicated,
        "malformed_lines": malformed,
        "campaigns": campaigns,
        "truth_path": str(truth_path),
    }
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth
