"""The layer chooser: the best layer at or below the cap that fits the link after audio."""

from __future__ import annotations

from parley.media.embedded.adaptation import PAUSE, choose_layer
from parley.media.embedded.feedback import RateMeter

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


def test_a_layer_just_turned_on_is_measured_over_the_time_it_has_arrived() -> None:
    # 100 kbit/s, turned on at t=10 (and again after a silence): half a second in, the meter
    # says about 100 kbit/s, not the quarter a 2 s window would (a cheap layer that is not)
    meter = RateMeter(window=2.0, slots=20)
    for start in (10.0, 20.0):
        for step in range(50):  # 1,250 bytes every 100 ms until start + 5 s
            meter.add(1250, start + step * 0.1)
            if step == 5:
                assert 90_000 <= meter.bitrate(start + 0.55) <= 130_000
        assert 90_000 <= meter.bitrate(start + 4.95) <= 110_000
