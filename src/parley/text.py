"""Rules for human text on the wire: trimmed, NFC-normalised, no control characters."""

from __future__ import annotations

import unicodedata

from parley.errors import InvalidPayload

# Bidirectional overrides and isolates let a name display as something it is not.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_ALLOWED_IN_MESSAGES = {"\n", "\t"}


def clean_text(value: str, *, multiline: bool = False) -> str:
    """Normalise ``value`` or raise ``ValueError`` saying what is wrong with it."""
    text = unicodedata.normalize("NFC", value).strip()
    for char in text:
        if multiline and char in _ALLOWED_IN_MESSAGES:
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            raise ValueError(f"control character U+{ord(char):04X} is not allowed")
    return text


def check_length(value: str, name: str, low: int, high: int) -> str:
    """``value`` when it has ``low`` to ``high`` characters; INVALID_PAYLOAD naming ``name``
    otherwise."""
    if not low <= len(value) <= high:
        raise InvalidPayload(f"{name} must be {low} to {high} characters.")
    return value
