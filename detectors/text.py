"""Text folding shared by matching and identity linking.

Descriptions and addresses arrive in full-width digits, mixed case, with stray spaces and
sometimes zero-width characters meant to break naive substring matching; all matching works
on the folded form.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

# Cyrillic and Greek letters that look like Latin ones, written into "nickel powder" to slip past
# a word list. NFKC leaves them alone; this subset of the Unicode confusables (TR39) maps the
# look-alikes of A-Z and a-z; capitals first (a capital nu looks like N, a small one like v).
# (A transliteration library would also rewrite Chinese.)
_CONFUSABLE_CAPITALS = str.maketrans(
    {
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
        "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I",
        "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    }
)  # fmt: skip
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
        "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ӏ": "l",
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    }
)  # fmt: skip
# Zero-width and other invisible formatting characters (category Cf: soft hyphen, zero-width
# space and joiners, word joiner, BOM, ...) are removed outright; the table is read off the
# Unicode database of this Python once (some 60 ms at import), so that folding removes them and
# makes capitals Latin in one C pass instead of a category look-up per character.
_DROP_FORMAT_AND_CAPITALS = {
    **{c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"},
    **_CONFUSABLE_CAPITALS,
}


# Each table changes only the characters it maps, and most text holds none of them: asking a set
# whether the text holds one is 0.5 us for a 20-character Chinese street, where translating looks
# every character up in a dict, 1.5 us (timeit here). Recipients' streets are new to the cache
# nearly every event.
_FORMAT_OR_CAPITAL = frozenset(map(chr, _DROP_FORMAT_AND_CAPITALS))
_LOOK_ALIKE = frozenset(map(chr, _CONFUSABLES))
_SPACE_PUNCT = re.compile(r"[\s\-_,.;:，。；：、·/\\()（）\[\]【】\"'“”‘’#＃]+")


def fold(text: str) -> str:
    """NFKC, lower case, Latin look-alikes made Latin, invisible characters removed, white space single."""
    if text.isascii():  # NFKC, look-alikes and invisible characters are all outside ASCII
        return " ".join(text.lower().split())
    return _fold_unicode(text)


# Senders, buildings and product names repeat from parcel to parcel: folding was the worker's
# largest Python cost per event before this cache (benchmarks/core.py under cProfile).
@functools.lru_cache(maxsize=1 << 16)
def _fold_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    if not _FORMAT_OR_CAPITAL.isdisjoint(text):
        text = text.translate(_DROP_FORMAT_AND_CAPITALS)
    text = text.lower()
    if not _LOOK_ALIKE.isdisjoint(text):  # after lower(): a capital may lower into a look-alike
        text = text.translate(_CONFUSABLES)
    return " ".join(text.split())


def squeeze(text: str) -> str:
    """``fold`` and then drop spaces and punctuation: for keys compared as one token."""
    return squeeze_folded(fold(text))


def squeeze_folded(folded: str) -> str:
    """``squeeze`` of text already folded (folding twice changes nothing, and costs a second pass)."""
    return _SPACE_PUNCT.sub("", folded)
