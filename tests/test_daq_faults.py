"""The card's server freezes or dies mid-run (issue 15: 1, 2): Stop ends the
run within STOP_BOUND_S, the dataset is finished and read back pixel-exact,
and the outcome names the card and says the rig may not be safe."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from test_daq_acquisition import (
    assert_frames_match,
    frames_in_order,
    lasers_on,
    opm_program,
)

from mmapp.daq.connection import CALL_TIMEOUT_S, DaqConnection
from mmapp.daq.render import render
from mmapp.engine.controller import RunController, RunOutcome, RunRequest
from mmapp.engine.daq_link import STOP_BOUND_S
from mmapp.engine.plans import build_events
from mmapp.rig import Rig


@pytest.fixture
def proxied(rig: Rig) -> Iterator[FaultProxy]:
    """The rig's DAQ calls go through a proxy the test can freeze or kill."""
    direct = rig.daq
    assert direct is not None and direct.server is not None
    proxy = FaultProxy(direct.server)
    rig.daq = DaqConnection(direct.device, proxy.address)
    yield proxy
    rig.daq.close()
    rig.daq = direct
    proxy.close()


@pytest.mark.parametrize("fault", ["freeze", "kill"])
def test_a_card_lost_mid_loop_ends_the_run_in_bound_and_keeps_the_data(
    controller: RunController, rig: Rig, tmp: Path, proxied: FaultProxy, fault: str
) -> None:
    lasers_on(rig)
    program = opm_program(positions=8)
    controller.start(
        RunRequest(events=build_events(loop=True), out_dir=tmp, program=program)
    )
    assert controller.wait_frames(24, timeout=20)
    getattr(proxied, fault)()
    t0 = time.perf_counter()
    controller.stop()
    result = controller.wait(STOP_BOUND_S + 10)
    elapsed = time.perf_counter() - t0
    assert result is not None, "Stop did not end the run"
    assert elapsed < STOP_BOUND_S, f"Stop took {elapsed:.1f} s"
    # the card could not be parked: the operator must be told, never "stopped"
    assert result.outcome is RunOutcome.UNSAFE, result.message
    assert "THE RIG WAS NOT MADE SAFE" in result.message
    assert "DAQ" in result.message and proxied.address in result.message
    if fault == "freeze":
        assert f"did not answer (no answer within {CALL_TIMEOUT_S:g} s)" in (
            result.message
        )
    # every frame acquired before the fault is on disk, pixel-exact
    frames = frames_in_order(result.dataset)
    assert len(frames) >= 24
    assert len(frames) == result.frames_saved
    assert result.frames_acquired == result.frames_saved + result.frames_lost
    assert_frames_match(frames, render(program))
    # (the card's tasks are orphaned on its server: the UNSAFE outcome says so;
    # this rig is closed with its simulated server after the test)


def test_a_card_lost_mid_run_is_an_error_even_without_stop(
    controller: RunController, rig: Rig, tmp: Path, proxied: FaultProxy
) -> None:
    """The card's server killed while looping: the run ends by itself with the
    card named (before the fix: Stop later said "stopped", exit 0)."""
    lasers_on(rig)
    program = opm_program(positions=8)
    controller.start(
        RunRequest(events=build_events(loop=True), out_dir=tmp, program=program)
    )
    assert controller.wait_frames(16, timeout=20)
    proxied.kill()
    result = controller.wait(STOP_BOUND_S + 25)
    if result is None:  # the camera waits for triggers: Stop ends it
        controller.stop()
        result = controller.wait(STOP_BOUND_S)
    assert result is not None
    assert result.outcome in (RunOutcome.UNSAFE, RunOutcome.ERROR), result.message
    assert result.outcome is not RunOutcome.STOPPED
    assert "DAQ" in result.message
    assert result.frames_saved >= 16
