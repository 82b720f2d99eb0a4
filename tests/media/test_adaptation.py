"""The layer chooser: the best layer at or below the cap that fits the link after audio."""

from __future__ import annotations

from parley.media.embedded.adaptation import PAUSE, choose_layer

LAYERS: list[int | None] = [150_000, 450_000, 1_300_000]


def test_without_an_estimate_the_cap_decides() -> None:
    assert choose_layer(LAYERS, 2, None, None) == 2
    assert choose_layer(LAYERS, 1, None, 2) == 1
    assert choose_layer([None, None, None], 2, None, None) is None


def test_the_best_layer_that_fits_with_a_margin_to_go_up() -> None:
    assert choose_layer(LAYERS, 2, 2_000_000, None) == 2
    assert choose_layer(LAYERS, 2, 1_000_000, 2) == 1
    assert choose_layer(LAYERS, 2, 1_350_000, 1) == 1  # fits, but not with the margin
    assert choose_layer(LAYERS, 2, 1_350_000, 2) == 2  # staying needs no margin
    assert choose_layer(LAYERS, 0, 5_000_000, 2) == 0


def test_no_room_for_the_lowest_layer_pauses() -> None:
    assert choose_layer(LAYERS, 2, 100_000, 0) == PAUSE
    assert choose_layer(LAYERS, 2, 160_000, None) == PAUSE  # resuming needs the margin
    assert choose_layer(LAYERS, 2, 180_000, None) == 0


def test_layers_that_stopped_arriving_are_not_chosen() -> None:
    assert choose_layer([150_000, 450_000, None], 2, 5_000_000, 2) == 1
    assert choose_layer([None, 450_000, None], 0, 5_000_000, 1) == 1  # only one arrives
