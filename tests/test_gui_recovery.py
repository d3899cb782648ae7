"""Data > Recover: an unfinished dataset in the save folder is offered and
rebuilt off the GUI thread (issue 15: 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtWidgets import QMessageBox
from test_gui import _make_window
from test_recover import assert_holds, write_killed

from mmapp.data import dataset_status


def test_an_unfinished_dataset_is_offered_and_recovered(
    qtbot, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp / "data"
    data.mkdir()
    left = write_killed(data, 5)
    assert not dataset_status(left).finished
    asked: list[str] = []

    def answer_yes(parent, title, text, *a, **k):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer_yes)
    window = _make_window(qtbot, tmp, rig_path="")
    try:
        assert window.recovery.unfinished() == [left]
        with qtbot.waitSignal(window.recovery.finished, timeout=30_000) as done:
            window.recovery.offer()  # what the app does when it opens
        assert len(asked) == 1 and left.name in asked[0]
        [(path, summary, ok)] = done.args[0]
        assert path == left and ok, summary
        assert dataset_status(left).finished
        assert_holds(left, [0, 1, 2, 3, 4])  # every frame, pixel-exact
        assert window.recovery.unfinished() == []
        # the Log says what was recovered
        assert f"recovered {left}" in window.log_panel.text()
    finally:
        window.close()


def test_recover_with_nothing_unfinished_says_so(
    qtbot, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "information", lambda parent, title, text, *a: told.append(text)
    )
    window = _make_window(qtbot, tmp, rig_path="")
    try:
        action = next(
            a
            for menu in window.menuBar().actions()
            if menu.text() == "&Data"
            for a in menu.menu().actions()
            if a.text().startswith("&Recover")
        )
        action.trigger()
        assert told == [f"No unfinished datasets in {tmp / 'data'}."]
    finally:
        window.close()
