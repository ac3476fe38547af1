"""Text helpers shared by preprocessing, serving and monitoring: one normalization, one script detector."""

from __future__ import annotations

import re
import unicodedata


def normalize_text(text: str) -> str:
    """Unicode NFC and collapsed whitespace, nothing else: Indic scripts (and their ZWJ/ZWNJ) pass intact."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def dominant_script(text: str) -> str:
    """The Unicode script most letters of `text` belong to (LATIN, DEVANAGARI, BENGALI, ...).

    Fast enough for a million captured texts: each letter is mapped to a one-character code of its script
    by `str.translate` (the table learns each character once), and the codes are counted in C. A tie goes
    to the script met first in the process's life."""
    if text.isascii():  # the common case, decided without looking at each letter
        return "LATIN" if any(char.isalpha() for char in text) else "NONE"
    codes = text.translate(_SCRIPT_CODES)
    if not codes:
        return "NONE"
    return _SCRIPT_CODES.names[ord(max(sorted(set(codes)), key=codes.count)) - _FIRST_CODE]


_FIRST_CODE = 0xF0000  # a private-use plane: the codes never collide with text


class _ScriptCodes(dict):
    """char code -> one-character script code (None for what is not a letter), filled in on first sight."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self._codes: dict[str, str] = {}

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        if not char.isalpha():
            self[code] = None
            return None
        name = unicodedata.name(char, "UNKNOWN").split(" ")[0]
        if name not in self._codes:
            self._codes[name] = chr(_FIRST_CODE + len(self.names))
            self.names.append(name)
        self[code] = self._codes[name]
        return self[code]


_SCRIPT_CODES = _ScriptCodes()


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
