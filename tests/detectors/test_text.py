"""Text folding: the ASCII fast path and the cache fold exactly as the full Unicode path does."""

from __future__ import annotations

import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from detectors.text import _CONFUSABLES, _DROP_FORMAT_AND_CAPITALS, _FOLDED_BY_TABLES, _fold_unicode, fold


@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_fold_equals_the_uncached_unicode_path(text: str) -> None:
    """The ASCII fast path and the cache change nothing."""
    assert fold(text) == _fold_unicode.__wrapped__(text)


def test_look_alikes_and_invisible_characters_fold_away() -> None:
    assert fold("Ni\u200bckel  РOWDER") == "nickel powder"


def _fold_translating_always(text: str) -> str:
    """Folding as it was written before the searches that skip translating: both tables, always."""
    text = unicodedata.normalize("NFKC", text)
    return " ".join(text.translate(_DROP_FORMAT_AND_CAPITALS).lower().translate(_CONFUSABLES).split())


_MAPPED = sorted(chr(code) for code in {*_DROP_FORMAT_AND_CAPITALS, *_CONFUSABLES})


@given(st.text(alphabet=st.sampled_from([*_MAPPED, "У", "Σ", "İ", "Ａ", "栋", " ", "a"]) | st.characters()))
def test_translating_only_text_that_holds_a_mapped_character_folds_the_same(text: str) -> None:
    """Capitals that lower into a look-alike (Cyrillic У) included."""
    assert _fold_unicode.__wrapped__(text) == _fold_translating_always(text)


def test_the_characters_that_make_folding_translate_are_every_one_a_table_maps_or_that_lowers_into_one() -> None:
    look_alikes = {chr(code) for code in _CONFUSABLES}
    lowering = {c for c in map(chr, range(sys.maxunicode + 1)) if not look_alikes.isdisjoint(c.lower())}
    assert _FOLDED_BY_TABLES == {chr(code) for code in _DROP_FORMAT_AND_CAPITALS} | look_alikes | lowering
