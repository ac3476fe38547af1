"""Text helpers shared by preprocessing, serving and monitoring: one normalization, one script detector."""

from __future__ import annotations

import unicodedata
from collections import Counter


def normalize_text(text: str) -> str:
    """Unicode NFC and collapsed whitespace, nothing else: Indic scripts (and their ZWJ/ZWNJ) pass intact."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def dominant_script(text: str) -> str:
    """The Unicode script most letters of `text` belong to (LATIN, DEVANAGARI, BENGALI, ...)."""
    counts = Counter(unicodedata.name(char, "UNKNOWN").split(" ")[0] for char in text if char.isalpha())
    return counts.most_common(1)[0][0] if counts else "NONE"
