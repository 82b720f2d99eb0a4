"""Constrained field types shared by the edges' payload models (Socket.IO events and the REST
API): the same text and id rules wherever a value enters."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from parley.text import clean_text


def clean_line(value: str) -> str:
    return clean_text(value)


def _multiline(value: str) -> str:
    return clean_text(value, multiline=True)


def _password(value: str) -> str:
    """NFC-normalised and never trimmed: spaces are part of a password."""
    return unicodedata.normalize("NFC", value)


Line = Annotated[str, Field(max_length=2000), AfterValidator(clean_line)]
Password = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_password)]
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Kind = Literal["audio", "video"]
Text = Annotated[str, Field(max_length=100_000), AfterValidator(_multiline)]
RoomId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CustomRoomId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,64}$")]
Token = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]
Millis = Annotated[int, Field(ge=0, le=2**53)]
