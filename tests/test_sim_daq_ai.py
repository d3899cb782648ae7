"""AI and DI channels of the simulated card: ranges and names as an X-series."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import nidaqmx
import pytest
from nidaqmx.constants import LineGrouping
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
