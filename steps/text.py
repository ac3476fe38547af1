"""Text helpers shared by preprocessing, serving and monitoring: one normalization, one script detector."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence


def normalize_text(text: str) -> str:
    """Unicode NFC and collapsed whitespace, nothing else: Indic scripts (and their ZWJ/ZWNJ) pass intact."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class CodePoints:
    """Many texts' code points in one numpy array, each text followed by a newline, with the index of the text
    each one belongs to: per-text counts (the letters of each script) are then a few passes over an array
    instead of a Python loop over every character, fast enough for a million captured texts."""

    def __init__(self, texts: Sequence[str]):
        import numpy as np

        self.count = len(texts)
        self.codes = np.frombuffer("\n".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        self.lengths = np.fromiter(map(len, texts), dtype=np.int64, count=self.count)
        self.owner = np.repeat(np.arange(self.count, dtype=np.int64), self.lengths + 1)[: len(self.codes)]

    def dominant_scripts(self) -> list[str]:
        """The Unicode script most letters of each text belong to (LATIN, DEVANAGARI, BENGALI, ...; NONE without
        letters); a tie goes to the script whose first letter comes first in Unicode."""
        import numpy as np

        scripts = _script_table().take(self.codes, mode="clip")  # past U+FFFF: the table's last entry
        if (beyond := scripts == _BEYOND_BMP).any():  # rare: historic scripts, CJK extensions, U+FFFF itself
            scripts[beyond] = [_script_id(int(code)) for code in self.codes[beyond]]
        width = len(_SCRIPT_NAMES)
        counts = np.bincount(self.owner * width + scripts, minlength=self.count * width).reshape(self.count, width)
        counts[:, 0] = 0  # what is not a letter
        best = counts.argmax(axis=1)
        best[counts[np.arange(self.count), best] == 0] = 0
        return np.array(_SCRIPT_NAMES, dtype=object)[best].tolist()


def dominant_scripts(texts: Sequence[str]) -> list[str]:
    return CodePoints(texts).dominant_scripts()


_SCRIPT_NAMES = ["NONE"]  # script id -> name; 0 for what is not a letter
_BEYOND_BMP = 0xFFFF  # the table's mark for "look this one up"


def _script_id(code: int) -> int:
    char = chr(code)
    if not char.isalpha():
        return 0
    name = unicodedata.name(char, "UNKNOWN").split(" ")[0]
    if name not in _SCRIPT_NAMES:
        _SCRIPT_NAMES.append(name)
    return _SCRIPT_NAMES.index(name)


@functools.cache
def _script_table():
    """Script id of every character of the Basic Multilingual Plane, built once per process (about 40 ms)."""
    import numpy as np

    table = np.array([_script_id(code) for code in range(0x10000)], dtype=np.uint16)
    table[0xFFFF] = _BEYOND_BMP
    return table


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
