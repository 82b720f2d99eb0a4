"""Which simulcast layer each subscriber receives: the best one at or below its cap that fits
its link after audio, or none (its video pauses) when even the lowest does not.

Pure functions of the figures passed in.
"""

from __future__ import annotations

UP_MARGIN = 1.15
"""A higher layer than the current one must fit this many times over (no flapping)."""

KEEP_LOWEST = 1.25
"""The lowest layer, being received, is kept until it needs this many times what the link
has room for (a pause is a loss to the viewer; a keyframe's burst is not a reason)."""

PAUSE = -1
"""``choose_layer``'s answer when no layer fits: the subscriber's video pauses."""


def choose_layer(
    bitrates: list[int | None],
    cap: int,
    available: int | None,
    current: int | None,
) -> int | None:
    """The layer to receive, ``PAUSE``, or None to keep the present choice (no layer is
    arriving yet).

    ``bitrates``: each layer's bit rate as it arrives, lowest first (None: not arriving);
    ``cap``: the highest layer the subscriber asked for; ``available``: bits per second its
    link carries for video (None: unknown, no limit); ``current``: the layer it receives (None:
    none, or its video is paused)."""
    arriving = [i for i, rate in enumerate(bitrates) if rate is not None]
    if not arriving:
        return None
    allowed = [i for i in arriving if i <= cap] or [min(arriving)]
    if available is None:
        return max(allowed)
    for layer in reversed(allowed):
        rate = bitrates[layer] or 0
        if current is None or layer > current:
            margin = UP_MARGIN
        elif layer == allowed[0]:
            margin = 1 / KEEP_LOWEST
        else:
            margin = 1.0
        if rate * margin <= available:
            return layer
    return PAUSE
