"""The console says mmapp's own messages: an operator's Stop is not a warning,
and pymmcore-plus's real warnings come through in mmapp's words."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmapp.console import ConsoleHandler, setup_console_logging
from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.events import stream_event


@pytest.fixture
def console() -> Iterator[ConsoleHandler]:
    """mmapp's console set up as the command does; pymmcore-plus's own
    stderr handler is put back afterwards."""
    pymm = logging.getLogger("pymmcore-plus")
    before = list(pymm.handlers)
    handler = setup_console_logging()
    yield handler
    for name in ("mmapp", "pymmcore-plus"):
        logging.getLogger(name).removeHandler(handler)
    for old in before:
        if old not in pymm.handlers:
            pymm.addHandler(old)


def test_stop_is_not_a_warning(
    console: ConsoleHandler,
    controller: RunController,
    tmp: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    controller.start(RunRequest([stream_event()], tmp, "loop"))
    assert controller.wait_frames(20, 20)
    controller.stop()
    result = controller.wait(20)
    assert result is not None and result.outcome is RunOutcome.STOPPED
    err = capsys.readouterr().err
    assert "MDA Canceled" not in err
    assert "WARNING" not in err and "warning" not in err
    assert err == ""


def test_real_pymmcore_plus_warnings_reach_the_console_in_mmapp_words(
    console: ConsoleHandler, capsys: pytest.CaptureFixture
) -> None:
    pymm = logging.getLogger("pymmcore-plus")
    pymm.warning("MDA Canceled: %s", "GeneratorMDASequence()")
    pymm.error("Could not find a compatible Micro-Manager installation for ...")
    pymm.info("chatter")
    pymm.warning("Failed to set exposure. %s", "out of range")
    logging.getLogger("mmapp.engine").warning("the disk is slow")
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "mmapp: warning: pymmcore-plus: Failed to set exposure. out of range",
        "mmapp: warning: the disk is slow",
    ]


def test_setup_is_idempotent(console: ConsoleHandler) -> None:
    assert setup_console_logging() is console
    for name in ("mmapp", "pymmcore-plus"):
        handlers = logging.getLogger(name).handlers
        assert [h for h in handlers if isinstance(h, ConsoleHandler)] == [console]
    assert not [
        h
        for h in logging.getLogger("pymmcore-plus").handlers
        if type(h) is logging.StreamHandler
    ]
