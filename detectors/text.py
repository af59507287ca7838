"""Text folding shared by matching and identity linking.

Descriptions and addresses arrive in full-width digits, mixed case, with stray spaces and
sometimes zero-width characters meant to break naive substring matching; all matching works
on the folded form.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width and invisible formatting characters (category Cf) are removed outright.
_INVISIBLE = {chr(c) for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E)}
_SPACE_PUNCT = re.compile(r"[\s\-_,.;:，。；：、·/\\()（）\[\]【】\"'“”‘’#＃]+")


def fold(text: str) -> str:
    """NFKC, lower case, invisible characters removed, runs of white space made single."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch not in _INVISIBLE and unicodedata.category(ch) != "Cf")
    return " ".join(text.lower().split())


def squeeze(text: str) -> str:
    """``fold`` and then drop spaces and punctuation: for keys compared as one token."""
    return _SPACE_PUNCT.sub("", fold(text))
