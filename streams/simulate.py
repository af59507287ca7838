"""Synthetic recorded streams: legitimate background plus smuggling campaigns, with ground truth.

The background draws real products (weights, box sizes) from the Olist-derived table shipped in
streams/data. Honest look-alikes trip naive rules: bottled-water shops (cases of 12 and 24,
described per bottle, per case or in English only), cosmetics sellers at home and exporting,
mannequin sellers, cerium-oxide polishing-powder makers, ceramic-additive makers, nickel-powder
and solder-paste suppliers. Campaigns follow the tactics in DOMAIN.md; a :class:`Scenario` says
how many of each, how large and when, so that quality can be measured on parameters the detector
was not tuned on. The stream also carries what real feeds carry: duplicated deliveries, events
delivered late (within the allowed lateness and beyond it) and malformed lines. Everything is
drawn from one seeded generator, so a (seed, scenario) gives the same stream.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    ("广西壮族自治区", "崇左市", "凭祥市"),
)
ROADS = ("科技园路", "文一西路", "红旗大道", "星湖街", "钢铁大街", "湖滨南路", "人民路", "建设路")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass
class Identity:
    name: str
    phone: str
    account: str | None
    address: dict[str, Any]
    pickup: str
    courier: str


@dataclass
class Campaign:
    id: str
    tactic: str
    parcels: list[tuple[str, int, float]] = field(default_factory=list)  # key, first event ms, hidden kg

    def add(self, parcel: tuple[str, int], hidden_kg: float) -> None:
        self.parcels.append((parcel[0], parcel[1], round(hidden_kg, 3)))

    def truth(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tactic": self.tactic,
            "parcel_ids": [key for key, _, _ in self.parcels],
            "mass_kg": round(sum(kg for _, _, kg in self.parcels), 1),
            "parcels": [list(p) for p in self.parcels],
        }


@dataclass(frozen=True)
class Scenario:
    """Which campaigns a stream holds, how large and when; the background comes with ``scale``."""

    name: str
    tactics: dict[str, int]  # tactic -> number of campaigns
    size: float = 1.0  # multiplies campaign identities and parcel rates
    start_within: float = 0.4  # campaigns start in the first this-share of the days
    late_share: float = 0.002  # events delivered 1-4 hours late (within the lateness)
    very_late_share: float = 0.0005  # events delivered 1-3 days late (beyond it: dead-lettered)


@dataclass
class Builder:
    rng: random.Random
    days: int
    scenario: Scenario
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (delivery ms, event)
    parcels: int = 0
    serial: int = 0

    def waybill(self, courier: str) -> str:
        self.serial += 1
        return f"{courier}{self.rng.randrange(10**9, 10**10)}{self.serial:06d}"

    def phone(self) -> str:
        return f"1{self.rng.choice('3578')}{self.rng.randrange(10**8, 10**9)}"

    def address(
        self, building_style: str = "栋", building: int | None = None, where: tuple[str, str, str] | None = None
    ) -> dict[str, Any]:
        province, city, district = where or self.rng.choice(CITIES)
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
            "name": f"Consignee {self.rng.randrange(10**6)}",
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
        pickup: str | None = None,
    ) -> tuple[str, int]:
        """Emit a parcel's events; return its key and first event time."""
        courier = courier or sender.courier
        waybill = self.waybill(courier)
        base: dict[str, Any] = {
            "schema_version": 1,
            "parcel_id": waybill,
            "courier": courier,
            "channel": channel,
            "pickup_point": pickup or sender.pickup,
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
        self._emit(t_declared, base | {"event_id": f"{waybill}:declared", "event_type": "declared"})
        if measured is not None or self.rng.random() < 0.5:
            scale = measured if measured is not None else round(weight * self.rng.uniform(0.97, 1.03), 3)
            t_pick = t_declared + self.rng.randrange(1, 6) * HOUR_MS
            picked = base | {"event_id": f"{waybill}:picked_up", "event_type": "picked_up"}
            self._emit(t_pick, picked | {"measured_weight_kg": scale})
        self.parcels += 1
        return f"{courier}:{waybill}", t_declared

    def _emit(self, event_ms: int, event: dict[str, Any]) -> None:
        delivered = event_ms
        draw = self.rng.random()
        if draw < self.scenario.very_late_share:
            delivered += self.rng.randrange(DAY_MS, 3 * DAY_MS)
        elif draw < self.scenario.very_late_share + self.scenario.late_share:
            delivered += self.rng.randrange(HOUR_MS, 4 * HOUR_MS)
        self.events.append((delivered, event | {"event_time": event_ms}))

    def moment(self, day: int) -> datetime:
        return START + timedelta(days=day, seconds=self.rng.randrange(8 * 3600, 21 * 3600))

    def count(self, rate: float) -> int:
        """A whole number of events with mean ``rate``."""
        whole = int(rate)
        return whole + (1 if self.rng.random() < rate - whole else 0)


# ---------------------------------------------------------------- legitimate traffic


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
    for look_alike in LOOK_ALIKES:
        for _ in range(max(1, round(look_alike.per_scale * scale))):
            shop, customers = b.identity(), [b.recipient() for _ in range(8)]
            for day in range(b.days):
                for _ in range(b.count(look_alike.per_day)):
                    look_alike.ship(b, shop, customers, day)


@dataclass(frozen=True)
class LookAlike:
    per_scale: float  # shops per unit of background scale
    per_day: float  # mean parcels per shop and day
    ship: Callable[[Builder, Identity, list[dict[str, Any]], int], None]


def _water_shop(b: Builder, shop: Identity, customers: list[dict[str, Any]], day: int) -> None:
    bottles, volume = b.rng.choice([(12, 1500), (12, 550), (24, 550), (24, 350), (24, 570)])
    cases = b.rng.choice([1, 1, 1, 2])
    style = b.rng.randrange(3)
    if style == 0:
        item = {"description": f"矿泉水 {volume}ml*{bottles}瓶", "quantity": cases, "unit": "箱"}
    elif style == 1:
        item = {"description": f"饮用天然水 {volume}ml", "quantity": cases * bottles, "unit": "瓶"}
    else:
        item = {"description": f"Natural spring water {bottles} x {volume} ml", "quantity": cases, "unit": "case"}
    weight = cases * (bottles * (b.rng.uniform(0.012, 0.019) + volume / 1000) + 0.4)
    side = round((cases * bottles * volume * 1.4) ** (1 / 3), 1)  # bottles packed with air between them
    b.parcel(shop, b.recipient(), b.moment(day), [item], weight * b.rng.uniform(0.98, 1.02), (side, side, side))


def _cosmetics_shop(b: Builder, shop: Identity, customers: list[dict[str, Any]], day: int) -> None:
    jars, glass = b.rng.randrange(1, 10), b.rng.random() < 0.4
    country = b.rng.choice(["CN", "CN", "CN", "TH", "MY", "VN", "MX", "US"])
    volume = b.rng.choice([30, 50, 100])
    weight = jars * ((0.14 if glass else 0.05) + volume / 1000) + 0.3
    item = {"description": f"面霜 {volume}ml", "quantity": jars, "unit": "罐", "value": jars * 120.0, "currency": "CNY"}
    abroad = country != "CN"
    b.parcel(
        shop,
        b.recipient(country),
        b.moment(day),
        [item],
        weight,
        (20, 15, 10),
        destination=country if abroad else None,
        channel="cross_border_ecommerce" if abroad else "express",
    )


def _mannequin_shop(b: Builder, shop: Identity, customers: list[dict[str, Any]], day: int) -> None:
    country = b.rng.choice(["CN", "CN", "CN", "MX"])
    b.parcel(
        shop,
        b.recipient(country),
        b.moment(day),
        [{"description": "服装模特 全身 玻璃钢", "quantity": 1, "unit": "具", "value": 380.0, "currency": "CNY"}],
        b.rng.uniform(7, 11.5),
        (180, 50, 40),
        channel="ltl",
        destination=country if country != "CN" else None,
    )


def _industrial(
    description: str, kg: tuple[float, float], density: float, hs: str, export_share: float
) -> Callable[[Builder, Identity, list[dict[str, Any]], int], None]:
    """Honest makers of goods whose names smugglers borrow: regular customers, some export samples."""

    def ship(b: Builder, shop: Identity, customers: list[dict[str, Any]], day: int) -> None:
        sample = b.rng.random() < export_share
        weight = b.rng.uniform(0.5, 2.0) if sample else b.rng.uniform(*kg)
        side = round((weight * 1000 / density) ** (1 / 3) * 1.15, 1)  # a snug box around the goods
        country = b.rng.choice(["VN", "MY", "DE", "IN"]) if sample else "CN"
        b.parcel(
            shop,
            b.recipient(country) if sample else b.rng.choice(customers),
            b.moment(day),
            [{"description": description, "quantity": 1, "hs_code": hs, "value": weight * 60.0, "currency": "CNY"}],
            weight,
            (side, side, side),
            channel="express" if sample or weight < 30 else "ltl",
            destination=country if sample else None,
        )

    return ship


LOOK_ALIKES = (
    LookAlike(3, 6, _water_shop),
    LookAlike(3, 6, _cosmetics_shop),
    LookAlike(1, 0.5, _mannequin_shop),
    LookAlike(1, 1.5, _industrial("氧化铈抛光粉 cerium oxide polishing powder", (5, 25), 1.8, "2846101000", 0.05)),
    LookAlike(1, 1, _industrial("陶瓷添加剂 ceramic additive 25kg/袋", (20, 50), 1.1, "3824999999", 0.05)),
    LookAlike(1, 1, _industrial("镍粉 nickel powder", (1, 10), 3.0, "7504000000", 0.1)),
    LookAlike(1, 1.5, _industrial("焊锡膏 solder paste 500g*10瓶", (5, 5.5), 2.5, "3810100000", 0.1)),
)


# ---------------------------------------------------------------- campaigns


def _days(b: Builder, length: tuple[int, int]) -> range:
    start = b.rng.randrange(0, max(1, int(b.days * b.scenario.start_within)))
    return range(start, min(b.days, start + b.rng.randrange(*length)))


def _water_bottles(b: Builder, c: Campaign, sender: Identity, to: dict[str, Any], day: int, per_bottle: float) -> None:
    """A case of 24 'mineral water' bottles filled with powder, ``per_bottle`` kg each."""
    country = to["address"]["country"]
    abroad = country != "CN"
    weight = 24 * (0.015 + per_bottle) + 0.4
    parcel = b.parcel(
        sender,
        to,
        b.moment(day),
        [{"description": "矿泉水 550ml*24瓶", "quantity": 1, "unit": "箱"}],
        weight,
        (40, 27, 22),
        destination=country if abroad else None,
        channel="cross_border_ecommerce" if abroad else "express",
    )
    c.add(parcel, 24 * per_bottle)


def fragmenting_sender(b: Builder, c: Campaign) -> None:
    """One sender splits powder into cases of 'water', towards a consolidator at home or abroad."""
    sender, to = b.identity(), b.recipient(b.rng.choice(["TH", "MX", "CN"]))
    for day in _days(b, (10, 30)):
        for _ in range(b.count(1.5 * b.scenario.size)):
            _water_bottles(b, c, sender, to, day, b.rng.uniform(0.9, 1.2))


def loose_powder_water(b: Builder, c: Campaign) -> None:
    """Loose powder: a bottle weighs little more than water; exported to a consolidator."""
    sender, to = b.identity(), b.recipient(b.rng.choice(["TH", "VN"]))
    for day in _days(b, (10, 30)):
        for _ in range(b.count(1.2 * b.scenario.size)):
            _water_bottles(b, c, sender, to, day, b.rng.uniform(0.56, 0.66))


def slow_drip(b: Builder, c: Campaign) -> None:
    """A small case every 4-7 days for 30-60 days, to a few consignees: never much within a week."""
    sender = b.identity()
    country = b.rng.choice(["TH", "MX", "CN"])
    consignees = [b.recipient(country) for _ in range(b.rng.randrange(1, 4))]
    days = _days(b, (30, 61))
    day = days.start
    while day < days.stop:
        bottles, per_bottle = 6, b.rng.uniform(0.9, 1.2)
        abroad = country != "CN"
        parcel = b.parcel(
            sender,
            b.rng.choice(consignees),
            b.moment(day),
            [{"description": f"矿泉水 550ml*{bottles}瓶", "quantity": 1, "unit": "箱"}],
            bottles * (0.015 + per_bottle) + 0.4,
            (27, 18, 22),
            destination=country if abroad else None,
            channel="cross_border_ecommerce" if abroad else "express",
        )
        c.add(parcel, bottles * per_bottle)
        day += b.rng.randrange(4, 8)


def ring(b: Builder, c: Campaign) -> None:
    """8-40 light senders sharing some phones, buildings (written four ways) and pickup points.

    Each member uses one or two phones of the ring's pool, so the members chain into one cluster.
    """
    members = max(8, min(40, round(b.rng.randrange(8, 25) * b.scenario.size)))
    where = b.rng.choice(CITIES)
    buildings = [(b.rng.randrange(1, 30), b.address("栋", None, where)) for _ in range(b.rng.randrange(1, 4))]
    phones = [b.phone() for _ in range(max(2, members // 3))]
    pickups = [f"ZTO-{b.rng.randrange(5000, 5999)}" for _ in range(b.rng.randrange(1, 4))]
    cover = b.rng.choice(
        ["陶瓷添加剂 ceramic additive", "镍粉 nickel powder", "焊锡膏 solder paste", "瓷砖胶 tile adhesive"]
    )
    country = b.rng.choice(["VN", "TH", "MY"])
    consignees = [b.recipient(country) for _ in range(b.rng.randrange(1, 3))]
    ring_members = []
    for i in range(members):
        number, shared = b.rng.choice(buildings)
        member = b.identity(b.rng.choice(COURIERS))
        styled = b.address(("栋", "幢", "号楼", "dash")[i % 4], number, where)
        member.address = dict(
            shared, street=shared["street"].split("号")[0] + "号" + styled["street"].split("号", 1)[1]
        )
        member.pickup = b.rng.choice(pickups)
        ring_members.append((member, b.rng.sample(phones, b.rng.choice([1, 2]))))
    for day in _days(b, (20, 45)):
        for identity, own_phones in ring_members:
            if b.rng.random() < 0.25:
                member = replace(identity, phone=b.rng.choice(own_phones))
                kg = b.rng.uniform(2, 6)
                side = round((kg * 1000 / 1.8) ** (1 / 3) * 1.15, 1)
                parcel = b.parcel(
                    member,
                    b.rng.choice(consignees),
                    b.moment(day),
                    [{"description": cover, "quantity": 1, "value": kg * 40.0, "currency": "CNY"}],
                    kg,
                    (side, side, side),
                    destination=country,
                    channel="cross_border_ecommerce",
                )
                c.add(parcel, kg)


def courier_hopping(b: Builder, c: Campaign) -> None:
    """One sender changes courier (and so pickup point and account) every parcel; jars of 'cream'."""
    sender, to = b.identity(), b.recipient()
    for day in _days(b, (15, 40)):
        if b.rng.random() < 0.6 * b.scenario.size:
            courier = b.rng.choice(COURIERS)
            jars = b.rng.randrange(10, 20)
            per_jar = b.rng.uniform(0.35, 0.5)
            hopping = Identity(
                sender.name, sender.phone, None, sender.address, f"{courier}-{b.rng.randrange(1000, 9999)}", courier
            )
            parcel = b.parcel(
                hopping,
                to,
                b.moment(day),
                [{"description": "面霜 100ml", "quantity": jars, "unit": "罐"}],
                jars * (0.06 + per_jar) + 0.3,
                (30, 20, 15),
            )
            c.add(parcel, jars * per_jar)


def packed_mannequins(b: Builder, c: Campaign) -> None:
    """Hollow mannequins packed with powder, by LTL to a forwarder abroad."""
    sender, to = b.identity("DEPPON"), b.recipient(b.rng.choice(["MX", "TH"]))
    days = _days(b, (15, 40))
    for day in range(days.start, days.stop, b.rng.randrange(2, 4)):
        kg = b.rng.uniform(30, 45)
        parcel = b.parcel(
            sender,
            to,
            b.moment(day),
            [{"description": "服装模特 全身", "quantity": 1, "unit": "具", "value": 400.0, "currency": "CNY"}],
            kg,
            (180, 50, 40),
            channel="ltl",
            destination=to["address"]["country"],
        )
        c.add(parcel, kg - 10)


def industrial_covers_ltl(b: Builder, c: Campaign) -> None:
    """Bags declared as an industrial product, by LTL towards a forwarder abroad, cheap on paper."""
    sender, to = b.identity("DEPPON"), b.recipient(b.rng.choice(["VN", "TH", "MX"]))
    cover = b.rng.choice(
        ["工业碳酸盐 industrial carbonate", "冶金辅料 metallurgical auxiliary", "瓷砖胶 tile adhesive"]
    )
    days = _days(b, (15, 40))
    for day in range(days.start, days.stop, b.rng.randrange(2, 5)):
        kg = b.rng.uniform(20, 50)
        side = round((kg * 1000 / 1.5) ** (1 / 3) * 1.2, 1)
        parcel = b.parcel(
            sender,
            to,
            b.moment(day),
            [
                {
                    "description": cover,
                    "quantity": 1,
                    "unit": "袋",
                    "value": round(kg * b.rng.uniform(2, 8)),
                    "currency": "CNY",
                }
            ],
            kg,
            (side, side, side),
            channel="ltl",
            destination=to["address"]["country"],
        )
        c.add(parcel, kg)


def hub_scale_correction(b: Builder, c: Campaign) -> None:
    """Cosmetic jars declared light; the hub scale reads the truth hours later."""
    sender, to = b.identity(), b.recipient("MY")
    for day in _days(b, (10, 30)):
        jars = 20
        real = jars * (0.06 + 0.25) + 0.3
        parcel = b.parcel(
            sender,
            to,
            b.moment(day),
            [{"description": "面霜 50ml", "quantity": jars, "unit": "罐"}],
            2.5,
            (30, 20, 15),
            destination="MY",
            channel="cross_border_ecommerce",
            measured=round(real, 3),
        )
        c.add(parcel, jars * 0.2)


def cosmetic_jars_export(b: Builder, c: Campaign) -> None:
    """'Face cream' jars packed with powder, exported by cross-border e-commerce."""
    sender, to = b.identity(), b.recipient(b.rng.choice(["MY", "TH", "VN"]))
    for day in _days(b, (10, 30)):
        for _ in range(b.count(0.8 * b.scenario.size)):
            jars = b.rng.randrange(12, 30)
            per_jar = b.rng.uniform(0.3, 0.45)
            parcel = b.parcel(
                sender,
                to,
                b.moment(day),
                [
                    {
                        "description": "面霜 100ml",
                        "quantity": jars,
                        "unit": "罐",
                        "value": jars * 30.0,
                        "currency": "CNY",
                    }
                ],
                jars * (0.06 + per_jar) + 0.3,
                (30, 20, 15),
                destination=to["address"]["country"],
                channel="cross_border_ecommerce",
            )
            c.add(parcel, jars * per_jar)


TACTICS: dict[str, Callable[[Builder, Campaign], None]] = {
    "fragmenting_sender": fragmenting_sender,
    "loose_powder_water": loose_powder_water,
    "slow_drip": slow_drip,
    "ring": ring,
    "courier_hopping": courier_hopping,
    "packed_mannequins": packed_mannequins,
    "industrial_covers_ltl": industrial_covers_ltl,
    "hub_scale_correction": hub_scale_correction,
    "cosmetic_jars_export": cosmetic_jars_export,
}

SCENARIOS = {
    "default": Scenario("default", dict.fromkeys(TACTICS, 1)),
    # Held out from tuning: another mix, other sizes, later and shorter starts.
    "heldout": Scenario(
        "heldout",
        {
            "ring": 3,
            "slow_drip": 2,
            "loose_powder_water": 2,
            "industrial_covers_ltl": 2,
            "courier_hopping": 2,
            "cosmetic_jars_export": 1,
            "fragmenting_sender": 1,
            "packed_mannequins": 1,
            "hub_scale_correction": 1,
        },
        size=0.7,
        start_within=0.6,
        late_share=0.004,
    ),
}


def _campaigns(b: Builder) -> list[Campaign]:
    campaigns: list[Campaign] = []
    for tactic, count in b.scenario.tactics.items():
        for _ in range(count):
            campaign = Campaign(f"c{len(campaigns) + 1}-{tactic}", tactic)
            TACTICS[tactic](b, campaign)
            if campaign.parcels:
                campaigns.append(campaign)
    return campaigns


# ---------------------------------------------------------------- delivery noise


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


def simulate(seed: int, days: int, out: Path, scale: float = 1.0, scenario: str = "default") -> dict[str, Any]:
    if days < 1:
        raise ValueError("days must be at least 1")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    b = Builder(random.Random(seed), days, SCENARIOS[scenario])
    _background(b, scale)
    legitimate = b.parcels
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
        "scenario": scenario,
        "events": len(lines),
        "parcels": b.parcels,
        "legitimate_parcels": legitimate,
        "duplicated_lines": duplicated,
        "malformed_lines": malformed,
        "campaigns": [c.truth() for c in campaigns],
        "truth_path": str(truth_path),
    }
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth


def within_lateness(lines: list[bytes], lateness_ms: int) -> list[bytes]:
    """``lines`` without the events later than ``lateness_ms`` behind the running maximum.

    Whether those are taken depends on timing (docs/windows.md, "Late bound"), so runs that must
    agree exactly (fault tests, one worker against two) leave them out.
    """
    kept, latest = [], 0
    for line in lines:
        try:
            event_time = orjson.loads(line)["event_time"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            event_time = None
        if isinstance(event_time, int):
            if event_time < latest - lateness_ms:
                continue
            latest = max(latest, event_time)
        kept.append(line)
    return kept
