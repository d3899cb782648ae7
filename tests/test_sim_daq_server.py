"""The simulated card through the real nidaqmx client over gRPC."""

from __future__ import annotations

import threading
import time

import nidaqmx
import numpy as np
import pytest
from nidaqmx.constants import (
    AcquisitionType,
    Edge,
    Level,
    LineGrouping,
    UsageTypeCO,
)
from nidaqmx.system import System

from mmapp.daq.connection import DaqConnection


def test_device_discovery_like_nimax(card: tuple) -> None:
    _, opts = card
    system = System.remote(opts)
    assert system.driver_version.major_version == 24
    (dev,) = system.devices
    assert dev.name == "Dev1"
    assert dev.product_type == "PCIe-6363"
    assert dev.is_simulated
    assert dev.ao_physical_chans.channel_names == [f"Dev1/ao{i}" for i in range(4)]
    assert "Dev1/port0/line31" in dev.do_lines.channel_names
    assert dev.co_physical_chans.channel_names == [f"Dev1/ctr{i}" for i in range(4)]
    assert dev.product_category.name == "X_SERIES_DAQ"


def test_written_samples_are_played_at_the_sample_clock(card: tuple) -> None:
    device, opts = card
    rate, n = 10_000.0, 2_000  # 0.2 s finite generation
    with nidaqmx.Task(grpc_options=opts) as ao:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:1", min_val=-5, max_val=5)
        ao.timing.cfg_samp_clk_timing(
            rate, sample_mode=AcquisitionType.FINITE, samps_per_chan=n
        )
        data = np.vstack([np.linspace(-1, 1, n), np.full(n, 2.5)])
        assert ao.write(data, auto_start=False) == n
        task = device.tasks[ao.name]
        np.testing.assert_array_equal(task.buffers[-1].data, data)
        t0 = time.monotonic()
        ao.start()
        ao.wait_until_done(timeout=5)
        elapsed = time.monotonic() - t0
        assert ao.out_stream.total_samp_per_chan_generated == n
        ao.stop()
    assert elapsed >= n / rate - 0.01  # it kept real time, not faster
    # outputs hold the last sample after the task stopped
    assert device.output_value("Dev1/ao0") == pytest.approx(1.0)
    assert device.output_value("Dev1/ao1") == pytest.approx(2.5)


def test_follower_on_ao_clock_counts_with_its_master(card: tuple) -> None:
    _device, opts = card
    with (
        nidaqmx.Task(grpc_options=opts) as ao,
        nidaqmx.Task(grpc_options=opts) as do,
    ):
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ao.timing.cfg_samp_clk_timing(
            1000, sample_mode=AcquisitionType.FINITE, samps_per_chan=100
        )
        do.do_channels.add_do_chan(
            "Dev1/port0/line0", line_grouping=LineGrouping.CHAN_PER_LINE
        )
        do.timing.cfg_samp_clk_timing(
            1000,
            source="/Dev1/ao/SampleClock",
            sample_mode=AcquisitionType.FINITE,
            samps_per_chan=100,
        )
        ao.write(np.zeros(100), auto_start=False)
        do.write([True] * 50 + [False] * 50, auto_start=False)
        do.start()  # follower first: it waits for the AO clock
        assert do.out_stream.total_samp_per_chan_generated == 0
        ao.start()
        ao.wait_until_done(timeout=5)
        do.wait_until_done(timeout=5)
        assert do.out_stream.total_samp_per_chan_generated == 100
        assert ao.out_stream.total_samp_per_chan_generated == 100


def test_retriggerable_task_plays_one_burst_per_edge(card: tuple) -> None:
    device, opts = card
    with nidaqmx.Task(grpc_options=opts) as ao:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ao.timing.cfg_samp_clk_timing(
            1000, sample_mode=AcquisitionType.FINITE, samps_per_chan=4
        )
        ao.triggers.start_trigger.cfg_dig_edge_start_trig("/Dev1/PFI0", Edge.RISING)
        ao.triggers.start_trigger.retriggerable = True
        assert ao.triggers.start_trigger.retriggerable
        ao.write(np.arange(12, dtype=float) / 10, auto_start=False)
        ao.start()
        assert ao.out_stream.total_samp_per_chan_generated == 0
        t0 = time.monotonic()
        edges = [t0 + 0.005 * i for i in range(4)]  # 5 ms apart, bursts take 4 ms
        seen = [device.input_edge("/Dev1/PFI0", at)(0.0)["Dev1/ao0"] for at in edges]
        assert seen == pytest.approx([0.0, 0.4, 0.8, 0.0])  # bursts of 4, regenerated
        assert ao.out_stream.total_samp_per_chan_generated == 16
        assert device.input_edge("/Dev1/PFI1") is None  # nothing listens there
        # an edge while a burst still plays is ignored, as on the card
        assert device.input_edge("/Dev1/PFI0", edges[-1] + 0.003) is None
        assert device.tasks[ao.name].ignored_triggers == 1
        assert ao.out_stream.total_samp_per_chan_generated == 16


def _code(exc: pytest.ExceptionInfo) -> int:
    return exc.value.error_code


def test_real_daqmx_errors_for_real_mistakes(card: tuple) -> None:
    _device, opts = card
    with nidaqmx.Task(grpc_options=opts) as task:
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.ao_channels.add_ao_voltage_chan("Dev1/ao7")
        assert _code(exc) == -200170
        assert "Physical channel specified does not exist" in str(exc.value)
        assert "Dev1/ao7" in str(exc.value)
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.start()  # nothing configured
        assert _code(exc) == -200478
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.ao_channels.add_ao_voltage_chan("Dev1/ao0", min_val=-12, max_val=12)
        assert _code(exc) == -200077
        task.ao_channels.add_ao_voltage_chan("Dev1/ao0", min_val=-2, max_val=2)
        task.timing.cfg_samp_clk_timing(1000, samps_per_chan=10)
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.start()  # no samples written
        assert _code(exc) == -200462
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.write(np.full(10, 3.0), auto_start=False)  # beyond +-2 V
        assert _code(exc) == -200561
        assert "3 V" in str(exc.value)
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.timing.cfg_samp_clk_timing(5e6, samps_per_chan=10)
        assert _code(exc) == -200332
        with pytest.raises(nidaqmx.DaqError) as exc:
            task.triggers.start_trigger.cfg_dig_edge_start_trig("/Dev1/PFI99")
        assert _code(exc) == -89120


def test_a_running_task_reserves_its_channels(card: tuple) -> None:
    _, opts = card
    with (
        nidaqmx.Task(grpc_options=opts) as first,
        nidaqmx.Task(grpc_options=opts) as second,
    ):
        for task in (first, second):
            task.ao_channels.add_ao_voltage_chan("Dev1/ao0")
            task.timing.cfg_samp_clk_timing(
                1000, sample_mode=AcquisitionType.CONTINUOUS, samps_per_chan=10
            )
            task.write(np.zeros(10), auto_start=False)
        first.start()
        with pytest.raises(nidaqmx.DaqError) as exc:
            second.start()
        assert _code(exc) == -50103
        first.stop()
        second.start()  # free once the first stopped
        second.stop()


def test_duplicate_and_cleared_tasks(card: tuple) -> None:
    device, opts = card
    task = nidaqmx.Task("galvo", grpc_options=opts)
    with pytest.raises(nidaqmx.DaqError) as exc:
        nidaqmx.Task("galvo", grpc_options=opts)
    assert _code(exc) == -200089
    task.close()
    assert device.tasks == {}
    nidaqmx.Task("galvo", grpc_options=opts).close()  # the name is free again


def test_unavailable_server_is_a_clear_error() -> None:
    from mmapp.daq.connection import DaqUnavailableError
    from mmapp.daq.program import (
        AnalogChannel,
        CameraTrigger,
        Constant,
        WaveformProgram,
    )
    from mmapp.daq.tasks import DaqTasks

    program = WaveformProgram(
        analog=[
            AnalogChannel(
                name="g", physical_channel="Dev1/ao0", shape=Constant(value=0)
            )
        ],
        camera_trigger=CameraTrigger(physical_line="Dev1/port0/line7"),
    )
    dead = DaqConnection("Dev1", "127.0.0.1:1")  # nothing listens on port 1
    with pytest.raises(
        DaqUnavailableError, match=r"cannot reach the DAQ server 127\.0\.0\.1:1"
    ):
        DaqTasks(dead, program)


def test_counter_ticks_on_the_ao_clock_pulse_at_its_samples(card: tuple) -> None:
    device, opts = card
    rate, n = 10_000.0, 60
    edges: list[tuple[float, float]] = []  # (seconds after AO start, AO volts)
    ao_task: list = []

    def camera(probe: object, at: float) -> None:
        (ao,) = ao_task
        edges.append((at - ao.started_at, probe(0.0)["Dev1/ao0"]))  # type: ignore[operator]

    device.connect_edges("Dev1/ctr1", camera)
    with (
        nidaqmx.Task(grpc_options=opts) as ao,
        nidaqmx.Task(grpc_options=opts) as co,
    ):
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0", min_val=0, max_val=10)
        ao.timing.cfg_samp_clk_timing(
            rate, sample_mode=AcquisitionType.FINITE, samps_per_chan=n
        )
        ao.write(np.arange(n) / 10.0, auto_start=False)  # volts = sample / 10
        chan = co.co_channels.add_co_pulse_chan_ticks(
            "Dev1/ctr1",
            "/Dev1/ao/SampleClock",
            initial_delay=3,
            high_ticks=2,
            low_ticks=9,
        )
        assert (chan.co_pulse_high_ticks, chan.co_pulse_low_ticks) == (2, 9)
        assert chan.co_pulse_ticks_initial_delay == 3
        assert chan.co_ctr_timebase_src == "/Dev1/ao/SampleClock"
        co.timing.cfg_implicit_timing(
            sample_mode=AcquisitionType.FINITE, samps_per_chan=4
        )
        co.start()  # armed: it counts nothing until the AO clock ticks
        ao_task.append(device.tasks[ao.name])
        assert not co.is_task_done()
        ao.start()
        ao.wait_until_done(timeout=5)
        co.wait_until_done(timeout=5)  # 4 pulses: edges at ticks 3, 14, 25, 36
        ticks = [3, 14, 25, 36]
        assert [v for _, v in edges] == pytest.approx([t / 10 for t in ticks])
        assert [at for at, _ in edges] == pytest.approx([t / rate for t in ticks])


def test_a_counter_on_the_ao_clock_never_pulses_after_it_stops(card: tuple) -> None:
    device, opts = card
    fired: list[float] = []
    arrived = threading.Event()

    def camera(probe: object, at: float) -> None:
        fired.append(at)
        if len(fired) == 5:
            arrived.set()

    device.connect_edges("Dev1/ctr0", camera)
    with (
        nidaqmx.Task(grpc_options=opts) as ao,
        nidaqmx.Task(grpc_options=opts) as co,
    ):
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ao.timing.cfg_samp_clk_timing(
            1000, sample_mode=AcquisitionType.CONTINUOUS, samps_per_chan=10
        )
        ao.write(np.zeros(10), auto_start=False)
        co.co_channels.add_co_pulse_chan_ticks(
            "Dev1/ctr0",
            "/Dev1/ao/SampleClock",
            initial_delay=2,
            low_ticks=2,
            high_ticks=2,
        )
        co.timing.cfg_implicit_timing(sample_mode=AcquisitionType.CONTINUOUS)
        co.start()
        ao.start()
        assert arrived.wait(5), "five pulses within 5 s"
        ao.stop()  # the master first, as on Stop
        ticks = device.generated(ao.name)
        co.stop()
    pulses = (ticks - 2 - 1) // 4 + 1 if ticks > 2 else 0  # edges at ticks 2, 6, ...
    assert len(fired) == pulses, "every edge before the stop fired, none after"


def test_stop_freezes_a_master_and_its_followers_at_one_instant(card: tuple) -> None:
    """Each clock reading is one AO sample later (a stop that takes time): the
    counter and the DO on the AO clock still stop at the AO's count."""
    device, opts = card
    rate = 1024.0
    readings = iter(range(10**6))
    device.clock = lambda: 64.0 + next(readings) / rate  # exact in binary
    with (
        nidaqmx.Task(grpc_options=opts) as ao,
        nidaqmx.Task(grpc_options=opts) as do,
        nidaqmx.Task(grpc_options=opts) as co,
    ):
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0")
        ao.timing.cfg_samp_clk_timing(
            rate, sample_mode=AcquisitionType.CONTINUOUS, samps_per_chan=10
        )
        ao.write(np.zeros(10), auto_start=False)
        do.do_channels.add_do_chan(
            "Dev1/port0/line0", line_grouping=LineGrouping.CHAN_PER_LINE
        )
        do.timing.cfg_samp_clk_timing(
            rate,
            source="/Dev1/ao/SampleClock",
            sample_mode=AcquisitionType.CONTINUOUS,
            samps_per_chan=10,
        )
        do.write([True, False] * 5, auto_start=False)
        co.co_channels.add_co_pulse_chan_ticks(
            "Dev1/ctr0",
            "/Dev1/ao/SampleClock",
            initial_delay=2,
            low_ticks=2,
            high_ticks=2,
        )
        co.timing.cfg_implicit_timing(sample_mode=AcquisitionType.CONTINUOUS)
        co.start()
        do.start()
        ao.start()
        for _ in range(7):  # the clock runs on with every reading
            device.generated(ao.name)
        ao.stop()
        generated = device.generated(ao.name)
        assert generated > 7
        assert do.out_stream.total_samp_per_chan_generated == generated
        assert device.ticks(device.tasks[co.name]) == generated
        pulses = device.generated(co.name)  # rising edges at ticks 2, 6, 10, ...
        assert pulses == (generated - 2 - 1) // 4 + 1
        co.stop()
        do.stop()
        assert device.generated(co.name) == pulses


def test_counter_ticks_refuse_what_daqmx_refuses(card: tuple) -> None:
    _device, opts = card
    clock = "/Dev1/ao/SampleClock"
    with nidaqmx.Task(grpc_options=opts) as co:
        with pytest.raises(nidaqmx.DaqError) as exc:
            co.co_channels.add_co_pulse_chan_ticks("Dev1/ctr9", clock)
        assert _code(exc) == -200170 and "Dev1/ctr9" in str(exc.value)
        with pytest.raises(nidaqmx.DaqError) as exc:
            co.co_channels.add_co_pulse_chan_ticks("Dev1/ctr0", "/Dev1/PFI99")
        assert _code(exc) == -89120 and "/Dev1/PFI99" in str(exc.value)
        for field, prop in (
            ("high_ticks", "DAQmx_CO_Pulse_HighTicks"),
            ("low_ticks", "DAQmx_CO_Pulse_LowTicks"),
            ("initial_delay", "DAQmx_CO_Pulse_Ticks_InitialDelay"),
        ):
            ticks = {"initial_delay": 2, "high_ticks": 2, "low_ticks": 2, field: 1}
            with pytest.raises(nidaqmx.DaqError) as exc:
                co.co_channels.add_co_pulse_chan_ticks("Dev1/ctr0", clock, **ticks)
            assert _code(exc) == -200077
            assert f"Property: {prop}\nRequested Value: 1" in str(exc.value)
        assert co.channel_names == [], "nothing half-created"


def test_counter_ticks_idle_high_rise_after_the_low_time(card: tuple) -> None:
    device, opts = card
    with nidaqmx.Task(grpc_options=opts) as co:
        chan = co.co_channels.add_co_pulse_chan_ticks(
            "Dev1/ctr0",
            "/Dev1/ao/SampleClock",
            idle_state=Level.HIGH,
            initial_delay=2,
            low_ticks=3,
            high_ticks=5,
        )
        assert chan.co_pulse_idle_state == Level.HIGH
        task = device.task(co.name)
        assert [task.channels[0].pulse_tick(k) for k in range(3)] == [5, 13, 21]


def test_counter_ticks_default_initial_delay_is_the_least(card: tuple) -> None:
    device, opts = card
    with nidaqmx.Task(grpc_options=opts) as co:
        chan = co.co_channels.add_co_pulse_chan_ticks(
            "Dev1/ctr0", "/Dev1/ao/SampleClock", low_ticks=3, high_ticks=5
        )
        assert chan.co_pulse_ticks_initial_delay == 0
        task = device.task(co.name)
        assert [task.channels[0].pulse_tick(k) for k in range(3)] == [2, 10, 18]


def test_calibration_info_reads_as_an_x_series_card(card: tuple) -> None:
    _device, opts = card
    dev = System.remote(opts).devices["Dev1"]
    assert dev.device_supports_cal and dev.self_cal_supported
    assert dev.ext_cal_last_date_and_time.year == 2024
    assert dev.ext_cal_recommended_interval == 24
    assert dev.cal_dev_temp == 0.0
    dev.cal_user_defined_info = "rig 3 checked"
    assert dev.cal_user_defined_info == "rig 3 ch"[: dev.cal_user_defined_info_max_size]
    with pytest.raises(nidaqmx.DaqError) as exc:
        _ = dev.cal_acc_connection_count
    assert _code(exc) == -200197
    dev.restore_last_ext_cal_const()


def test_counter_channels_keep_their_creation_timing(card: tuple) -> None:
    _device, opts = card
    with nidaqmx.Task(grpc_options=opts) as co:
        freq = co.co_channels.add_co_pulse_chan_freq(
            "Dev1/ctr0", idle_state=Level.HIGH, initial_delay=0.001, freq=50.0
        )
        ticks = co.co_channels.add_co_pulse_chan_ticks(
            "Dev1/ctr1", "/Dev1/ao/SampleClock", initial_delay=2
        )
        assert freq.co_output_type == UsageTypeCO.PULSE_FREQUENCY
        assert freq.co_pulse_idle_state == Level.HIGH
        assert freq.co_pulse_freq_initial_delay == 0.001
        assert ticks.co_output_type == UsageTypeCO.PULSE_TICKS
        assert ticks.co_pulse_idle_state == Level.LOW
