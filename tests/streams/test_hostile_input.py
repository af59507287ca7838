"""Hostile and broken input: every record becomes a canonical event or a refusal with a reason.

Property-based (hypothesis): arbitrary bytes, and the shipped samples mutated (truncated, bytes
flipped or inserted, fields swapped for huge, nested or formula-like text), through every
adapter and then the validator. Nothing raises, and nothing takes long.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.errors import InvalidEvent
from detectors.reference import load_reference
from detectors.scoring import MISDECLARATION_WORD, score_batch
from detectors.validation import parse
from streams.adapters import ADAPTERS, Rejected

DATA = Path(__file__).parents[1] / "data"
SAMPLES = {
    "canonical": (DATA / "replay_stream.jsonl").read_bytes().splitlines()[0],
    "waybill-csv": (DATA / "waybill_sample.csv").read_bytes(),
    "export-9610": (DATA / "export_9610_sample.xml").read_bytes(),
}
NASTY = [
    b"",
    b"\xff\xfe\xfd",
    b"=cmd|' /C calc'!A0",
    b'"\n"',
    b",,,,;;;\t\t",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"-5",
    b'{"a":' * 50,
    b"[" * 5000,
    "镍\u200b粉".encode(),
    b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><x>&a;</x>",
    b"9" * 40,
    b"\x00",
    b'<?xml version="1.0" encoding="UTF-4"?><CEB603Message/>',  # an unknown codec (found by atheris)
]


def check(adapter: str, raw: bytes) -> None:
    started = time.monotonic()
    results = ADAPTERS[adapter].parse(raw)
    assert isinstance(results, list)
    for result in results:
        if isinstance(result, Rejected):
            assert result.reason and isinstance(result.detail, str)
            continue
        try:
            parse(orjson.dumps(result))
        except InvalidEvent as exc:
            assert exc.reason
    assert time.monotonic() - started < 5, "an input must never hang the worker"


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    adapter = draw(st.sampled_from(sorted(SAMPLES)))
    raw = bytearray(SAMPLES[adapter])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "nasty", "repeat"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "truncate":
            raw = raw[:at]
        elif kind == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = draw(st.binary(max_size=16))
        elif kind == "nasty":
            raw[at:at] = draw(st.sampled_from(NASTY))
        else:
            raw[at:at] = raw[at : at + draw(st.integers(1, 64))] * draw(st.integers(2, 50))
    return adapter, bytes(raw)


@given(st.sampled_from(sorted(ADAPTERS)), st.binary(max_size=2048))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_raise(adapter: str, raw: bytes) -> None:
    check(adapter, raw)


@given(mutated())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_samples_become_events_or_refusals(case: tuple[str, bytes]) -> None:
    check(*case)


def test_huge_and_deep_inputs_are_refused_quickly() -> None:
    for adapter in ADAPTERS:
        check(adapter, b"[" * 200_000)
        check(adapter, b'{"x":"' + b"a" * 5_000_000 + b'"}')


def test_look_alike_letters_and_invisible_characters_do_not_hide_a_cover_word() -> None:
    from tests.detectors.test_scoring import parcel

    reference = load_reference()
    for text in (
        "ｎｉｃｋｅｌ ｐｏｗｄｅｒ",
        "nіckel pоwder",
        "n\u200bickel\u00adpowder",
        "ΝΙCKEL POWDER",
        "镍\ufeff粉",
    ):
        [score] = score_batch([parcel(text, 3.0, to="VN")], reference)
        assert MISDECLARATION_WORD in score.reasons, text
