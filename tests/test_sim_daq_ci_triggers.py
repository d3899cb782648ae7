"""The simulated card's counter inputs, analog triggers, streams and partial
reads, through the real nidaqmx client over gRPC."""

from __future__ import annotations

import nidaqmx
import numpy as np
import pytest
from nidaqmx.constants import (
    AcquisitionType,
    RegenerationMode,
    Slope,
    TaskMode,
    TriggerType,
)
from nidaqmx.stream_writers import CounterWriter


def _code(exc: pytest.ExceptionInfo) -> int:
    return exc.value.error_code


def test_a_counter_input_measures_what_a_counter_output_writes(card: tuple) -> None:
    _, opts = card
    with (
        nidaqmx.Task(grpc_options=opts) as co,
        nidaqmx.Task(grpc_options=opts) as ci,
    ):
        co.co_channels.add_co_pulse_chan_freq("Dev1/ctr0", freq=1000.0)
        co.timing.cfg_implicit_timing(sample_mode=AcquisitionType.CONTINUOUS)
        chan = ci.ci_channels.add_ci_pulse_chan_freq("Dev1/ctr1")
        chan.ci_pulse_freq_term = "/Dev1/Ctr0InternalOutput"
        ci.start()
        with pytest.raises(nidaqmx.DaqError) as exc:
            ci.read(timeout=0.1)  # the counter output does not run yet
        assert _code(exc) == -200474
        co.start()
        CounterWriter(co.out_stream).write_one_sample_pulse_frequency(2500.0, 0.25)
        result = ci.read()
        assert result.freq == pytest.approx(2500.0)
        assert result.duty_cycle == pytest.approx(0.25)


def test_count_edges_starts_from_its_initial_count(card: tuple) -> None:
    _, opts = card
    with nidaqmx.Task(grpc_options=opts) as ci:
        chan = ci.ci_channels.add_ci_count_edges_chan("Dev1/ctr0", initial_count=7)
        ci.control(TaskMode.TASK_COMMIT)
        assert chan.ci_count == 7
        assert chan.ci_count_edges_term == "/Dev1/PFI8"  # ctr0's default source


def test_analog_triggers_read_back_and_need_a_sample_clock(card: tuple) -> None:
    _, opts = card
    with nidaqmx.Task(grpc_options=opts) as ai:
        ai.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        ai.triggers.start_trigger.trig_type = TriggerType.ANALOG_EDGE
        with pytest.raises(nidaqmx.DaqError) as exc:
            ai.control(TaskMode.TASK_VERIFY)
        assert _code(exc) == -200262
        ai.timing.cfg_samp_clk_timing(1000.0, samps_per_chan=10)
        ai.triggers.reference_trigger.cfg_anlg_edge_ref_trig(
            "apfi1",
            pretrigger_samples=4,
            trigger_slope=Slope.FALLING,
            trigger_level=1.5,
        )
        ref = ai.triggers.reference_trigger
        assert ref.anlg_edge_src == "/Dev1/APFI1"
        assert ref.anlg_edge_slope == Slope.FALLING
        assert ref.anlg_edge_lvl == pytest.approx(1.5)
        assert ref.pretrig_samples == 4
        assert len(ai.read(10)) == 10  # met at once: nothing drives APFI1


def test_reference_triggers_are_for_input_tasks_only(card: tuple) -> None:
    _, opts = card
    with nidaqmx.Task(grpc_options=opts) as co:
        co.co_channels.add_co_pulse_chan_freq("Dev1/ctr0")
        with pytest.raises(nidaqmx.DaqError) as exc:
            co.triggers.reference_trigger.trig_type = TriggerType.NONE
        assert _code(exc) == -200452


def test_a_partial_read_returns_what_was_acquired(card: tuple) -> None:
    _, opts = card
    with (
        nidaqmx.Task(grpc_options=opts) as co,
        nidaqmx.Task(grpc_options=opts) as ai,
    ):
        co.co_channels.add_co_pulse_chan_freq("Dev1/ctr0", freq=2000.0)
        co.timing.cfg_implicit_timing(samps_per_chan=30)
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd")
        ai.timing.cfg_samp_clk_timing(
            2000.0,
            source="/Dev1/Ctr0InternalOutput",
            sample_mode=AcquisitionType.CONTINUOUS,
        )
        ai.start()
        co.start()
        co.wait_until_done(timeout=5.0)
        assert len(ai.read(20, timeout=2.0)) == 20
        with pytest.raises(nidaqmx.DaqReadError) as exc:
            ai.read(20, timeout=0.2)
        assert _code(exc) == -200284
        assert exc.value.samps_per_chan_read == 10


def test_a_non_regenerating_stream_refuses_what_its_buffer_cannot_take(
    card: tuple,
) -> None:
    _, opts = card
    with nidaqmx.Task(grpc_options=opts) as ao:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ao.timing.cfg_samp_clk_timing(
            1000.0,
            source="/Dev1/Ctr0InternalOutput",  # never ticks: nothing drains
            sample_mode=AcquisitionType.CONTINUOUS,
        )
        ao.out_stream.regen_mode = RegenerationMode.DONT_ALLOW_REGENERATION
        ao.out_stream.output_buf_size = 100
        with pytest.raises(nidaqmx.DaqWriteError) as exc:
            ao.write(np.zeros(101), auto_start=False)
        assert _code(exc) == -200293
        assert exc.value.samps_per_chan_written == 0
        assert ao.write(np.zeros(100), auto_start=False) == 100
        assert (ao.out_stream.curr_write_pos, ao.out_stream.space_avail) == (100, 0)
        ao.start()  # the FIFO (8191 samples) takes more once running
        with pytest.raises(nidaqmx.DaqWriteError) as exc:
            ao.write(np.zeros(9000), timeout=0.1)
        assert _code(exc) == -200292
        assert exc.value.samps_per_chan_written == 8191
