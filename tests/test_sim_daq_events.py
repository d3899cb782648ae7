"""Task events of the simulated card, through the real nidaqmx client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import nidaqmx
import pytest
from nidaqmx.constants import AcquisitionType, Signal
from nidaqmx.error_codes import DAQmxErrors
from nidaqmx.errors import DaqError
from nidaqmx.grpc_session_options import GrpcSessionOptions

from mmapp.rig.simulated import SimDaqDevice, SimDaqServer


@pytest.fixture
def opts() -> Iterator[GrpcSessionOptions]:
    """Client options for a simulated card on an ephemeral port."""
    server = SimDaqServer(SimDaqDevice()).start()
    channel = grpc.insecure_channel(server.address)
    yield GrpcSessionOptions(grpc_channel=channel, session_name="")
    channel.close()
    server.stop()


class Recorder:
    """Collects callback arguments; `wait(n)` blocks until n arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self._cond = threading.Condition()

    def __call__(self, *args: object) -> int:
        with self._cond:
            self.calls.append(args[1:-1])
            self._cond.notify_all()
        return 0

    def wait(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.calls) >= n, timeout)


def test_every_n_and_done_events_follow_a_finite_acquisition(opts) -> None:
    every_n, done = Recorder(), Recorder()
    with nidaqmx.Task(grpc_options=opts) as task:
        task.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        task.timing.cfg_samp_clk_timing(
            10_000.0, sample_mode=AcquisitionType.FINITE, samps_per_chan=1000
        )
        task.register_every_n_samples_acquired_into_buffer_event(250, every_n)
        task.register_done_event(done)
        for run in (1, 2):
            task.start()
            assert done.wait(run) and every_n.wait(4 * run)
            task.stop()
        assert done.calls == [(0,), (0,)]
        assert every_n.calls == [(1, 250)] * 8  # acquired-into-buffer, N


def test_sample_complete_signal_fires_once_per_sample(opts) -> None:
    signals = Recorder()
    with nidaqmx.Task(grpc_options=opts) as task:
        task.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        task.timing.cfg_samp_clk_timing(
            1000.0, sample_mode=AcquisitionType.FINITE, samps_per_chan=20
        )
        task.register_signal_event(Signal.SAMPLE_COMPLETE, signals)
        task.start()
        task.wait_until_done()
        assert signals.wait(20)
        assert signals.calls == [(Signal.SAMPLE_COMPLETE.value,)] * 20


def test_event_refusals_carry_the_daqmx_codes(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ai, nidaqmx.Task(grpc_options=opts) as ao:
        ai.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ai.register_done_event(Recorder())
        with pytest.raises(DaqError) as exc:
            ai.register_done_event(Recorder())
        assert exc.value.error_code == DAQmxErrors.DONE_EVENT_ALREADY_REGISTERED
        with pytest.raises(DaqError) as exc:
            ai.register_every_n_samples_transferred_from_buffer_event(10, Recorder())
        assert exc.value.error_code == (
            DAQmxErrors.EVERY_N_SAMPS_TRANSFERRED_FROM_BUFFER_EVENT_NOT_SUPPORTED_BY_DEVICE
        )
        with pytest.raises(DaqError) as exc:
            ao.register_every_n_samples_acquired_into_buffer_event(10, Recorder())
        assert exc.value.error_code == (
            DAQmxErrors.EVERY_N_SAMPLES_ACQ_INTO_BUFFER_EVENT_NOT_SUPPORTED_BY_DEVICE
        )
        ai.register_done_event(None)
        ai.register_done_event(Recorder())  # unregistered: may register again
