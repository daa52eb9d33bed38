"""The local gateway's server: a client that hangs up is not reported as an error."""

from __future__ import annotations

import pytest

from docket.local.gateway import _Server


@pytest.mark.parametrize("hang_up", [ConnectionResetError, BrokenPipeError])
def test_a_client_hanging_up_prints_no_traceback(hang_up, capsys) -> None:
    server = _Server.__new__(_Server)  # no socket: only the error report is under test
    try:
        raise hang_up("peer went away")
    except OSError:
        server.handle_error(None, ("127.0.0.1", 50000))
    assert "Traceback" not in capsys.readouterr().err


def test_any_other_error_is_still_reported(capsys) -> None:
    server = _Server.__new__(_Server)
    try:
        raise ValueError("a real bug")
    except ValueError:
        server.handle_error(None, ("127.0.0.1", 50000))
    assert "ValueError: a real bug" in capsys.readouterr().err
