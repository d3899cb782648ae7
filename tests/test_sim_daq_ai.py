"""AI and DI channels of the simulated card: ranges and names as an X-series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc
import nidaqmx
import numpy as np
import pytest
from nidaqmx.constants import (
    AcquisitionType,
    ExcitationSource,
    LineGrouping,
    TerminalConfiguration,
    UsageTypeAI,
    VoltageUnits,
)
from nidaqmx.errors import DaqError
from nidaqmx.grpc_session_options import GrpcSessionOptions
from nidaqmx.stream_readers import AnalogSingleChannelReader, AnalogUnscaledReader
from nidaqmx.stream_writers import AnalogUnscaledWriter
from nitypes.waveform import AnalogWaveform, DigitalWaveform

from mmapp.rig.simulated import SimDaqDevice, SimDaqServer


@pytest.fixture
def opts() -> Iterator[GrpcSessionOptions]:
    """Client options for a simulated card on an ephemeral port."""
    server = SimDaqServer(SimDaqDevice()).start()
    channel = grpc.insecure_channel(server.address)
    yield GrpcSessionOptions(grpc_channel=channel, session_name="")
    channel.close()
    server.stop()


def test_ai_min_max_read_back_as_the_coerced_range(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        chan = task.ai_channels.add_ai_voltage_chan(
            "Dev1/ai0", min_val=-2.5, max_val=2.5
        )
        assert (chan.ai_min, chan.ai_max) == (-5.0, 5.0)
        assert (chan.ai_rng_low, chan.ai_rng_high) == (-5.0, 5.0)
        chan.ai_max = 0.15
        chan.ai_min = -0.15
        assert (chan.ai_min, chan.ai_max) == (-0.2, 0.2)
        exact = task.ai_channels.add_ai_voltage_chan(
            "Dev1/ai1", min_val=-10, max_val=10
        )
        assert (exact.ai_min, exact.ai_max) == (-10.0, 10.0)


def test_a_multi_line_digital_channel_is_named_first_line_dots(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        task.di_channels.add_di_chan(
            "Dev1/port0/line0:3", line_grouping=LineGrouping.CHAN_FOR_ALL_LINES
        )
        task.di_channels.add_di_chan("Dev1/port1")
        assert task.channel_names == ["Dev1/port0/line0...", "Dev1/port1"]
        assert task.di_channels["Dev1/port0/line0..."].di_num_lines == 4


def test_binary_and_raw_reads_give_the_adc_codes_of_the_range(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ao, nidaqmx.Task(grpc_options=opts) as ai:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd", min_val=-5, max_val=5)
        ao.write(2.5)
        assert ai.ai_channels.all.ai_raw_samp_size == 16
        codes = np.zeros((1, 3), dtype=np.int16)
        AnalogUnscaledReader(ai.in_stream).read_int16(codes, 3)
        np.testing.assert_array_equal(codes, [[16384, 16384, 16384]])
        raw = ai.in_stream.read(2)
        assert raw.dtype == np.int16
        np.testing.assert_array_equal(raw, [16384, 16384])


def test_a_finite_read_of_more_than_acquired_returns_what_is_left(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        task.ai_channels.add_ai_voltage_chan("Dev1/ai0", min_val=0.5, max_val=1.5)
        task.timing.cfg_samp_clk_timing(
            1000.0, sample_mode=AcquisitionType.FINITE, samps_per_chan=5
        )
        assert len(task.read(10)) == 5


def test_a_waveform_read_carries_timing_name_and_units(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ao, nidaqmx.Task(grpc_options=opts) as ai:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao1")
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao1_vs_aognd", "probe")
        ai.timing.cfg_samp_clk_timing(
            2000.0, sample_mode=AcquisitionType.FINITE, samps_per_chan=4
        )
        ao.write(-1.5)
        wfm = AnalogWaveform(4)
        assert AnalogSingleChannelReader(ai.in_stream).read_waveform(wfm, 4) == 4
        np.testing.assert_array_equal(wfm.scaled_data, [-1.5] * 4)
        assert wfm.timing.sample_interval == dt.timedelta(seconds=1 / 2000)
        assert abs(wfm.timing.timestamp - dt.datetime.now(dt.UTC)) < dt.timedelta(
            seconds=5
        )
        assert (wfm.channel_name, wfm.units) == ("probe", "Volts")


def test_read_all_reads_a_finite_task_whole_or_what_is_available(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        task.ai_channels.add_ai_voltage_chan("Dev1/ai0", min_val=0.5, max_val=1.5)
        task.timing.cfg_samp_clk_timing(
            1000.0, sample_mode=AcquisitionType.FINITE, samps_per_chan=7
        )
        assert task.read_waveform().sample_count == 7
        task.in_stream.read_all_avail_samp = True
        assert task.in_stream.read_all_avail_samp is True


def test_a_written_analog_waveform_is_what_the_loopback_reads(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ao, nidaqmx.Task(grpc_options=opts) as ai:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd")
        wfm = AnalogWaveform.from_array_1d(np.array([0.5, -2.25]))
        assert ao.write_waveform(wfm) == 2
        assert ai.read() == -2.25


def test_a_port_waveform_has_line0_in_its_rightmost_column(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as do, nidaqmx.Task(grpc_options=opts) as di:
        do.do_channels.add_do_chan("Dev1/port1")
        di.di_channels.add_di_chan("Dev1/port1")
        wfm = DigitalWaveform.from_port(np.array([0b1000_0001], dtype=np.uint8), 0xFF)
        assert do.write_waveform(wfm) == 1
        got = di.read_waveform(1)
        assert got.signals[0].name == "Dev1/port1/line0"
        assert got.data[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 1]
        with pytest.raises(DaqError) as err:
            do.write_waveform(DigitalWaveform(1, 3))
        assert err.value.error_code == -200463
        assert "number of lines in the data" in err.value.args[0]


def test_unscaled_ao_writes_are_dac_codes_of_plus_minus_10_v(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ao, nidaqmx.Task(grpc_options=opts) as ai:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd")
        codes = np.array([[0, -32767]], dtype=np.int16)
        assert AnalogUnscaledWriter(ao.out_stream).write_int16(codes) == 2
        assert ai.read() == -10.0


def test_a_voltage_channel_with_excitation_keeps_its_excitation(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        chan = task.ai_channels.add_ai_voltage_chan_with_excit(
            "Dev1/ai0",
            voltage_excit_source=ExcitationSource.EXTERNAL,
            voltage_excit_val=0.1,
        )
        assert chan.ai_meas_type == UsageTypeAI.VOLTAGE_CUSTOM_WITH_EXCITATION
        assert chan.ai_excit_src == ExcitationSource.EXTERNAL
        assert chan.ai_excit_val == 0.1
        assert not chan.ai_excit_use_for_scaling
        chan.ai_excit_use_for_scaling = True
        assert chan.ai_excit_use_for_scaling
        del chan.ai_excit_use_for_scaling
        assert not chan.ai_excit_use_for_scaling
        assert chan.ai_lossy_lsb_removal_compressed_samp_size == 16
        plain = task.ai_channels.add_ai_voltage_chan("Dev1/ai1")
        assert plain.ai_meas_type == UsageTypeAI.VOLTAGE


def test_the_timebase_divisor_sets_the_rate_and_resets_restore_defaults(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        task.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        assert task.timing.samp_clk_rate == 1000.0
        task.timing.cfg_samp_clk_timing(
            2000.0, sample_mode=AcquisitionType.FINITE, samps_per_chan=50
        )
        assert task.timing.samp_clk_timebase_src == "/Dev1/100MHzTimebase"
        assert task.timing.samp_clk_timebase_div == 50_000
        task.timing.samp_clk_timebase_div = 200_000
        assert task.timing.samp_clk_rate == 500.0
        del task.timing.samp_quant_samp_mode
        del task.timing.samp_quant_samp_per_chan
        del task.timing.samp_clk_rate
        assert task.timing.samp_quant_samp_mode == AcquisitionType.CONTINUOUS
        assert task.timing.samp_quant_samp_per_chan == 1000
        assert task.timing.samp_clk_rate == 1000.0


def test_ai_terminals_default_to_differential_and_keep_their_units(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        ai0 = task.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        scaled = task.ai_channels.add_ai_voltage_chan(
            "Dev1/ai1",
            units=VoltageUnits.FROM_CUSTOM_SCALE,
            custom_scale_name="gain",
        )
        loop = task.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd")
        assert ai0.ai_term_cfg == TerminalConfiguration.DIFF
        assert loop.ai_term_cfg == TerminalConfiguration.RSE
        assert ai0.ai_voltage_units == VoltageUnits.VOLTS
        assert scaled.ai_voltage_units == VoltageUnits.FROM_CUSTOM_SCALE
        assert (ai0.ai_custom_scale.name, scaled.ai_custom_scale.name) == ("", "gain")


def test_reference_trigger_pretrigger_samples_default_to_two(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as task:
        task.ai_channels.add_ai_voltage_chan("Dev1/ai0")
        ref = task.triggers.reference_trigger
        assert ref.pretrig_samples == 2
        ref.pretrig_samples = 500
        assert ref.pretrig_samples == 500
        del ref.pretrig_samples
        assert ref.pretrig_samples == 2


def test_a_raw_write_plays_interleaved_dac_codes_in_whole_samples(opts) -> None:
    with nidaqmx.Task(grpc_options=opts) as ao, nidaqmx.Task(grpc_options=opts) as ai:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:1")
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao0_vs_aognd")
        ai.ai_channels.add_ai_voltage_chan("Dev1/_ao1_vs_aognd")
        ao.out_stream.auto_start = True
        codes = np.array([16384, -16384, 32767], dtype=np.int16)  # ao0, ao1, half
        assert ao.out_stream.write(codes) == 1
        volts = ai.read()
        np.testing.assert_allclose(volts, [16384 * 10 / 32767, -16384 * 10 / 32767])
