"""Scoring: honest look-alikes stay clean, hidden mass is found, each reason for its cause."""

from __future__ import annotations

import msgspec
import pytest

from detectors.events import Dimensions, Item, ParcelEvent, Party
from detectors.reference import load_reference
from detectors.scoring import (
    CONTROLLED_GOODS,
    COVER_GOODS_OVERWEIGHT,
    DENSITY_HIGH,
    MISDECLARATION_WORD,
    ROUTE_RISK,
    UNDERDECLARED_WEIGHT,
    UNECONOMIC_SHIPPING,
    score_batch,
)

REFERENCE = load_reference()


def parcel(
    description: str,
    weight: float,
    quantity: float = 1,
    unit: str | None = None,
    dims: tuple[float, float, float] | None = None,
    measured: float | None = None,
    hs: str | None = None,
    to: str | None = None,
    channel: str = "express",
    value: float | None = None,
    currency: str | None = None,
) -> ParcelEvent:
    return ParcelEvent(
        event_id="e",
        parcel_id="p",
        event_type="declared",
        event_time_ms=1_767_225_600_000,
        courier="SF",
        channel=channel,  # type: ignore[arg-type]
        sender=Party(),
        recipient=Party(),
        destination_country=to,
        items=(
            Item(description=description, quantity=quantity, unit=unit, hs_code=hs, value=value, currency=currency),
        ),
        declared_weight_kg=weight,
        measured_weight_kg=measured,
        dimensions=Dimensions(*dims) if dims else None,
    )


def score(event: ParcelEvent, suspended: bool = False):  # type: ignore[no-untyped-def]
    return score_batch([event], REFERENCE, include_suspended=suspended)[0]


def test_an_honest_case_of_water_is_clean_in_any_wording() -> None:
    for text, qty, unit in [
        ("矿泉水 550ml*24瓶", 1, "箱"),
        ("24 bottles x 550 ml mineral water", 1, None),
        ("矿泉水 550ml", 24, "瓶"),
    ]:
        result = score(parcel(text, 24 * 0.569 + 0.4, qty, unit, (40, 27, 22)))
        assert result.suspect_mass_kg == 0 and result.reasons == (), text


def test_powder_in_water_bottles_is_found_and_estimated() -> None:
    result = score(parcel("矿泉水 550ml*24瓶", 24 * 1.1 + 0.4, 1, "箱", (40, 27, 22)))
    assert result.reasons == (COVER_GOODS_OVERWEIGHT,)
    assert result.suspect_mass_kg == pytest.approx(0.9 * (24 * 1.1 + 0.4 - 24 * 0.019 - 0.4), rel=1e-3)


def test_a_packed_mannequin_is_found_and_an_empty_one_is_not() -> None:
    assert score(parcel("服装模特 全身", 9.0, 1, "具", (180, 50, 40))).suspect_mass_kg == 0
    packed = score(parcel("服装模特 全身", 40.0, 1, "具", (180, 50, 40)))
    assert packed.reasons == (COVER_GOODS_OVERWEIGHT,) and packed.suspect_mass_kg == pytest.approx(0.9 * 28.0)


def test_dense_boxes_cover_words_and_controlled_names() -> None:
    dense = score(parcel("陶瓷添加剂 ceramic additive", 8.0, dims=(20, 15, 12), to="DE"))  # 2.2 g/cm3
    assert set(dense.reasons) == {DENSITY_HIGH, MISDECLARATION_WORD}
    word_only = score(parcel("solder paste", 2.0, dims=(30, 20, 20), to="DE"))
    assert word_only.reasons == (MISDECLARATION_WORD,) and word_only.suspect_mass_kg == pytest.approx(0.3)
    assert dense.suspect_mass_kg > 4 * word_only.suspect_mass_kg
    named = score(parcel("氧化镝 99.9%", 5.0))
    assert named.reasons == (CONTROLLED_GOODS,) and named.suspect_mass_kg == pytest.approx(4.75)
    assert score(parcel("powder", 5.0, hs="2805301300")).reasons == (CONTROLLED_GOODS,)


def test_cerium_polishing_powder_is_not_controlled_and_suspended_lists_switch_on() -> None:
    assert score(parcel("氧化铈抛光粉 cerium oxide", 5.0, hs="2846101000")).suspect_mass_kg == 0
    assert score(parcel("氧化钬 holmium oxide", 5.0)).suspect_mass_kg == 0
    assert score(parcel("氧化钬 holmium oxide", 5.0), suspended=True).reasons == (CONTROLLED_GOODS,)


def test_a_scale_reading_far_above_the_declaration() -> None:
    light = parcel("面霜 50ml", 2.5, 20, "罐", (30, 20, 15), measured=7.5)
    result = score(light)
    assert UNDERDECLARED_WEIGHT in result.reasons and result.weight_kg == 7.5
    assert score(msgspec.structs.replace(light, measured_weight_kg=2.6)).suspect_mass_kg == 0


def test_unknown_weight_and_empty_batches() -> None:
    unweighed = msgspec.structs.replace(parcel("x", 1.0), declared_weight_kg=None)
    assert score(unweighed).suspect_mass_kg == 0
    assert score_batch([], REFERENCE) == []


def test_zero_width_characters_do_not_hide_a_cover_word() -> None:
    assert MISDECLARATION_WORD in score(parcel("镍\u200b粉 nickel", 3.0, to="VN")).reasons


def test_cover_words_at_home_are_honest_trade() -> None:
    """Real nickel powder and ceramic additives move inside the country every day."""
    assert score(parcel("陶瓷添加剂 25kg/袋", 25.0, channel="ltl")).suspect_mass_kg == 0
    assert score(parcel("镍粉 nickel powder", 5.0, dims=(15, 10, 10))).suspect_mass_kg == 0  # 3.3 g/cm3


def test_goods_dense_by_nature_explain_the_density() -> None:
    assert score(parcel("氧化铈抛光粉 polishing powder", 20.0, dims=(30, 20, 20))).suspect_mass_kg == 0
    assert score(parcel("氧化铈抛光粉 polishing powder", 20.0, dims=(30, 20, 20), to="DE")).suspect_mass_kg == 0
    assert DENSITY_HIGH in score(parcel("抛光材料", 20.0, dims=(30, 20, 20), to="DE")).reasons


def test_a_dense_box_of_ordinary_goods_at_home_only_adds_to_other_evidence() -> None:
    """Dumbbells are dense: alone at home they score nothing, with a scale discrepancy they add."""
    assert score(parcel("sports leisure", 27.8, dims=(30, 20, 18))).suspect_mass_kg == 0
    both = score(parcel("sports leisure", 10.0, dims=(20, 15, 12), measured=20.0))
    alone = score(parcel("sports leisure", 10.0, dims=(200, 150, 120), measured=20.0))
    assert set(both.reasons) == {DENSITY_HIGH, UNDERDECLARED_WEIGHT} and both.suspect_mass_kg > alone.suspect_mass_kg


def test_route_risk_adds_to_a_signal_and_alone_scores_nothing() -> None:
    assert score(parcel("面霜 50ml", 2.0, 10, "罐", to="TH", channel="cross_border_ecommerce")).reasons == ()
    home = score(parcel("陶瓷添加剂", 5.0, to="DE"))
    risky = score(parcel("陶瓷添加剂", 5.0, to="VN"))
    assert risky.reasons == (MISDECLARATION_WORD, ROUTE_RISK)
    assert (
        risky.suspect_mass_kg == pytest.approx(5.0 * (1 - 0.85 * 0.7)) and risky.suspect_mass_kg > home.suspect_mass_kg
    )


def test_cheap_goods_sent_abroad_at_cross_border_rates() -> None:
    """Loose powder: a bottle weighs barely more than water, but nobody pays to send water abroad."""
    loose = 24 * (0.019 + 0.6) + 0.4
    at_home = score(parcel("矿泉水 550ml*24瓶", loose, 1, "箱", (40, 27, 22)))
    abroad = score(parcel("矿泉水 550ml*24瓶", loose, 1, "箱", (40, 27, 22), to="TH", channel="cross_border_ecommerce"))
    assert at_home.suspect_mass_kg == 0
    assert abroad.reasons == (UNECONOMIC_SHIPPING, ROUTE_RISK)
    assert abroad.suspect_mass_kg == pytest.approx(24 * 0.6 * (1 - 0.4 * 0.65), rel=1e-3)
    # A declared value decides over the typical one: 2,000 USD of "water" pays its way.
    valued = parcel(
        "矿泉水 550ml*24瓶", loose, 1, "箱", to="TH", channel="cross_border_ecommerce", value=2000, currency="USD"
    )
    assert score(valued).suspect_mass_kg == 0
    unknown_currency = msgspec.structs.replace(
        valued, items=(msgspec.structs.replace(valued.items[0], currency="XAU"),)
    )
    assert UNECONOMIC_SHIPPING in score(unknown_currency).reasons  # falls back to the typical value


def test_honest_glass_jars_are_not_overweight() -> None:
    assert score(parcel("面霜 50ml", 6 * 0.2 + 0.3, 6, "罐", (20, 15, 10))).suspect_mass_kg == 0
    assert COVER_GOODS_OVERWEIGHT in score(parcel("面霜 100ml", 6 * 0.45 + 0.3, 6, "罐", (20, 15, 10))).reasons
