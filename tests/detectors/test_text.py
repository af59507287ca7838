"""Text folding: the ASCII fast path and the cache fold exactly as the full Unicode path does."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from detectors.text import _CONFUSABLES, _DROP_FORMAT_AND_CAPITALS, _fold_unicode, fold


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
