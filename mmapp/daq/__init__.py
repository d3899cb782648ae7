"""The DAQ side: the waveform program model, its rendering to samples (numpy),
and the NI-DAQmx tasks that play it (the local driver or, for the simulated
card, gRPC). Qt-free and engine-free.
"""

from mmapp.daq.connection import DaqConnection, DaqUnavailableError
from mmapp.daq.program import (
    AnalogChannel,
    CameraTrigger,
    LaserLine,
    Timing,
    WaveformProgram,
)
from mmapp.daq.render import RenderedProgram, WaveformError, render
from mmapp.daq.tasks import (
    DaqSyncError,
    DaqTasks,
    check_program_on_device,
    check_topology,
    frames_for,
    park,
    restart_needed,
)

__all__ = [
    "AnalogChannel",
    "CameraTrigger",
    "DaqConnection",
    "DaqSyncError",
    "DaqTasks",
    "DaqUnavailableError",
    "LaserLine",
    "RenderedProgram",
    "Timing",
    "WaveformError",
    "WaveformProgram",
    "check_program_on_device",
    "check_topology",
    "frames_for",
    "park",
    "render",
    "restart_needed",
]
