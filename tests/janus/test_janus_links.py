"""The Janus link chooser over recorded report traces (one report a second), with a probe of
the link before each step up, and without (a client that cannot be probed: the step is the
probe)."""

from __future__ import annotations

from parley.media.engine import LinkProbe
from parley.media.janus.links import LinkChoice, LinkChooser, LinkReport, carried, step_kbps


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
    steps = feed(chooser, [0.1] * 8)  # each step down is given a second and a half to settle
    assert steps == [LinkChoice(1, False), LinkChoice(0, False)]
    assert feed(chooser, [0.5] * 5, start=8.0) == [LinkChoice(0, True)]  # a trend, not a burst


def test_a_lost_packet_now_and_then_changes_nothing() -> None:
    chooser = LinkChooser()
    assert feed(chooser, [0.1, 0.0, 0.12, 0.0, 0.0, 0.09, 0.01] * 3) == []


def test_a_link_that_frees_up_is_followed_up_within_ten_seconds() -> None:
    chooser = LinkChooser(probing=False)
    feed(chooser, [0.6])
    choices = feed(chooser, [0.0] * 10, start=1.0)
    assert choices == [LinkChoice(1, False), LinkChoice(2, False)]


def test_failed_steps_up_wait_longer_each_time() -> None:
    chooser = LinkChooser(probing=False)
    feed(chooser, [0.6])  # down to 0 at t=1
    trace = ([0.0] * 4 + [0.15] * 3) * 6  # clean a while, then the probe's layer is too big
    ups = [c for c in feed(chooser, trace, start=1.0) if c.allowed == 1]
    assert 1 <= len(ups) <= 4  # 2 s, then 4 s, then 6 s of clean link before each try


def test_a_step_up_the_link_cannot_carry_is_undone_at_its_first_loss() -> None:
    chooser = LinkChooser(probing=False)
    feed(chooser, [0.6])  # down to 0 at t=1
    choices = feed(chooser, [0.0] * 4 + [0.1], start=1.0)
    assert choices == [LinkChoice(1, False), LinkChoice(0, False)]
    # once a step up held, a lost packet now and then takes a trend again
    chooser = LinkChooser(probing=False)
    feed(chooser, [0.6])
    feed(chooser, [0.0] * 8, start=1.0)
    assert chooser.allowed >= 1
    allowed = chooser.allowed
    assert feed(chooser, [0.1, 0.0], start=9.0) == [] and chooser.allowed == allowed


def test_a_paused_video_tries_again_when_the_link_is_clean() -> None:
    chooser = LinkChooser(allowed=0, probing=False)
    feed(chooser, [0.5] * 3)
    assert chooser.paused
    assert feed(chooser, [0.0] * 5, start=3.0)[0] == LinkChoice(0, False)


def test_a_step_up_waits_for_a_probe_the_link_carried() -> None:
    chooser = LinkChooser()
    feed(chooser, [0.6])  # down to 0 at t=1, settled at 2.5
    assert feed(chooser, [0.0] * 4, start=1.0) == [] and chooser.probe_due
    assert chooser.allowed == 0  # nothing sent beyond the link before the probe
    assert chooser.probed(True, 5.0) == LinkChoice(1, False)
    assert not chooser.probe_due
    # the step up is still on trial: its first loss undoes it
    assert feed(chooser, [0.1], start=5.0) == [LinkChoice(0, False)]


def test_a_probe_the_link_queued_keeps_the_layer_and_waits_longer() -> None:
    chooser = LinkChooser()
    feed(chooser, [0.6])
    feed(chooser, [0.0] * 4, start=1.0)
    assert chooser.probed(False, 5.0) is None and chooser.allowed == 0
    assert feed(chooser, [0.0] * 2, start=5.0) == [] and not chooser.probe_due
    feed(chooser, [0.0], start=7.0)  # 3 s of clean link after the failed probe
    assert chooser.probe_due


def test_a_probe_made_stale_by_a_step_down_changes_nothing() -> None:
    chooser = LinkChooser(allowed=1)
    feed(chooser, [0.0] * 3)
    assert chooser.probe_due
    assert feed(chooser, [0.5], start=3.0) == [LinkChoice(0, False)]
    assert chooser.probed(True, 4.5) is None and chooser.allowed == 0


def test_a_step_up_not_probed_is_its_own_probe() -> None:
    chooser = LinkChooser()
    feed(chooser, [0.6])
    feed(chooser, [0.0] * 4, start=1.0)
    assert chooser.probed(None, 5.0) == LinkChoice(1, False)  # e.g. the rates were unknown
    assert feed(chooser, [0.1], start=5.0) == [LinkChoice(0, False)]  # on trial
    # a subscriber that cannot be probed steps up without waiting for probes
    chooser = LinkChooser()
    feed(chooser, [0.6])
    chooser.probing = False
    assert feed(chooser, [0.0] * 6, start=1.0) == [LinkChoice(1, False), LinkChoice(2, False)]


def test_a_probe_counts_as_carried_only_when_nothing_queued_or_went_missing() -> None:
    assert carried(LinkProbe(kbps=300, sent=20, acknowledged=20, delay_growth=0.004))
    assert not carried(LinkProbe(kbps=300, sent=20, acknowledged=20, delay_growth=0.15))
    assert not carried(LinkProbe(kbps=300, sent=20, acknowledged=19, delay_growth=0.0))


def test_a_step_down_goes_to_the_layer_that_fits_what_the_link_delivered() -> None:
    rates = (150.0, 350.0, 1200.0)
    for fitted, expected in ((rates, 0), (None, 1)):
        chooser = LinkChooser()
        sent = sent_bytes = lost = 0
        choices = []
        for second in range(4):  # 500 kbit/s sent, 29 % lost: 355 kbit/s delivered
            choice = chooser.update(LinkReport(sent, lost, sent_bytes), float(second), fitted)
            choices += [choice] if choice else []
            sent, sent_bytes, lost = sent + 100, sent_bytes + 62_500, lost + 29
        assert choices == [LinkChoice(expected, False)]


def test_most_packets_asked_for_again_step_down_before_the_receiver_report() -> None:
    chooser = LinkChooser()
    rates = (150.0, 350.0, 1200.0)
    assert chooser.update(LinkReport(0, 0, 0, 0), 0.0, rates) is None
    assert chooser.update(LinkReport(50, 0, 75_000, 0), 0.5, rates) is None
    # the link narrows: half a second later, 30 of the 50 packets sent were asked for again,
    # and no receiver report has told of any loss yet
    choice = chooser.update(LinkReport(100, 0, 150_000, 30), 1.0, rates)
    assert choice == LinkChoice(0, False)  # most of it asked again: two steps at once
    # a few NACKs now and then change nothing
    chooser = LinkChooser()
    for step in range(10):
        assert chooser.update(LinkReport(50 * step, 0, 75_000 * step, 5 * step), step / 2) is None


def test_a_probe_pads_at_what_the_step_adds_and_never_below_the_floor() -> None:
    rates = (150.0, 350.0, 1200.0)
    assert step_kbps(rates, 1) == (1200 - 350) * 1.25  # to the top layer
    assert step_kbps(rates, None) == 150 * 1.25  # paused video to the lowest layer
    ramping = (150.0, 200.0, 1200.0)  # the middle layer is still ramping up
    assert step_kbps(ramping, 0) == 200 * 0.75


def test_what_was_lost_before_a_step_down_does_not_pause_the_layer_after_it() -> None:
    chooser = LinkChooser()
    assert chooser.update(LinkReport(0, 0), 0.0) is None
    assert chooser.update(LinkReport(100, 60), 1.0) == LinkChoice(0, False)  # steep: at once
    # readings twice a second: the receiver reports of the next second and a half still count
    # packets lost before the switch, then the lowest layer's link is clean
    sent, lost = 100, 60
    for step in range(1, 11):
        sent += 50
        lost += 20 if step <= 4 else 0
        assert chooser.update(LinkReport(sent, lost), 1.0 + step / 2) is None, step
    assert not chooser.paused
