"""Analog output: voltage channels on the AO terminals and the range check
DAQmx applies to what is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mmapp.sim.daq.device import AO_RANGE_V, DeviceSpec, expand_channels
from mmapp.sim.daq.errors import (
    INVALID_AO_DATA_WRITE,
    INVALID_ATTRIBUTE_VALUE,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimTask


class AnalogOutput:
    """AO channels of the card (mixin of SimDaqDevice)."""

    spec: DeviceSpec
    tasks: dict[str, SimTask]
    _add: Callable[[SimTask, Channel], None]

    def add_ao_channels(
        self, task: SimTask, physical: str, name: str, min_v: float, max_v: float
    ) -> None:
        """Add AO voltage channels (range checked against the card's ±10 V)."""
        from mmapp.sim.daq.card import Channel

        for phys in expand_channels(physical):
            if phys not in self.spec.ao_channels():
                raise DaqmxError(
                    PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {phys}"
                )
            if not (-AO_RANGE_V <= min_v < max_v <= AO_RANGE_V):
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE,
                    f"Property: DAQmx_AO_Min/Max\nRequested Value: [{min_v}, {max_v}]"
                    f"\nPossible Values: [-10.0, 10.0]\nChannel Name: {phys}",
                )
            self._add(task, Channel(name or phys, phys, "ao", min_v, max_v))

    def _check_ao(self, task: SimTask, data: np.ndarray) -> None:
        for ch, row in zip(task.channels, data, strict=True):
            low, high = float(np.min(row)), float(np.max(row))
            if low < ch.min_v - 1e-9 or high > ch.max_v + 1e-9:
                bad = low if low < ch.min_v else high
                raise DaqmxError(
                    INVALID_AO_DATA_WRITE,
                    f"Value: {bad:g} V\nChannel Name: {ch.name}\nRange: "
                    f"[{ch.min_v:g}, {ch.max_v:g}] V\nTask Name: {task.name}",
                )

    def ao_master(self) -> SimTask | None:
        """The running AO task on its own clock (what galvo probes refer to)."""
        for task in self.tasks.values():
            if task.running and task.kind == "ao" and task.master is None:
                return task
        return None
