"""Rules for human text on the wire: trimmed, NFC-normalised, no control characters."""

from __future__ import annotations

import re
import unicodedata

from parley.errors import InvalidPayload

# Control characters (Unicode category Cc), lone surrogates (Cs), and the bidirectional
# overrides and isolates that let a name display as something it is not. One regular expression
# (searched in C) rather than a loop over every character: this runs on every chat message.
_CONTROL = "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069"
_FORBIDDEN_IN_LINES = re.compile(f"[{_CONTROL}\t\n]")
_FORBIDDEN_IN_MESSAGES = re.compile(f"[{_CONTROL}]")
"""Chat messages may contain line breaks and tabs."""


def clean_text(value: str, *, multiline: bool = False) -> str:
    """Normalise ``value`` or raise ``ValueError`` saying what is wrong with it."""
    text = unicodedata.normalize("NFC", value).strip()
    bad = (_FORBIDDEN_IN_MESSAGES if multiline else _FORBIDDEN_IN_LINES).search(text)
    if bad is not None:
        raise ValueError(f"control character U+{ord(bad.group()):04X} is not allowed")
    return text


def check_length(value: str, name: str, low: int, high: int) -> str:
    """``value`` when it has ``low`` to ``high`` characters; INVALID_PAYLOAD naming ``name``
    otherwise."""
    if not low <= len(value) <= high:
        raise InvalidPayload(f"{name} must be {low} to {high} characters.")
    return value
