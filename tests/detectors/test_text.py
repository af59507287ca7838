"""Text folding: the ASCII fast path and the cache fold exactly as the full Unicode path does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from detectors.text import _fold_unicode, fold


@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_fold_equals_the_uncached_unicode_path(text: str) -> None:
    """The ASCII fast path and the cache change nothing."""
    assert fold(text) == _fold_unicode.__wrapped__(text)


def test_look_alikes_and_invisible_characters_fold_away() -> None:
    assert fold("Ni\u200bckel  РOWDER") == "nickel powder"
