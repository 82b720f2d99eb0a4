import logging

import pytest

from parley.signalling import socketio_internals


def test_the_installed_socketio_and_engineio_are_the_versions_the_internals_were_checked_for() -> (
    None
):
    assert socketio_internals.unchecked_versions() == {}


def test_a_version_the_internals_were_not_checked_for_is_logged_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(socketio_internals.CHECKED_VERSIONS, "python-socketio", "0.0.1")
    with caplog.at_level(logging.WARNING, logger=socketio_internals.__name__):
        socketio_internals.warn_if_unchecked()
    assert [r.getMessage() for r in caplog.records] == [
        f"python-socketio {socketio_internals.version('python-socketio')} is installed; "
        "the signalling server was checked against 0.0.1"
    ]


def test_the_fast_json_reads_and_writes_what_the_standard_library_does() -> None:
    from parley.signalling.server import FastJson

    assert FastJson.loads('{"a":[1,"\\u00e9"]}') == {"a": [1, "é"]}
    assert FastJson.loads('{"x": NaN}')["x"] != FastJson.loads('{"x": NaN}')["x"]  # NaN read
    assert FastJson.dumps({"n": 2**70}) == '{"n":1180591620717411303424}'  # beyond 64 bits
    assert FastJson.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'
