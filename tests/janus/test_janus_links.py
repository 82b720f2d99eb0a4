"""The Janus link chooser over recorded report traces (one report a second)."""

from __future__ import annotations

from parley.media.janus.links import LinkChoice, LinkChooser, LinkReport


def feed(chooser: LinkChooser, losses: list[float], start: float = 0.0) -> list[LinkChoice]:
    """Reports of 100 packets a second with the given loss each second; the choices made."""
    sent = lost = 0
    choices = []
    if not chooser._history:  # the first report only sets the baseline
        chooser.update(LinkReport(0, 0), start)
    else:
        sent, lost = chooser._history[-1][1].sent, chooser._history[-1][1].lost
    for second, loss in enumerate(losses, start=1):
        sent += 100
        lost += round(100 * loss)
        choice = chooser.update(LinkReport(sent, lost), start + second)
        if choice is not None:
            choices.append(choice)
    return choices


def test_a_clean_link_keeps_the_top_layer() -> None:
    chooser = LinkChooser()
    assert feed(chooser, [0.0] * 30) == []
    assert chooser.allowed == 2


def test_a_narrow_link_steps_down_within_two_reports_and_pauses_last() -> None:
    chooser = LinkChooser()
    assert feed(chooser, [0.6]) == [LinkChoice(0, False)]  # most lost: two steps at once
    chooser = LinkChooser()
    steps = feed(chooser, [0.1] * 6)
    assert steps == [LinkChoice(1, False), LinkChoice(0, False)]
    assert feed(chooser, [0.5] * 3, start=6.0) == [LinkChoice(0, True)]  # a trend, not a burst


def test_a_lost_packet_now_and_then_changes_nothing() -> None:
    chooser = LinkChooser()
    assert feed(chooser, [0.1, 0.0, 0.12, 0.0, 0.0, 0.09, 0.01] * 3) == []


def test_a_link_that_frees_up_is_followed_up_within_ten_seconds() -> None:
    chooser = LinkChooser()
    feed(chooser, [0.6])
    choices = feed(chooser, [0.0] * 10, start=1.0)
    assert choices == [LinkChoice(1, False), LinkChoice(2, False)]


def test_failed_steps_up_wait_longer_each_time() -> None:
    chooser = LinkChooser()
    feed(chooser, [0.6])  # down to 0 at t=1
    trace = ([0.0] * 4 + [0.15] * 3) * 6  # clean a while, then the probe's layer is too big
    ups = [c for c in feed(chooser, trace, start=1.0) if c.allowed == 1]
    assert 1 <= len(ups) <= 4  # 2 s, then 4 s, then 6 s of clean link before each try


def test_a_step_up_the_link_cannot_carry_is_undone_at_its_first_loss() -> None:
    chooser = LinkChooser()
    feed(chooser, [0.6])  # down to 0 at t=1
    choices = feed(chooser, [0.0] * 3 + [0.1], start=1.0)
    assert choices == [LinkChoice(1, False), LinkChoice(0, False)]
    # once a step up held, a lost packet now and then takes a trend again
    chooser = LinkChooser()
    feed(chooser, [0.6])
    feed(chooser, [0.0] * 8, start=1.0)
    assert chooser.allowed >= 1
    allowed = chooser.allowed
    assert feed(chooser, [0.1, 0.0], start=9.0) == [] and chooser.allowed == allowed


def test_a_paused_video_tries_again_when_the_link_is_clean() -> None:
    chooser = LinkChooser(allowed=0)
    feed(chooser, [0.5] * 3)
    assert chooser.paused
    assert feed(chooser, [0.0] * 5, start=3.0)[0] == LinkChoice(0, False)
