"""Text helpers shared by preprocessing, serving and monitoring: one normalization, one script detector."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any


def normalize_text(text: str) -> str:
    """Unicode NFC and collapsed whitespace, nothing else: Indic scripts (and their ZWJ/ZWNJ) pass intact."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def dominant_scripts(texts: Sequence[str]) -> list[str]:
    """The Unicode script most letters of each text belong to (LATIN, DEVANAGARI, BENGALI, ...; NONE without
    letters); a tie goes to the script whose first letter comes first in Unicode.

    Fast enough for a million captured texts: all code points go in one numpy array, each is mapped to its
    script by a table lookup, and one bincount over (text, script) pairs counts them, with no Python loop
    over characters."""
    import numpy as np

    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    owner = np.repeat(np.arange(len(texts)), np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    scripts = _script_table().take(codes, mode="clip")  # past U+FFFF: the table's last entry
    if (beyond := scripts == _BEYOND_BMP).any():  # rare: historic scripts, CJK extensions, U+FFFF itself
        scripts[beyond] = [_script_id(int(code)) for code in codes[beyond]]
    width = len(_SCRIPT_NAMES)
    counts = np.bincount(owner * width + scripts, minlength=len(texts) * width).reshape(len(texts), width)
    counts[:, 0] = 0  # what is not a letter
    best = counts.argmax(axis=1)
    best[counts[np.arange(len(texts)), best] == 0] = 0
    return np.array(_SCRIPT_NAMES, dtype=object)[best].tolist()


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
    "as": "asm_Beng",
    "bn": "ben_Beng",
    "en": "eng_Latn",
    "gu": "guj_Gujr",
    "hi": "hin_Deva",
    "kn": "kan_Knda",
    "ml": "mal_Mlym",
    "mr": "mar_Deva",
    "ne": "npi_Deva",
    "or": "ory_Orya",
    "pa": "pan_Guru",
    "ta": "tam_Taml",
    "te": "tel_Telu",
    "ur": "urd_Arab",
}
_FLORES = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")


def language_code(code: str) -> str | None:
    """The FLORES-200 code for `hi`, `hin` or `hin_Deva`; None for a code that names no language."""
    if code in LANGUAGES:
        return LANGUAGES[code]
    if _FLORES.fullmatch(code):
        return code
    return next((flores for flores in LANGUAGES.values() if flores.split("_")[0] == code), None)


def invalid_value(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first place in a parsed JSON value that JSON lets through but no model, log or capture file can hold,
    as (field, message): a string that is not valid Unicode (a lone surrogate such as \\ud800), NaN or
    Infinity; None when there is none. Shared by the local API and the SageMaker serving handlers."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                where or "body",
                f"not valid Unicode: a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}",
            )
    elif isinstance(value, float) and not math.isfinite(value):
        return where or "body", f"{value} is not a number JSON allows"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = invalid_value(key, where or "body") or invalid_value(item, f"{where}.{key}" if where else key)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := invalid_value(item, f"{where}.{index}"):
                return found
    return None
