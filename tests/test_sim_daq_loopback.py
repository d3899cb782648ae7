"""Reading the card's outputs back through its inputs (AI loopback, DI lines)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import nidaqmx
import numpy as np
import pytest
from nidaqmx.constants import AcquisitionType, Edge, LineGrouping
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


def test_ai_loopback_reads_the_ao_waveform_sample_by_sample(opts) -> None:
    n, rate = 40, 2000.0
    wave = np.linspace(-3.0, 3.0, n)
    with (
        nidaqmx.Task(grpc_options=opts) as clock,
        nidaqmx.Task(grpc_options=opts) as ao,
        nidaqmx.Task(grpc_options=opts) as ai,
    ):
        clock.co_channels.add_co_pulse_chan_freq("Dev1/ctr0", freq=rate)
        clock.timing.cfg_implicit_timing(samps_per_chan=n)
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ao.timing.cfg_samp_clk_timing(
            rate, source="/Dev1/Ctr0InternalOutput", samps_per_chan=n
        )
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd")
        ai.timing.cfg_samp_clk_timing(
            rate,
            source="/dev1/ctr0internaloutput",
            active_edge=Edge.FALLING,
            samps_per_chan=n,
        )
        ao.write(wave)
        ai.start()
        ao.start()  # both wait for the counter's clock
        clock.start()
        got = ai.read(number_of_samples_per_channel=n, timeout=5.0)
    np.testing.assert_array_equal(got, wave)


def test_on_demand_ai_reads_what_ao_holds(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ao, nidaqmx.Task(grpc_options=opts) as ai:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao1", min_val=-2.0, max_val=2.0)
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao1_vs_aognd")
        ao.write(1.25)
        assert ai.read() == 1.25
        assert ao.channels.ao_max == 2.0 and ao.channels.ao_min == -2.0


def test_di_reads_the_port_do_drives(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as do, nidaqmx.Task(grpc_options=opts) as di:
        chan = do.do_channels.add_do_chan(
            "Dev1/port1", line_grouping=LineGrouping.CHAN_FOR_ALL_LINES
        )
        assert chan.do_num_lines == 8
        di.di_channels.add_di_chan(
            "Dev1/port1/line0:7", line_grouping=LineGrouping.CHAN_FOR_ALL_LINES
        )
        di.di_channels.all.di_tristate = False
        do.write(0b1010_0110)
        assert di.read() == 0b1010_0110
        do.write(0x0F)
        assert di.read() == 0x0F


def test_do_default_grouping_and_unknown_line_errors(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as do:
        do.do_channels.add_do_chan("Dev1/port0/line1")  # default grouping
        with pytest.raises(nidaqmx.DaqError) as exc:
            do.do_channels.add_do_chan("Dev1/port0/line40")
        assert exc.value.error_code == -200170


def test_do_clocked_by_ao_waits_for_the_ao_clock(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as do:
        do.do_channels.add_do_chan("Dev1/port0/line0")
        do.timing.cfg_samp_clk_timing(
            1000.0,
            source="/Dev1/ao/SampleClock",
            sample_mode=AcquisitionType.FINITE,
            samps_per_chan=4,
        )
        do.write([True, False, True, False], auto_start=False)
        do.start()  # no AO task: it starts and waits, as on a card
        assert not do.is_task_done()
