"""The simulated rig's tools for the self-test, benchmarks and `mmapp sim-daq`:
its frame checks, its NI card and its sample (oblique slices, true beads),
without importing `mmapp.sim` elsewhere."""

from __future__ import annotations

from mmapp.sim.daq_device import DeviceSpec, SimDaqDevice
from mmapp.sim.daq_server import SimDaqServer
from mmapp.sim.frames import (
    DARK_LEVEL,
    expected_pattern,
    is_dark,
    is_lit,
    light_signal,
    stamp,
)
from mmapp.sim.sample import beads_in_box, oblique_slice

__all__ = [
    "DARK_LEVEL",
    "DeviceSpec",
    "SimDaqDevice",
    "SimDaqServer",
    "beads_in_box",
    "expected_pattern",
    "is_dark",
    "is_lit",
    "light_signal",
    "oblique_slice",
    "stamp",
]
