"""Text helpers shared by preprocessing, serving and monitoring: one normalization, one script detector."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter


def normalize_text(text: str) -> str:
    """Unicode NFC and collapsed whitespace, nothing else: Indic scripts (and their ZWJ/ZWNJ) pass intact."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def dominant_script(text: str) -> str:
    """The Unicode script most letters of `text` belong to (LATIN, DEVANAGARI, BENGALI, ...)."""
    counts = Counter(unicodedata.name(char, "UNKNOWN").split(" ")[0] for char in text if char.isalpha())
    return counts.most_common(1)[0][0] if counts else "NONE"


# ISO 639-1 codes of the languages Pravah's first use case covers, and their FLORES-200 codes (what SIB-200 uses).
LANGUAGES = {
    "as": "asm_Beng", "bn": "ben_Beng", "en": "eng_Latn", "gu": "guj_Gujr", "hi": "hin_Deva", "kn": "kan_Knda",
    "ml": "mal_Mlym", "mr": "mar_Deva", "ne": "npi_Deva", "or": "ory_Orya", "pa": "pan_Guru", "ta": "tam_Taml",
    "te": "tel_Telu", "ur": "urd_Arab",
}  # fmt: skip
_FLORES = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")


def language_code(code: str) -> str | None:
    """The FLORES-200 code for `hi`, `hin` or `hin_Deva`; None for a code that names no language."""
    if code in LANGUAGES:
        return LANGUAGES[code]
    if _FLORES.fullmatch(code):
        return code
    return next((flores for flores in LANGUAGES.values() if flores.split("_")[0] == code), None)
