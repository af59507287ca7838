"""Scoring: honest look-alikes stay clean, hidden mass is found, each reason for its cause."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detectors.events import Dimensions, Item, ParcelEvent, Party
from detectors.reference import load_reference
from detectors.scoring import (
    CONTROLLED_GOODS,
    COVER_GOODS_OVERWEIGHT,
    DENSITY_HIGH,
    MISDECLARATION_WORD,
    UNDERDECLARED_WEIGHT,
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
) -> ParcelEvent:
    return ParcelEvent(
        event_id="e",
        parcel_id="p",
        event_type="declared",
        event_time_ms=1_767_225_600_000,
        courier="SF",
        channel="express",
        sender=Party(),
        recipient=Party(),
        items=(Item(description=description, quantity=quantity, unit=unit, hs_code=hs),),
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
    dense = score(parcel("陶瓷添加剂 ceramic additive", 8.0, dims=(20, 15, 12)))  # 2.2 g/cm3
    assert set(dense.reasons) == {DENSITY_HIGH, MISDECLARATION_WORD}
    word_only = score(parcel("solder paste", 2.0, dims=(30, 20, 20)))
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
    assert score(replace(light, measured_weight_kg=2.6)).suspect_mass_kg == 0


def test_unknown_weight_and_empty_batches() -> None:
    assert (
        score(
            parcel("面霜 50ml", 1.0, dims=(1, 1, 1)).__class__(
                **{
                    **{f: getattr(parcel("x", 1.0), f) for f in ParcelEvent.__dataclass_fields__},
                    "declared_weight_kg": None,
                }
            )
        ).suspect_mass_kg
        == 0
    )
    assert score_batch([], REFERENCE) == []


def test_zero_width_characters_do_not_hide_a_cover_word() -> None:
    assert MISDECLARATION_WORD in score(parcel("镍\u200b粉 nickel", 3.0)).reasons
